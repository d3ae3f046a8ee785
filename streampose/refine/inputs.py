"""Turn (image, mask, 2D keypoints, initial 3D pose) into the refiner's input tensor.

One function serves training, evaluation and inference, so the three cannot drift apart.  All
size-dependent parameters follow the *person size* ``P = 1.25 * max(bbox w, bbox h)`` of the 2D
keypoints: the paper's 28 px minimum box (at a 256 px person image) becomes ``28 * P / 256`` and the
part-map sticks are ``0.04 * P`` wide, so a person 300 px tall in a 1080p frame and one filling a
128 px training render give the same patches.

Modalities (paper Tables 2-3): ``"rgb"``, ``"seg"``, ``"rgb+seg"`` (16 limb patches of 3/3/6
channels) and ``"whole"`` (the uncropped person square, one 3-channel "patch").
"""
from __future__ import annotations

import torch

from streampose.refine import crops, segmap

MODALITIES = ("rgb", "seg", "rgb+seg", "whole")
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


def build_inputs(images: torch.Tensor, kp2d: torch.Tensor, depth: torch.Tensor,
                 masks: torch.Tensor | None, modality: str, size: int) -> torch.Tensor:
    """Refiner input volume.

    Args:
        images: ``(B, 3, H, W)`` float RGB in [0, 1].
        kp2d: ``(B, 17, 2+)`` keypoints in image pixels.
        depth: ``(B, 17)`` camera-space z of the joints (root-relative is fine: order only).
        masks: ``(B, H, W)`` person-mask probabilities or ``None``.
        modality: one of :data:`MODALITIES`.
        size: patch side ``S`` (for ``"whole"``: side of the person square).

    Returns:
        ``(B, 16, C, S, S)`` normalised patches, or ``(B, 1, 3, S, S)`` for ``"whole"``.
    """
    channels_for(modality)
    kp2d = kp2d[..., :2].to(torch.float32)
    person = person_boxes(kp2d)
    if modality == "whole":
        box = torch.cat([person[:, :2], person[:, 2:], person[:, 2:]], dim=-1)[:, None]  # (B,1,4)
        out = crops.sample_patches(images, crops.patch_sample_points(box, size))
        return (out - _MEAN) / _STD

    boxes = crops.limb_boxes(kp2d, crops.reference_min_size(person[:, 2]))
    points = crops.patch_sample_points(boxes, size)
    stacked = images if masks is None else torch.cat([images, masks[:, None].to(images)], dim=1)
    sampled = crops.sample_patches(stacked, points)            # (B, 16, 3 or 4, S, S)
    parts = []
    if modality in ("rgb", "rgb+seg"):
        parts.append(sampled[:, :, :3])
    if modality in ("seg", "rgb+seg"):
        mask_patches = None if masks is None else sampled[:, :, 3]
        parts.append(segmap.part_map_patches(points, kp2d, depth, STICK_WIDTH * person[:, 2],
                                             mask_patches))
    return (torch.cat(parts, dim=2) - _MEAN) / _STD
