"""Constant-velocity Kalman filter, fixed-lag smoother and Rauch-Tung-Striebel smoother for joints.

Model, per coordinate (every joint, every axis, independently)::

    state  s = [position, velocity]
    s_k = F(dt) s_{k-1} + w,   F = [[1, dt], [0, 1]],   w ~ N(0, Q(dt))
    z_k = position + v,        v ~ N(0, R)

``Q`` is the continuous white-noise-acceleration model, ``Q = q [[dt^3/3, dt^2/2], [dt^2/2, dt]]``,
so the filter is correct for any (irregular) frame interval and the same ``q`` means the same motion
prior at 30 and 60 fps.  ``q = (process_noise * scale)^2`` and
``R = (measurement_noise * scale)^2 / max(confidence, min_confidence)``: both are relative to the
person's size, and a low-confidence joint is trusted less.

All coordinates share ``F`` and ``Q``, and the state covariance of each coordinate is a 2x2 matrix,
so instead of one ``filterpy.kalman.KalmanFilter`` per coordinate (``J*D`` Python objects, ~50 us
each per frame) the filter runs the same equations batched over all coordinates with the 2x2
algebra written out (~20x faster; see ``benchmarks/smoothing.py``).  ``tests/kalman_reference.py``
runs filterpy's ``KalmanFilter`` + ``rts_smoother`` with the identical model; the tests check that
both agree to 1e-9.
"""
from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass

import numpy as np

from streampose.smoothing.base import check_frame, measurement_weights


@dataclass(frozen=True)
class KalmanParams:
    """Kalman smoother settings, all relative to the person size ``scale``.

    Defaults come from the sweep in ``benchmarks/smoothing.py`` on the CMU training clips (2D with
    Gaussian and ``Noise2D`` detector noise, 3D with 1-4 cm Gaussian noise, 30 and 60 fps): the
    filter's mean depends only on ``process_noise / measurement_noise``; 0.5 / 0.01 was within 3 %
    of the lowest causal MPJPE (at 0.7 / 0.01) and the smoothest of those.

    Attributes:
        measurement_noise: standard deviation of one measurement, as a fraction of ``scale``.
        process_noise: square root of the white-noise acceleration spectral density, in
            ``scale / s^1.5``; larger follows fast motion with less lag but smooths less.
        initial_velocity: prior standard deviation of a new track's velocity, ``scale / s``.
        min_confidence: confidences are clipped to at least this before dividing ``R`` by them.
        max_gap: seconds a joint may go unmeasured (predict-only) before its output turns NaN and
            its track restarts at the next measurement.
        gate: if set, innovations larger than ``gate`` standard deviations are treated as outliers:
            their measurement variance is inflated so that they count as exactly ``gate`` sigma.
    """

    measurement_noise: float = 0.01
    process_noise: float = 0.5
    initial_velocity: float = 1.0
    min_confidence: float = 0.05
    max_gap: float = 0.5
    gate: float | None = None

    @classmethod
    def with_overrides(cls, **params) -> "KalmanParams":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise ValueError(f"unknown Kalman parameter(s) {unknown}; known: {sorted(names)}")
        out = dataclasses.replace(cls(), **params)
        for name in ("measurement_noise", "process_noise", "initial_velocity", "min_confidence",
                     "max_gap"):
            if not (np.isfinite(getattr(out, name)) and getattr(out, name) > 0):
                raise ValueError(f"Kalman parameter {name} must be positive, got {getattr(out, name)}")
        if out.gate is not None and not out.gate > 0:
            raise ValueError(f"Kalman gate must be positive or None, got {out.gate}")
        return out


@dataclass
class _Step:
    """What one filter step leaves behind for a backward (RTS) pass; arrays are ``(N,)``.

    ``pred_*`` is the prediction for this frame from the previous one, ``filt_*`` the estimate after
    this frame's measurement, ``p00, p01, p11`` the entries of the symmetric 2x2 covariance.
    ``link`` marks coordinates whose state at this frame continues the previous frame's (not a new or
    restarted track); ``alive`` marks coordinates with an estimate at this frame.
    """

    dt: float
    pred: tuple[np.ndarray, ...]
    filt: tuple[np.ndarray, ...]
    link: np.ndarray
    alive: np.ndarray


