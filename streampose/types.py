"""The typed records that flow between stages.

Stages never pass dicts of arrays: each hands the next one of these dataclasses.  Arrays are numpy,
float32 unless stated, in the units named on each field.  ``PoseFrame.to_dict()`` is the JSONL
``frame`` record (schema 1, see README).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class VideoInfo:
    """What the frame reader knows about a source before decoding it.

    ``fps``, ``duration`` and ``frame_count`` are ``None`` when the container does not say (live
    streams, some webcams).  ``width``/``height`` are *after* applying ``rotation``.
    """

    source: str
    width: int
    height: int
    fps: float | None = None
    duration: float | None = None
    frame_count: int | None = None
    codec: str | None = None
    pixel_format: str | None = None
    rotation: int = 0  # degrees clockwise that were applied to decoded frames
    is_live: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.source, "width": self.width, "height": self.height, "fps": self.fps,
            "duration": self.duration, "frame_count": self.frame_count, "codec": self.codec,
            "pixel_format": self.pixel_format, "rotation": self.rotation, "live": self.is_live,
        }


@dataclass
class Frame:
    """One decoded picture.

    ``image`` is ``(H, W, 3)`` uint8 RGB, already rotated upright.  ``time`` is the exact presentation
    time in seconds from the container (variable frame rate survives); ``index`` counts decoded
    frames from 0.  ``capture_time`` is ``time.perf_counter()`` when the frame left the decoder, for
    latency accounting.
    """

    index: int
    time: float
    image: np.ndarray
    capture_time: float = 0.0


@dataclass
class Person2D:
    """One person found by the 2D stage in one frame.

    Attributes:
        bbox: ``(4,)`` ``[x0, y0, x1, y1]`` pixels.
        score: detection / pose-presence score in [0, 1].
        keypoints2d: ``(17, 3)`` H36M-17 ``[x, y, confidence]`` in pixels.
        landmarks33: ``(33, 5)`` BlazePose ``[x, y, z, visibility, presence]``; x, y in pixels, z in
            the same pixel scale relative to the hips (as BlazePose defines it).
        world33: ``(33, 3)`` BlazePose world landmarks in metres, hip-centred, or ``None``.
        mask: ``(H, W)`` float person-segmentation probability in image pixels, or ``None``.
    """

    bbox: np.ndarray
    score: float
    keypoints2d: np.ndarray
    landmarks33: np.ndarray | None = None
    world33: np.ndarray | None = None
    mask: np.ndarray | None = None


@dataclass
class Person:
    """One tracked person in the pipeline's output.

    Attributes:
        id: track id, stable while the person stays tracked.
        keypoints2d: ``(17, 3)`` H36M-17 pixels + confidence.
        keypoints3d: ``(17, 3)`` metres, camera axes, root-relative (Hip = 0), or ``None`` before the
            lifter has produced this frame.
        root: ``(3,)`` root (Hip) position in camera space, metres, or ``None``.
    """

    id: int
    score: float
    bbox: np.ndarray
    keypoints2d: np.ndarray
    keypoints3d: np.ndarray | None = None
    root: np.ndarray | None = None
    landmarks33: np.ndarray | None = None
    world33: np.ndarray | None = None
    mask: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": int(self.id),
            "score": round(float(self.score), 4),
            "bbox": _rounded(self.bbox, 2),
            "keypoints2d": _rounded(self.keypoints2d, 2),
            "keypoints3d": None if self.keypoints3d is None else _rounded(self.keypoints3d, 4),
        }
        if self.root is not None:
            out["root"] = _rounded(self.root, 4)
        return out


@dataclass
class PoseFrame:
    """Everything streampose knows about one frame: the pipeline's unit of output."""

    index: int
    time: float
    people: list[Person] = field(default_factory=list)
    latency: float | None = None  # seconds from frame capture to this result
    image: np.ndarray | None = field(default=None, repr=False)  # (H, W, 3) RGB, only if asked for

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "frame",
            "index": int(self.index),
            "time": round(float(self.time), 6),
            "people": [p.to_dict() for p in self.people],
        }


def _rounded(array: np.ndarray, decimals: int) -> list:
    # Rounding keeps JSONL files small without losing anything a pose model can resolve.
    return np.round(np.asarray(array, dtype=np.float64), decimals).tolist()
