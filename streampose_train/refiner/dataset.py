"""Synthetic refiner dataset: mocap poses -> virtual cameras -> noisy 2D -> initial 3D -> renders.

For every clip and virtual camera the *whole* sequence is projected into a virtual video frame, 2D
detector noise is added, and the initial 3D pose of every frame comes from a lifter run on that noisy
2D sequence (never from ground truth).  Every ``stride``-th frame is then rendered as a person-centred
square (:mod:`streampose_train.refiner.render`) around the noisy 2D keypoints -- what the pipeline would
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

from streampose_train.filming import film
from streampose_train.mocap.noise import Noise2D
from streampose_train.refiner.render import render_person, sample_appearance

#: ``lift(kp2d (T, 17, 3) px with confidence, image_size (w, h)) -> (T, 17, 3)`` root-relative metres.
LiftFn = Callable[[np.ndarray, tuple[int, int]], np.ndarray]


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

    def concatenate(self, other: "RefineSamples") -> "RefineSamples":
        """Both sets in one; ``other``'s clip indices are shifted past this set's."""
        if other.images.shape[1:] != self.images.shape[1:]:
            raise ValueError(f"render sizes differ: {self.images.shape[1:]} vs {other.images.shape[1:]}")
        shift = int(self.clip.max()) + 1 if len(self) else 0
        joined = {f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                  for f in fields(self)}
        joined["clip"] = np.concatenate([self.clip, other.clip + shift]).astype(self.clip.dtype)
        return RefineSamples(**joined)


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


def build_samples(clips: list[np.ndarray], fps: list[float], lift: LiftFn, *, cameras_per_clip: int,
                  stride: int, size: int, seed: int, log: Callable[[str], None] = print
                  ) -> RefineSamples:
    """Render a dataset.

    Args:
        clips: list of ``(T, 17, 3)`` world poses, metres, Y up.
        fps: frame rate of each clip.
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
    for index, (world, rate) in enumerate(zip(clips, fps)):
        for _ in range(cameras_per_clip):
            # A pinhole: the renderer draws exact projections, so keypoints must match its pixels.
            shot = film(world, rng, fps=rate, noise=Noise2D(), distortion=(0.0, 0.0))
            cam = shot.joints_cam.astype(np.float32)
            noisy = np.concatenate([shot.pixels, shot.confidence[..., None]], axis=-1)
            k = shot.camera.intrinsics
            init = lift(noisy, (k.width, k.height))                       # (T, 17, 3) root-relative
            offset = int(rng.integers(0, stride))
            for t in range(offset, len(world), stride):
                if (cam[t, :, 2] < 0.3).any():
                    continue                                              # joint behind the camera
                x0, y0, scale = crop_frame(noisy[t], size)
                intrinsics = (k.fx * scale, k.fy * scale, (k.cx - x0) * scale, (k.cy - y0) * scale)
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
