"""Frame rates the lifter was not trained for: resample the 2D in time to a rate it knows.

A temporal lifter learns motion per *frame*: fed 5 fps video, its 27-frame window spans 5 s instead
of ~1 s, and at 120 fps a quarter of a second.  Each weights file records the frame rates it was
trained on (``metadata["fps"]["trained_range"]``); inputs outside that range are resampled linearly
in time by an integer factor to a trained rate, lifted there, and resampled back to the input's frames.
"""
from __future__ import annotations

import logging
import math

import numpy as np

log = logging.getLogger("streampose.lifter")

#: Below ``low / FAR`` or above ``high * FAR`` even resampling cannot recover the motion well: warn.
FAR = 2.0


def trained_range(metadata: dict) -> tuple[float, float] | None:
    """``(low, high)`` frames/s the weights were trained on, or ``None`` when the file does not say."""
    fps = metadata.get("fps") if isinstance(metadata, dict) else None
    if isinstance(fps, dict) and "trained_range" in fps:
        low, high = fps["trained_range"]
        return float(low), float(high)
    if isinstance(fps, (int, float)):
        return float(fps), float(fps)
    return None


def target_rate(fps: float | None, trained: tuple[float, float] | None) -> float | None:
    """The rate to lift ``fps`` input at, or ``None`` when it can be lifted as it is.

    Logs a warning when ``fps`` is far outside the trained range (see :data:`FAR`).
    """
    if fps is None or trained is None or not math.isfinite(fps) or fps <= 0:
        return None
    low, high = trained
    if fps < low / FAR or fps > high * FAR:
        log.warning("video at %.1f fps is far outside the lifter's trained %.0f-%.0f fps; 3D motion will "
                    "be less reliable", fps, low, high)
    if low <= fps <= high:
        return None
    # Integer factors: upsampling then inserts whole frames between real ones (what a live stream
    # does too, so offline and live agree) and downsampling keeps every m-th frame's time grid.
    if fps < low:
        return fps * math.ceil(low / fps - 1e-9)
    return fps / math.ceil(fps / high - 1e-9)


def resample(x: np.ndarray, times: np.ndarray, new_times: np.ndarray) -> np.ndarray:
    """Linear interpolation in time.

    Args:
        x: ``(T, ...)`` values at ``times`` ``(T,)`` (increasing seconds).
        new_times: ``(T',)`` seconds; outside ``times`` the end values are held.

    Returns:
        ``(T', ...)``.
    """
    x = np.asarray(x, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if len(times) == 1:
        return np.repeat(x, len(new_times), axis=0)
    position = np.interp(new_times, times, np.arange(len(times)))
    lower = np.clip(np.floor(position).astype(int), 0, len(times) - 2)
    frac = (position - lower).reshape((-1,) + (1,) * (x.ndim - 1))
    return (1.0 - frac) * x[lower] + frac * x[lower + 1]


def resampled_times(count: int, fps: float, new_fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Frame times of ``count`` frames at ``fps`` and of the same span at ``new_fps`` (seconds)."""
    times = np.arange(count) / fps
    new_count = max(1, int(round((count - 1) * new_fps / fps)) + 1)
    return times, np.arange(new_count) / new_fps


def upsampling_factor(fps: float | None, trained: tuple[float, float] | None) -> int:
    """Frames a live stream feeds the lifter per input frame (``1``: as is), for slow cameras.

    Live streams can only be upsampled (interpolating between the previous and the current frame
    costs no latency); faster-than-trained streams are lifted as they are.
    """
    rate = target_rate(fps, trained)
    if rate is None or fps is None or rate < fps:
        return 1
    return max(1, int(math.ceil(rate / fps - 1e-9)))
