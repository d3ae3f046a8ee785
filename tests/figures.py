"""A drawn, person-like figure that the real BlazePose detector finds (score ~0.97-0.99).

Used by tests that need real models on synthetic video: known joint heights, any size, any place.
"""
from __future__ import annotations

import cv2
import numpy as np


BACKGROUND = (200, 205, 210)


def draw_person(image: np.ndarray, cx: float, top: float, height: float) -> np.ndarray:
    """Paint a frontal standing figure into ``image`` (H, W, 3) uint8 RGB, in place.

    The figure is ``height`` px tall with the top of its head at ``(cx, top)``; its joints lie at
    known fractions of the height (see :func:`figure_joints`).
    """
    u = height / 8.0  # one head height
    skin, shirt, trousers = (224, 172, 140), (40, 90, 170), (50, 50, 60)
    hair, shoe = (60, 40, 20), (20, 20, 20)

    def line(p, q, colour, width):
        cv2.line(image, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), colour, max(1, int(width)), cv2.LINE_AA)

    j = figure_joints(cx, top, height)
    shoulder_w, hip_w = 1.0 * u, 0.6 * u
    for s in (-1, 1):
        hip, knee, ankle = (cx + s * hip_w * 0.7, j["hip"]), (cx + s * hip_w * 0.8, j["knee"]), (cx + s * hip_w * 0.9, j["ankle"])
        line(hip, knee, trousers, 0.55 * u)
        line(knee, ankle, trousers, 0.45 * u)
        line(ankle, (ankle[0] + s * 0.35 * u, ankle[1] + 0.1 * u), shoe, 0.3 * u)
    torso = np.array([[cx - shoulder_w, j["shoulder"]], [cx + shoulder_w, j["shoulder"]],
                      [cx + hip_w * 1.1, j["hip"]], [cx - hip_w * 1.1, j["hip"]]], np.int32)
    cv2.fillConvexPoly(image, torso, shirt, cv2.LINE_AA)
    for s in (-1, 1):
        elbow = (cx + s * (shoulder_w + 0.35 * u), j["shoulder"] + 1.4 * u)
        wrist = (cx + s * (shoulder_w + 0.55 * u), j["shoulder"] + 2.7 * u)
        line((cx + s * shoulder_w * 0.9, j["shoulder"] + 0.15 * u), elbow, shirt, 0.4 * u)
        line(elbow, wrist, skin, 0.3 * u)
        cv2.circle(image, (int(wrist[0]), int(wrist[1])), int(0.2 * u), skin, -1, cv2.LINE_AA)
    line((cx, j["shoulder"]), (cx, top + 0.9 * u), skin, 0.35 * u)
    cv2.ellipse(image, (int(cx), int(top + 0.5 * u)), (int(0.38 * u), int(0.5 * u)), 0, 0, 360, skin, -1, cv2.LINE_AA)
    cv2.ellipse(image, (int(cx), int(top + 0.35 * u)), (int(0.40 * u), int(0.38 * u)), 0, 180, 360, hair, -1, cv2.LINE_AA)
    for s in (-1, 1):
        cv2.circle(image, (int(cx + s * 0.14 * u), int(top + 0.48 * u)), max(1, int(0.05 * u)), (30, 30, 30), -1, cv2.LINE_AA)
    line((cx - 0.1 * u, top + 0.75 * u), (cx + 0.1 * u, top + 0.75 * u), (150, 60, 60), 0.05 * u)
    return image


def figure_joints(cx: float, top: float, height: float) -> dict[str, float]:
    """Heights (image y) of the figure's shoulder line, hips, knees and ankles."""
    u = height / 8.0
    return {"shoulder": top + 1.5 * u, "hip": top + 4.2 * u, "knee": top + 6.0 * u, "ankle": top + 7.8 * u}


def scene(width: int, height: int, people: list[tuple[float, float, float]]) -> np.ndarray:
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUND
    for cx, top, h in people:
        draw_person(image, cx, top, h)
    return image
