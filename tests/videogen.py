"""Synthetic test videos, encoded with PyAV inside the tests (no shared data, no ffmpeg binary).

Other engineers' tests import this module to render synthetic people into real encoded video::

    from videogen import make_video
    path = make_video(tmp_path / "walk.mp4", frames=40, size=(320, 240), draw=my_painter)

``draw(index, width, height) -> (height, width, 3) uint8 RGB`` paints frame ``index``; the default
painter encodes the frame index as the brightness of a large block so a decoded frame can be
identified (``frame_index_from_image``) even after lossy compression.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import av
import numpy as np

Painter = Callable[[int, int, int], np.ndarray]

# The block that carries the frame index: brightness steps of 8 survive H.264/VP9 at default quality.
_INDEX_LEVELS = 30
_INDEX_STEP = 8


def index_painter(index: int, width: int, height: int) -> np.ndarray:
    """Default painter: a smooth gradient with a top-left block whose grey level encodes ``index``.

    Returns:
        ``(height, width, 3)`` uint8 RGB.  The block is the top-left quarter; its level is
        ``16 + 8 * (index % 30)`` so indices up to 29 are unambiguous (modulo 30 beyond).
    """
    ys = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    xs = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[..., 0] = (0.5 * xs + 0.5 * ys).astype(np.uint8)
    image[..., 1] = (255 - 0.5 * xs - 0.3 * ys).astype(np.uint8)
    image[..., 2] = 128
    level = 16 + _INDEX_STEP * (index % _INDEX_LEVELS)
    image[: max(1, height // 2), : max(1, width // 2)] = level
    return image


def frame_index_from_image(image: np.ndarray) -> int:
    """Recover ``index % 30`` painted by ``index_painter`` from a decoded ``(H, W, 3)`` image.

    Reads the centre of the top-left block of an *upright* image (away from compression edges).
    """
    h, w = image.shape[:2]
    cy, cx = max(0, h // 4), max(0, w // 4)
    patch = image[max(0, cy - 2): cy + 3, max(0, cx - 2): cx + 3].astype(np.float32)
    level = float(patch.mean())
    return int(round((level - 16) / _INDEX_STEP)) % _INDEX_LEVELS


def make_video(
    path: str | Path,
    frames: int = 30,
    size: tuple[int, int] = (160, 120),
    fps: float = 30.0,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    draw: Painter | None = None,
    rotation: int | None = None,
    options: dict[str, str] | None = None,
    audio: bool = False,
) -> Path:
    """Encode a synthetic video with PyAV and return its path.

    Args:
        path: output file; the container format follows the extension (.mp4, .mkv, .webm, .avi).
        frames: number of frames to encode (ignored when ``pts`` is given: one frame per pts).
        size: ``(width, height)`` in pixels (stored size; before any ``rotation``).
        fps: nominal frame rate; frame ``i`` gets pts ``i`` in time base ``1/fps`` unless ``pts``.
        codec: encoder name ("libx264", "libvpx-vp9", "mpeg4", "ffv1", ...).
        pix_fmt: encoder pixel format ("yuv420p", "yuv444p", "yuv420p10le", "gray", ...).
            yuv420p needs even dimensions; use yuv444p / gray for odd sizes.
        pts: explicit integer presentation timestamps (in ``time_base``) for variable frame rate.
        time_base: time base of ``pts``; defaults to ``1/1000`` with ``pts`` and ``1/fps`` without.
        draw: ``draw(index, width, height) -> (height, width, 3) uint8 RGB``; default ``index_painter``.
        rotation: display-matrix rotation in degrees *counter-clockwise* (FFmpeg's convention, what
            ``VideoFrame.rotation`` reads back), e.g. ``-90`` for a phone held upright.
        options: extra encoder options.
        audio: also write a short silent AAC track (for "first stream is not video" cases).

    Returns:
        ``Path`` of the written file.
    """
    path = Path(path)
    width, height = size
    painter = draw or index_painter
    rate = Fraction(fps).limit_denominator(1001000)
    if pts is not None:
        tb = time_base or Fraction(1, 1000)
        stamps = [int(p) for p in pts]
    else:
        tb = time_base or (1 / rate)
        step = (1 / rate) / tb
        stamps = [int(round(i * step)) for i in range(frames)]

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate, options=dict(options or {}))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = tb
        stream.codec_context.time_base = tb
        if codec == "libx264":
            # Fast presets keep tests quick; bframes=0 keeps pts == decode order simple for VFR.
            stream.codec_context.options = {"preset": "ultrafast", "bf": "0", **dict(options or {})}
        if rotation:
            stream.set_display_rotation(rotation)
        audio_stream = container.add_stream("aac", rate=16000) if audio else None

        for i, stamp in enumerate(stamps):
            image = np.ascontiguousarray(painter(i, width, height), dtype=np.uint8)
            if image.shape != (height, width, 3):
                raise ValueError(f"painter returned {image.shape}, expected {(height, width, 3)}")
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=pix_fmt)
            frame.pts = stamp
            frame.time_base = tb
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)

        if audio_stream is not None:
            _write_silence(container, audio_stream, seconds=len(stamps) * float(1 / rate))
    return path


def make_audio_only(path: str | Path, seconds: float = 1.0) -> Path:
    """Encode a silent AAC file (e.g. ``.mp4`` / ``.m4a``) with no video stream."""
    path = Path(path)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        _write_silence(container, stream, seconds)
    return path


def _write_silence(container, stream, seconds: float) -> None:
    samples_per_frame = 1024
    total = max(1, int(seconds * stream.rate / samples_per_frame))
    for i in range(total):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, samples_per_frame), dtype=np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = stream.rate
        frame.pts = i * samples_per_frame
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
