"""Where the person is: the root (Hip) position in camera space from geometry, and the body's scale.

With the camera's intrinsics known, the 2D keypoints and the lifter's root-relative 3D pose fix the
root translation ``T``: every joint ``P_j + T`` must project onto its keypoint.  With undistorted
normalised image coordinates ``(u_j, v_j) = ((x - cx) / fx, (y - cy) / fy)`` that is, per joint,

    (P_jx + T_x) - u_j (P_jz + T_z) = 0
    (P_jy + T_y) - v_j (P_jz + T_z) = 0

-- linear in ``T``.  :func:`solve_root` solves it by weighted least squares over the confident joints
(full perspective, no weak-perspective approximation), reweighted twice by ``1 / depth^2`` so the
residuals it minimises are image-plane distances, then three times with Huber weights against single
bad keypoints.  It is exact for an exact pose and exact 2D.

Monocular scale is ambiguous: a pose twice as large twice as far away projects the same.  The root
depth is therefore exactly as right as the pose's size.  :class:`RootSolver` (one per track) uses the
lifter's own size by default (the size it learnt from its training subjects: right for them, ~16 %
too large for the people of the real 4-view clip, ``benchmarks/root.py``) or, given the subject's
standing height, rescales the pose so that the track's running-median skeleton has that height
(:func:`skeleton_height`) -- which then also scales the output pose.

Measured on held-out mocap filmed by random virtual cameras with detector-like 2D noise
(``benchmarks/root.py``): see ``docs/CAMERA_AND_EXPORT.md``.  The lifter's trajectory model was
worse than geometry in every measured setting (also when averaged with it), so geometry replaces it.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from streampose.camera import CameraModel, undistort_normalized
from streampose.errors import InputError
from streampose.skeleton import H36M17

_J = H36M17.index
# Ankle (H36M "Foot") above the floor when standing, in the mocap (streampose_train.mocap.dataset).
ANKLE_HEIGHT_M = 0.08
# Keypoints below this confidence are not used for the root (unless too few are left).
MIN_CONFIDENCE = 0.2
MIN_JOINTS = 4
# The chain that spans a standing person, foot to head top (legs averaged left/right).
_LEG = ((_J("RHip"), _J("RKnee")), (_J("RKnee"), _J("RFoot")))
_LEG_LEFT = ((_J("LHip"), _J("LKnee")), (_J("LKnee"), _J("LFoot")))
_TRUNK = ((_J("Hip"), _J("Spine")), (_J("Spine"), _J("Thorax")), (_J("Thorax"), _J("Neck/Nose")),
          (_J("Neck/Nose"), _J("Head")))


def skeleton_height(pose: np.ndarray) -> np.ndarray:
    """Approximate standing height of ``(..., 17, 3)`` H36M-17 poses, metres: the leg (hip-knee-ankle,
    left/right averaged) plus the trunk chain (hip-spine-thorax-nose-head) plus the ankle's height.

    A definition, not a measurement of the person: on the mocap it lands within ~3 % of the Head
    joint's standing height plus the ankle height.  Returns ``(...)``.
    """
    pose = np.asarray(pose, dtype=np.float64)

    def length(pairs):
        return sum(np.linalg.norm(pose[..., a, :] - pose[..., b, :], axis=-1) for a, b in pairs)

    return 0.5 * (length(_LEG) + length(_LEG_LEFT)) + length(_TRUNK) + ANKLE_HEIGHT_M


def solve_root(pose3d: np.ndarray, uv: np.ndarray, weights: np.ndarray | None = None, *,
               min_confidence: float = MIN_CONFIDENCE, robust: bool = True) -> np.ndarray:
    """Root translation(s) that make ``pose3d + T`` project onto ``uv`` (least squares, perspective).

    Args:
        pose3d: ``(..., J, 3)`` root-relative pose(s), metres, camera axes (x right, y down, z forward).
        uv: ``(..., J, 2)`` *undistorted normalised* image coordinates ``((x - cx) / fx, (y - cy) / fy)``.
        weights: ``(..., J)`` keypoint confidences (``None``: all 1).  Joints below ``min_confidence``
            are left out unless fewer than :data:`MIN_JOINTS` remain; NaN coordinates are left out.
        robust: a final Huber-weighted pass against single bad keypoints.

    Returns:
        ``(..., 3)`` metres, the root in camera space; NaN for a frame whose equations are singular
        (fewer than two usable joints) or whose solution lies behind the camera.
    """
    pose3d = np.asarray(pose3d, dtype=np.float64)
    uv = np.asarray(uv, dtype=np.float64)
    if pose3d.shape[-1] != 3 or uv.shape[-1] != 2 or pose3d.shape[:-1] != uv.shape[:-1]:
        raise InputError(f"solve_root: pose (..., J, 3) and uv (..., J, 2) must match, got "
                         f"{pose3d.shape} and {uv.shape}")
    lead = pose3d.shape[:-2]
    pose = pose3d.reshape(-1, *pose3d.shape[-2:])
    xy = uv.reshape(-1, *uv.shape[-2:])
    w = np.ones(pose.shape[:2]) if weights is None else np.asarray(weights, dtype=np.float64).reshape(pose.shape[:2])
    usable = np.isfinite(xy).all(-1) & np.isfinite(pose).all(-1) & np.isfinite(w) & (w > 0)
    confident = usable & (w >= min_confidence)
    enough = confident.sum(-1, keepdims=True) >= MIN_JOINTS
    base = np.where(np.where(enough, confident, usable), np.clip(np.nan_to_num(w), 0.0, 1.0), 0.0)
    pose = np.where(usable[..., None], pose, 0.0)
    xy = np.where(usable[..., None], xy, 0.0)

    # Rows per joint: [1, 0, -u] T = u Pz - Px  and  [0, 1, -v] T = v Pz - Py.
    n = pose.shape[0]
    a = np.zeros((n, pose.shape[1], 2, 3))
    a[..., 0, 0] = 1.0
    a[..., 1, 1] = 1.0
    a[..., 0, 2] = -xy[..., 0]
    a[..., 1, 2] = -xy[..., 1]
    b = xy * pose[..., 2:3] - pose[..., :2]

    def solve(weight: np.ndarray) -> np.ndarray:
        aw = a * weight[..., None, None]
        normal = np.einsum("njki,njkl->nil", aw, a)
        rhs = np.einsum("njki,njk->ni", aw, b)
        out = np.full((n, 3), np.nan)
        ok = np.abs(np.linalg.det(normal)) > 1e-12 * np.maximum(np.einsum("nii->n", normal), 1e-30) ** 3
        if ok.any():
            out[ok] = np.linalg.solve(normal[ok], rhs[ok][..., None])[..., 0]
        return out

    def depth_weight(root: np.ndarray) -> np.ndarray:
        depth = pose[..., 2] + np.nan_to_num(root[:, None, 2], nan=1.0)
        return base / np.maximum(depth, 0.05) ** 2

    root = solve(base)
    for _ in range(2):  # algebraic -> image-plane residuals
        root = solve(depth_weight(root))
    if robust:
        # Huber threshold: 5 % of the person's extent in the image (the pose's own, projected:
        # detector noise is ~3 %); three reweighted passes.
        span = np.where(base > 0, pose[..., 1], np.nan)
        with np.errstate(all="ignore"):
            extent = np.nanmax(span, -1, keepdims=True) - np.nanmin(span, -1, keepdims=True)
        for _ in range(3):
            depth = np.maximum(pose[..., 2] + np.nan_to_num(root[:, None, 2], nan=1.0), 0.05)
            projected = (pose[..., :2] + np.nan_to_num(root[:, None, :2])) / depth[..., None]
            residual = np.linalg.norm(projected - xy, axis=-1)
            threshold = 0.05 * np.maximum(np.nan_to_num(extent, nan=1.0), 1e-3) / np.maximum(
                np.nan_to_num(root[:, None, 2], nan=1.0), 0.05)
            huber = np.where(residual <= threshold, 1.0, threshold / np.maximum(residual, 1e-12))
            root = solve(depth_weight(root) * huber)
    root[~(root[:, 2] > 0)] = np.nan
    return root.reshape(*lead, 3)


@dataclass
class RootResult:
    """One frame of :class:`RootSolver`: the (possibly rescaled) pose and its root.

    Attributes:
        keypoints3d: ``(17, 3)`` root-relative pose at the scale the root was solved with.
        root: ``(3,)`` metres, camera space, or NaN when the frame has too few usable keypoints.
        scale: the factor applied to the lifter's pose (1 without a subject height).
    """

    keypoints3d: np.ndarray
    root: np.ndarray
    scale: float


class RootSolver:
    """One track's root from geometry (see the module docstring); call it on each frame, in order.

    Args:
        camera: the run's camera (given or assumed).
        person_height: the subject's standing height in metres, or ``None`` (the lifter's scale).
        window: frames of skeleton heights the running median spans (300 = 10 s at 30 fps).

    Attributes:
        scale_source: ``"height"`` (rescaled to ``person_height``) or ``"lifter"``.
    """

    def __init__(self, camera: CameraModel, person_height: float | None = None, window: int = 300):
        self.camera = camera
        self.person_height = person_height
        self.scale_source = "lifter" if person_height is None else "height"
        self._heights: deque[float] = deque(maxlen=window)

    @property
    def scale(self) -> float:
        """The factor the pose gets now (1 without a subject height or before the first pose)."""
        if self.person_height is None or not self._heights:
            return 1.0
        return float(self.person_height / np.median(self._heights))

    def __call__(self, keypoints3d: np.ndarray, keypoints2d: np.ndarray) -> RootResult:
        """Solve one frame.

        Args:
            keypoints3d: ``(17, 3)`` root-relative pose from the lifter (after any corrections).
            keypoints2d: ``(17, 3)`` the frame's H36M-17 keypoints, *image* pixels (distorted, as the
                detector reports them) + confidence.
        """
        pose = np.asarray(keypoints3d, dtype=np.float64)
        height = float(skeleton_height(pose))
        if np.isfinite(height) and height > 0.3:
            self._heights.append(height)
        scale = self.scale
        pose = pose * scale
        kp = np.asarray(keypoints2d, dtype=np.float64)
        uv = undistort_normalized(kp[:, :2], self.camera.intrinsics)
        confidence = kp[:, 2] if kp.shape[-1] > 2 else None
        root = solve_root(pose, uv, confidence)
        return RootResult(pose.astype(np.float32), root.astype(np.float32), scale)

    def describe(self) -> dict:
        """For the JSONL header: how the root and the body scale are obtained."""
        out = {"method": "geometry", "scale": self.scale_source}
        if self.person_height is not None:
            out["person_height_m"] = self.person_height
        return out
