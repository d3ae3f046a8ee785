"""Post-lift 3D corrections: fusion with BlazePose's world landmarks, and constant bone lengths per track.

Both act on root-relative H36M-17 poses in metres, camera axes, after the temporal lifter.

* :func:`fuse_world_landmarks` -- BlazePose's landmark network also regresses GHUM "world landmarks"
  (metric 3D from one image).  Its errors and the lifter's are largely independent (one sees the
  image, the other the 2D motion over time), so a similarity-aligned weighted mean of the two is
  better than either; the lifter keeps the frame (rotation into the camera axes) and the body scale.
* :class:`BoneLengths` -- one person's bones do not change length between frames and left and right
  match; monocular lifting does not know that, so limbs breathe and thighs differ.  The running median
  length of each bone (left/right averaged) over the track is imposed by rebuilding the pose along
  the skeleton tree, keeping every bone's direction.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from streampose.metrics import procrustes_align
from streampose.skeleton import H36M17


def fuse_world_landmarks(lifted: np.ndarray, world: np.ndarray, weight: float = 0.5,
                         valid: np.ndarray | None = None) -> np.ndarray:
    """Weighted mean of the lifter's pose and the similarity-aligned world landmarks.

    Args:
        lifted: ``(..., 17, 3)`` lifter poses, root-relative metres, camera axes.
        world: ``(..., 17, 3)`` BlazePose world landmarks mapped to H36M-17 (any rotation, scale and
            origin: each pose is aligned onto ``lifted`` by its optimal similarity transform first).
        weight: share of the world landmarks, in ``[0, 1]`` (0 = lifter only).
        valid: ``(...,)`` bool, poses whose world landmarks exist; the others keep the lifter's pose.

    Returns:
        ``(..., 17, 3)`` root-relative fused poses (root joint at 0).
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"fusion weight must be in [0, 1], got {weight}")
    lifted = np.asarray(lifted, dtype=np.float64)
    world = np.asarray(world, dtype=np.float64)
    ok = np.isfinite(world).all(axis=(-1, -2))
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    safe_world = np.where(ok[..., None, None], world, lifted)
    aligned = procrustes_align(safe_world, lifted)
    fused = np.where(ok[..., None, None], (1.0 - weight) * lifted + weight * aligned, lifted)
    return (fused - fused[..., :1, :]).astype(np.float32)


def _symmetric_pairs() -> list[tuple[int, int]]:
    """Pairs of bone indices (into ``H36M17.bones``) that mirror each other."""
    bones = H36M17.bones
    perm = H36M17.flip_permutation
    index = {bone: k for k, bone in enumerate(bones)}
    pairs = []
    for k, (child, parent) in enumerate(bones):
        mirror = index.get((int(perm[child]), int(perm[parent])))
        if mirror is not None and mirror > k:
            pairs.append((k, mirror))
    return pairs


class BoneLengths:
    """Imposes each track's running-median bone lengths (left/right averaged) on its poses.

    Args:
        window: frames of bone lengths the median runs over (at 30 fps, 300 = 10 s); the first
            frames of a track use what has been seen so far.
    """

    def __init__(self, window: int = 300):
        if window < 1:
            raise ValueError(f"bone-length window must be >= 1 frame, got {window}")
        self.bones = np.array(H36M17.bones)            # (B, 2) child, parent
        self.pairs = _symmetric_pairs()
        self.history: deque[np.ndarray] = deque(maxlen=window)
        self.order = H36M17.bones_root_outward

    def reset(self) -> None:
        self.history.clear()

    def lengths(self) -> np.ndarray | None:
        """``(B,)`` current target length per bone (metres), or ``None`` before the first pose."""
        if not self.history:
            return None
        median = np.median(np.stack(self.history), axis=0)
        for a, b in self.pairs:
            median[a] = median[b] = 0.5 * (median[a] + median[b])
        return median

    def __call__(self, pose: np.ndarray) -> np.ndarray:
        """``(17, 3)`` root-relative pose -> the same pose with the track's bone lengths."""
        pose = np.asarray(pose, dtype=np.float64)
        vectors = pose[self.bones[:, 0]] - pose[self.bones[:, 1]]
        measured = np.linalg.norm(vectors, axis=-1)
        if np.isfinite(measured).all():
            self.history.append(measured)
        target = self.lengths()
        if target is None:
            return pose.astype(np.float32)
        out = pose.copy()
        for k in self.order:
            child, parent = self.bones[k]
            direction = vectors[k] / max(measured[k], 1e-9)
            out[child] = out[parent] + target[k] * direction
        return out.astype(np.float32)