class _ConstantVelocityBank:
    """``N`` independent constant-velocity Kalman filters that step together (shared time)."""

    def __init__(self, n: int, params: KalmanParams):
        self.params = params
        self.n = n
        self.pos = np.zeros(n)
        self.vel = np.zeros(n)
        self.p00 = np.zeros(n)
        self.p01 = np.zeros(n)
        self.p11 = np.zeros(n)
        self.alive = np.zeros(n, dtype=bool)
        self.last_obs_t = np.full(n, -np.inf)
        self.t_prev: float | None = None

    def step(self, t: float, z: np.ndarray, weight: np.ndarray, scale: float) -> _Step:
        """Advance to time ``t`` and fuse measurements ``z (N,)`` with weights ``weight (N,)``
        (0 = missing)."""
        p = self.params
        dt = 0.0 if self.t_prev is None else t - self.t_prev
        q = (p.process_noise * scale) ** 2
        observed = weight > 0
        was_alive = self.alive

        # Predict (harmless on dead coordinates: their values are never read).
        pos = self.pos + dt * self.vel
        vel = self.vel
        p00 = self.p00 + dt * (2.0 * self.p01 + dt * self.p11) + q * dt ** 3 / 3.0
        p01 = self.p01 + dt * self.p11 + q * dt ** 2 / 2.0
        p11 = self.p11 + q * dt
        pred = (pos, vel, p00, p01, p11)

        r = (p.measurement_noise * scale) ** 2 / np.where(observed, weight, 1.0)
        z = np.where(observed, z, pos)
        update = observed & was_alive
        innovation = z - pos
        s = p00 + r
        if p.gate is not None:
            # Inflate R for outliers so their normalised innovation is exactly `gate`: a glitch
            # still nudges the estimate, but by a bounded amount.
            s = np.maximum(s, innovation ** 2 / p.gate ** 2)
        k0 = np.where(update, p00 / s, 0.0)
        k1 = np.where(update, p01 / s, 0.0)
        new_pos = pos + k0 * innovation
        new_vel = vel + k1 * innovation
        new_p00 = (1.0 - k0) * p00
        new_p01 = (1.0 - k0) * p01
        new_p11 = p11 - k1 * p01

        # Start (or restart) tracks at their first measurement: position = measurement, velocity 0
        # with a broad prior.
        start = observed & ~was_alive
        if start.any():
            new_pos = np.where(start, z, new_pos)
            new_vel = np.where(start, 0.0, new_vel)
            new_p00 = np.where(start, r, new_p00)
            new_p01 = np.where(start, 0.0, new_p01)
            new_p11 = np.where(start, (p.initial_velocity * scale) ** 2, new_p11)

        self.last_obs_t = np.where(observed, t, self.last_obs_t)
        alive = (was_alive | start) & (t - self.last_obs_t <= p.max_gap)
        self.pos, self.vel, self.p00, self.p01, self.p11 = new_pos, new_vel, new_p00, new_p01, new_p11
        self.alive = alive
        self.t_prev = t
        return _Step(dt=dt, pred=pred, filt=(new_pos, new_vel, new_p00, new_p01, new_p11),
                     link=was_alive & alive & ~start, alive=alive)

    def output(self) -> np.ndarray:
        """``(N,)`` current position estimates, NaN for coordinates without a track."""
        return np.where(self.alive, self.pos, np.nan)


def _rts_positions(steps: list[_Step] | tuple[_Step, ...]) -> np.ndarray:
    """Rauch-Tung-Striebel backward pass over consecutive filter steps.

    Only the smoothed means are needed, and the mean recursion does not depend on the smoothed
    covariances, so those are not computed.

    Returns:
        ``(K, N)`` smoothed positions for the ``K`` steps (NaN where a coordinate has no track).
    """
    count = len(steps)
    out = np.empty((count, steps[-1].filt[0].shape[0]))
    s_pos, s_vel = steps[-1].filt[0], steps[-1].filt[1]
    out[-1] = s_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(count - 2, -1, -1):
            nxt = steps[k + 1]
            d = nxt.dt
            f_pos, f_vel, a, b, c = steps[k].filt
            p_pos, p_vel, e, f, g = nxt.pred
            # C = P_filt[k] F^T P_pred[k+1]^-1 with P_filt = [[a, b], [b, c]], P_pred = [[e, f], [f, g]].
            m00, m01, m10, m11 = a + b * d, b, b + c * d, c
            det = e * g - f * f
            c00 = (m00 * g - m01 * f) / det
            c01 = (m01 * e - m00 * f) / det
            c10 = (m10 * g - m11 * f) / det
            c11 = (m11 * e - m10 * f) / det
            d_pos, d_vel = s_pos - p_pos, s_vel - p_vel
            s_pos = np.where(nxt.link, f_pos + c00 * d_pos + c01 * d_vel, f_pos)
            s_vel = np.where(nxt.link, f_vel + c10 * d_pos + c11 * d_vel, f_vel)
            out[k] = s_pos
    alive = np.stack([step.alive for step in steps])
    return np.where(alive, out, np.nan)


