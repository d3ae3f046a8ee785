"""Camera math shared by training (virtual cameras around mocap) and inference.

Conventions:

* **World** (mocap) frame: metres, +y up, floor at y = 0, right-handed (see
  :mod:`streampose.mocap.dataset`).
* **Camera** frame: metres, OpenCV axes -- +x right, +y down, +z forward (the viewing direction),
  origin at the optical centre.  The root-relative 3D a lifter predicts is in this frame.
* **Pixels**: x to the right, y down, (0, 0) at the centre of the top-left pixel.
* **Screen (normalised) coordinates** as VideoPose3D: ``x / w * 2 - 1`` in [-1, 1] and y scaled by
  the *same* factor (aspect kept), so y spans ``[-h/w, h/w]``.

Functions take numpy arrays or torch tensors alike (only arithmetic is used), so the lifter can
use them inside a loss.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streampose.errors import InputError


def _like(reference, values):
    """``values`` as an array/tensor matching ``reference`` (numpy or torch) in dtype and device."""
    if isinstance(reference, np.ndarray):
        return np.asarray(values, dtype=reference.dtype if reference.dtype.kind == "f" else None)
    return reference.new_tensor(values)


def normalize_screen_coordinates(xy, w: float, h: float):
    """Pixels -> VideoPose3D screen coordinates: ``(..., 2) -> (..., 2)``, ``x / w * 2 - [1, h/w]``."""
    if xy.shape[-1] != 2:
        raise InputError(f"normalize_screen_coordinates expects (..., 2), got {tuple(xy.shape)}")
    return xy / w * 2 - _like(xy, [1.0, h / w])


def image_coordinates(xy_norm, w: float, h: float):
    """Inverse of :func:`normalize_screen_coordinates`: ``(..., 2) -> (..., 2)`` pixels."""
    if xy_norm.shape[-1] != 2:
        raise InputError(f"image_coordinates expects (..., 2), got {tuple(xy_norm.shape)}")
    return (xy_norm + _like(xy_norm, [1.0, h / w])) * w / 2


@dataclass
class CameraIntrinsics:
    """Pinhole intrinsics with optional radial distortion (Brown model, 2 coefficients).

    Attributes:
        fx, fy: focal lengths in pixels.
        cx, cy: principal point in pixels.
        width, height: image size in pixels (``w``/``h`` are aliases).
        k1, k2: radial distortion, ``r_d = r (1 + k1 r^2 + k2 r^4)`` on normalised coordinates.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    k1: float = 0.0
    k2: float = 0.0

    @property
    def w(self) -> int:
        return self.width

    @property
    def h(self) -> int:
        return self.height

    @property
    def matrix(self) -> np.ndarray:
        """``(3, 3)`` calibration matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def horizontal_fov_deg(self) -> float:
        return float(np.degrees(2 * np.arctan(self.width / (2 * self.fx))))

    @classmethod
    def from_fov(cls, width: int, height: int, horizontal_fov_deg: float) -> "CameraIntrinsics":
        """Square pixels, centred principal point, the given horizontal field of view."""
        f = width / (2 * np.tan(np.radians(horizontal_fov_deg) / 2))
        return cls(fx=f, fy=f, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height)


def project_to_2d(points_cam, intrinsics: CameraIntrinsics, min_depth: float = 1e-3):
    """Project camera-frame points to pixels.

    Args:
        points_cam: ``(..., J, 3)`` metres, camera frame (x right, y down, z forward).
        intrinsics: the camera.
        min_depth: depths are clamped to at least this (points behind the camera do not flip).

    Returns:
        ``(..., J, 2)`` pixel coordinates.
    """
    if points_cam.shape[-1] != 3:
        raise InputError(f"project_to_2d expects (..., 3) points, got {tuple(points_cam.shape)}")
    z = points_cam[..., 2:3]
    z = np.maximum(z, min_depth) if isinstance(z, np.ndarray) else z.clamp(min=min_depth)
    xy = points_cam[..., :2] / z
    if intrinsics.k1 or intrinsics.k2:
        r2 = (xy ** 2).sum(-1, keepdims=True) if isinstance(xy, np.ndarray) else \
            (xy ** 2).sum(-1, keepdim=True)
        xy = xy * (1 + intrinsics.k1 * r2 + intrinsics.k2 * r2 ** 2)
    return xy * _like(xy, [intrinsics.fx, intrinsics.fy]) + _like(xy, [intrinsics.cx, intrinsics.cy])


def look_at_rotation(position: np.ndarray, target: np.ndarray, roll_deg: float = 0.0,
                     world_up: np.ndarray = np.array([0.0, 1.0, 0.0])) -> np.ndarray:
    """World->camera rotation ``(3, 3)`` for a camera at ``position (3,)`` looking at ``target (3,)``.

    Rows are the camera's right, down and forward axes in world coordinates; ``roll_deg`` turns the
    image clockwise about the viewing direction.
    """
    forward = np.asarray(target, float) - np.asarray(position, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, world_up)
    if np.linalg.norm(right) < 1e-6:  # looking straight up/down: any right axis will do
        right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    c, s = np.cos(np.radians(roll_deg)), np.sin(np.radians(roll_deg))
    roll = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return roll @ rotation


# Common sensor formats (landscape); portrait cameras swap them.
RESOLUTIONS = ((640, 480), (960, 540), (1280, 720), (1280, 960), (1920, 1080))


@dataclass
class VirtualCamera:
    """A posed camera: ``x_cam = rotation @ x_world + translation``.

    Attributes:
        intrinsics: pinhole (+ distortion) intrinsics.
        rotation: ``(3, 3)`` world->camera rotation.
        translation: ``(3,)`` metres.
    """

    intrinsics: CameraIntrinsics
    rotation: np.ndarray
    translation: np.ndarray
    info: dict = field(default_factory=dict)  # how it was sampled (height, distance, azimuth, ...)

    @property
    def position(self) -> np.ndarray:
        """``(3,)`` optical centre in world coordinates."""
        return -self.rotation.T @ self.translation

    def project(self, joints_world: np.ndarray) -> np.ndarray:
        """``(..., J, 3)`` world metres -> ``(..., J, 2)`` pixels."""
        return project_to_2d(world_to_camera(joints_world, self), self.intrinsics)

    def fraction_in_view(self, joints_world: np.ndarray, margin: float = 0.0) -> float:
        """Share of points (``(..., J, 3)`` world) in front of the camera and inside the image."""
        cam = world_to_camera(joints_world, self)
        px = project_to_2d(cam, self.intrinsics)
        w, h = self.intrinsics.width, self.intrinsics.height
        inside = ((cam[..., 2] > 0.1) & (px[..., 0] >= -margin) & (px[..., 0] <= w - 1 + margin)
                  & (px[..., 1] >= -margin) & (px[..., 1] <= h - 1 + margin))
        return float(inside.mean())

    @classmethod
    def sample(
        cls,
        rng: np.random.Generator,
        subject: np.ndarray | None = None,
        target: np.ndarray | None = None,
        fov_deg: tuple[float, float] = (50.0, 85.0),
        height: tuple[float, float] = (0.5, 2.5),
        distance: tuple[float, float] = (2.5, 8.0),
        roll_deg: float = 4.0,
        portrait_probability: float = 0.3,
        aim_jitter: float = 0.15,
        distortion: tuple[float, float] = (-0.08, 0.02),
        min_in_view: float = 0.97,
    ) -> "VirtualCamera":
        """Draw a random phone/webcam-like camera aimed at a subject.

        Args:
            rng: numpy random generator.
            subject: ``(T, J, 3)`` world joints of the clip to film (joint 0 = root); the camera aims
                at its mean root and backs off until ``min_in_view`` of the joints project inside
                the image (a walk that passes close to the camera would otherwise leave the frame).
            target: ``(3,)`` aim point when no ``subject`` is given (default: 1 m above the origin).
            fov_deg: range of the field of view across the image's *long* side (phones and
                webcams: ~50-85 degrees).
            height: camera height above the floor, metres.
            distance: horizontal distance from the aim point, metres (a lower bound when the
                subject needs more room).
            roll_deg: roll is uniform in ``[-roll_deg, roll_deg]``.
            portrait_probability: chance of a portrait (phone held upright) image.
            aim_jitter: the aim point moves by up to this fraction of the distance, so the subject
                is not always centred.
            distortion: range of the radial distortion ``k1`` (barrel < 0).
            min_in_view: see ``subject``.

        Returns:
            the camera; ``camera.info`` records the drawn parameters.
        """
        width, height_px = RESOLUTIONS[int(rng.integers(len(RESOLUTIONS)))]
        portrait = bool(rng.random() < portrait_probability)
        if portrait:
            width, height_px = height_px, width
        fov = float(rng.uniform(*fov_deg))
        focal = max(width, height_px) / (2 * np.tan(np.radians(fov) / 2))
        focal = float(focal)
        intrinsics = CameraIntrinsics(
            fx=focal, fy=focal,
            cx=float((width - 1) / 2 + rng.uniform(-0.02, 0.02) * width),
            cy=float((height_px - 1) / 2 + rng.uniform(-0.02, 0.02) * height_px),
            width=width, height=height_px, k1=float(rng.uniform(*distortion)), k2=0.0)

        if subject is not None:
            subject = np.asarray(subject, dtype=np.float64)
            if subject.ndim != 3 or subject.shape[-1] != 3:
                raise InputError(f"VirtualCamera.sample: subject must be (T, J, 3), "
                                 f"got {subject.shape}")
            target = subject[:, 0].mean(axis=0)
        elif target is None:
            target = np.array([0.0, 1.0, 0.0])
        target = np.asarray(target, dtype=np.float64)

        cam_height = float(rng.uniform(*height))
        dist = float(rng.uniform(*distance))
        azimuth = float(rng.uniform(0.0, 2 * np.pi))
        roll = float(rng.uniform(-roll_deg, roll_deg))
        aim = target + rng.uniform(-aim_jitter, aim_jitter, size=3) * dist * np.array([1, 0.5, 1])
        direction = np.array([np.sin(azimuth), 0.0, np.cos(azimuth)])

        def build(d: float) -> "VirtualCamera":
            position = np.array([target[0], cam_height, target[2]]) + d * direction
            # Aim at the jittered point; scaling the offset with the distance keeps the subject's
            # angular offset from the image centre constant while backing off.
            rotation = look_at_rotation(position, target + (aim - target) * (d / dist), roll)
            info = dict(height=cam_height, distance=d, azimuth_deg=float(np.degrees(azimuth)),
                        roll_deg=roll, fov_deg=fov, portrait=portrait)
            return cls(intrinsics, rotation, -rotation @ position, info)

        camera = build(dist)
        if subject is not None:
            # Back off until the subject fits; 40 steps of x1.1 reach ~45x the starting distance.
            points = subject[:: max(1, len(subject) // 200)]
            d = dist
            for _ in range(40):
                if camera.fraction_in_view(points) >= min_in_view:
                    break
                d *= 1.1
                camera = build(d)
        return camera


def world_to_camera(joints_world, camera: VirtualCamera):
    """``(..., J, 3)`` world metres -> ``(..., J, 3)`` camera frame (x right, y down, z forward)."""
    rotation = _like(joints_world, camera.rotation)
    translation = _like(joints_world, camera.translation)
    return joints_world @ rotation.T + translation


def camera_to_world(joints_cam, camera: VirtualCamera):
    """Inverse of :func:`world_to_camera`: ``(..., J, 3) -> (..., J, 3)``."""
    rotation = _like(joints_cam, camera.rotation)
    translation = _like(joints_cam, camera.translation)
    return (joints_cam - translation) @ rotation
