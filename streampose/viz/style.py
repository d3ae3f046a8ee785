"""The look shared by every drawing in :mod:`streampose.viz`: colours, line sizes, image checks.

Colour code (same in 2D and 3D): the person's **left** side is blue, the **right** side red, the
centre line (spine, neck, head) amber.  A bone takes the colour of its child joint's side, so the
``Thorax -> LShoulder`` bone is already blue.  All colours are RGB triples, because the pipeline's
images are ``(H, W, 3)`` uint8 RGB.

The module also holds the two OpenCV conventions the drawing modules rely on: the input check for
images drawn on in place (:func:`check_image`) and fixed-point sub-pixel coordinates
(:func:`fixed_point` with :data:`SUBPIXEL_SHIFT`).
"""
from __future__ import annotations

import numpy as np

from streampose.skeleton import H36M17, Skeleton

Color = tuple[int, int, int]

LEFT_COLOR: Color = (60, 140, 255)
RIGHT_COLOR: Color = (245, 70, 60)
CENTRE_COLOR: Color = (255, 196, 40)
OUTLINE_COLOR: Color = (15, 15, 15)
PANEL_BACKGROUND: Color = (26, 28, 34)
GRID_COLOR: Color = (70, 74, 86)
GRID_AXIS_COLOR: Color = (110, 116, 132)

# Bounding boxes and id labels of several people must be told apart; the skeleton itself keeps the
# left/right colour code, so the per-track colour goes only on the box and label.
TRACK_PALETTE: tuple[Color, ...] = (
    (255, 255, 255), (80, 230, 120), (240, 110, 240), (90, 220, 235), (250, 160, 60), (170, 150, 255),
)

# Sub-pixel drawing: OpenCV takes fixed-point coordinates with this many fractional bits, which keeps
# anti-aliased lines at their true position instead of snapping to whole pixels.
SUBPIXEL_SHIFT = 4
SUBPIXEL_ONE = 1 << SUBPIXEL_SHIFT


def joint_colors(skeleton: Skeleton = H36M17) -> list[Color]:
    """Per-joint RGB colour: left side blue, right side red, centre amber.  ``len == num_joints``."""
    colors = [CENTRE_COLOR] * skeleton.num_joints
    for j in skeleton.left:
        colors[j] = LEFT_COLOR
    for j in skeleton.right:
        colors[j] = RIGHT_COLOR
    return colors


def bone_colors(skeleton: Skeleton = H36M17) -> list[Color]:
    """RGB colour of each bone in ``skeleton.bones`` order: the side of the bone's child joint."""
    per_joint = joint_colors(skeleton)
    return [per_joint[child] for child, _ in skeleton.bones]


def default_thickness(width: int, height: int) -> int:
    """Line thickness in pixels that reads well at any resolution: 3 px at 480p, 6 px at 1080p."""
    return max(1, int(round(min(width, height) / 180)))


def track_color(track_id: int) -> Color:
    """RGB colour for a track id's box and label (cycles through :data:`TRACK_PALETTE`)."""
    return TRACK_PALETTE[int(track_id) % len(TRACK_PALETTE)]


def check_image(image: np.ndarray, name: str = "image", drawable: bool = False) -> None:
    """Raise ``ValueError`` unless ``image`` is ``(H, W, 3)`` uint8 (and, if ``drawable``, writable
    C-contiguous memory that OpenCV can draw into in place)."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise ValueError(f"{name} must be an (H, W, 3) uint8 RGB array, got {shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8, got {image.dtype}")
    # OpenCV draws in place only into writable, C-contiguous memory; views like image[..., ::-1]
    # or read-only decoded buffers would otherwise fail with an obscure overload error.
    if drawable and not (image.flags.writeable and image.flags.c_contiguous):
        raise ValueError(f"{name} is drawn on in place and must be writable and C-contiguous "
                         f"(pass np.ascontiguousarray({name}) or {name}.copy())")


def fixed_point(points: np.ndarray) -> np.ndarray:
    """``(..., 2)`` float pixel coordinates -> int32 fixed-point for OpenCV's ``shift`` argument
    (pass :data:`SUBPIXEL_SHIFT` as ``shift``)."""
    return np.round(points * SUBPIXEL_ONE).astype(np.int32)