class KalmanSmoother:
    """Causal per-joint constant-velocity Kalman filter (``make_smoother("kalman", causal=True)``).

    ``push`` costs about 30-60 us for 17 joints x 3 on one CPU core (batched numpy, see module doc).
    """

    kind = "kalman"
    causal = True
    lag = 0

    def __init__(self, params: KalmanParams | None = None):
        self.params = params or KalmanParams()
        self.reset()

    def reset(self) -> None:
        self._bank: _ConstantVelocityBank | None = None
        self._shape: tuple[int, ...] | None = None

    def _step(self, t, x, confidence, scale) -> tuple[_Step, np.dtype]:
        last_t = None if self._bank is None else self._bank.t_prev
        t, x, confidence, scale = check_frame(t, x, confidence, scale, last_t, self._shape)
        if self._bank is None:
            self._bank = _ConstantVelocityBank(x.size, self.params)
            self._shape = x.shape
        weight = measurement_weights(x, confidence, self.params.min_confidence)
        return self._bank.step(t, x.reshape(-1).astype(np.float64), weight.reshape(-1), scale), x.dtype

    def push(self, t: float, x: np.ndarray, confidence: np.ndarray | None = None,
             scale: float = 1.0) -> np.ndarray:
        """Filter one frame: ``x (J, D)``, ``confidence (J,)`` -> ``(J, D)`` (see ``Smoother``)."""
        _, dtype = self._step(t, x, confidence, scale)
        return self._bank.output().reshape(self._shape).astype(dtype)

    def flush(self) -> list[np.ndarray]:
        return []


class FixedLagKalmanSmoother(KalmanSmoother):
    """Fixed-lag Kalman smoother: the RTS pass over a sliding window of ``lag + 1`` frames.

    Each ``push`` returns the estimate for the frame pushed ``lag`` frames earlier, using the
    ``lag`` frames after it; ``None`` for the first ``lag`` pushes.  ``flush()`` returns the
    remaining ``lag`` frames (smoothed with what is known at the end).  Cost per push grows with
    ``lag`` (about 10 us per frame of lag for 17 x 3).
    """

    causal = False

    def __init__(self, params: KalmanParams | None = None, lag: int = 3):
        if int(lag) != lag or lag < 1:
            raise ValueError(f"fixed-lag smoother needs lag >= 1 frames, got {lag!r}")
        self.lag = int(lag)
        super().__init__(params)

    def reset(self) -> None:
        super().reset()
        self._window: deque[_Step] = deque(maxlen=self.lag + 1)
        self._dtype: np.dtype = np.dtype(np.float64)

    def push(self, t: float, x: np.ndarray, confidence: np.ndarray | None = None,
             scale: float = 1.0) -> np.ndarray | None:
        """Add frame ``n``; return the smoothed ``(J, D)`` for frame ``n - lag`` or ``None``."""
        step, self._dtype = self._step(t, x, confidence, scale)
        self._window.append(step)
        if len(self._window) <= self.lag:
            return None
        return _rts_positions(tuple(self._window))[0].reshape(self._shape).astype(self._dtype)

    def flush(self) -> list[np.ndarray]:
        """The last ``lag`` frames (fewer if fewer were pushed), oldest first; then resets."""
        if not self._window:
            return []
        smoothed = _rts_positions(tuple(self._window))
        owed = smoothed[1:] if len(self._window) == self.lag + 1 else smoothed
        out = [row.reshape(self._shape).astype(self._dtype) for row in owed]
        self.reset()
        return out


def kalman_sequence(times: np.ndarray, x: np.ndarray, confidence: np.ndarray | None,
                    scale: np.ndarray, params: KalmanParams, smooth: bool) -> np.ndarray:
    """Kalman-filter a whole (validated) track, and RTS-smooth it when ``smooth``.

    Args:
        times: ``(T,)`` increasing seconds.
        x: ``(T, J, D)`` coordinates, NaN = missing.
        confidence: ``(T, J)`` or ``None``.
        scale: ``(T,)`` person size per frame.

    Returns:
        ``(T, J, D)`` float64 filtered (``smooth=False``) or smoothed positions.
    """
    count, shape = x.shape[0], x.shape[1:]
    weights = measurement_weights(x, confidence, params.min_confidence).reshape(count, -1)
    flat = x.reshape(count, -1).astype(np.float64)
    bank = _ConstantVelocityBank(flat.shape[1], params)
    steps = []
    filtered = np.empty_like(flat)
    for k in range(count):
        steps.append(bank.step(float(times[k]), flat[k], weights[k], float(scale[k])))
        filtered[k] = bank.output()
    out = _rts_positions(steps) if smooth and count > 1 else filtered
    return out.reshape((count,) + shape)
