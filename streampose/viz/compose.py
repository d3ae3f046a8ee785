"""Composition of the standard overlay frame: the video with 2D skeletons, the 3D panel beside it
and status text on top.

:func:`render_pose_frame` is what the overlay video writer and the live demo draw for every frame;
:func:`panel_size` fixes how wide the 3D panel is next to a frame of a given size.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from streampose.types import PoseFrame
from streampose.viz.draw2d import draw_people, draw_text_block
from streampose.viz.panel3d import render_skeleton_3d
from streampose.viz.style import check_image


def panel_size(width: int, height: int) -> tuple[int, int]:
    """Size of the 3D panel shown beside a ``width x height`` frame: square for landscape frames,
    narrower (at least 0.6 x height wide) for portrait ones so the panel does not dwarf the video.

    Returns:
        ``(panel_width, height)``.
    """
    return min(height, max(width, int(round(0.6 * height)))), height


def compose_side_by_side(
    frame_with_2d: np.ndarray,
    panel_3d: np.ndarray | None,
    text_lines: Sequence[str] = (),
) -> np.ndarray:
    """Put the video frame and the 3D panel side by side and write status text on the frame.

    Args:
        frame_with_2d: ``(H, W, 3)`` uint8 RGB (e.g. after :func:`draw_people`); not modified.
        panel_3d: ``(h, w, 3)`` uint8 RGB, resized to height ``H`` (aspect kept) when ``h != H``;
            ``None`` returns just the frame with text.
        text_lines: lines (e.g. ``"12.3 fps"``, ``"latency 45 ms"``) on a dark box, top-left.

    Returns:
        ``(H, W + w', 3)`` uint8 RGB, a new array.
    """
    check_image(frame_with_2d, "frame_with_2d")
    height = frame_with_2d.shape[0]
    if panel_3d is None:
        out = frame_with_2d.copy()
    else:
        check_image(panel_3d, "panel_3d")
        panel = panel_3d
        if panel.shape[0] != height:
            new_w = max(1, int(round(panel.shape[1] * height / panel.shape[0])))
            interp = cv2.INTER_AREA if panel.shape[0] > height else cv2.INTER_LINEAR
            panel = cv2.resize(panel, (new_w, height), interpolation=interp)
        out = np.concatenate([frame_with_2d, panel], axis=1)
    if text_lines:
        draw_text_block(out, text_lines, region_width=frame_with_2d.shape[1])
    return out


def render_pose_frame(
    image: np.ndarray,
    pose_frame: PoseFrame | None,
    *,
    view3d: bool = True,
    azimuth_deg: float = 0.0,
    elevation_deg: float = 15.0,
    text_lines: Sequence[str] = (),
    min_confidence: float = 0.3,
) -> np.ndarray:
    """The standard overlay: 2D skeletons on a copy of ``image`` plus (optionally) a 3D panel.

    Args:
        image: ``(H, W, 3)`` uint8 RGB source frame (not modified).
        pose_frame: the pipeline's result for this frame, or ``None`` (nothing drawn).
        view3d: append a 3D panel of every person with ``keypoints3d`` (:func:`panel_size`).
        text_lines: status lines drawn top-left.

    Returns:
        ``(H, W + panel width, 3)`` with ``view3d`` (see :func:`panel_size`) else ``(H, W, 3)`` uint8 RGB.
    """
    check_image(image)
    canvas = image.copy()
    people = pose_frame.people if pose_frame is not None else []
    draw_people(canvas, people, min_confidence=min_confidence)
    panel = None
    if view3d:
        with_3d = [p for p in people if p.keypoints3d is not None]
        roots = [p.root for p in with_3d]
        panel = render_skeleton_3d(
            [p.keypoints3d for p in with_3d], panel_size(image.shape[1], image.shape[0]), azimuth_deg,
            elevation_deg,
            roots=roots if all(r is not None for r in roots) else None,
            # Before the lifter's first output (offline lag) people exist without 3D yet.
            title=f"3D  az {azimuth_deg % 360:.0f} deg" + ("  (3D pending)" if people and not with_3d else ""),
        )
    return compose_side_by_side(canvas, panel, text_lines)
