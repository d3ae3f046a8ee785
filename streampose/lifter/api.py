"""Public lifter API: ``load_lifter`` -> :class:`Lifter` (offline sequences) / :class:`LifterStream` (live).

Inputs are 2D keypoints in pixels, ``(17, 3)`` per frame ``[x, y, confidence]`` (the confidence is not
used by the network) in the lifter's :attr:`Lifter.input_layout` joint order: ``"h36m17"`` for
streampose's own models, ``"coco17"`` for VideoPose3D's COCO checkpoints.  They are normalised with
:func:`streampose.camera.normalize_screen_coordinates`, exactly as during training.

Outputs are Human3.6M-17 poses in metres, camera axes (x right, y down, z forward), root-relative
(Hip = 0), plus -- when the weights include a trajectory model -- the root's camera-space position.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streampose import registry
from streampose.cache import cache_dir
from streampose.errors import InputError, ModelError
from streampose.lifter import framerate
from streampose.lifter.checkpoint import LifterWeights, load_lifter_weights
from streampose.lifter.model import TemporalModel
from streampose.lifter.streaming import StreamingTemporalModel
from streampose.skeleton import COCO17, H36M17



@dataclass
class LiftResult:
    """The 3D pose of one frame from a :class:`LifterStream`.

    Attributes:
        keypoints3d: ``(17, 3)`` H36M-17 metres, camera axes, root-relative (Hip = 0).
        root: ``(3,)`` Hip position in camera space (metres), or ``None`` without a trajectory model.
        index: frame number in the stream (0 = first pushed frame).
    """

    keypoints3d: np.ndarray
    root: np.ndarray | None
    index: int = -1


def _user_weights_dir() -> Path:
    """Lifter weights a user trained or downloaded, loadable by name: ``<cache>/lifter/``."""
    return cache_dir("lifter")


def resolve_weights(name_or_path: str | os.PathLike, causal: bool = False) -> Path:
    """Find a weights file: an existing path, a shipped name (the registry) or a name in the cache.

    ``"default"`` is ``"cmu"`` (symmetric, offline) or ``"cmu_causal"`` (live).  A shipped name resolves
    through :mod:`streampose.registry` (digest checked); any other ``NAME`` is looked up as
    ``<cache>/lifter/lifter_NAME.pt``.
    """
    text = os.fspath(name_or_path)
    direct = Path(text).expanduser()
    if direct.is_file():
        return direct
    shipped = registry.entry("lifter", text, causal)
    if shipped is not None:
        return registry.weights_path(shipped)
    candidate = _user_weights_dir() / f"lifter_{text}.pt"
    if candidate.is_file():
        return candidate
    folder = _user_weights_dir()
    own = sorted(p.stem.removeprefix("lifter_") for p in folder.glob("lifter_*.pt")) if folder.is_dir() else []
    raise ModelError(f"lifter weights {text!r} not found (not a file, not a shipped name, not {candidate}); "
                     f"shipped: {', '.join(registry.names('lifter'))}; in the cache: {', '.join(own) or 'none'}")


def load_lifter(name_or_path: str | os.PathLike = "default", causal: bool = False, device: str = "cpu",
                *, input_layout: str | None = None, test_time_flip: bool = False) -> "Lifter":
    """Load a lifter by shipped name (``"default"``, ``"cmu"``, ``"cmu_causal"``, ...) or file path.

    Args:
        name_or_path: shipped name, a streampose ``.pt`` file, or a VideoPose3D ``.bin`` checkpoint.
        causal: live use (no look-ahead).  Picks the causal default model; for reference checkpoints
            it says that the checkpoint was trained causal.
        device: torch device for :meth:`Lifter.lift_sequence` (streams always run on the CPU).
        input_layout: joint order of a reference checkpoint's input (``"h36m17"``/``"coco17"``), when
            its file name does not tell.
        test_time_flip: also lift the mirrored input and average (paper's test-time augmentation;
            twice the cost).

    Raises:
        ModelError: the weights are missing or unusable.
    """
    path = resolve_weights(name_or_path, causal)
    weights = load_lifter_weights(path, causal=causal, input_layout=input_layout)
    return Lifter(weights, device=device, description=path.stem, test_time_flip=test_time_flip)


class Lifter:
    """A loaded 2D->3D lifter: pose model (+ optional trajectory model) and how to feed it."""

    def __init__(self, weights: LifterWeights, device: str = "cpu", description: str = "lifter",
                 test_time_flip: bool = False):
        try:
            self.device = torch.device(device)
            self.pose_model: TemporalModel = weights.pose.eval().to(self.device)
            self.trajectory_model: TemporalModel | None = (
                None if weights.trajectory is None else weights.trajectory.eval().to(self.device))
        except (RuntimeError, AssertionError) as exc:  # unknown device, or CUDA not available
            raise ModelError(f"cannot use device {device!r} for the lifter: {exc}") from exc
        self.metadata: dict[str, Any] = weights.metadata
        self.input_layout: str = weights.input_layout
        self.description = description
        self.test_time_flip = test_time_flip
        layout = H36M17 if self.input_layout == "h36m17" else COCO17
        # Mirroring swaps left/right joints: input in the lifter's input order, output always H36M.
        self._flip_in = torch.as_tensor(layout.flip_permutation)
        self._flip_out = torch.as_tensor(H36M17.flip_permutation)

    @property
    def receptive_field(self) -> int:
        return self.pose_model.receptive_field

    @property
    def causal(self) -> bool:
        return self.pose_model.causal

    @property
    def lag(self) -> int:
        """Frames a stream's output trails its input (half the receptive field; 0 when causal)."""
        return self.pose_model.pad - self.pose_model.causal_shift

    @property
    def has_trajectory(self) -> bool:
        return self.trajectory_model is not None

    def normalize(self, kp2d: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
        """``(..., 17, 2|3)`` pixels -> ``(..., 17, 2)`` normalised screen coordinates."""
        from streampose.camera import normalize_screen_coordinates

        width, height = _check_size(image_size)
        kp2d = np.asarray(kp2d, dtype=np.float32)
        if kp2d.ndim < 2 or kp2d.shape[-2:] not in ((17, 2), (17, 3)):
            raise InputError(f"2D keypoints must be (..., 17, 2 or 3) pixels, got shape {kp2d.shape}")
        xy = kp2d[..., :2]
        if not np.isfinite(xy).all():
            raise InputError("2D keypoints contain NaN or infinite values")
        return np.asarray(normalize_screen_coordinates(xy, width, height), dtype=np.float32)

    @property
    def trained_fps(self) -> tuple[float, float] | None:
        """``(low, high)`` frames/s of the training data, when the weights file records it."""
        return framerate.trained_range(self.metadata)

    @torch.no_grad()
    def lift_sequence(self, kp2d: np.ndarray, image_size: tuple[int, int],
                      fps: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Lift a whole sequence offline (replicate padding at both ends).

        Args:
            kp2d: ``(T, 17, 3)`` (or ``(T, 17, 2)``) pixel keypoints in :attr:`input_layout` order.
            image_size: ``(width, height)`` of the frames, pixels.
            fps: the sequence's frame rate; outside :attr:`trained_fps` the 2D is resampled in time
                to the nearest trained rate and the 3D back (:mod:`streampose.lifter.framerate`).
                ``None``: lifted as it is.

        Returns:
            ``kp3d`` ``(T, 17, 3)`` metres root-relative, and ``root`` ``(T, 3)`` metres camera space or
            ``None`` when there is no trajectory model.
        """
        kp2d = np.asarray(kp2d)
        if kp2d.ndim != 3 or len(kp2d) == 0:
            raise InputError(f"expected a (T >= 1, 17, 3) keypoint sequence, got shape {kp2d.shape}")
        rate = framerate.target_rate(fps, self.trained_fps)
        if rate is not None:
            times, new_times = framerate.resampled_times(len(kp2d), fps, rate)
            kp3d, root = self.lift_sequence(framerate.resample(kp2d, times, new_times), image_size)
            kp3d = framerate.resample(kp3d, new_times, times).astype(np.float32)
            root = None if root is None else framerate.resample(root, new_times, times).astype(np.float32)
            return kp3d - kp3d[:, :1], root
        x = torch.from_numpy(self.normalize(kp2d, image_size))[None].to(self.device)
        kp3d = self.pose_model.forward_sequence(x)[0]
        root = None if self.trajectory_model is None else self.trajectory_model.forward_sequence(x)[0, :, 0]
        if self.test_time_flip:
            mirrored = self.flip_input(x)
            kp3d = 0.5 * (kp3d + self.unflip_output(self.pose_model.forward_sequence(mirrored)[0]))
            if root is not None:
                flipped_root = self.trajectory_model.forward_sequence(mirrored)[0, :, 0]
                root = 0.5 * (root + flipped_root * flipped_root.new_tensor([-1.0, 1.0, 1.0]))
        kp3d = (kp3d - kp3d[:, :1]).cpu().numpy()
        return kp3d.astype(np.float32), None if root is None else root.cpu().numpy().astype(np.float32)

    def flip_input(self, x):
        """Mirror normalised 2D input ``(..., 17, 2)`` (numpy or torch): swap sides, negate x."""
        return _mirror(x, self._flip_in, 2)

    def unflip_output(self, y):
        """Mirror 3D output ``(..., 17, 3)`` back: swap sides, negate x."""
        return _mirror(y, self._flip_out, 3)

    def stream(self, image_size: tuple[int, int], fps: float | None = None) -> "LifterStream":
        """A per-frame stream (one per tracked person) for frames of ``image_size = (w, h)``.

        ``fps``: the camera's rate; below :attr:`trained_fps` each frame is preceded by frames
        interpolated from the previous one, so the lifter sees a rate it was trained on.
        """
        return LifterStream(self, image_size, fps=fps)


class LifterStream:
    """Frame-by-frame lifting; results equal :meth:`Lifter.lift_sequence` on the same frames."""

    def __init__(self, lifter: Lifter, image_size: tuple[int, int], fps: float | None = None):
        self._lifter = lifter
        self.image_size = _check_size(image_size)
        # Slow cameras: the network runs at `factor` x the input rate (frames interpolated between
        # the previous and the current one, so no latency is added); only real frames are returned.
        self.factor = framerate.upsampling_factor(fps, lifter.trained_fps)
        self._previous: np.ndarray | None = None
        # With test-time flip, the frame and its mirror image advance together as a batch of two
        # streams: one (C_out, K) @ (K, 2) product per layer costs little more than one column, since a
        # single stream is bound by reading the weights (benchmarks/lifter.py).
        self._flip = lifter.test_time_flip
        streams = 2 if self._flip else 1
        self._pose = StreamingTemporalModel(lifter.pose_model.cpu(), batch=streams)
        self._trajectory = (None if lifter.trajectory_model is None
                            else StreamingTemporalModel(lifter.trajectory_model.cpu(), batch=streams))
        lifter.pose_model.to(lifter.device)
        if lifter.trajectory_model is not None:
            lifter.trajectory_model.to(lifter.device)
        self.lag = -(-self._pose.lag // self.factor)  # in input frames

    def push(self, kp2d: np.ndarray) -> list[LiftResult]:
        """Feed the next frame's ``(17, 3)`` pixel keypoints; returns the frames now complete."""
        kp2d = np.asarray(kp2d)
        if kp2d.shape not in ((17, 2), (17, 3)):
            raise InputError(f"one frame of 2D keypoints must be (17, 3), got shape {kp2d.shape}")
        x = self._lifter.normalize(kp2d, self.image_size)
        frames = [x]
        if self.factor > 1 and self._previous is not None:
            steps = np.arange(1, self.factor)[:, None, None] / self.factor
            frames = list(self._previous + steps * (x - self._previous)) + frames
        self._previous = x
        out = []
        for frame in frames:
            batch = np.stack([frame, self._lifter.flip_input(frame)]) if self._flip else frame[None]
            poses = self._pose.push_batch(batch)
            roots = self._trajectory.push_batch(batch) if self._trajectory is not None else None
            out += self._results(poses, roots)
        return out

    def flush(self) -> list[LiftResult]:
        """End of stream: the last ``lag`` frames (replicate-padded at the end); then the stream resets."""
        poses = self._pose.flush_batch()
        roots = self._trajectory.flush_batch() if self._trajectory is not None else None
        self._previous = None
        return self._results(poses, roots)

    def _results(self, poses, roots) -> list[LiftResult]:
        """``poses`` / ``roots``: ``[(index, (B, J, 3))]``, B = 2 (plain, mirrored) with test-time flip.

        Indices count the network's frames; with upsampling only every ``factor``-th is a real one.
        """
        out = []
        for k, (index, pose_batch) in enumerate(poses):
            if index % self.factor:
                continue
            index //= self.factor
            pose = pose_batch[0]
            root = None if roots is None else roots[k][1][0, 0]
            if self._flip:
                pose = 0.5 * (pose + self._lifter.unflip_output(pose_batch[1]))
                if root is not None:
                    root = 0.5 * (root + roots[k][1][1, 0] * np.array([-1.0, 1.0, 1.0], dtype=np.float32))
            out.append(LiftResult(keypoints3d=(pose - pose[:1]).astype(np.float32), root=root, index=index))
        return out


def _mirror(a, permutation: torch.Tensor, dims: int):
    """Swap left/right joints (``permutation``) and negate x of ``(..., J, dims)`` numpy or torch."""
    sign = [-1.0] + [1.0] * (dims - 1)
    if isinstance(a, np.ndarray):
        return a[..., permutation.numpy(), :] * np.array(sign, dtype=a.dtype)
    return a[..., permutation.to(a.device), :] * a.new_tensor(sign)


def _check_size(image_size) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise InputError(f"image_size must be (width, height), got {image_size!r}") from None
    if width <= 0 or height <= 0:
        raise InputError(f"image_size must be positive, got {image_size!r}")
    return width, height
