"""The One-Euro filter (Casiez, Roussel & Vogel, CHI 2012), vectorised over joints and axes.

Per coordinate, with ``alpha(f, dt) = 1 / (1 + 1 / (2 pi f dt))``::

    dx      = (x - x_prev_raw) / dt                        # raw speed
    dx_hat += alpha(derivate_cutoff, dt) * (dx - dx_hat)   # smoothed speed
    cutoff  = min_cutoff + beta * |dx_hat| / scale         # faster motion -> less smoothing
    x_hat  += alpha(cutoff, dt) * (x - x_hat)

As in MediaPipe's ``OneEuroFilter`` (``mediapipe/util/filtering/one_euro_filter.cc``) the speed is
taken against the previous *raw* value and divided by the object size, so ``beta`` is in
``1 / (scale/s)`` and works at any resolution.  MediaPipe's pose graph
(``mediapipe/modules/pose_landmark/pose_landmark_filtering.pbtxt``) uses ``min_cutoff=0.05,
beta=80, derivate_cutoff=1`` for image landmarks (object scale = mean of the landmarks' bounding-box
width and height, roughly 0.7 x body height for a standing person) and ``min_cutoff=0.1, beta=40,
derivate_cutoff=1`` without value scaling for metric world landmarks.  Our defaults were chosen by
the sweep in ``benchmarks/smoothing.py`` (see the docstring of :class:`OneEuroParams`).

Additions of ours: the real ``dt`` is used per coordinate (irregular frame times, missing joints);
a measurement's blending factors are multiplied by its clipped confidence; a missing joint holds its
last value for ``max_gap`` seconds, then turns NaN.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from streampose.smoothing.base import check_frame, measurement_weights


@dataclass(frozen=True)
class OneEuroParams:
    """One-Euro settings.

    Defaults (``min_cutoff=1.5, beta=30, derivate_cutoff=1``) come from the sweep in
    ``benchmarks/smoothing.py`` on the CMU training clips: within 3 % of the lowest causal MPJPE
    and the smoothest of those.  MediaPipe's pose settings (0.05 / 80, see module doc) smooth much
    harder at rest; on our noise models they leave ~1.5-2x the MPJPE of these (table in
    ``benchmarks/results/smoothing.json``).

    Attributes:
        min_cutoff: cutoff frequency (Hz) at rest; lower = smoother at rest, more lag.
        beta: how fast the cutoff rises with speed, per ``scale / s``; higher = less lag in motion.
        derivate_cutoff: cutoff frequency (Hz) of the speed estimate.
        min_confidence: confidences are clipped to at least this before scaling the blend factors.
        max_gap: seconds a missing joint holds its last value before its output turns NaN.
    """

    min_cutoff: float = 1.5
    beta: float = 30.0
    derivate_cutoff: float = 1.0
    min_confidence: float = 0.05
    max_gap: float = 0.5

    @classmethod
    def with_overrides(cls, **params) -> "OneEuroParams":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise ValueError(f"unknown One-Euro parameter(s) {unknown}; known: {sorted(names)}")
        out = dataclasses.replace(cls(), **params)
        for name in ("min_cutoff", "derivate_cutoff", "min_confidence", "max_gap"):
            if not (np.isfinite(getattr(out, name)) and getattr(out, name) > 0):
                raise ValueError(f"One-Euro parameter {name} must be positive, got {getattr(out, name)}")
        if not (np.isfinite(out.beta) and out.beta >= 0):
            raise ValueError(f"One-Euro beta must be >= 0, got {out.beta}")
        return out


def _alpha(cutoff: np.ndarray | float, dt: np.ndarray) -> np.ndarray:
    """Exponential-smoothing factor of a first-order low-pass with ``cutoff`` Hz over ``dt`` s."""
    return 1.0 / (1.0 + 1.0 / (2.0 * np.pi * cutoff * dt))


class _OneEuroBank:
    """``N`` independent One-Euro filters with per-coordinate timing (missing samples skip)."""

    def __init__(self, n: int, params: OneEuroParams):
        self.params = params
        self.x_hat = np.zeros(n)
        self.dx_hat = np.zeros(n)
        self.last_raw = np.zeros(n)
        self.last_t = np.full(n, -np.inf)
        self.alive = np.zeros(n, dtype=bool)

    def step(self, t: float, z: np.ndarray, weight: np.ndarray, scale: float) -> np.ndarray:
        """Fuse ``z (N,)`` at time ``t`` with weights ``weight (N,)`` (0 = missing); returns the
        ``(N,)`` output, NaN where a coordinate has no track."""
        p = self.params
        observed = weight > 0
        update = observed & self.alive
        start = observed & ~self.alive
        z = np.where(observed, z, self.x_hat)
        # Coordinates not updated get dt = 1 so nothing divides by zero; their results are discarded.
        dt = np.where(update, t - self.last_t, 1.0)
        speed = (z - self.last_raw) / dt
        dx_hat = self.dx_hat + weight * _alpha(p.derivate_cutoff, dt) * (speed - self.dx_hat)
        cutoff = p.min_cutoff + p.beta * np.abs(dx_hat) / scale
        x_hat = self.x_hat + weight * _alpha(cutoff, dt) * (z - self.x_hat)

        self.x_hat = np.where(update, x_hat, np.where(start, z, self.x_hat))
        self.dx_hat = np.where(update, dx_hat, np.where(start, 0.0, self.dx_hat))
        self.last_raw = np.where(observed, z, self.last_raw)
        self.last_t = np.where(observed, t, self.last_t)
        self.alive = (self.alive | start) & (t - self.last_t <= p.max_gap)
        return np.where(self.alive, self.x_hat, np.nan)


class OneEuroSmoother:
    """Causal One-Euro filter over all joints (``make_smoother("oneeuro")``)."""

    kind = "oneeuro"
    causal = True
    lag = 0

    def __init__(self, params: OneEuroParams | None = None):
        self.params = params or OneEuroParams()
        self.reset()

    def reset(self) -> None:
        self._bank: _OneEuroBank | None = None
        self._shape: tuple[int, ...] | None = None
        self._last_t: float | None = None

    def push(self, t: float, x: np.ndarray, confidence: np.ndarray | None = None,
             scale: float = 1.0) -> np.ndarray:
        """Filter one frame: ``x (J, D)``, ``confidence (J,)`` -> ``(J, D)`` (see ``Smoother``)."""
        t, x, confidence, scale = check_frame(t, x, confidence, scale, self._last_t, self._shape)
        if self._bank is None:
            self._bank = _OneEuroBank(x.size, self.params)
            self._shape = x.shape
        self._last_t = t
        weight = measurement_weights(x, confidence, self.params.min_confidence)
        out = self._bank.step(t, x.reshape(-1).astype(np.float64), weight.reshape(-1), scale)
        return out.reshape(self._shape).astype(x.dtype)

    def flush(self) -> list[np.ndarray]:
        return []


def _one_euro_pass(times: np.ndarray, flat: np.ndarray, weights: np.ndarray, scale: np.ndarray,
                   params: OneEuroParams) -> np.ndarray:
    bank = _OneEuroBank(flat.shape[1], params)
    out = np.empty_like(flat)
    for k in range(len(times)):
        out[k] = bank.step(float(times[k]), flat[k], weights[k], float(scale[k]))
    return out


def one_euro_sequence(times: np.ndarray, x: np.ndarray, confidence: np.ndarray | None,
                      scale: np.ndarray, params: OneEuroParams, forward_backward: bool) -> np.ndarray:
    """One-Euro over a whole (validated) track.

    With ``forward_backward`` the track is also filtered in reverse time and the two passes are
    averaged: each lags in its own direction, so the average has (to first order) no lag.  Frames
    are NaN where the forward pass has no track (before a joint is first seen, after long gaps), so
    offline output never invents joints the causal filter would not have.

    Args:
        times: ``(T,)``; x: ``(T, J, D)``; confidence: ``(T, J)`` or ``None``; scale: ``(T,)``.

    Returns:
        ``(T, J, D)`` float64.
    """
    count, shape = x.shape[0], x.shape[1:]
    weights = measurement_weights(x, confidence, params.min_confidence).reshape(count, -1)
    flat = x.reshape(count, -1).astype(np.float64)
    forward = _one_euro_pass(times, flat, weights, scale, params)
    if not forward_backward:
        return forward.reshape((count,) + shape)
    backward = _one_euro_pass(-times[::-1], flat[::-1], weights[::-1], scale[::-1], params)[::-1]
    both = np.where(np.isnan(backward), forward, 0.5 * (forward + backward))
    return both.reshape((count,) + shape)
