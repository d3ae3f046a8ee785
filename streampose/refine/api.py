"""Public refiner API: ``load_refiner`` -> :class:`Refiner`.

``Refiner.refine(image, kp2d, kp3d, mask)`` takes one person in one frame: the full RGB frame, the
H36M-17 2D keypoints in its pixels, the lifter's root-relative 3D pose (metres, camera axes) and the
optional BlazePose person mask, and returns the refined ``(17, 3)`` pose.  :meth:`Refiner.refine_batch`
does the same for many person-frames in one network call.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from streampose import registry
from streampose.errors import InputError, ModelError
from streampose.modelfile import load_model_file
from streampose.refine import crops, limbs
from streampose.refine.inputs import build_inputs, person_boxes
from streampose.refine.config import RefinerArch, make_net

def resolve_refiner(name_or_path: str | os.PathLike) -> Path:
    """A path, or a shipped name resolved through :mod:`streampose.registry` (``"default"``: the best one)."""
    text = os.fspath(name_or_path)
    direct = Path(text).expanduser()
    if direct.is_file():
        return direct
    shipped = registry.entry("refiner", text)
    if shipped is None:
        raise ModelError(f"refiner weights {text!r} not found (not a file, not a shipped name); "
                         f"shipped: {', '.join(registry.names('refiner'))}")
    return registry.weights_path(shipped)


class Refiner:
    """A trained patch-based refiner on one device.

    Attributes:
        config: the training configuration (modality, backbone, patch size ...).
        limb_lengths: ``(16,)`` metres, the orientation normalisation of its training set.
        description: short label for logs and output headers.
    """

    def __init__(self, net: torch.nn.Module, config: RefinerArch, limb_lengths: torch.Tensor,
                 device: str = "cpu"):
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.config = config
        self.limb_lengths = limb_lengths.to(self.device)
        self.description = f"patch-refiner/{config.backbone}/{config.modality}/{config.input_size}px"

    @torch.no_grad()
    def refine_batch(self, images: np.ndarray | list[np.ndarray], kp2d: np.ndarray, kp3d: np.ndarray,
                     masks: np.ndarray | list[np.ndarray | None] | None = None) -> np.ndarray:
        """Refine ``B`` person-frames at once.

        Args:
            images: ``(B, H, W, 3)`` uint8 RGB, or a list of ``B`` such frames (each may differ in
                size; frames are then processed in groups of equal size).
            kp2d: ``(B, 17, 2 or 3)`` pixels (+ confidence, unused).
            kp3d: ``(B, 17, 3)`` root-relative metres, camera axes.
            masks: ``(B, H, W)`` float person masks, a list with ``None`` entries, or ``None``.

        Returns:
            ``(B, 17, 3)`` float32 refined root-relative poses.
        """
        frames = list(images) if isinstance(images, list) else [im for im in np.asarray(images)]
        kp2d = np.asarray(kp2d, dtype=np.float32)
        kp3d = np.asarray(kp3d, dtype=np.float32)
        b = len(frames)
        if kp2d.shape[:2] != (b, 17) or kp2d.shape[2] < 2 or kp3d.shape != (b, 17, 3):
            raise InputError(f"refiner: expected kp2d (B,17,2|3) and kp3d (B,17,3) for B={b} images, "
                             f"got {kp2d.shape} and {kp3d.shape}")
        mask_list = [None] * b if masks is None else list(masks)
        if len(mask_list) != b:
            raise InputError(f"refiner: {len(mask_list)} masks for {b} images")
        for frame, mask in zip(frames, mask_list):
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise InputError(f"refiner: images must be (H, W, 3) uint8 RGB, got {frame.shape} "
                                 f"{frame.dtype}")
            if mask is not None and np.shape(mask) != frame.shape[:2]:
                raise InputError(f"refiner: mask shape {np.shape(mask)} does not match image "
                                 f"{frame.shape[:2]}")
        if not (np.isfinite(kp2d[..., :2]).all() and np.isfinite(kp3d).all()):
            raise InputError("refiner: keypoints contain NaN or inf")

        # Only the region the crops can touch is used (the union of the limb boxes and the person
        # square), area-resampled so the person square is as large as in the training renders:
        # the network sees the resolution it was trained at, and a 1080p frame costs no more than
        # a small one.
        patches = []
        for frame, mask, kp, pose in zip(frames, mask_list, kp2d, kp3d):
            (x0, y0, x1, y1), side = self._region(kp, frame.shape)
            scale = min(1.0, self.config.render_size / side)
            image_t = torch.from_numpy(np.ascontiguousarray(frame[y0:y1, x0:x1])).to(self.device)
            image_t = image_t.permute(2, 0, 1)[None].float() / 255
            mask_t = None if mask is None else torch.from_numpy(
                np.asarray(mask[y0:y1, x0:x1], dtype=np.float32))[None, None].to(self.device)
            if scale < 1.0:
                size = (max(1, round((y1 - y0) * scale)), max(1, round((x1 - x0) * scale)))
                image_t = F.interpolate(image_t, size=size, mode="area")
                mask_t = None if mask_t is None else F.interpolate(mask_t, size=size, mode="area")
                # pixel centres: x_local = (x - x0 + 0.5) * s - 0.5 with the exact per-axis factor
                factor = np.array([size[1] / (x1 - x0), size[0] / (y1 - y0)], np.float32)
            else:
                factor = np.ones(2, np.float32)
            local = (kp[None, :, :2] - np.array([x0, y0], np.float32) + 0.5) * factor - 0.5
            depth = torch.from_numpy(pose[None, :, 2] - pose[None, :1, 2]).to(self.device)
            patches.append(build_inputs(image_t, torch.from_numpy(local).to(self.device), depth,
                                        None if mask_t is None else mask_t[:, 0],
                                        self.config.modality, self.config.input_size))
        initial = torch.from_numpy(kp3d).to(self.device)
        initial = initial - initial[:, :1]
        u0 = limbs.limb_orientations(initial, self.limb_lengths)
        refined = limbs.apply_residual(initial, self.net(torch.cat(patches), u0), self.limb_lengths)
        return refined.cpu().numpy()

    def _region(self, kp2d: np.ndarray, shape: tuple[int, ...]
                ) -> tuple[tuple[int, int, int, int], float]:
        """``((x0, y0, x1, y1), person_side)``: integer image region holding every sample of this
        person's crops, and the side of the person square in pixels."""
        kp = torch.from_numpy(kp2d[None, :, :2])
        person = person_boxes(kp)
        boxes = crops.limb_boxes(kp, crops.reference_min_size(person[:, 2]))[0]      # (16, 4)
        square = torch.cat([person[0, :2], person[0, 2:], person[0, 2:]])[None]
        boxes = torch.cat([boxes, square])
        low = (boxes[:, :2] - boxes[:, 2:] / 2).min(0).values.floor().int() - 2
        high = (boxes[:, :2] + boxes[:, 2:] / 2).max(0).values.ceil().int() + 3
        h, w = shape[:2]
        x0, y0 = max(int(low[0]), 0), max(int(low[1]), 0)
        x1, y1 = min(int(high[0]), w), min(int(high[1]), h)
        if x1 <= x0 or y1 <= y0:           # person entirely outside the frame: an empty-but-valid crop
            x0, y0, x1, y1 = 0, 0, min(w, 1), min(h, 1)
        return (x0, y0, x1, y1), float(person[0, 2])

    def refine(self, image: np.ndarray, kp2d: np.ndarray, kp3d: np.ndarray,
               mask: np.ndarray | None = None) -> np.ndarray:
        """Refine one person in one frame.

        Args:
            image: ``(H, W, 3)`` uint8 RGB frame.
            kp2d: ``(17, 2 or 3)`` H36M-17 pixels (+ confidence).
            kp3d: ``(17, 3)`` lifter pose, root-relative metres.
            mask: ``(H, W)`` float person mask or ``None``.

        Returns:
            ``(17, 3)`` refined pose, root-relative metres.
        """
        return self.refine_batch([np.asarray(image)], np.asarray(kp2d)[None], np.asarray(kp3d)[None],
                                 [mask])[0]


def load_refiner(name: str | os.PathLike = "default", device: str = "cpu") -> Refiner:
    """Load a refiner by shipped name (``"default"``, ``"small_rgbseg"``, ...) or ``.pt`` path."""
    path = resolve_refiner(name)
    blob = load_model_file(path, "refiner weights")
    try:
        config = RefinerArch.from_dict(blob["config"])
        net = make_net(config)
        net.load_state_dict(blob["state_dict"])
        lengths = torch.tensor(blob["limb_lengths"], dtype=torch.float32)
    except (KeyError, RuntimeError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"refiner weights {path} are not a streampose refiner file: "
                         f"{type(exc).__name__}: {exc}") from exc
    if lengths.shape != (limbs.NUM_LIMBS,):
        raise ModelError(f"refiner weights {path}: bad limb statistics shape {tuple(lengths.shape)}")
    return Refiner(net, config, lengths, device)
