"""Make a lifted pose agree with the 2D it came from: bone depths from foreshortening.

A temporal lifter can return a pose whose projection does not match the 2D keypoints: a leg that is
straight and full-length in the image comes out bent toward the camera, a deep squat comes out
standing.  Given the bone lengths (the track's own, see :class:`~streampose.lifter.fusion.BoneLengths`)
and a weak-perspective camera fitted to the pose, each bone's depth extent follows from how
foreshortened it looks (Taylor 2000): ``dz^2 = L^2 - |d_image|^2``.  Only the *sign* of ``dz`` is
ambiguous, and the lifter, which is good at which end is nearer, supplies it.

:func:`reproject_consistent` rebuilds the pose along the skeleton tree from the image-plane bone
vectors and those depths; ``weight`` blends the result with the lifter's pose (the 2D's own noise
goes straight into the rebuilt pose, the lifter's is smoothed over time).
"""
from __future__ import annotations

import numpy as np

from streampose.skeleton import H36M17

_BONES = np.array(H36M17.bones)            # (B, 2) child, parent


_ORDER = H36M17.bones_root_outward


def fit_weak_perspective(pose: np.ndarray, kp2d: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
    """Scale ``s`` and offset ``t (2,)`` minimising ``sum_j w_j |s * pose_xy_j + t - kp_j|^2``.

    Args:
        pose: ``(J, 3)`` metres, camera axes (x right, y down).
        kp2d: ``(J, 2)`` pixels.
        weights: ``(J,)`` non-negative.
    """
    w = np.asarray(weights, dtype=np.float64)
    w = w / max(w.sum(), 1e-12)
    p = pose[:, :2] - (w[:, None] * pose[:, :2]).sum(0)
    q = kp2d - (w[:, None] * kp2d).sum(0)
    scale = float((w[:, None] * p * q).sum() / max((w[:, None] * p * p).sum(), 1e-12))
    offset = (w[:, None] * kp2d).sum(0) - scale * (w[:, None] * pose[:, :2]).sum(0)
    return scale, offset


def reproject_consistent(pose: np.ndarray, kp2d: np.ndarray, lengths: np.ndarray | None = None,
                         min_confidence: float = 0.5, weight: float = 1.0) -> np.ndarray:
    """The pose whose weak-perspective projection is the 2D, with the lifter's depth order and bones.

    Args:
        pose: ``(17, 3)`` lifter pose, root-relative metres, camera axes.
        kp2d: ``(17, 3)`` H36M-17 pixels + confidence of the same frame.
        lengths: ``(B,)`` bone lengths in ``H36M17.bones`` order (metres); ``None``: the pose's own.
        min_confidence: joints below it keep the lifter's bone (their 2D is not trusted).
        weight: share of the rebuilt pose in the result, ``[0, 1]`` (0: the lifter's pose).

    Returns:
        ``(17, 3)`` root-relative pose.  A bone that looks longer than ``L`` in the image lies in the
        image plane (``dz = 0``) with its image direction and length ``L``.
    """
    pose = np.asarray(pose, dtype=np.float64)
    kp2d = np.asarray(kp2d, dtype=np.float64)
    vectors = pose[_BONES[:, 0]] - pose[_BONES[:, 1]]
    if lengths is None:
        lengths = np.linalg.norm(vectors, axis=-1)
    confidence = np.clip(kp2d[:, 2], 0.0, 1.0)
    if not np.isfinite(kp2d).all() or (confidence >= min_confidence).sum() < 4:
        return pose.astype(np.float32)
    scale, _ = fit_weak_perspective(pose, kp2d[:, :2], confidence)
    if not np.isfinite(scale) or scale <= 0:
        return pose.astype(np.float32)
    out = pose.copy()
    for k in _ORDER:
        child, parent = _BONES[k]
        length = float(lengths[k])
        trusted = min(confidence[child], confidence[parent]) >= min_confidence
        if trusted:
            image = (kp2d[child, :2] - kp2d[parent, :2]) / scale       # metres in the image plane
            planar = float(np.linalg.norm(image))
            if planar >= length:
                bone = np.append(image * (length / max(planar, 1e-12)), 0.0)
            else:
                depth = np.sqrt(length * length - planar * planar)
                bone = np.append(image, depth if vectors[k, 2] >= 0 else -depth)
        else:
            bone = vectors[k] * (length / max(float(np.linalg.norm(vectors[k])), 1e-12))
        out[child] = out[parent] + bone
    out = weight * out + (1.0 - weight) * pose
    return (out - out[:1]).astype(np.float32)
