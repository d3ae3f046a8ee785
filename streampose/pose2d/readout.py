"""Reading 2D joint positions out of the landmark model: direct regression or integral soft-argmax.

The BlazePose landmark model gives each joint twice: a *regressed* coordinate (the 195-vector) and a
64x64 *heat map* per joint (39 channels, raw logits -- MediaPipe applies a sigmoid to them).  The
integral readout (Sun et al., "Integral Human Pose Regression", Eq. 2-4) replaces the arg-max of a heat
map by its expectation under the normalised map: ``J = sum_p p * H~(p)``.  Two normalisations are
offered: ``"softmax"`` of the logits (the paper's Eq. 3) and ``"sigmoid"`` (per-cell probabilities
divided by their sum, what MediaPipe's heat-map refinement does).  The expectation can be restricted to
a ``window x window`` neighbourhood of the regressed point, which stops a second blob (the other
wrist, a limb behind the body) from pulling the estimate half-way between the two.

Coordinates: heat-map cell ``(i, j)`` has its centre at ``(j, i)`` ("cell coordinates"); crop pixels have
centres at integers as well; how cells map to crop pixels is :attr:`IntegralOptions.cell_origin`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

READOUTS = ("regression", "integral")


@dataclass(frozen=True)
class IntegralOptions:
    """How the integral readout normalises and windows a heat map.

    Attributes:
        activation: ``"softmax"`` (paper) or ``"sigmoid"`` (MediaPipe; BlazePose's heat maps are
            sigmoid-activated logits) normalisation.
        window: side of the square neighbourhood (cells) around the regressed point; ``None`` = the
            whole map.
        min_confidence: keep the regressed point when the window's peak sigmoid value is below this
            (the heat map has no confident blob there, e.g. an occluded joint).
        cell_origin: where heat-map cell ``j`` sits in continuous crop coordinates, as
            ``(j + cell_origin) * stride``.  ``0.5`` is the geometric cell centre; ``0.0`` is
            MediaPipe's convention (``x = col / 64``).  On the shared videos the heat-map expectation
            is shifted from the regressed landmarks by at most 0.4 crop px on average with ``0.0`` but
            by +1.5 to +2.4 px in both x and y with ``0.5`` (``benchmarks/readout_jitter.py``), so the
            network was evidently trained with MediaPipe's grid.
    """

    activation: str = "sigmoid"
    window: int | None = 7
    min_confidence: float = 0.5
    cell_origin: float = 0.0


def soft_argmax_2d(heatmaps: torch.Tensor, centres: torch.Tensor | None = None, window: int | None = None,
                   activation: str = "softmax") -> tuple[torch.Tensor, torch.Tensor]:
    """Expected location of each heat map (integral regression).

    Args:
        heatmaps: ``(N, K, H, W)`` raw logits.
        centres: ``(N, K, 2)`` ``[x, y]`` cell coordinates of the window centres (required with
            ``window``).
        window: odd window side in cells, or ``None`` for the whole map.
        activation: ``"softmax"`` or ``"sigmoid"``.

    Returns:
        ``coords (N, K, 2)`` ``[x, y]`` cell coordinates and ``peak (N, K)``: the largest sigmoid value
        inside the window (a confidence that the map has a blob there).
    """
    if heatmaps.ndim != 4:
        raise ValueError(f"expected (N, K, H, W) heat maps, got {tuple(heatmaps.shape)}")
    if activation not in ("softmax", "sigmoid"):
        raise ValueError(f"unknown activation {activation!r}; use 'softmax' or 'sigmoid'")
    n, k, h, w = heatmaps.shape
    logits = heatmaps.float()
    xs = torch.arange(w, device=logits.device, dtype=logits.dtype)
    ys = torch.arange(h, device=logits.device, dtype=logits.dtype)
    if window is not None:
        if centres is None:
            raise ValueError("a window needs centres")
        half = window // 2
        cell = torch.round(centres.float())  # the cell holding each centre
        inside_x = (xs.view(1, 1, w) - cell[..., 0:1]).abs() <= half  # (N, K, W)
        inside_y = (ys.view(1, 1, h) - cell[..., 1:2]).abs() <= half  # (N, K, H)
        inside = inside_y[..., :, None] & inside_x[..., None, :]  # (N, K, H, W)
    else:
        inside = torch.ones_like(logits, dtype=torch.bool)
    flat_inside = inside.reshape(n, k, h * w)
    flat = logits.reshape(n, k, h * w)
    if activation == "softmax":
        weights = torch.softmax(flat.masked_fill(~flat_inside, float("-inf")), dim=-1)
    else:
        weights = torch.sigmoid(flat) * flat_inside
        weights = weights / weights.sum(-1, keepdim=True).clamp(min=1e-12)
    # A window entirely off the map gives NaN softmax rows; they are caught by the empty check below.
    weights = torch.nan_to_num(weights, nan=0.0).reshape(n, k, h, w)
    x = (weights.sum(dim=2) * xs).sum(-1)
    y = (weights.sum(dim=3) * ys).sum(-1)
    peak = (torch.sigmoid(flat) * flat_inside).amax(dim=-1)
    empty = ~flat_inside.any(-1)
    peak = peak.masked_fill(empty, 0.0)
    return torch.stack([x, y], dim=-1), peak


def integral_readout(heatmaps: torch.Tensor, regressed: torch.Tensor, crop_size: int = 256,
                     options: IntegralOptions = IntegralOptions()) -> torch.Tensor:
    """Refine regressed joint positions with the integral expectation of their heat maps.

    Args:
        heatmaps: ``(N, K, H, W)`` logits for the first ``K`` joints.
        regressed: ``(N, J, 2)`` regressed positions in crop pixels (centres at integers), ``J >= K``;
            joints without a heat map are returned unchanged.
        crop_size: side of the crop in pixels (the heat-map stride is ``crop_size / W``).

    Returns:
        ``(N, J, 2)`` crop pixels.
    """
    k, h, w = heatmaps.shape[1:]
    stride_x, stride_y = crop_size / w, crop_size / h
    stride = regressed.new_tensor([stride_x, stride_y])
    # crop pixel (centres at integers) + 0.5 = continuous crop coordinate = (cell + origin) * stride
    centres = (regressed[:, :k] + 0.5) / stride - options.cell_origin
    coords, peak = soft_argmax_2d(heatmaps, centres, options.window, options.activation)
    refined = (coords + options.cell_origin) * stride - 0.5
    # Points off the map keep their regression (the heat map cannot see them), as in MediaPipe.
    off_map = ((centres < -0.5) | (centres > centres.new_tensor([w - 0.5, h - 0.5]))).any(-1)
    keep_regressed = (peak < options.min_confidence) | off_map
    out = regressed.clone()
    out[:, :k] = torch.where(keep_regressed[..., None], regressed[:, :k], refined.to(regressed.dtype))
    return out
