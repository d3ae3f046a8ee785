"""Synthetic refiner dataset: mocap poses -> virtual cameras -> noisy 2D -> initial 3D -> renders.

For every clip and virtual camera the *whole* sequence is projected into a virtual video frame, 2D
detector noise is added, and the initial 3D pose of every frame comes from a lifter run on that noisy
2D sequence (never from ground truth).  Every ``stride``-th frame is then rendered as a person-centred
square (:mod:`streampose.refine.render`) around the noisy 2D keypoints -- what the pipeline would
crop -- and stored with its noisy 2D (render pixels), the true and initial root-relative 3D poses
(camera axes, metres) and the exact part ids.

Clip-level train/validation split: validation samples come from whole held-out clips only.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from streampose.refine.render import render_person, sample_appearance

#: ``lift(kp2d (T, 17, 3) px with confidence, image_size (w, h)) -> (T, 17, 3)`` root-relative metres.
LiftFn = Callable[[np.ndarray, tuple[int, int]], np.ndarray]

FRAME_SIZE = (1000, 1000)    # virtual video frame (w, h) the 2D stage and lifter see


@dataclass
class RefineSamples:
    """A rendered dataset (N samples, render side S), numpy arrays.

    Attributes:
        images: ``(N, S, S, 3)`` uint8 RGB renders.
        parts: ``(N, S, S)`` int8 exact limb ids (-1 background); ``parts >= 0`` is the exact mask.
        kp2d: ``(N, 17, 2)`` float32 noisy 2D keypoints in render pixels (the refiner's input).
        kp2d_true: ``(N, 17, 2)`` float32 exact projections.
        pose_gt: ``(N, 17, 3)`` float32 true pose, camera axes, root-relative, metres.
        pose_init: ``(N, 17, 3)`` float32 lifter pose, same frame.
        clip: ``(N,)`` int32 index of the source clip.
    """

    images: np.ndarray
    parts: np.ndarray
    kp2d: np.ndarray
    kp2d_true: np.ndarray
    pose_gt: np.ndarray
    pose_init: np.ndarray
    clip: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def load(cls, path: Path) -> "RefineSamples":
        with np.load(path) as data:
            return cls(**{f.name: data[f.name] for f in fields(cls)})

    def subset(self, index: np.ndarray) -> "RefineSamples":
        return RefineSamples(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


@dataclass
class Camera:
    """World-to-camera rigid transform + pinhole intrinsics of one virtual camera."""

    rotation: np.ndarray      # (3, 3) world -> camera (x right, y down, z forward)
    position: np.ndarray      # (3,) camera centre in world
    focal: float              # pixels
    centre: tuple[float, float]

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """``(..., 3)`` world -> camera coordinates."""
        return (points - self.position) @ self.rotation.T

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """``(..., 3)`` camera coordinates -> ``(..., 2)`` pixels."""
        return points_cam[..., :2] / points_cam[..., 2:3] * self.focal + np.asarray(self.centre)


def sample_camera(rng: np.random.Generator, joints_world: np.ndarray) -> Camera:
    """A camera around a clip: random yaw, 0-25 deg downward pitch, 3.5-7 m away, Y-up world.

    Args:
        rng: numpy generator.
        joints_world: ``(T, 17, 3)`` the clip (Y up), used to aim the camera at its mean root.
    """
    target = joints_world[:, 0].mean(0)
    yaw = rng.uniform(0, 2 * np.pi)
    pitch = np.deg2rad(rng.uniform(-5, 25))
    forward = np.array([np.sin(yaw) * np.cos(pitch), -np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
    down = np.array([0.0, -1.0, 0.0])
    down = down - forward * (down @ forward)
    down /= np.linalg.norm(down)
    right = np.cross(down, forward)
    distance = rng.uniform(3.5, 7.0)
    w, h = FRAME_SIZE
    focal = rng.uniform(0.9, 1.6) * w
    centre = (w / 2 + rng.normal(0, 0.05 * w), h / 2 + rng.normal(0, 0.05 * h))
    return Camera(np.stack([right, down, forward]), target - distance * forward, focal, centre)


def noisy_2d(rng: np.random.Generator, kp2d: np.ndarray) -> np.ndarray:
    """2D detector-like noise on a sequence.

    White jitter (0.8 % of the person's height per coordinate), a slowly drifting per-joint bias
    (1.2 %, smoothed over ~10 frames) and 1 % outliers (8 %); confidence drops for outliers.

    Args:
        kp2d: ``(T, 17, 2)`` exact pixels.

    Returns:
        ``(T, 17, 3)`` noisy pixels + confidence.
    """
    t = len(kp2d)
    height = np.ptp(kp2d[..., 1], axis=1).clip(min=20.0)[:, None, None]       # (T, 1, 1)
    drift = rng.normal(0, 1, (t + 20, 17, 2))
    kernel = np.ones(10) / np.sqrt(10)
    drift = np.apply_along_axis(lambda s: np.convolve(s, kernel, mode="same"), 0, drift)[10:t + 10]
    noise = 0.008 * rng.normal(0, 1, kp2d.shape) + 0.012 * drift
    outlier = rng.random((t, 17)) < 0.01
    noise[outlier] += 0.08 * rng.normal(0, 1, (int(outlier.sum()), 2))
    conf = np.where(outlier, rng.uniform(0.2, 0.5, (t, 17)), rng.uniform(0.7, 1.0, (t, 17)))
    return np.concatenate([kp2d + noise * height, conf[..., None]], axis=-1).astype(np.float32)


def crop_frame(kp2d_noisy: np.ndarray, size: int, margin: float = 1.25
               ) -> tuple[float, float, float]:
    """Person-centred square of a frame: ``(x0, y0, scale)`` so that ``render_px = (px - x0) * scale``.

    Args:
        kp2d_noisy: ``(17, 2+)`` frame pixels.
        size: render side.
    """
    xy = kp2d_noisy[:, :2]
    low, high = xy.min(0), xy.max(0)
    side = margin * max(float((high - low).max()), 8.0)
    centre = (low + high) / 2
    return float(centre[0] - side / 2), float(centre[1] - side / 2), size / side


def build_samples(clips: list[np.ndarray], lift: LiftFn, *, cameras_per_clip: int, stride: int,
                  size: int, seed: int, log: Callable[[str], None] = print) -> RefineSamples:
    """Render a dataset.

    Args:
        clips: list of ``(T, 17, 3)`` world poses, metres, Y up.
        lift: initial-pose lifter (see :data:`LiftFn`).
        cameras_per_clip: virtual cameras per clip.
        stride: render every ``stride``-th frame.
        size: render side in pixels.
        seed: seed of all randomness (cameras, noise, appearance).
    """
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, list] = {f.name: [] for f in fields(RefineSamples)}
    started = time.perf_counter()
    for index, world in enumerate(clips):
        for _ in range(cameras_per_clip):
            for _attempt in range(10):                  # re-draw cameras the clip walks behind
                camera = sample_camera(rng, world)
                cam = camera.to_camera(world)                               # (T, 17, 3)
                if (cam[..., 2] > 0.5).all():
                    break
            else:
                continue
            full_2d = camera.project(cam)
            noisy = noisy_2d(rng, full_2d)
            init = lift(noisy, FRAME_SIZE)                                 # (T, 17, 3) root-relative
            offset = int(rng.integers(0, stride))
            for t in range(offset, len(world), stride):
                x0, y0, scale = crop_frame(noisy[t], size)
                intrinsics = (camera.focal * scale, camera.focal * scale,
                              (camera.centre[0] - x0) * scale, (camera.centre[1] - y0) * scale)
                joints = torch.from_numpy(cam[t]).float()
                rendered = render_person(joints, intrinsics, size, sample_appearance(gen, size), gen)
                out["images"].append(rendered.image)
                out["parts"].append(rendered.parts.astype(np.int8))
                out["kp2d"].append((noisy[t, :, :2] - [x0, y0]) * scale)
                out["kp2d_true"].append(rendered.kp2d)
                out["pose_gt"].append(cam[t] - cam[t, :1])
                out["pose_init"].append(init[t] - init[t, :1])
                out["clip"].append(index)
        if (index + 1) % 5 == 0:
            n = len(out["images"])
            log(f"  clip {index + 1}/{len(clips)}: {n} samples, "
                f"{n / (time.perf_counter() - started):.1f} samples/s")
    dtypes = {"images": np.uint8, "parts": np.int8, "clip": np.int32}
    return RefineSamples(**{k: np.stack(v).astype(dtypes.get(k, np.float32)) for k, v in out.items()})
