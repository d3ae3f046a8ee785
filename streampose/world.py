"""A world frame for a track: the floor from the feet, gravity "up", foot contacts and foot sliding.

Input: a track's camera-frame joints ``(T, 17, 3)`` (``root + keypoints3d``, metres, OpenCV axes).

:func:`fit_ground` finds the floor:

1. a first "up" is the body's own: the median direction from the ankles' midpoint to the head (people
   are upright most of the time);
2. **contact candidates**: per frame the lower ankle along that up, when it is slow (under
   :data:`CONTACT_SPEED` m/s) and near the lowest ankle heights of the track -- feet standing on the
   floor;
3. the normal: when the candidates cover floor in two directions, the normal of a plane through them
   (robust least squares, kept within 30 degrees of the body's up: ``"contacts"``); when they lie
   along a line (a walk in one direction), the body's up made perpendicular to that line (a walker
   leans forwards, not sideways: ``"line"``); in one spot (standing), the body's up (``"body_up"``);
4. the floor is that plane moved down by the ankle's height above the sole (0.08 m, the mocap's).

The world frame (:class:`GroundPlane`): **y up** (the floor's normal), floor at ``y = 0``, x the
camera's right made horizontal, z = x cross y (towards the camera); origin on the floor below the
track's first Hip.  :func:`foot_contacts` flags per-foot contact frames and :func:`foot_sliding`
measures how far a foot moves horizontally while in contact (mm per contact frame).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streampose.errors import InputError
from streampose.lifter.root import ANKLE_HEIGHT_M
from streampose.skeleton import H36M17

_J = H36M17.index
FEET = (_J("LFoot"), _J("RFoot"))
CONTACT_SPEED = 0.5  # m/s: an ankle slower than this may be standing (or the slowest quarter)
CONTACT_HEIGHT = 0.06  # m: ... and at most this far above its standing height
MIN_SPREAD = 0.3  # m: contacts spanning less than this (2nd direction) cannot tilt the plane
MAX_TILT_DEG = 30.0


@dataclass(frozen=True)
class GroundPlane:
    """The world frame of a track.

    Attributes:
        rotation: ``(3, 3)`` camera -> world rotation (rows: the world's x, y, z axes in camera
            coordinates).
        origin: ``(3,)`` the world origin in the camera frame (a point on the floor).
        method: ``"contacts"`` (a plane through the foot contacts), ``"line"`` (the body's up made
            perpendicular to the line the contacts lie on) or ``"body_up"`` (the body's up direction);
            the height always comes from the contacts.
        contacts: how many contact candidates the fit used.
    """

    rotation: np.ndarray
    origin: np.ndarray
    method: str
    contacts: int

    @property
    def up(self) -> np.ndarray:
        """``(3,)`` the floor's normal (up) in camera coordinates."""
        return self.rotation[1]

    @property
    def camera_height(self) -> float:
        """The camera's height above the floor, metres."""
        return float(-self.origin @ self.up)

    def to_world(self, points_cam: np.ndarray) -> np.ndarray:
        """``(..., 3)`` camera frame -> world (y up, floor at 0)."""
        return (np.asarray(points_cam, dtype=np.float64) - self.origin) @ self.rotation.T

    def to_camera(self, points_world: np.ndarray) -> np.ndarray:
        return np.asarray(points_world, dtype=np.float64) @ self.rotation + self.origin

    def to_dict(self) -> dict:
        return {"up_camera": np.round(self.up, 5).tolist(), "camera_height_m": round(self.camera_height, 4),
                "method": self.method, "contacts": self.contacts}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def body_up(joints: np.ndarray) -> np.ndarray:
    """``(3,)`` camera-frame unit vector: the median direction from the ankles' midpoint to the head."""
    feet = 0.5 * (joints[:, FEET[0]] + joints[:, FEET[1]])
    direction = joints[:, _J("Head")] - feet
    norms = np.linalg.norm(direction, axis=-1, keepdims=True)
    ok = np.isfinite(norms[:, 0]) & (norms[:, 0] > 1e-6)
    if not ok.any():
        raise InputError("ground plane: no frame with head and feet")
    return _unit(np.median(direction[ok] / norms[ok], axis=0))


def contact_candidates(joints: np.ndarray, up: np.ndarray, fps: float) -> np.ndarray:
    """``(N, 3)`` camera-frame ankle positions that look like a standing foot (see module doc)."""
    points = []
    for foot in FEET:
        p = joints[:, foot]
        height = p @ up
        speed = np.full(len(p), np.inf)
        if len(p) > 1:
            step = np.linalg.norm(np.diff(p, axis=0), axis=-1) * fps
            speed[1:] = step
            speed[:-1] = np.minimum(speed[:-1], step)
        else:
            speed[:] = 0.0
        finite = np.isfinite(height) & np.isfinite(speed)
        if not finite.any():
            continue
        # Estimated joints jitter: "slow" is also the slowest quarter of the track's frames.
        limit = max(CONTACT_SPEED, float(np.percentile(speed[finite], 25)))
        ok = finite & (speed <= limit)
        if ok.any():
            points.append((p[ok], height[ok]))
    if not points:
        return np.zeros((0, 3))
    heights = np.concatenate([h for _, h in points])
    floor = np.percentile(heights, 10)
    return np.concatenate([p[h <= floor + CONTACT_HEIGHT] for p, h in points])


def fit_ground(joints_cam: np.ndarray, fps: float = 30.0) -> GroundPlane:
    """The floor and world frame of a track's camera-frame joints ``(T, 17, 3)`` (see module doc).

    Raises:
        InputError: too few frames with feet and head to say anything.
    """
    joints = np.asarray(joints_cam, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (H36M17.num_joints, 3):
        raise InputError(f"ground plane: expected (T, 17, 3) joints, got {joints.shape}")
    up = body_up(joints)
    candidates = contact_candidates(joints, up, fps)
    if len(candidates) < 3:
        raise InputError("ground plane: the feet never stand still")
    normal, method = up, "body_up"
    centre = np.median(candidates, axis=0)
    _, spread, axes = np.linalg.svd(candidates - candidates.mean(0), full_matrices=False)
    spread = spread / np.sqrt(len(candidates))
    if len(candidates) >= 10 and 2 * spread[0] >= MIN_SPREAD and 2 * spread[1] < MIN_SPREAD:
        line = axes[0]
        if abs(line @ up) < np.sin(np.radians(MAX_TILT_DEG)):
            normal, method = _unit(up - (up @ line) * line), "line"
    if len(candidates) >= 10 and 2 * spread[1] >= MIN_SPREAD:
        # Plane through the contacts, Tukey-reweighted against stray candidates.
        weights = np.ones(len(candidates))
        plane_normal = up
        for _ in range(5):
            mean = (weights[:, None] * candidates).sum(0) / weights.sum()
            centred = candidates - mean
            _, _, vt = np.linalg.svd(centred * np.sqrt(weights)[:, None], full_matrices=False)
            plane_normal = vt[-1] if vt[-1] @ up > 0 else -vt[-1]
            residual = np.abs(centred @ plane_normal)
            scale = max(4.685 * 1.4826 * float(np.median(residual)), 0.01)
            weights = np.clip(1 - (residual / scale) ** 2, 0.0, None) ** 2 + 1e-6
            centre = mean
        if np.degrees(np.arccos(np.clip(plane_normal @ up, -1.0, 1.0))) <= MAX_TILT_DEG:
            normal, method = plane_normal, "contacts"
    height = float(np.median(candidates @ normal)) if method == "body_up" else float(centre @ normal)
    floor_offset = height - ANKLE_HEIGHT_M  # the floor's  n . p  value
    # World axes: y = up; x = the camera's right, horizontal; z = x cross y (towards the camera).
    y = normal
    x = np.array([1.0, 0.0, 0.0]) - y[0] * y
    if np.linalg.norm(x) < 1e-6:  # the camera looks straight down its right axis: unusual
        x = np.array([0.0, 0.0, 1.0]) - y[2] * y
    x = _unit(x)
    z = np.cross(x, y)
    rotation = np.stack([x, y, z])
    first = joints[np.isfinite(joints[:, 0]).all(-1), 0]
    hip = first[0] if len(first) else np.zeros(3)
    origin = hip - (hip @ y - floor_offset) * y
    return GroundPlane(rotation, origin, method, int(len(candidates)))


def foot_contacts(joints_world: np.ndarray, fps: float, speed: float = CONTACT_SPEED,
                  height: float = CONTACT_HEIGHT) -> np.ndarray:
    """``(T, 2)`` bool per foot (left, right): the ankle is within ``height`` of its standing height
    above the floor (``ANKLE_HEIGHT_M``) and slower than ``speed`` m/s.  ``joints_world (T, 17, 3)``
    with y up, floor at 0."""
    joints = np.asarray(joints_world, dtype=np.float64)
    out = np.zeros((len(joints), 2), dtype=bool)
    for k, foot in enumerate(FEET):
        p = joints[:, foot]
        v = np.full(len(p), np.inf)
        if len(p) > 1:
            step = np.linalg.norm(np.diff(p, axis=0), axis=-1) * fps
            v[1:] = step
            v[:-1] = np.minimum(v[:-1], step)
        out[:, k] = (p[:, 1] <= ANKLE_HEIGHT_M + height) & (v < speed)
    return out


def foot_sliding(joints_world: np.ndarray, contacts: np.ndarray) -> dict:
    """Horizontal ankle movement between consecutive frames that are both in contact.

    Returns ``{"mm_per_contact_frame": mean, "contact_frames": count}`` (``nan`` without contacts).
    """
    joints = np.asarray(joints_world, dtype=np.float64)
    steps = []
    for k, foot in enumerate(FEET):
        both = contacts[1:, k] & contacts[:-1, k]
        moved = np.linalg.norm(np.diff(joints[:, foot][:, [0, 2]], axis=0), axis=-1)
        steps.append(moved[both])
    steps = np.concatenate(steps)
    return {"mm_per_contact_frame": float(1000 * steps.mean()) if steps.size else float("nan"),
            "contact_frames": int(steps.size)}
