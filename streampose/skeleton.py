"""Skeleton definitions shared by every stage: joint orders, parents, symmetry and mappings.

Three skeletons meet in streampose:

* ``H36M17`` -- the 17-joint Human3.6M order used by VideoPose3D. Every 2D and 3D output of the
  pipeline (JSONL, ``PoseFrame``) is in this order.
* ``COCO17`` -- the order most 2D detectors (and VideoPose3D's COCO checkpoints) use.
* ``BLAZEPOSE33`` -- MediaPipe BlazePose landmarks, which our 2D stage produces.

Mappings between them are *linear* (each target joint is a weighted sum of source joints), stored as
``(J_target, J_source)`` matrices, so the same matrix maps pixel keypoints, metric world landmarks and
whole sequences.  Confidences are mapped with the minimum over contributing joints: a synthesised
joint is only as trustworthy as its weakest ingredient.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    """A named joint order with its kinematic tree and left/right symmetry.

    ``parents[j]`` is the parent joint of ``j`` (-1 for the root).  ``left``/``right`` list joints that
    swap under a horizontal flip (same length, paired by position).
    """

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        return self.joints.index(joint)

    @property
    def flip_permutation(self) -> np.ndarray:
        """Index array ``p`` such that ``x[..., p, :]`` swaps left and right joints."""
        perm = np.arange(self.num_joints)
        perm[list(self.left)] = self.right
        perm[list(self.right)] = self.left
        return perm

    @property
    def bones(self) -> list[tuple[int, int]]:
        """``(child, parent)`` pairs of the tree, in joint order (the root has none)."""
        return [(j, p) for j, p in enumerate(self.parents) if p >= 0]

    @property
    def bones_root_outward(self) -> list[int]:
        """Indices into :attr:`bones` ordered so a bone's parent joint is placed before it.

        Rebuilding a pose bone by bone in this order always starts from an already-placed joint.
        """
        depth = [0] * self.num_joints
        for j, p in enumerate(self.parents):  # parents precede children in every skeleton here
            depth[j] = 0 if p < 0 else depth[p] + 1
        return sorted(range(len(self.bones)), key=lambda k: depth[self.bones[k][0]])


H36M17 = Skeleton(
    name="h36m17",
    joints=(
        "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax",
        "Neck/Nose", "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
    ),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    left=(4, 5, 6, 11, 12, 13),
    right=(1, 2, 3, 14, 15, 16),
)

COCO17 = Skeleton(
    name="coco17",
    joints=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    # COCO has no kinematic tree of its own; this one (rooted at the nose) is used only for drawing.
    parents=(-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    left=(1, 3, 5, 7, 9, 11, 13, 15),
    right=(2, 4, 6, 8, 10, 12, 14, 16),
)

BLAZEPOSE33 = Skeleton(
    name="blazepose33",
    joints=(
        "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
        "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
        "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
        "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
        "right_heel", "left_foot_index", "right_foot_index",
    ),
    # Drawing tree only (BlazePose defines connections, not a rooted tree).
    parents=(-1, 0, 1, 2, 0, 4, 5, 3, 6, 0, 0, 0, 0, 11, 12, 13, 14, 15, 16, 15, 16, 15, 16,
             11, 12, 23, 24, 25, 26, 27, 28, 27, 28),
    left=(1, 2, 3, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31),
    right=(4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32),
)

SKELETONS = {s.name: s for s in (H36M17, COCO17, BLAZEPOSE33)}


def _mapping(target: Skeleton, source: Skeleton, recipe: dict[str, dict[str, float]]) -> np.ndarray:
    matrix = np.zeros((target.num_joints, source.num_joints), dtype=np.float32)
    for tgt, parts in recipe.items():
        for src, w in parts.items():
            matrix[target.index(tgt), source.index(src)] = w
    assert np.allclose(matrix.sum(axis=1), 1.0), "every target joint must be an affine combination"
    return matrix


def _mid(a: str, b: str) -> dict[str, float]:
    return {a: 0.5, b: 0.5}


# BlazePose -> H36M.  Hip = mid-hips; Thorax = mid-shoulders; Spine = midpoint of Hip and Thorax
# (Human3.6M's spine joint sits about half-way up the torso).  H36M "Foot" is the ankle joint.
# Neck/Nose = the nose landmark (H36M joint 9 lies on the face at nose height).  Head (top of the
# head) has no landmark: we take the mid-ears point and move it up by the mouth->eyes vector
# (about one eye-to-mouth distance, which lands near the crown on frontal and profile views).
_BLAZE_TO_H36M_RECIPE: dict[str, dict[str, float]] = {
    "Hip": _mid("left_hip", "right_hip"),
    "RHip": {"right_hip": 1.0},
    "RKnee": {"right_knee": 1.0},
    "RFoot": {"right_ankle": 1.0},
    "LHip": {"left_hip": 1.0},
    "LKnee": {"left_knee": 1.0},
    "LFoot": {"left_ankle": 1.0},
    "Spine": {"left_hip": 0.25, "right_hip": 0.25, "left_shoulder": 0.25, "right_shoulder": 0.25},
    "Thorax": _mid("left_shoulder", "right_shoulder"),
    "Neck/Nose": {"nose": 1.0},
    # mid_ears + (mid_eyes - mid_mouth)
    "Head": {"left_ear": 0.5, "right_ear": 0.5, "left_eye": 0.5, "right_eye": 0.5,
             "mouth_left": -0.5, "mouth_right": -0.5},
    "LShoulder": {"left_shoulder": 1.0},
    "LElbow": {"left_elbow": 1.0},
    "LWrist": {"left_wrist": 1.0},
    "RShoulder": {"right_shoulder": 1.0},
    "RElbow": {"right_elbow": 1.0},
    "RWrist": {"right_wrist": 1.0},
}

# COCO -> H36M: the same choices (COCO's joint names are BlazePose's), except that COCO has no mouth,
# so Head = mid_ears + (mid_eyes - nose).
_COCO_TO_H36M_RECIPE: dict[str, dict[str, float]] = {
    **_BLAZE_TO_H36M_RECIPE,
    "Head": {"left_ear": 0.5, "right_ear": 0.5, "left_eye": 0.5, "right_eye": 0.5, "nose": -1.0},
}

BLAZEPOSE_TO_COCO = _mapping(COCO17, BLAZEPOSE33, {name: {name: 1.0} for name in COCO17.joints})
BLAZEPOSE_TO_H36M = _mapping(H36M17, BLAZEPOSE33, _BLAZE_TO_H36M_RECIPE)
COCO_TO_H36M = _mapping(H36M17, COCO17, _COCO_TO_H36M_RECIPE)


def map_joints(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map joint coordinates with a linear joint mapping.

    Args:
        points: ``(..., J_source, D)`` coordinates (pixels or metres, any D).
        matrix: ``(J_target, J_source)`` mapping, e.g. :data:`BLAZEPOSE_TO_H36M`.

    Returns:
        ``(..., J_target, D)`` coordinates.
    """
    return np.einsum("ts,...sd->...td", matrix, points)


def map_confidence(conf: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map per-joint confidences: ``(..., J_source) -> (..., J_target)``, min over contributors."""
    used = matrix != 0  # (Jt, Js)
    expanded = np.where(used, conf[..., None, :], np.inf)
    return expanded.min(axis=-1)


def flip_horizontal(points: np.ndarray, skeleton: Skeleton, width: float | None = None) -> np.ndarray:
    """Mirror poses left-right and swap left/right joint labels.

    Args:
        points: ``(..., J, D)`` with x in ``[..., 0]``.
        width: image width for pixel coordinates (x -> width - 1 - x); ``None`` negates x, which is
            right for root-relative 3D and for screen coordinates centred on 0.
    """
    out = points[..., skeleton.flip_permutation, :].copy()
    out[..., 0] = -out[..., 0] if width is None else (width - 1) - out[..., 0]
    return out
