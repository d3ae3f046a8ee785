"""Limb orientation math of the patch-based refiner (Wan et al., Sec. 3.2, Eq. 1-2).

A *limb* is one ``(child, parent)`` bone of the H36M-17 tree (:data:`LIMBS`, 16 of them, in the
order of :attr:`streampose.skeleton.H36M17.bones`).  Its *orientation* is the 3D vector from the
parent joint to the child joint divided by that limb's mean length over the training set (OriNet's
normalisation), so every limb has orientation of norm about 1 whatever its real length.

The refiner predicts a residual orientation ``dU``; the residual 3D pose is rebuilt by accumulating
the de-normalised limb vectors from the root down the tree and added to the initial pose.  Because
the rebuild is linear, ``X0 + pose(dU) == pose(U(X0) + dU)`` for a root-relative ``X0``.
"""
from __future__ import annotations

import torch

from streampose.skeleton import H36M17

#: ``(child, parent)`` joint pairs, one per limb, in joint order.
LIMBS: tuple[tuple[int, int], ...] = tuple(H36M17.bones)
NUM_LIMBS = len(LIMBS)  # 16
LIMB_NAMES: tuple[str, ...] = tuple(f"{H36M17.joints[p]}->{H36M17.joints[c]}" for c, p in LIMBS)

_CHILD = torch.tensor([c for c, _ in LIMBS])
_PARENT = torch.tensor([p for _, p in LIMBS])

# Every parent index is smaller than its child in H36M-17, so one pass in joint order accumulates
# the tree; assert it so a skeleton change cannot silently break the reconstruction.
assert all(p < c for c, p in LIMBS)


def limb_vectors(pose: torch.Tensor) -> torch.Tensor:
    """Parent-to-child bone vectors.

    Args:
        pose: ``(..., 17, 3)`` joint positions.

    Returns:
        ``(..., 16, 3)`` ``pose[child] - pose[parent]`` per limb.
    """
    return pose[..., _CHILD.to(pose.device), :] - pose[..., _PARENT.to(pose.device), :]


def mean_limb_lengths(poses: torch.Tensor) -> torch.Tensor:
    """Mean length of each limb over a set of poses (the normalising statistic).

    Args:
        poses: ``(N, 17, 3)`` poses in metres.

    Returns:
        ``(16,)`` mean limb lengths in metres.
    """
    return limb_vectors(poses).norm(dim=-1).reshape(-1, NUM_LIMBS).mean(dim=0)


def limb_orientations(pose: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Normalised limb orientations ``U``.

    Args:
        pose: ``(..., 17, 3)`` joint positions (metres).
        lengths: ``(16,)`` mean limb lengths (metres), from :func:`mean_limb_lengths`.

    Returns:
        ``(..., 16, 3)`` limb vectors divided by the mean length of their limb.
    """
    return limb_vectors(pose) / lengths.to(pose)[:, None]


def pose_from_orientations(orientations: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Rebuild a root-relative pose from (residual) orientations along the tree.

    Args:
        orientations: ``(..., 16, 3)`` normalised limb orientations.
        lengths: ``(16,)`` the limb lengths they were normalised by.

    Returns:
        ``(..., 17, 3)`` joint positions with the root (Hip) at the origin.
    """
    vectors = orientations * lengths.to(orientations)[:, None]
    joints = [torch.zeros_like(vectors[..., 0, :])] * H36M17.num_joints
    for limb, (child, parent) in enumerate(LIMBS):
        joints[child] = joints[parent] + vectors[..., limb, :]
    return torch.stack(joints, dim=-2)


def apply_residual(initial: torch.Tensor, residual_orientations: torch.Tensor,
                   lengths: torch.Tensor) -> torch.Tensor:
    """Refined pose ``X1 = X0 + pose(dU)`` (paper Eq. 1).

    Args:
        initial: ``(..., 17, 3)`` initial root-relative pose ``X0`` (metres).
        residual_orientations: ``(..., 16, 3)`` predicted ``dU``.
        lengths: ``(16,)`` limb length statistics.

    Returns:
        ``(..., 17, 3)`` refined pose.
    """
    return initial + pose_from_orientations(residual_orientations, lengths)


def residual_target(initial: torch.Tensor, ground_truth: torch.Tensor,
                    lengths: torch.Tensor) -> torch.Tensor:
    """Training target ``U_gt - U0`` (paper Eq. 2).

    Args:
        initial: ``(..., 17, 3)`` initial pose.
        ground_truth: ``(..., 17, 3)`` true pose.
        lengths: ``(16,)`` limb length statistics.

    Returns:
        ``(..., 16, 3)`` residual orientations.
    """
    return limb_orientations(ground_truth, lengths) - limb_orientations(initial, lengths)
