"""3D pose error metrics (VideoPose3D protocols), numpy, in the units of the inputs.

* MPJPE   -- mean per-joint position error (protocol 1),
* P-MPJPE -- after a per-frame similarity (Procrustes) alignment: rotation, scale, translation
  (protocol 2),
* N-MPJPE -- after a per-frame least-squares scale alignment only (protocol 3),
* MPJVE   -- MPJPE of the first time derivative (velocity error; smoothness over time).

Every function takes ``predicted`` and ``target`` of shape ``(..., J, 3)`` and returns a float, the mean
over all frames and joints.  Poses are compared as given: pass root-relative poses for the usual
root-relative protocols.
"""
from __future__ import annotations

import numpy as np


def _check(predicted: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predicted = np.asarray(predicted, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if predicted.shape != target.shape or predicted.ndim < 2 or predicted.shape[-1] != 3:
        raise ValueError(f"expected two (..., J, 3) arrays of one shape, got {predicted.shape} "
                         f"and {target.shape}")
    return predicted, target


def mpjpe(predicted: np.ndarray, target: np.ndarray) -> float:
    """Mean Euclidean distance between corresponding joints.

    Args:
        predicted: ``(..., J, 3)``.
        target: ``(..., J, 3)``.
    """
    predicted, target = _check(predicted, target)
    return float(np.linalg.norm(predicted - target, axis=-1).mean())


def n_mpjpe(predicted: np.ndarray, target: np.ndarray) -> float:
    """MPJPE after scaling each predicted pose by the least-squares optimal factor.

    ``s = <p, t> / <p, p>`` per pose (summed over joints and axes), so a scaled copy scores 0.

    Args:
        predicted: ``(..., J, 3)``.
        target: ``(..., J, 3)``.
    """
    predicted, target = _check(predicted, target)
    dot = (predicted * target).sum(axis=(-1, -2), keepdims=True)
    norm = (predicted * predicted).sum(axis=(-1, -2), keepdims=True)
    scale = dot / np.maximum(norm, 1e-12)
    return mpjpe(scale * predicted, target)


def procrustes_align(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Align each predicted pose to its target with the optimal similarity transform.

    Solves ``min_{s,R,t} ||s R p + t - y||`` per pose (Umeyama/Kabsch with reflection guard).

    Args:
        predicted: ``(..., J, 3)``.
        target: ``(..., J, 3)``.

    Returns:
        ``(..., J, 3)`` the aligned predictions.
    """
    predicted, target = _check(predicted, target)
    mu_p = predicted.mean(axis=-2, keepdims=True)
    mu_t = target.mean(axis=-2, keepdims=True)
    p = predicted - mu_p
    t = target - mu_t
    # Cross-covariance (..., 3, 3); its SVD gives the rotation that best maps p onto t.
    u, sigma, vt = np.linalg.svd(np.swapaxes(p, -1, -2) @ t)
    # Flip the last singular direction when the best orthogonal map is a reflection.
    sign = np.sign(np.linalg.det(u @ vt))
    sigma = sigma.copy()
    sigma[..., -1] *= sign
    vt = vt.copy()
    vt[..., -1, :] *= sign[..., None]
    rotation = u @ vt  # p @ rotation ~ t (row vectors)
    scale = sigma.sum(axis=-1)[..., None, None] / np.maximum((p * p).sum(axis=(-1, -2))[..., None, None],
                                                             1e-12)
    return scale * (p @ rotation) + mu_t


def p_mpjpe(predicted: np.ndarray, target: np.ndarray) -> float:
    """MPJPE after per-pose Procrustes alignment (rotation, scale, translation).

    Args:
        predicted: ``(..., J, 3)``.
        target: ``(..., J, 3)``.
    """
    predicted, target = _check(predicted, target)
    return mpjpe(procrustes_align(predicted, target), target)


def mpjve(predicted: np.ndarray, target: np.ndarray) -> float:
    """Mean per-joint velocity error: MPJPE of the frame-to-frame differences.

    Args:
        predicted: ``(T, J, 3)`` (or ``(N, T, J, 3)``), time on axis ``-3``, ``T >= 2``.
        target: same shape.

    Returns:
        error in input units per frame (multiply by fps for units per second).
    """
    predicted, target = _check(predicted, target)
    if predicted.ndim < 3 or predicted.shape[-3] < 2:
        raise ValueError(f"MPJVE needs (..., T >= 2, J, 3), got {predicted.shape}")
    return mpjpe(np.diff(predicted, axis=-3), np.diff(target, axis=-3))
