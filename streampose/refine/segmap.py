"""Colour-coded body-part maps built from what exists at run time (Wan et al. Fig. 1, DeepSkeleton).

We have no body-part segmentation network, so the "segmentation image" is synthesised from the 2D
keypoints, the lifter's depth and (optionally) the BlazePose person mask:

* every limb is a stick of ``width`` pixels between its two 2D endpoints, in the limb's colour;
* where sticks overlap, the nearer limb wins -- depth is interpolated along each stick from the
  lifter's per-joint camera z (DeepSkeleton's foreground skeleton map);
* pixels inside the person mask (probability > 0.5) that no stick covers take the colour of the
  nearest stick, so the map grows from a skeleton into a body-part segmentation where a mask exists.

Everything is evaluated at arbitrary sample points, so the same code draws a full-image map
(:func:`skeleton_part_map`) or draws directly in the limb patches' pixel grids
(:func:`part_map_patches`) -- equivalent to drawing the full map and cropping it, without
rasterising a whole 1080p frame.
"""
from __future__ import annotations

import colorsys

import torch

from streampose.refine.limbs import LIMBS, NUM_LIMBS

_ENDPOINTS = torch.tensor(LIMBS)  # (16, 2) child, parent


def _palette() -> torch.Tensor:
    # Evenly spaced hues, alternating brightness so neighbouring limbs differ in two ways.
    colours = [colorsys.hsv_to_rgb((i * 7 % NUM_LIMBS) / NUM_LIMBS, 0.9, 1.0 if i % 2 else 0.75)
               for i in range(NUM_LIMBS)]
    return torch.tensor(colours, dtype=torch.float32)


#: ``(16, 3)`` RGB colour in [0, 1] of each limb.
LIMB_COLOURS = _palette()


def part_labels_at(points: torch.Tensor, kp2d: torch.Tensor, depth: torch.Tensor,
                   width: torch.Tensor | float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Limb label at arbitrary image points.

    Args:
        points: ``(B, P, 2)`` image pixels where the map is evaluated.
        kp2d: ``(B, 17, 2+)`` keypoints in the same pixels.
        depth: ``(B, 17)`` camera-space depth of each joint (any offset; only order matters).
        width: stick width in pixels, float or ``(B,)``.
        mask: ``(B, P)`` person-mask probability at the points, or ``None``.

    Returns:
        ``(B, P)`` long labels: limb index 0..15, or -1 for background.
    """
    ends = kp2d[..., :2][:, _ENDPOINTS.to(kp2d.device)]     # (B, 16, 2, 2)
    a, b = ends[:, :, 1], ends[:, :, 0]                     # parent, child: (B, 16, 2)
    za, zb = depth[:, _ENDPOINTS[:, 1]], depth[:, _ENDPOINTS[:, 0]]   # (B, 16)
    ab = b - a
    # Expanded dot products keep every intermediate at (B, P, 16) -- no (B, P, 16, 2) tensors --
    # and the limb axis last, so the per-pixel argmins run over contiguous memory.
    ab_t, a_t = ab.transpose(1, 2), a.transpose(1, 2)       # (B, 2, 16)
    ap_ab = torch.bmm(points, ab_t) - (a * ab).sum(-1)[:, None]     # (B, P, 16)  (p - a) . ab
    ab2 = ab.pow(2).sum(-1)[:, None]                        # (B, 1, 16)
    t = (ap_ab / (ab2 + 1e-6)).clamp_(0.0, 1.0)
    ap2 = points.pow(2).sum(-1, keepdim=True) - 2 * torch.bmm(points, a_t) + a.pow(2).sum(-1)[:, None]
    dist2 = ap2.sub_(t * (2 * ap_ab - t * ab2))             # |p - (a + t ab)|^2
    z = za[:, None] + t * (zb - za)[:, None]                # (B, P, 16)
    width = torch.as_tensor(width, dtype=dist2.dtype, device=dist2.device)
    half = (width / 2).reshape(-1, 1, 1) if width.ndim else width / 2
    covered = dist2 <= half * half
    front = z.masked_fill_(~covered, float("inf")).argmin(dim=-1)          # (B, P)
    labels = torch.where(covered.any(dim=-1), front, torch.full_like(front, -1))
    if mask is not None:
        nearest = dist2.argmin(dim=-1)
        labels = torch.where((labels < 0) & (mask > 0.5), nearest, labels)
    return labels


def colourise(labels: torch.Tensor) -> torch.Tensor:
    """Colour-code labels.

    Args:
        labels: ``(B, ...)`` long, -1 = background.

    Returns:
        ``(B, 3, ...)`` float RGB in [0, 1], background black.
    """
    palette = torch.cat([LIMB_COLOURS, torch.zeros(1, 3)]).to(labels.device)
    rgb = palette[torch.where(labels < 0, NUM_LIMBS, labels)]          # (B, ..., 3)
    return rgb.movedim(-1, 1)


def skeleton_part_map(kp2d: torch.Tensor, depth: torch.Tensor, size: tuple[int, int],
                      width: torch.Tensor | float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Full-image colour-coded part map.

    Args:
        kp2d: ``(B, 17, 2+)`` keypoints, pixels.
        depth: ``(B, 17)`` joint depths.
        size: ``(H, W)`` of the map.
        width: stick width, pixels (float or ``(B,)``).
        mask: ``(B, H, W)`` person-mask probability or ``None``.

    Returns:
        ``(B, 3, H, W)`` float map in [0, 1].
    """
    h, w = size
    ys, xs = torch.meshgrid(torch.arange(h, dtype=kp2d.dtype, device=kp2d.device),
                            torch.arange(w, dtype=kp2d.dtype, device=kp2d.device), indexing="ij")
    points = torch.stack([xs, ys], -1).reshape(1, -1, 2).expand(kp2d.shape[0], -1, -1)
    flat_mask = None if mask is None else mask.reshape(kp2d.shape[0], -1)
    labels = part_labels_at(points, kp2d, depth, width, flat_mask)
    return colourise(labels.reshape(-1, h, w))


def part_map_patches(sample_points: torch.Tensor, kp2d: torch.Tensor, depth: torch.Tensor,
                     width: torch.Tensor | float,
                     mask_patches: torch.Tensor | None = None) -> torch.Tensor:
    """Part map drawn directly in the limb patches.

    Args:
        sample_points: ``(B, L, S, S, 2)`` image position of each patch pixel
            (:func:`streampose.refine.crops.patch_sample_points`).
        kp2d: ``(B, 17, 2+)`` keypoints, image pixels.
        depth: ``(B, 17)`` joint depths.
        width: stick width in image pixels.
        mask_patches: ``(B, L, S, S)`` person mask cropped with the same boxes, or ``None``.

    Returns:
        ``(B, L, 3, S, S)`` part-map patches.
    """
    b, n_patches, s_h, s_w, _ = sample_points.shape
    flat_mask = None if mask_patches is None else mask_patches.reshape(b, -1)
    labels = part_labels_at(sample_points.reshape(b, -1, 2), kp2d, depth, width, flat_mask)
    return colourise(labels.reshape(b * n_patches, s_h, s_w)).reshape(b, n_patches, 3, s_h, s_w)
