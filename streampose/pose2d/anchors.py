"""SSD anchor centres of the BlazePose detector.

The detector predicts one box (plus four keypoints) relative to each anchor of a fixed grid.  The grid
is MediaPipe's ``SsdAnchorsCalculator`` with the options of ``pose_detection_cpu.pbtxt``: five layers
with strides 8, 16, 32, 32, 32 on a 224x224 input, one aspect ratio (1.0) plus one interpolated
scale per layer, and *fixed* anchor size (every anchor is 1x1 in normalised units, so only the
centres carry information).  Layers that share a stride are merged into one grid, which gives
28*28*2 + 14*14*2 + 7*7*6 = 2254 anchors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AnchorOptions:
    """The subset of MediaPipe's ``SsdAnchorsCalculatorOptions`` that BlazePose uses.

    The per-layer scales (min 0.1484375, max 0.75) only set anchor *sizes*, which BlazePose fixes to 1,
    so they are not needed here.
    """

    input_size: int = 224
    strides: tuple[int, ...] = (8, 16, 32, 32, 32)
    anchor_offset: float = 0.5
    num_aspect_ratios: int = 1  # aspect ratio 1.0 only
    interpolated_scale: bool = True  # one extra anchor per layer at sqrt(scale * next_scale)


BLAZEPOSE_ANCHOR_OPTIONS = AnchorOptions()
NUM_BLAZEPOSE_ANCHORS = 2254


def generate_anchors(options: AnchorOptions = BLAZEPOSE_ANCHOR_OPTIONS) -> torch.Tensor:
    """Anchor boxes in the detector's output order.

    Returns:
        ``(N, 4)`` float32 ``[x_center, y_center, width, height]`` in normalised input coordinates
        ([0, 1] across the 224-px input).  With fixed anchor size width = height = 1; ``N`` = 2254 for
        BlazePose.
    """
    rows: list[torch.Tensor] = []
    layer = 0
    num_layers = len(options.strides)
    while layer < num_layers:
        # Consecutive layers with equal stride share one feature map: their anchors interleave per cell.
        anchors_per_cell = 0
        next_layer = layer
        while next_layer < num_layers and options.strides[next_layer] == options.strides[layer]:
            anchors_per_cell += options.num_aspect_ratios + (1 if options.interpolated_scale else 0)
            next_layer += 1
        feature_size = math.ceil(options.input_size / options.strides[layer])
        cells = (torch.arange(feature_size, dtype=torch.float32) + options.anchor_offset) / feature_size
        y_centres, x_centres = torch.meshgrid(cells, cells, indexing="ij")  # row-major cells
        centres = torch.stack([x_centres, y_centres], dim=-1).reshape(-1, 1, 2)
        centres = centres.expand(-1, anchors_per_cell, 2).reshape(-1, 2)
        rows.append(torch.cat([centres, torch.ones_like(centres)], dim=1))
        layer = next_layer
    return torch.cat(rows, dim=0)

