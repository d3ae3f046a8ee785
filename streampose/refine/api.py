"""Public refiner API: ``load_refiner`` -> :class:`Refiner`.

``Refiner.refine(image, kp2d, kp3d, mask)`` takes one person in one frame: the full RGB frame, the
H36M-17 2D keypoints in its pixels, the lifter's root-relative 3D pose (metres, camera axes) and the
optional BlazePose person mask, and returns the refined ``(17, 3)`` pose.  :meth:`Refiner.refine_batch`
does the same for many person-frames in one network call.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from streampose.errors import InputError, ModelError
from streampose.refine import limbs
from streampose.refine.inputs import build_inputs
from streampose.refine.config import FitConfig, make_net

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
DEFAULT_NAME = "small_rgbseg"


def resolve_refiner(name_or_path: str | os.PathLike) -> Path:
    """A path, or a shipped name ``NAME`` -> ``models/refiner_NAME.pt`` (``"default"`` = the best one)."""
    text = os.fspath(name_or_path)
    direct = Path(text).expanduser()
    if direct.is_file():
        return direct
    name = DEFAULT_NAME if text == "default" else text
    candidate = MODELS_DIR / f"refiner_{name}.pt"
    if candidate.is_file():
        return candidate
    available = sorted(p.stem.removeprefix("refiner_") for p in MODELS_DIR.glob("refiner_*.pt"))
    raise ModelError(f"refiner weights {text!r} not found (looked for {direct} and {candidate}); "
                     f"available: {available or 'none'}")


class Refiner:
    """A trained patch-based refiner on one device.

    Attributes:
        config: the training configuration (modality, backbone, patch size ...).
        limb_lengths: ``(16,)`` metres, the orientation normalisation of its training set.
    """

    def __init__(self, net: torch.nn.Module, config: FitConfig, limb_lengths: torch.Tensor,
                 device: str = "cpu"):
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.config = config
        self.limb_lengths = limb_lengths.to(self.device)

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

        out = np.empty((b, 17, 3), dtype=np.float32)
        groups: dict[tuple, list[int]] = {}
        for i, (frame, mask) in enumerate(zip(frames, mask_list)):
            groups.setdefault((frame.shape, mask is None), []).append(i)
        for (_, no_mask), index in groups.items():
            image_t = torch.from_numpy(np.stack([frames[i] for i in index])).to(self.device)
            image_t = image_t.permute(0, 3, 1, 2).float() / 255
            mask_t = None if no_mask else torch.from_numpy(
                np.stack([mask_list[i] for i in index]).astype(np.float32)).to(self.device)
            initial = torch.from_numpy(kp3d[index]).to(self.device)
            initial = initial - initial[:, :1]
            patches = build_inputs(image_t, torch.from_numpy(kp2d[index]).to(self.device),
                                   initial[..., 2], mask_t, self.config.modality,
                                   self.config.input_size)
            u0 = limbs.limb_orientations(initial, self.limb_lengths)
            refined = limbs.apply_residual(initial, self.net(patches, u0), self.limb_lengths)
            out[index] = refined.cpu().numpy()
        return out

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
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
        config = FitConfig(**blob["config"])
        net = make_net(config)
        net.load_state_dict(blob["state_dict"])
        lengths = torch.tensor(blob["limb_lengths"], dtype=torch.float32)
    except (OSError, KeyError, RuntimeError, TypeError, ValueError, EOFError,
            pickle.UnpicklingError) as exc:
        raise ModelError(f"refiner weights {path} are unreadable: {exc}") from exc
    if lengths.shape != (limbs.NUM_LIMBS,):
        raise ModelError(f"refiner weights {path}: bad limb statistics shape {tuple(lengths.shape)}")
    return Refiner(net, config, lengths, device)
