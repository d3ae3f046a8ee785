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
        window_centre: which cell the window is centred on: ``"nearest"`` (the cell whose grid point
            is closest to the regressed point) or ``"truncate"`` (MediaPipe's
            ``RefineLandmarksFromHeatmapCalculator``: the integer part of the cell coordinate, i.e.
            the cell whose span ``[j, j + 1)`` holds it, so the window sits half a cell towards
            the map's origin on average); a point whose centre cell falls off the map keeps its
            regression either way.
    """

    activation: str = "sigmoid"
    window: int | None = 7
    min_confidence: float = 0.5
    cell_origin: float = 0.0
    window_centre: str = "nearest"


WINDOW_CENTRES = ("nearest", "truncate")


def soft_argmax_2d(heatmaps: torch.Tensor, centres: torch.Tensor | None = None, window: int | None = None,
                   activation: str = "softmax", window_centre: str = "nearest") -> tuple[torch.Tensor, torch.Tensor]:
    """Expected location of each heat map (integral regression).

    Args:
        heatmaps: ``(N, K, H, W)`` raw logits.
        centres: ``(N, K, 2)`` ``[x, y]`` cell coordinates of the window centres (required with
            ``window``).
        window: odd window side in cells, or ``None`` for the whole map.
        activation: ``"softmax"`` or ``"sigmoid"``.
        window_centre: ``"nearest"`` (round the centres to a cell) or ``"truncate"`` (drop their
            fractional part, towards zero), see :class:`IntegralOptions`.

    Returns:
        ``coords (N, K, 2)`` ``[x, y]`` cell coordinates and ``peak (N, K)``: the largest sigmoid value
        inside the window (a confidence that the map has a blob there).
    """
    if heatmaps.ndim != 4:
        raise ValueError(f"expected (N, K, H, W) heat maps, got {tuple(heatmaps.shape)}")
    if activation not in ("softmax", "sigmoid"):
        raise ValueError(f"unknown activation {activation!r}; use 'softmax' or 'sigmoid'")
    if window_centre not in WINDOW_CENTRES:
        raise ValueError(f"unknown window_centre {window_centre!r}; use one of {WINDOW_CENTRES}")
    n, k, h, w = heatmaps.shape
    logits = heatmaps.float()
    if window is not None:
        if centres is None:
            raise ValueError("a window needs centres")
        # Gather only the window's cells: normalising all 64x64 cells of 39 maps to use 49 of them
        # cost ~1.2 ms per crop on CPU, more than the rest of the readout and projection together.
        half = window // 2
        side = 2 * half + 1
        offsets = torch.arange(-half, half + 1, device=logits.device)
        # The cell holding each centre; non-finite or far-off centres land off the map (empty window).
        far = float(side + 1)
        snap = torch.round if window_centre == "nearest" else torch.trunc
        cell = torch.nan_to_num(snap(centres.float()), nan=-far).clamp(-far, max(h, w) + far).long()
        cols = cell[..., 0:1] + offsets  # (N, K, window)
        rows = cell[..., 1:2] + offsets
        flat_inside = (((rows >= 0) & (rows < h))[..., :, None] & ((cols >= 0) & (cols < w))[..., None, :]).reshape(n, k, -1)
        index = (rows.clamp(0, h - 1)[..., :, None] * w + cols.clamp(0, w - 1)[..., None, :]).reshape(n, k, -1)
        flat = torch.gather(logits.reshape(n, k, h * w), 2, index)  # (N, K, window^2)
        xs = cols[..., None, :].expand(n, k, side, side).reshape(n, k, -1).to(logits.dtype)
        ys = rows[..., :, None].expand(n, k, side, side).reshape(n, k, -1).to(logits.dtype)
    else:
        flat_inside = torch.ones((n, k, h * w), dtype=torch.bool, device=logits.device)
        flat = logits.reshape(n, k, h * w)
        xs = torch.arange(w, device=logits.device, dtype=logits.dtype).repeat(h).expand(n, k, -1)
        ys = torch.arange(h, device=logits.device, dtype=logits.dtype).repeat_interleave(w).expand(n, k, -1)
    sigmoid = torch.sigmoid(flat) * flat_inside
    if activation == "softmax":
        weights = torch.softmax(flat.masked_fill(~flat_inside, float("-inf")), dim=-1)
    else:
        weights = sigmoid / sigmoid.sum(-1, keepdim=True).clamp(min=1e-12)
    # A window entirely off the map gives NaN softmax rows; they are caught by the empty check below.
    weights = torch.nan_to_num(weights, nan=0.0)
    x = (weights * xs).sum(-1)
    y = (weights * ys).sum(-1)
    peak = sigmoid.amax(dim=-1)
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
    coords, peak = soft_argmax_2d(heatmaps, centres, options.window, options.activation, options.window_centre)
    refined = (coords + options.cell_origin) * stride - 0.5
    # Points whose centre cell is off the map keep their regression (the heat map cannot see them),
    # as in MediaPipe.
    if options.window_centre == "nearest":
        off_map = ((centres < -0.5) | (centres > centres.new_tensor([w - 0.5, h - 0.5]))).any(-1)
    else:
        off_map = ((centres <= -1.0) | (centres >= centres.new_tensor([float(w), float(h)]))).any(-1)
    keep_regressed = (peak < options.min_confidence) | off_map
    out = regressed.clone()
    out[:, :k] = torch.where(keep_regressed[..., None], regressed[:, :k], refined.to(regressed.dtype))
    return out
