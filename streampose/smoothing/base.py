"""The smoothing stage's public interface: the ``Smoother`` protocol, ``make_smoother`` and
``smooth_sequence``.

Two ways to smooth a pose track:

* **live** -- ``make_smoother(kind, fps, causal=True)`` returns a :class:`Smoother`; call
  ``push(t, x, confidence, scale)`` once per frame.  Causal smoothers (``lag == 0``) return the
  estimate for the frame just pushed and never look at the future.  ``causal=False`` gives a
  *fixed-lag* smoother (Kalman only): each ``push`` returns the smoothed estimate for the frame pushed
  ``lag`` frames earlier (``None`` while the first ``lag`` frames fill the window) and ``flush()``
  returns the last ``lag`` frames at the end of the stream.
* **offline** -- ``smooth_sequence(kind, times, x, confidence, scale, causal=False)`` smooths a whole
  track at once.  Offline Kalman is a forward filter followed by a Rauch-Tung-Striebel backward pass;
  offline One-Euro averages a forward and a time-reversed pass (their phase lags cancel to first
  order).  ``causal=True`` gives exactly what the live smoother would have produced.

Conventions shared by every smoother:

* ``x`` is ``(J, D)`` (one frame) or ``(T, J, D)`` (a track): pixels for 2D keypoints, metres for 3D.
  Do not pass a confidence column inside ``x``; give it as ``confidence``.
* A joint that is missing in a frame is a row of NaN.  Smoothers then *predict only*: Kalman
  extrapolates with its velocity, One-Euro holds its last value; after ``max_gap`` seconds without a
  measurement the joint's output becomes NaN and its track restarts at the next measurement.  A joint
  never seen yet is NaN.
* ``confidence`` ``(J,)`` in ``[0, 1]`` (or NaN = missing) weights each measurement: Kalman divides
  the measurement variance by ``max(confidence, min_confidence)``; One-Euro scales its blending factor
  by the same clipped confidence.
* ``scale`` is the person's size in the units of ``x`` (bounding-box height in pixels for 2D; about
  1.7 for metric 3D).  Every noise level, velocity and gate is expressed relative to it, so one
  setting works at any image resolution and for 2D and 3D alike.
* ``t`` is in seconds and must increase; frame intervals may be irregular (variable frame rate,
  dropped frames) -- every filter uses the real ``dt``.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from streampose.errors import InputError

KINDS = ("kalman", "oneeuro", "none")


@runtime_checkable
class Smoother(Protocol):
    """A stateful per-track smoother.  One instance per tracked person.

    Attributes:
        kind: ``"kalman"``, ``"oneeuro"`` or ``"none"``.
        causal: ``True`` when outputs depend only on past and present frames.
        lag: frames between a ``push`` and the output that belongs to it (0 when causal).
    """

    kind: str
    causal: bool
    lag: int

    def push(self, t: float, x: np.ndarray, confidence: np.ndarray | None = None,
             scale: float = 1.0) -> np.ndarray | None:
        """Add one frame.

        Args:
            t: frame time in seconds, larger than the previous one.
            x: ``(J, D)`` joint coordinates; NaN rows are missing joints.
            confidence: ``(J,)`` per-joint confidence in ``[0, 1]`` or ``None`` (all 1).
            scale: person size in the units of ``x``.

        Returns:
            ``(J, D)`` smoothed coordinates for frame ``n - lag`` (``n`` = frames pushed so far, from
            0), same float dtype as ``x``; ``None`` only while a fixed-lag smoother fills its window.
        """
        ...

    def flush(self) -> list[np.ndarray]:
        """End of stream: the ``(J, D)`` outputs still owed (``lag`` of them, oldest first)."""
        ...

    def reset(self) -> None:
        """Forget all state; the next ``push`` starts a new track."""
        ...


class PassThrough:
    """The ``"none"`` smoother: returns its input (a copy), for A/B comparisons and for users who
    want raw model output."""

    kind = "none"
    lag = 0

    def __init__(self, fps: float | None = None, causal: bool = True):
        self.causal = causal
        self._last_t: float | None = None

    def push(self, t: float, x: np.ndarray, confidence: np.ndarray | None = None,
             scale: float = 1.0) -> np.ndarray:
        t, x, _, _ = check_frame(t, x, confidence, scale, self._last_t)
        self._last_t = t
        return x.copy()

    def flush(self) -> list[np.ndarray]:
        return []

    def reset(self) -> None:
        self._last_t = None


def make_smoother(kind: str = "kalman", fps: float | None = None, causal: bool = True,
                  **params) -> Smoother:
    """Create a live smoother for one person track.

    Args:
        kind: ``"kalman"`` (constant-velocity Kalman filter), ``"oneeuro"`` (One-Euro filter) or
            ``"none"`` (pass-through).
        fps: nominal frame rate; only used to turn time-based settings (``lag_seconds``) into frames.
            ``None`` (live streams) assumes 30.
        causal: ``True`` for a zero-lag filter; ``False`` for a fixed-lag Kalman smoother (see
            :class:`streampose.smoothing.kalman.FixedLagKalmanSmoother`).
        **params: overrides of the smoother's defaults (see ``KalmanParams`` / ``OneEuroParams``).

    Raises:
        ValueError: unknown kind or parameter, or a fixed-lag One-Euro (it has none; use
            ``smooth_sequence(..., causal=False)`` offline).
    """
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if kind == "none":
        if params:
            raise ValueError(f"the 'none' smoother takes no parameters, got {sorted(params)}")
        return PassThrough(fps, causal)
    if kind == "kalman":
        from streampose.smoothing.kalman import FixedLagKalmanSmoother, KalmanParams, KalmanSmoother

        if causal:
            return KalmanSmoother(KalmanParams.with_overrides(**params))
        lag_seconds = params.pop("lag_seconds", None)
        lag_frames = params.pop("lag_frames", None)
        return FixedLagKalmanSmoother(KalmanParams.with_overrides(**params),
                                      lag=_lag_frames(fps, lag_seconds, lag_frames))
    if kind == "oneeuro":
        from streampose.smoothing.one_euro import OneEuroParams, OneEuroSmoother

        if not causal:
            raise ValueError("the One-Euro filter has no fixed-lag form; use kind='kalman' for a "
                             "fixed-lag live smoother, or smooth_sequence(..., causal=False) offline")
        return OneEuroSmoother(OneEuroParams.with_overrides(**params))
    raise ValueError(f"unknown smoother kind {kind!r}; expected one of {', '.join(KINDS)}")


def smooth_sequence(kind: str, times: np.ndarray, x: np.ndarray, confidence: np.ndarray | None = None,
                    scale: float | np.ndarray = 1.0, causal: bool = False, **params) -> np.ndarray:
    """Smooth a whole track offline.

    Args:
        kind: ``"kalman"``, ``"oneeuro"`` or ``"none"``.
        times: ``(T,)`` strictly increasing frame times in seconds.
        x: ``(T, J, D)`` coordinates; NaN rows are missing joints.
        confidence: ``(T, J)`` confidences or ``None``.
        scale: person size, a float or ``(T,)`` per frame.
        causal: ``False`` (default) uses the future too: Kalman forward filter + RTS smoother,
            One-Euro forward/backward average.  ``True`` reproduces the live causal smoother exactly.
        **params: smoother parameters (see ``KalmanParams`` / ``OneEuroParams``).

    Returns:
        ``(T, J, D)`` smoothed coordinates, same float dtype as ``x``.
    """
    times, x, confidence, scale = check_sequence(times, x, confidence, scale)
    if kind == "none":
        if params:
            raise ValueError(f"the 'none' smoother takes no parameters, got {sorted(params)}")
        return x.copy()
    if kind == "kalman":
        from streampose.smoothing.kalman import KalmanParams, kalman_sequence

        out = kalman_sequence(times, x, confidence, scale, KalmanParams.with_overrides(**params),
                              smooth=not causal)
    elif kind == "oneeuro":
        from streampose.smoothing.one_euro import OneEuroParams, one_euro_sequence

        out = one_euro_sequence(times, x, confidence, scale, OneEuroParams.with_overrides(**params),
                                forward_backward=not causal)
    else:
        raise ValueError(f"unknown smoother kind {kind!r}; expected one of {', '.join(KINDS)}")
    return out.astype(x.dtype, copy=False)


def _lag_frames(fps: float | None, lag_seconds: float | None, lag_frames: int | None) -> int:
    if lag_frames is not None:
        if int(lag_frames) != lag_frames or lag_frames < 1:
            raise ValueError(f"lag_frames must be a positive integer, got {lag_frames!r}")
        return int(lag_frames)
    seconds = 0.1 if lag_seconds is None else float(lag_seconds)
    if not seconds > 0:
        raise ValueError(f"lag_seconds must be positive, got {lag_seconds!r}")
    return max(1, int(round(seconds * (fps or 30.0))))


# ---------------------------------------------------------------------------------------------
# Input checks shared by the smoothers.  Bad input is a user error (InputError, one line), not a
# traceback from deep inside numpy.


def _float_dtype(array: np.ndarray) -> np.dtype:
    return array.dtype if np.issubdtype(array.dtype, np.floating) else np.dtype(np.float64)


def check_frame(t: float, x: np.ndarray, confidence: np.ndarray | None, scale: float,
                last_t: float | None, expected_shape: tuple[int, ...] | None = None
                ) -> tuple[float, np.ndarray, np.ndarray | None, float]:
    """Validate one ``push``: returns ``(t, x (J, D), confidence (J,) or None, scale)``."""
    try:
        t = float(t)
        scale = float(scale)
    except (TypeError, ValueError):
        raise InputError(f"smoothing: time and scale must be numbers, got {t!r} and {scale!r}") from None
    if not np.isfinite(t):
        raise InputError(f"smoothing: frame time must be finite, got {t}")
    if last_t is not None and not t > last_t:
        raise InputError(f"smoothing: frame times must increase (got {t} after {last_t})")
    if not (np.isfinite(scale) and scale > 0):
        raise InputError(f"smoothing: scale (person size) must be positive, got {scale}")
    x = np.asarray(x)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
        raise InputError(f"smoothing: expected (J, D) numeric joints, got shape {x.shape} {x.dtype}")
    x = x.astype(_float_dtype(x), copy=False)
    if np.isinf(x).any():
        raise InputError("smoothing: joint coordinates contain inf (use NaN for missing joints)")
    if expected_shape is not None and x.shape != expected_shape:
        raise InputError(f"smoothing: frame shape {x.shape} differs from the track's {expected_shape}; "
                         "call reset() to start a new track")
    if confidence is not None:
        confidence = np.asarray(confidence, dtype=np.float64)
        if confidence.shape != x.shape[:1]:
            raise InputError(f"smoothing: confidence shape {confidence.shape} does not match "
                             f"{x.shape[0]} joints")
    return t, x, confidence, scale


def check_sequence(times: np.ndarray, x: np.ndarray, confidence: np.ndarray | None,
                   scale: float | np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Validate a track: returns ``times (T,), x (T, J, D), confidence (T, J) or None, scale (T,)``."""
    x = np.asarray(x)
    if x.ndim != 3 or not np.issubdtype(x.dtype, np.number):
        raise InputError(f"smoothing: expected (T, J, D) numeric joints, got shape {x.shape}")
    x = x.astype(_float_dtype(x), copy=False)
    if np.isinf(x).any():
        raise InputError("smoothing: joint coordinates contain inf (use NaN for missing joints)")
    times = np.asarray(times, dtype=np.float64)
    if times.shape != x.shape[:1]:
        raise InputError(f"smoothing: times shape {times.shape} does not match {x.shape[0]} frames")
    if not np.isfinite(times).all() or (np.diff(times) <= 0).any():
        raise InputError("smoothing: frame times must be finite and strictly increasing")
    if confidence is not None:
        confidence = np.asarray(confidence, dtype=np.float64)
        if confidence.shape != x.shape[:2]:
            raise InputError(f"smoothing: confidence shape {confidence.shape} does not match "
                             f"{x.shape[:2]}")
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), times.shape) \
        if np.ndim(scale) == 0 else np.asarray(scale, dtype=np.float64)
    if scale.shape != times.shape or not (np.isfinite(scale).all() and (scale > 0).all()):
        raise InputError("smoothing: scale (person size) must be positive, a number or one per frame")
    return times, x, confidence, scale


def measurement_weights(x: np.ndarray, confidence: np.ndarray | None,
                        min_confidence: float) -> np.ndarray:
    """Per-coordinate measurement weight in ``(0, 1]``, or 0 for a missing coordinate.

    Args:
        x: ``(..., J, D)`` coordinates (NaN = missing).
        confidence: ``(..., J)`` or ``None``.

    Returns:
        ``(..., J, D)`` float64 weights ``max(confidence, min_confidence)`` clipped to 1; 0 where the
        coordinate or its confidence is NaN.
    """
    if confidence is None:
        weight = np.ones(x.shape, dtype=np.float64)
    else:
        conf = np.clip(np.nan_to_num(confidence, nan=0.0), min_confidence, 1.0)
        conf = np.where(np.isnan(confidence), 0.0, conf)
        weight = np.broadcast_to(conf[..., None], x.shape).astype(np.float64)
    return np.where(np.isnan(x), 0.0, weight)
