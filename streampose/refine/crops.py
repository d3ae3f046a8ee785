"""Limb patch crops (Wan et al., Sec. 3.2 / 4.1), batched over people, frames and limbs.

For every limb (child -> parent bone of H36M-17) the two 2D endpoints give a tight box ``h x w``.
The box is centre-padded to ``max(min_size, h) x max(min_size, w)`` (28 px in the paper, for a
256 px person image), scaled by 2.3 around its centre, zero-padded outside the image and resampled
to the network resolution (256 in the paper, smaller here for CPU).  Boxes keep their own aspect
ratio and are stretched to a square patch, as in the paper.

Pixel convention: pixel ``(row i, column j)`` has its centre at ``(x=j, y=i)``.  A box of side ``s``
resampled to ``S`` pixels samples at ``x0 + (k + 0.5) * s / S``: the patch tiles the box exactly.

All 16 patches of an image are taken by ONE ``grid_sample`` call whose grid stacks the 16 limb grids
along its height; unlike ``kornia.geometry.transform.crop_and_resize`` (one box per batch item) this
needs no 16-fold copy of a full-resolution frame.  Its geometry is identical to kornia's with the
corner points of :func:`box_corners` (tested).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from streampose.refine.limbs import LIMBS, NUM_LIMBS

PAPER_MIN_SIZE = 28.0      # px, at the paper's 256 px person image
PAPER_SCALE = 2.3
PAPER_REFERENCE_SIZE = 256.0

_ENDPOINTS = torch.tensor(LIMBS)  # (16, 2) child, parent


def limb_boxes(kp2d: torch.Tensor, min_size: float | torch.Tensor = PAPER_MIN_SIZE,
               scale: float = PAPER_SCALE) -> torch.Tensor:
    """Crop box of every limb.

    Args:
        kp2d: ``(B, 17, 2)`` H36M-17 keypoints in pixels (extra trailing channels such as a
            confidence are ignored).
        min_size: minimum tight-box side before scaling, pixels; a float or a ``(B,)`` tensor (one
            per person, so it can follow the person's size).
        scale: rescaling factor around the box centre.

    Returns:
        ``(B, 16, 4)`` boxes ``[cx, cy, w, h]`` in pixels.
    """
    xy = kp2d[..., :2]
    ends = xy[:, _ENDPOINTS.to(xy.device), :]              # (B, 16, 2 endpoints, 2)
    low = ends.min(dim=2).values
    high = ends.max(dim=2).values
    centre = (low + high) / 2
    min_size = torch.as_tensor(min_size, dtype=xy.dtype, device=xy.device)
    if min_size.ndim == 1:
        min_size = min_size[:, None, None]
    side = torch.maximum(high - low, min_size) * scale     # (B, 16, 2) = (w, h)
    return torch.cat([centre, side], dim=-1)


def box_corners(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """First/last sample positions of each box in kornia's corner convention.

    Args:
        boxes: ``(..., 4)`` ``[cx, cy, w, h]`` pixels.
        size: patch side ``S`` in pixels.

    Returns:
        ``(..., 4, 2)`` points top-left, top-right, bottom-right, bottom-left (``x, y``), usable as
        ``boxes`` of ``kornia.geometry.transform.crop_and_resize(..., align_corners=True)``.
    """
    centre, side = boxes[..., :2], boxes[..., 2:]
    half = side / 2 - side / (2 * size)                    # centre of the first sample
    x0, y0 = (centre - half).unbind(-1)
    x1, y1 = (centre + half).unbind(-1)
    return torch.stack([torch.stack([x0, y0], -1), torch.stack([x1, y0], -1),
                        torch.stack([x1, y1], -1), torch.stack([x0, y1], -1)], dim=-2)


def patch_sample_points(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Image-pixel position of every patch pixel.

    Args:
        boxes: ``(B, L, 4)`` ``[cx, cy, w, h]``.
        size: patch side ``S``.

    Returns:
        ``(B, L, S, S, 2)`` ``(x, y)`` image coordinates; ``[..., i, j, :]`` is patch row ``i``,
        column ``j``.
    """
    steps = (torch.arange(size, dtype=boxes.dtype, device=boxes.device) + 0.5) / size - 0.5
    centre, side = boxes[..., None, :2], boxes[..., None, 2:]
    along = centre + steps[:, None] * side                 # (B, L, S, 2): x from w, y from h
    xs = along[..., 0][..., None, :].expand(*boxes.shape[:-1], size, size)
    ys = along[..., 1][..., :, None].expand(*boxes.shape[:-1], size, size)
    return torch.stack([xs, ys], dim=-1)


def to_patch_coordinates(points: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Map image-pixel points into each patch's pixel frame.

    Args:
        points: ``(B, N, 2)`` image pixels.
        boxes: ``(B, L, 4)`` ``[cx, cy, w, h]``.
        size: patch side ``S``.

    Returns:
        ``(B, L, N, 2)`` patch pixels (pixel centres at integers, as in the image).
    """
    centre, side = boxes[:, :, None, :2], boxes[:, :, None, 2:]
    return (points[:, None] - centre) / side * size + (size - 1) / 2


def sample_patches(images: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear sampling of images at pixel positions, zero outside.

    Args:
        images: ``(B, C, H, W)`` float.
        points: ``(B, L, S, S, 2)`` image pixel positions (from :func:`patch_sample_points`).

    Returns:
        ``(B, L, C, S, S)`` patches.
    """
    b, c, h, w = images.shape
    _, n_patches, s_h, s_w, _ = points.shape
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], dtype=points.dtype,
                         device=points.device)
    grid = points * scale - 1.0                             # align_corners=True normalisation
    grid = grid.reshape(b, n_patches * s_h, s_w, 2).to(images.dtype)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.reshape(b, c, n_patches, s_h, s_w).transpose(1, 2)


def crop_limb_patches(images: torch.Tensor, kp2d: torch.Tensor, size: int = 64,
                      min_size: float | torch.Tensor = PAPER_MIN_SIZE,
                      scale: float = PAPER_SCALE) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop the 16 limb patches of each image.

    Args:
        images: ``(B, C, H, W)`` float images (any channels: RGB, mask, a part map ...).
        kp2d: ``(B, 17, 2+)`` keypoints in pixels of ``images``.
        size: output patch side ``S``.
        min_size: minimum tight-box side (pixels, float or ``(B,)``).
        scale: box rescaling factor.

    Returns:
        ``(patches (B, 16, C, S, S), boxes (B, 16, 4))``.
    """
    if images.ndim != 4 or kp2d.ndim != 3 or kp2d.shape[0] != images.shape[0]:
        raise ValueError(f"expected images (B,C,H,W) and kp2d (B,17,2); got {tuple(images.shape)} "
                         f"and {tuple(kp2d.shape)}")
    boxes = limb_boxes(kp2d.to(torch.float32), min_size, scale)
    patches = sample_patches(images, patch_sample_points(boxes, size))
    return patches, boxes


def reference_min_size(person_size: torch.Tensor | float) -> torch.Tensor | float:
    """The paper's 28 px minimum, scaled from its 256 px person image to this person's size.

    Args:
        person_size: ``(B,)`` or scalar side of the person-centred square (pixels).
    """
    return PAPER_MIN_SIZE * person_size / PAPER_REFERENCE_SIZE


__all__ = ["limb_boxes", "box_corners", "patch_sample_points", "to_patch_coordinates",
           "sample_patches", "crop_limb_patches", "reference_min_size", "NUM_LIMBS",
           "PAPER_MIN_SIZE", "PAPER_SCALE"]
