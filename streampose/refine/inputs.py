"""Turn (image, mask, 2D keypoints, initial 3D pose) into the refiner's input tensor.

One function serves training, evaluation and inference, so the three cannot drift apart.  All
size-dependent parameters follow the *person size* ``P = 1.25 * max(bbox w, bbox h)`` of the 2D
keypoints: the paper's 28 px minimum box (at a 256 px person image) becomes ``28 * P / 256`` and the
part-map sticks are ``0.04 * P`` wide, so a person 300 px tall in a 1080p frame and one filling a
128 px training render give the same patches.

Modalities (paper Tables 2-3): ``"rgb"``, ``"seg"``, ``"rgb+seg"`` (16 limb patches of 3/3/6
channels) and ``"whole"`` (the uncropped person square, one 3-channel "patch").  ``"none"`` is our
control without any image: one blank patch, so the head sees only the initial pose -- what a
learned pose prior alone gains, to be subtracted from the image modalities' gains.
"""
from __future__ import annotations

import torch

from streampose.refine import crops, segmap

MODALITIES = ("rgb", "seg", "rgb+seg", "whole", "none")
PERSON_MARGIN = 1.25
STICK_WIDTH = 0.04          # fraction of the person size
# Plain fixed normalisation of [0, 1] inputs; there are no pretrained weights whose statistics matter.
_MEAN, _STD = 0.5, 0.25


def channels_for(modality: str) -> int:
    if modality not in MODALITIES:
        raise ValueError(f"unknown refiner modality {modality!r}; expected one of {MODALITIES}")
    return 6 if modality == "rgb+seg" else 3


def person_boxes(kp2d: torch.Tensor) -> torch.Tensor:
    """Person-centred square around the keypoints.

    Args:
        kp2d: ``(B, 17, 2+)`` pixels.

    Returns:
        ``(B, 3)`` ``[cx, cy, side]`` pixels.
    """
    xy = kp2d[..., :2]
    low, high = xy.min(1).values, xy.max(1).values
    side = PERSON_MARGIN * (high - low).max(-1).values.clamp_min(8.0)
    return torch.cat([(low + high) / 2, side[:, None]], dim=-1)


def _limb_geometry(kp2d: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    person = person_boxes(kp2d)
    boxes = crops.limb_boxes(kp2d, crops.reference_min_size(person[:, 2]))
    return person, crops.patch_sample_points(boxes, size)


def part_labels(kp2d: torch.Tensor, depth: torch.Tensor, masks: torch.Tensor | None,
                size: int) -> torch.Tensor:
    """Part-map labels of the 16 limb patches (what the ``seg`` modality colour-codes).

    Args:
        kp2d: ``(B, 17, 2+)`` pixels.
        depth: ``(B, 17)`` joint depths.
        masks: ``(B, H, W)`` person masks or ``None``.
        size: patch side ``S``.

    Returns:
        ``(B, 16, S, S)`` long limb ids, -1 background.
    """
    kp2d = kp2d[..., :2].to(torch.float32)
    person, points = _limb_geometry(kp2d, size)
    mask_patches = None
    if masks is not None:
        mask_patches = crops.sample_patches(masks[:, None].to(torch.float32), points)[:, :, 0]
    b, n, s_h, s_w, _ = points.shape
    flat_mask = None if mask_patches is None else mask_patches.reshape(b, -1)
    labels = segmap.part_labels_at(points.reshape(b, -1, 2), kp2d, depth.to(torch.float32),
                                   STICK_WIDTH * person[:, 2], flat_mask)
    return labels.reshape(b, n, s_h, s_w)


def build_inputs(images: torch.Tensor, kp2d: torch.Tensor, depth: torch.Tensor,
                 masks: torch.Tensor | None, modality: str, size: int,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
    """Refiner input volume.

    Args:
        images: ``(B, 3, H, W)`` float RGB in [0, 1].
        kp2d: ``(B, 17, 2+)`` keypoints in image pixels.
        depth: ``(B, 17)`` camera-space z of the joints (root-relative is fine: order only).
        masks: ``(B, H, W)`` person-mask probabilities or ``None``.
        modality: one of :data:`MODALITIES`.
        size: patch side ``S`` (for ``"whole"``: side of the person square).
        labels: ``(B, 16, S, S)`` precomputed :func:`part_labels` (training caches them), or ``None``.

    Returns:
        ``(B, 16, C, S, S)`` normalised patches, or ``(B, 1, 3, S, S)`` for ``"whole"``.
    """
    channels_for(modality)
    kp2d = kp2d[..., :2].to(torch.float32)
    if modality == "none":
        return torch.zeros(kp2d.shape[0], 1, 3, size, size, device=images.device)
    if modality == "whole":
        person = person_boxes(kp2d)
        box = torch.cat([person[:, :2], person[:, 2:], person[:, 2:]], dim=-1)[:, None]  # (B,1,4)
        out = crops.sample_patches(images, crops.patch_sample_points(box, size))
        return (out - _MEAN) / _STD

    parts = []
    if modality in ("rgb", "rgb+seg"):
        _, points = _limb_geometry(kp2d, size)
        parts.append(crops.sample_patches(images, points))               # (B, 16, 3, S, S)
    if modality in ("seg", "rgb+seg"):
        if labels is None:
            labels = part_labels(kp2d, depth, masks, size)
        b, n, s_h, s_w = labels.shape
        parts.append(segmap.colourise(labels.reshape(b * n, s_h, s_w).long())
                     .reshape(b, n, 3, s_h, s_w).to(images.device))
    return (torch.cat(parts, dim=2) - _MEAN) / _STD
