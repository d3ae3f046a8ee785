"""Filming mocap through random virtual cameras, the one way training data becomes lifter input.

Conventions: the **world** (mocap) frame is metres, +y up, floor at y = 0, right-handed (see
:mod:`streampose_train.mocap.dataset`); the **camera** frame and pixels are those of
:mod:`streampose.camera` (OpenCV axes: x right, y down, z forward).

:func:`film` is used by every trainer (lifter, refiner) and by the evaluation, so training and
evaluation inputs follow one rule: a random phone/webcam-like camera that sees the whole clip from in
front, exact projection, then detector-like noise from :class:`~streampose_train.mocap.noise.Noise2D`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streampose.camera import CameraIntrinsics, _like, project_to_2d
from streampose.errors import InputError


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


# A sampled camera must see the whole clip from in front: a clip that walks past (or through) the
# camera projects joints at depth ~0 to millions of pixels, which no detector would ever report.
CAMERA_ATTEMPTS = 20
MIN_DEPTH = 0.5  # metres
MAX_OUTSIDE = 0.25  # keypoints may leave the image by at most this fraction of its size


def plausible_view(cam: np.ndarray, pixels: np.ndarray, size: tuple[int, int]) -> bool:
    """``cam (T, J, 3)`` metres and ``pixels (T, J, 2)``: every joint in front and near the image."""
    w, h = size
    low = -MAX_OUTSIDE * np.array([w, h])
    high = (1 + MAX_OUTSIDE) * np.array([w, h])
    return bool((cam[..., 2] > MIN_DEPTH).all() and (pixels >= low).all() and (pixels <= high).all())


@dataclass
class FilmedClip:
    """One mocap clip seen by one virtual camera.

    Attributes:
        camera: the camera that filmed it.
        joints_cam: ``(T, J, 3)`` float64 camera-frame joints, metres.
        exact: ``(T, J, 2)`` exact projections, pixels.
        pixels: ``(T, J, 2)`` the 2D a detector would report (``exact`` plus noise), pixels.
        confidence: ``(T, J)`` the noise model's confidence per keypoint (1 without noise).
    """

    camera: VirtualCamera
    joints_cam: np.ndarray
    exact: np.ndarray
    pixels: np.ndarray
    confidence: np.ndarray

    @property
    def image_size(self) -> tuple[int, int]:
        return self.camera.intrinsics.width, self.camera.intrinsics.height


def film(world: np.ndarray, rng: np.random.Generator, *, fps: float, noise=None,
         distortion: tuple[float, float] | None = None) -> FilmedClip:
    """Film ``world (T, J, 3)`` (metres, Y up) with a random camera that sees all of it from in front.

    Args:
        rng: draws the camera, then the noise.
        fps: the clip's frame rate (the noise's correlation time is in seconds).
        noise: a ``Noise2D`` (or anything with its ``apply``), or ``None`` for exact 2D.
        distortion: range of the radial distortion ``k1``; ``(0, 0)`` for a pinhole, which renderers
            need so that keypoints match rendered pixels.  ``None``: :meth:`VirtualCamera.sample`'s.
    """
    world = np.asarray(world, dtype=np.float64)
    options = {} if distortion is None else {"distortion": distortion}
    for _ in range(CAMERA_ATTEMPTS):
        camera = VirtualCamera.sample(rng, subject=world, **options)
        cam = world_to_camera(world, camera)
        exact = project_to_2d(cam, camera.intrinsics)
        if plausible_view(cam, exact, (camera.intrinsics.width, camera.intrinsics.height)):
            break
    if noise is None:
        pixels, confidence = exact.copy(), np.ones(exact.shape[:-1])
    else:
        pixels, confidence = noise.apply(exact, rng, fps=fps)
    return FilmedClip(camera, cam, exact, np.asarray(pixels), np.asarray(confidence))
