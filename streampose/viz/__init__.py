"""Visual output: 2D skeleton overlays, a rotating 3D skeleton panel and an overlay video writer.

Everything here draws with OpenCV on ``(H, W, 3)`` uint8 **RGB** images (the pipeline's image
format; colours are RGB triples) and never needs a display, so it works with
``opencv-python-headless`` and inside the live demo's per-frame budget.

The package re-exports its public names; the code lives in one module per job:

* :mod:`streampose.viz.style` -- the colour code (left blue, right red, centre amber), line sizes,
  image checks shared by all drawing;
* :mod:`streampose.viz.draw2d` -- skeletons, id tags and text drawn onto video frames (2D keypoints
  in pixels, ``[x, y, confidence]`` per joint);
* :mod:`streampose.viz.panel3d` -- the 3D panel: root-relative skeletons in metres, camera axes,
  seen from an orbiting viewpoint;
* :mod:`streampose.viz.compose` -- the standard overlay frame (video + 3D panel + status text);
* :mod:`streampose.viz.video` -- encoding overlay frames to an H.264 file with their timestamps.

Applications built on it (the live demo, the JSONL plot) are in :mod:`streampose.apps`.
"""
from __future__ import annotations

from streampose.viz.compose import compose_side_by_side, panel_size, render_pose_frame
from streampose.viz.draw2d import draw_people, draw_skeleton_2d, draw_tag, draw_text_block
from streampose.viz.panel3d import render_skeleton_3d, view_rotation
from streampose.viz.style import (
    CENTRE_COLOR, GRID_AXIS_COLOR, GRID_COLOR, LEFT_COLOR, OUTLINE_COLOR, PANEL_BACKGROUND, RIGHT_COLOR,
    TRACK_PALETTE, Color, bone_colors, default_thickness, joint_colors, track_color,
)
from streampose.viz.video import VIDEO_EXTENSIONS, OverlayWriter, check_video_path, rgb_to_yuv420p

__all__ = [
    "CENTRE_COLOR", "GRID_AXIS_COLOR", "GRID_COLOR", "LEFT_COLOR", "OUTLINE_COLOR", "PANEL_BACKGROUND",
    "RIGHT_COLOR", "TRACK_PALETTE", "VIDEO_EXTENSIONS", "Color", "OverlayWriter", "bone_colors",
    "check_video_path", "compose_side_by_side", "default_thickness", "draw_people", "draw_skeleton_2d",
    "draw_tag", "draw_text_block", "joint_colors", "panel_size", "render_pose_frame", "render_skeleton_3d",
    "rgb_to_yuv420p", "track_color", "view_rotation",
]
