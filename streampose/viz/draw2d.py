"""2D overlays drawn onto video frames: skeletons, id tags and status text.

Every function draws **in place** with OpenCV on an ``(H, W, 3)`` uint8 RGB image and returns it.
2D keypoints are pixels, ``[x, y, confidence]`` per joint (``streampose.types.Person.keypoints2d``),
and are drawn in the colour code of :mod:`streampose.viz.style` (left blue, right red, centre amber).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import cv2
import numpy as np

from streampose.skeleton import H36M17, Skeleton
from streampose.types import Person
from streampose.viz.style import (
    OUTLINE_COLOR, SUBPIXEL_ONE, SUBPIXEL_SHIFT, TRACK_PALETTE, Color, check_image, default_thickness,
    fixed_point, joint_colors, track_color,
)


def draw_skeleton_2d(
    image: np.ndarray,
    keypoints2d: np.ndarray,
    skeleton: Skeleton = H36M17,
    *,
    min_confidence: float = 0.3,
    thickness: int | None = None,
    colors: Sequence[Color] | None = None,
    outline: bool = True,
    bbox: np.ndarray | Sequence[float] | None = None,
    label: str | None = None,
    label_color: Color = TRACK_PALETTE[0],
) -> np.ndarray:
    """Draw one person's 2D skeleton **in place** on an RGB image and return the same array.

    Joints whose confidence is below ``min_confidence`` (or whose coordinates are not finite) are
    not drawn, nor are the bones touching them.  Bones get a thin dark outline so they stay visible
    on bright and dark backgrounds alike.

    Args:
        image: ``(H, W, 3)`` uint8 RGB, modified in place (pass ``image.copy()`` to keep the original).
        keypoints2d: ``(J, 3)`` pixels ``[x, y, confidence]`` or ``(J, 2)`` pixels (all confident).
        skeleton: joint order and bone tree of ``keypoints2d`` (default H36M-17).
        min_confidence: joints below this confidence are skipped.
        thickness: bone thickness in pixels; ``None`` scales with the image (:func:`default_thickness`).
        colors: ``J`` RGB colours per joint; ``None`` = left blue / right red / centre amber.
        outline: draw a dark outline under bones and joints.
        bbox: optional ``(4,)`` ``[x0, y0, x1, y1]`` pixels, drawn as a rectangle in ``label_color``.
        label: optional text (e.g. ``"id 3"``) drawn on a filled tag above ``bbox`` (or above the
            highest drawn joint when there is no box).
        label_color: RGB colour of the box and the label tag.

    Returns:
        ``image`` (the same ``(H, W, 3)`` array, now with the drawing).
    """
    check_image(image, drawable=True)
    kp = np.asarray(keypoints2d, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[0] != skeleton.num_joints or kp.shape[1] not in (2, 3):
        raise ValueError(
            f"keypoints2d must be ({skeleton.num_joints}, 3) [x, y, conf] or ({skeleton.num_joints}, 2), "
            f"got {kp.shape}"
        )
    height, width = image.shape[:2]
    thick = default_thickness(width, height) if thickness is None else max(1, int(thickness))
    per_joint = list(colors) if colors is not None else joint_colors(skeleton)

    conf = kp[:, 2] if kp.shape[1] == 3 else np.ones(len(kp))
    xy = kp[:, :2]
    visible = np.isfinite(xy).all(axis=1) & np.isfinite(conf) & (conf >= min_confidence)
    # Keypoints far outside the image would overflow OpenCV's fixed-point maths; they are not
    # drawable anyway.
    margin = 4.0 * max(width, height)
    visible &= (np.abs(xy) < margin).all(axis=1)
    pts = fixed_point(np.where(visible[:, None], xy, 0.0))
    radius = max(2, int(round(thick * 1.2)))

    bones = [(c, p) for c, p in skeleton.bones if visible[c] and visible[p]]
    if outline:
        for c, p in bones:
            cv2.line(image, tuple(pts[c]), tuple(pts[p]), OUTLINE_COLOR, thick + 2, cv2.LINE_AA, SUBPIXEL_SHIFT)
        for j in np.flatnonzero(visible):
            cv2.circle(image, tuple(pts[j]), (radius + 1) * SUBPIXEL_ONE, OUTLINE_COLOR, -1, cv2.LINE_AA,
                       SUBPIXEL_SHIFT)
    for c, p in bones:
        cv2.line(image, tuple(pts[c]), tuple(pts[p]), per_joint[c], thick, cv2.LINE_AA, SUBPIXEL_SHIFT)
    for j in np.flatnonzero(visible):
        cv2.circle(image, tuple(pts[j]), radius * SUBPIXEL_ONE, per_joint[j], -1, cv2.LINE_AA, SUBPIXEL_SHIFT)

    anchor: tuple[float, float] | None = None
    if bbox is not None:
        box = np.asarray(bbox, dtype=np.float64).reshape(-1)
        if box.shape != (4,):
            raise ValueError(f"bbox must be (4,) [x0, y0, x1, y1], got {box.shape}")
        if np.isfinite(box).all() and (np.abs(box) < margin).all():
            x0, y0, x1, y1 = box
            cv2.rectangle(image, tuple(fixed_point(np.array([x0, y0]))), tuple(fixed_point(np.array([x1, y1]))),
                          label_color, max(1, thick // 2), cv2.LINE_AA, SUBPIXEL_SHIFT)
            anchor = (min(x0, x1), min(y0, y1))
    if label:
        if anchor is None and visible.any():
            top = int(np.argmin(np.where(visible, xy[:, 1], np.inf)))
            anchor = (xy[top, 0], xy[top, 1] - 2 * radius)
        if anchor is not None:
            draw_tag(image, label, anchor, color=label_color)
    return image


def draw_tag(
    image: np.ndarray,
    text: str,
    anchor: tuple[float, float],
    *,
    color: Color = TRACK_PALETTE[0],
    scale: float | None = None,
) -> np.ndarray:
    """Draw ``text`` on a filled tag whose bottom-left corner is ``anchor`` (clamped into the image).

    Args:
        image: ``(H, W, 3)`` uint8 RGB, modified in place.
        text: ASCII text (OpenCV's Hershey font has no other glyphs).
        anchor: ``(x, y)`` pixels.
        color: tag fill colour; the text is black or white, whichever contrasts.
        scale: font scale; ``None`` scales with the image height.

    Returns:
        ``image``.
    """
    check_image(image, drawable=True)
    height, width = image.shape[:2]
    font_scale = scale if scale is not None else max(0.4, min(width, height) / 900)
    font_thick = max(1, int(round(font_scale * 1.6)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, font_thick)
    pad = max(2, th // 3)
    x = int(np.clip(anchor[0], 0, max(0, width - tw - 2 * pad)))
    y = int(np.clip(anchor[1], th + 2 * pad + base, height))
    cv2.rectangle(image, (x, y - th - 2 * pad - base), (x + tw + 2 * pad, y), color, -1)
    ink = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
    cv2.putText(image, text, (x + pad, y - pad - base), cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink,
                font_thick, cv2.LINE_AA)
    return image


def draw_people(
    image: np.ndarray,
    people: Iterable[Person],
    skeleton: Skeleton = H36M17,
    *,
    min_confidence: float = 0.3,
    thickness: int | None = None,
    draw_boxes: bool = True,
    draw_ids: bool = True,
) -> np.ndarray:
    """Draw every person of a :class:`~streampose.types.PoseFrame` (skeleton, box, ``id N`` tag).

    Args:
        image: ``(H, W, 3)`` uint8 RGB, modified in place.
        people: ``Person`` records (``keypoints2d (17, 3)`` pixels + confidence, ``bbox (4,)``).

    Returns:
        ``image``.
    """
    for person in people:
        color = track_color(person.id)
        draw_skeleton_2d(
            image, person.keypoints2d, skeleton, min_confidence=min_confidence, thickness=thickness,
            bbox=person.bbox if draw_boxes and person.bbox is not None else None,
            label=f"id {person.id}" if draw_ids else None, label_color=color,
        )
    return image


def draw_text_block(image: np.ndarray, lines: Sequence[str], *, region_width: int | None = None) -> np.ndarray:
    """Write ``lines`` top-left on a translucent dark box, sized to the image height (in place).

    Args:
        image: ``(H, W, 3)`` uint8 RGB, modified in place.
        lines: ASCII text lines, drawn top to bottom.
        region_width: width in pixels of the part of ``image`` the font is sized for (e.g. only the
            video when a 3D panel is appended on the right); ``None`` = the whole width ``W``.

    Returns:
        ``image``.
    """
    check_image(image, drawable=True)
    if not lines:
        return image
    height = image.shape[0]
    width = image.shape[1] if region_width is None else region_width
    font_scale = max(0.4, min(width, height) / 800)
    font_thick = max(1, int(round(font_scale * 1.5)))
    sizes = [cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, font_scale, font_thick)[0] for t in lines]
    line_h = max(h for _, h in sizes) + max(4, int(8 * font_scale))
    pad = max(4, int(8 * font_scale))
    box_w = min(width, max(w for w, _ in sizes) + 2 * pad)
    box_h = min(height, line_h * len(lines) + pad)
    roi = image[:box_h, :box_w]
    roi[:] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken to 40 % for contrast
    for i, text in enumerate(lines):
        y = pad + (i + 1) * line_h - max(3, int(6 * font_scale))
        cv2.putText(image, text, (pad, y), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255),
                    font_thick, cv2.LINE_AA)
    return image
