"""Tests of the smoothing stage: Kalman (causal, fixed-lag, RTS) and One-Euro.

All inputs are synthetic: smooth sinusoidal joint trajectories plus Gaussian noise.
"""
from __future__ import annotations

import numpy as np
import pytest

from streampose.errors import InputError
from streampose.smoothing import (FixedLagKalmanSmoother, KalmanParams, Smoother, make_smoother,
                                  smooth_sequence)
from kalman_reference import filterpy_reference

J, D = 17, 3
SCALE = 1.7  # metric 3D: person size in metres


def sinusoid_track(frames: int, fps: float = 30.0, seed: int = 0, times: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Clean ``(T, J, D)`` trajectories: per coordinate, two sinusoids of 0.2-0.8 Hz, 5-15 cm each."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps if times is None else times
    freq = rng.uniform(0.2, 0.8, (2, J, D))
    amp = rng.uniform(0.05, 0.15, (2, J, D))
    phase = rng.uniform(0, 2 * np.pi, (2, J, D))
    clean = (amp[None] * np.sin(2 * np.pi * freq[None] * t[:, None, None, None] + phase[None])).sum(1)
    return t, clean


def noisy_track(frames=240, fps=30.0, sigma=0.02, seed=0):
    t, clean = sinusoid_track(frames, fps, seed)
    noisy = clean + np.random.default_rng(seed + 100).normal(0, sigma, clean.shape)
    return t, clean, noisy


def jitter(x: np.ndarray) -> float:
    """Mean per-joint norm of the second difference of a ``(T, J, D)`` track."""
    return float(np.nanmean(np.linalg.norm(np.diff(x, 2, axis=0), axis=-1)))


def mpjpe(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.nanmean(np.linalg.norm(a - b, axis=-1)))


def lag_frames(smoothed: np.ndarray, clean: np.ndarray, max_lag: int = 15) -> int:
    """Frame shift maximising the cross-correlation of smoothed and clean velocities (>0 = late)."""
    vs = np.diff(smoothed, axis=0).reshape(len(smoothed) - 1, -1)
    vc = np.diff(clean, axis=0).reshape(len(clean) - 1, -1)
    n = len(vs)
    scores = [np.sum(vs[k + max_lag: n - max_lag + k] * vc[max_lag: n - max_lag])
              for k in range(-max_lag, max_lag + 1)]
    return int(np.argmax(scores)) - max_lag


def run_live(smoother: Smoother, t, x, conf=None, scale=SCALE) -> np.ndarray:
    outs = []
    for k in range(len(t)):
        out = smoother.push(t[k], x[k], None if conf is None else conf[k], scale)
        if out is not None:
            outs.append(out)
    outs.extend(smoother.flush())
    return np.stack(outs)


# (kind, causal, minimum jitter reduction factor, maximum lag in frames) at 30 fps, noise 2 cm,
# default parameters.  Measured (seeds 0-2): Kalman causal 2.3x / lag 0, RTS 19-21x / 0, One-Euro
# causal 2.2x / 1, One-Euro forward-backward 2.3x / 0.
CASES = [("kalman", True, 2.0, 1), ("kalman", False, 10.0, 0), ("oneeuro", True, 1.9, 2),
         ("oneeuro", False, 2.0, 1)]


@pytest.mark.parametrize("kind,causal,min_factor,max_lag", CASES)
def test_reduces_jitter_with_bounded_lag(kind, causal, min_factor, max_lag):
    t, clean, noisy = noisy_track()
    out = smooth_sequence(kind, t, noisy, None, SCALE, causal=causal)
    assert out.shape == noisy.shape and np.isfinite(out).all()
    factor = jitter(noisy) / jitter(out)
    assert factor >= min_factor, f"{kind} causal={causal}: jitter only reduced {factor:.2f}x"
    assert 0 <= lag_frames(out, clean) <= max_lag
    assert mpjpe(out, clean) < mpjpe(noisy, clean)


def test_lag_measure_detects_a_shift():
    # The lag helper must be able to fail: a track delayed by 4 frames measures 4.
    t, clean = sinusoid_track(240)
    delayed = np.concatenate([np.repeat(clean[:1], 4, 0), clean[:-4]])
    assert lag_frames(delayed, clean) == 4


def test_none_is_identity():
    t, clean, noisy = noisy_track(30)
    np.testing.assert_array_equal(smooth_sequence("none", t, noisy), noisy)
    live = run_live(make_smoother("none", 30), t, noisy)
    np.testing.assert_array_equal(live, noisy)


@pytest.mark.parametrize("kind", ["kalman", "oneeuro"])
def test_causal_never_uses_the_future(kind):
    t, clean, noisy = noisy_track(60)
    changed = noisy.copy()
    changed[40:] += 0.5  # a big change from frame 40 on
    for a, b in [(run_live(make_smoother(kind, 30), t, noisy),
                  run_live(make_smoother(kind, 30), t, changed)),
                 (smooth_sequence(kind, t, noisy, causal=True),
                  smooth_sequence(kind, t, changed, causal=True))]:
        np.testing.assert_array_equal(a[:40], b[:40])
        assert np.abs(a[40:] - b[40:]).max() > 0.05
    # Offline smoothing does look ahead, so the same change reaches back before frame 40.
    offline_a = smooth_sequence(kind, t, noisy)
    offline_b = smooth_sequence(kind, t, changed)
    assert np.abs(offline_a[35:40] - offline_b[35:40]).max() > 1e-3


@pytest.mark.parametrize("kind", ["kalman", "oneeuro"])
def test_live_equals_sequence_causal(kind):
    t, clean, noisy = noisy_track(50)
    conf = np.random.default_rng(3).uniform(0.2, 1.0, (50, J))
    live = run_live(make_smoother(kind, 30), t, noisy, conf)
    np.testing.assert_allclose(live, smooth_sequence(kind, t, noisy, conf, SCALE, causal=True))


@pytest.mark.parametrize("kind", ["kalman", "oneeuro"])
def test_irregular_frame_times(kind):
    # Variable frame rate: intervals between 0.5x and 1.5x of 1/30 s, and two dropped stretches.
    rng = np.random.default_rng(5)
    dt = rng.uniform(0.5, 1.5, 300) / 30.0
    dt[100] = 0.3
    dt[200] = 0.2
    times = np.cumsum(dt)
    _, clean = sinusoid_track(300, times=times)
    noisy = clean + rng.normal(0, 0.02, clean.shape)
    out = smooth_sequence(kind, times, noisy, None, SCALE, causal=True)
    # The same data with the times ignored (uniform 30 fps) must do worse: the filter uses dt.
    uniform = smooth_sequence(kind, np.arange(300) / 30.0, noisy, None, SCALE, causal=True)
    assert mpjpe(out, clean) < 0.85 * mpjpe(noisy, clean)
    assert mpjpe(out, clean) < mpjpe(uniform, clean)


def test_kalman_follows_a_ramp_at_irregular_times():
    # Constant velocity, irregular sampling, no noise: the constant-velocity model converges to the
    # exact line when it uses the true dt, and cannot when it assumes a fixed frame rate.
    rng = np.random.default_rng(2)
    times = np.cumsum(rng.uniform(0.5, 2.0, 120) / 30.0)
    x = (0.8 * times)[:, None, None]
    exact = smooth_sequence("kalman", times, x, None, SCALE, causal=True)
    assumed = smooth_sequence("kalman", np.arange(120) / 30.0, x, None, SCALE, causal=True)
    assert np.abs(exact - x)[60:].max() < 1e-3
    assert np.abs(assumed - x)[60:].max() > 1e-2


@pytest.mark.parametrize("kind", ["kalman", "oneeuro"])
def test_missing_joints_predict_then_expire(kind):
    t = np.arange(60) / 30.0
    x = np.zeros((60, 2, 2))
    x[:, 0, 0] = 0.5 * t  # joint 0 moves at constant speed along x
    x[:, 1] = 0.3  # joint 1 stands still
    x[20:25, 0] = np.nan  # joint 0 missing for 5 frames (0.17 s): predicted
    x[40:, 1] = np.nan  # joint 1 vanishes for 0.67 s > max_gap 0.5 s: expires
    out = run_live(make_smoother(kind, 30), t, x, scale=1.0)
    assert np.isfinite(out[20:25, 0]).all()
    if kind == "kalman":  # constant-velocity prediction keeps following the straight line
        np.testing.assert_allclose(out[20:25, 0, 0], x[19, 0, 0] + 0.5 * (t[20:25] - t[19]), atol=0.01)
    else:  # One-Euro holds its last value
        np.testing.assert_allclose(out[20:25, 0], out[19:20, 0].repeat(5, 0))
    np.testing.assert_allclose(out[40:55, 1], 0.3, atol=1e-6)  # held within max_gap (0.5 s)
    assert np.isnan(out[56:, 1]).all()  # gone after max_gap
    # A joint that was never seen is NaN, and a track restarts at its first measurement.
    y = np.full((10, 1, 2), np.nan)
    y[5:] = 1.0
    out = run_live(make_smoother(kind, 30), t[:10], y, scale=1.0)
    assert np.isnan(out[:5]).all()
    np.testing.assert_allclose(out[5:], 1.0)


def test_offline_kalman_interpolates_gaps():
    t, clean, noisy = noisy_track(120)
    gappy = noisy.copy()
    gappy[50:56, 13] = np.nan  # a wrist missing for 6 frames
    out = smooth_sequence("kalman", t, gappy, None, SCALE)
    assert np.isfinite(out).all()
    causal = smooth_sequence("kalman", t, gappy, None, SCALE, causal=True)
    assert mpjpe(out[50:56, 13:14], clean[50:56, 13:14]) < mpjpe(causal[50:56, 13:14],
                                                                  clean[50:56, 13:14])


@pytest.mark.parametrize("kind", ["kalman", "oneeuro"])
def test_low_confidence_outlier_moves_output_less(kind):
    t, clean, noisy = noisy_track(60)
    conf = np.ones((60, J))
    outlier = noisy.copy()
    outlier[40, 5] += 0.3  # a 30 cm glitch on one joint
    base = run_live(make_smoother(kind, 30), t, noisy, conf)
    moved = {}
    for c in (1.0, 0.1):
        conf_c = conf.copy()
        conf_c[40, 5] = c
        out = run_live(make_smoother(kind, 30), t, outlier, conf_c)
        moved[c] = np.linalg.norm(out[40, 5] - base[40, 5])
    assert moved[0.1] < 0.5 * moved[1.0]
    assert moved[1.0] > 0.01


def test_kalman_gate_limits_outliers():
    t, clean, noisy = noisy_track(60)
    outlier = noisy.copy()
    outlier[40, 5] += 0.5
    plain = smooth_sequence("kalman", t, outlier, None, SCALE, causal=True)
    gated = smooth_sequence("kalman", t, outlier, None, SCALE, causal=True, gate=3.0)
    assert np.linalg.norm(gated[40, 5] - clean[40, 5]) < 0.5 * np.linalg.norm(plain[40, 5] - clean[40, 5])


def test_offline_rts_beats_causal():
    for seed in range(3):
        t, clean, noisy = noisy_track(seed=seed)
        causal = smooth_sequence("kalman", t, noisy, None, SCALE, causal=True)
        offline = smooth_sequence("kalman", t, noisy, None, SCALE)
        assert mpjpe(offline, clean) < 0.85 * mpjpe(causal, clean)
        oe_causal = smooth_sequence("oneeuro", t, noisy, None, SCALE, causal=True)
        oe_offline = smooth_sequence("oneeuro", t, noisy, None, SCALE)
        assert mpjpe(oe_offline, clean) < mpjpe(oe_causal, clean)


def test_fixed_lag_sits_between_causal_and_rts():
    t, clean, noisy = noisy_track(240)
    smoother = make_smoother("kalman", fps=30, causal=False, lag_frames=6)
    assert isinstance(smoother, FixedLagKalmanSmoother) and smoother.lag == 6
    outs = [smoother.push(t[k], noisy[k], None, SCALE) for k in range(240)]
    assert all(o is None for o in outs[:6]) and all(o is not None for o in outs[6:])
    fixed = np.stack(outs[6:] + smoother.flush())
    assert fixed.shape == noisy.shape
    causal = smooth_sequence("kalman", t, noisy, None, SCALE, causal=True)
    offline = smooth_sequence("kalman", t, noisy, None, SCALE)
    assert mpjpe(offline, clean) <= mpjpe(fixed, clean) < mpjpe(causal, clean)
    # With the window covering the whole sequence, fixed-lag output for frame 0 is exactly RTS.
    whole = make_smoother("kalman", fps=30, causal=False, lag_frames=9)
    first = [whole.push(t[k], noisy[k], None, SCALE) for k in range(10)][-1]
    np.testing.assert_allclose(first, smooth_sequence("kalman", t[:10], noisy[:10], None, SCALE)[0])


@pytest.mark.parametrize("smooth", [False, True])
def test_batched_kalman_matches_filterpy(smooth):
    rng = np.random.default_rng(7)
    times = np.cumsum(rng.uniform(0.02, 0.05, 80))
    z = np.sin(3 * times) + rng.normal(0, 0.02, 80)
    conf = rng.uniform(0.01, 1.0, 80)
    params = KalmanParams()
    ours = smooth_sequence("kalman", times, z[:, None, None], conf[:, None], 2.0, causal=not smooth)
    ref = filterpy_reference(times, z, np.clip(conf, params.min_confidence, 1.0), 2.0, params, smooth)
    np.testing.assert_allclose(ours[:, 0, 0], ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize("kind", ["kalman", "oneeuro"])
def test_scale_invariance(kind):
    # The same motion in pixels (x 300) with scale x 300 gives the same result x 300.
    t, clean, noisy = noisy_track(80)
    a = smooth_sequence(kind, t, noisy, None, SCALE, causal=True)
    b = smooth_sequence(kind, t, noisy * 300.0, None, SCALE * 300.0, causal=True)
    np.testing.assert_allclose(b, a * 300.0, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["kalman", "oneeuro"])
def test_reset_starts_a_new_track(kind):
    t, clean, noisy = noisy_track(40)
    smoother = make_smoother(kind, 30)
    run_live(smoother, t, noisy)
    with pytest.raises(InputError):  # time went backwards without reset
        smoother.push(0.0, noisy[0], None, SCALE)
    with pytest.raises(InputError):  # a different joint count without reset
        smoother.push(10.0, noisy[0, :5], None, SCALE)
    smoother.reset()
    again = run_live(smoother, t, noisy + 1.0)
    fresh = run_live(make_smoother(kind, 30), t, noisy + 1.0)
    np.testing.assert_array_equal(again, fresh)


def test_float32_in_float32_out():
    t, clean, noisy = noisy_track(20)
    assert smooth_sequence("kalman", t, noisy.astype(np.float32)).dtype == np.float32
    assert make_smoother("oneeuro", 30).push(0.0, noisy[0].astype(np.float32)).dtype == np.float32


def test_bad_input_is_a_clear_error():
    t, clean, noisy = noisy_track(20)
    with pytest.raises(InputError, match="increasing"):
        smooth_sequence("kalman", t[::-1], noisy)
    with pytest.raises(InputError, match="shape"):
        smooth_sequence("kalman", t, noisy[:, :, 0])
    with pytest.raises(InputError, match="scale"):
        smooth_sequence("oneeuro", t, noisy, None, 0.0)
    with pytest.raises(InputError, match="confidence"):
        make_smoother("kalman", 30).push(0.0, noisy[0], np.ones(3), SCALE)
    with pytest.raises(InputError, match="inf"):
        make_smoother("kalman", 30).push(0.0, np.full((J, D), np.inf), None, SCALE)
    with pytest.raises(ValueError, match="unknown smoother"):
        make_smoother("butterworth", 30)
    with pytest.raises(ValueError, match="unknown Kalman parameter"):
        make_smoother("kalman", 30, min_cutoff=1.0)
    with pytest.raises(ValueError, match="fixed-lag"):
        make_smoother("oneeuro", 30, causal=False)


def test_per_frame_scale_and_offline_one_euro_missing_joints():
    # A person walking towards the camera: scale grows per frame; a track given as pixels with the
    # matching per-frame scale is still smoothed, and joints unseen at the start stay NaN offline.
    t, clean, noisy = noisy_track(90)
    sizes = np.linspace(200.0, 400.0, 90)
    pixels = noisy * sizes[:, None, None]
    pixels[:10, 3] = np.nan
    for kind, max_ratio in (("kalman", 0.2), ("oneeuro", 0.7)):
        out = smooth_sequence(kind, t, pixels, None, sizes)
        assert np.isnan(out[:10, 3]).all() and np.isfinite(out[10:]).all()
        assert jitter(out[10:]) < max_ratio * jitter(pixels[10:])


def test_fixed_lag_flush_on_short_stream():
    t, clean, noisy = noisy_track(3)
    smoother = make_smoother("kalman", fps=30, causal=False, lag_frames=5)
    assert all(smoother.push(t[k], noisy[k], None, SCALE) is None for k in range(3))
    rest = smoother.flush()
    assert len(rest) == 3
    np.testing.assert_allclose(np.stack(rest), smooth_sequence("kalman", t, noisy, None, SCALE))
    assert smoother.flush() == []


def test_fixed_lag_looks_exactly_lag_frames_ahead():
    t, clean, noisy = noisy_track(60)
    changed = noisy.copy()
    changed[40:] += 0.5
    a = run_live(make_smoother("kalman", 30, causal=False, lag_frames=6), t, noisy)
    b = run_live(make_smoother("kalman", 30, causal=False, lag_frames=6), t, changed)
    np.testing.assert_array_equal(a[:34], b[:34])  # frame n sees frames up to n + 6 only
    assert np.abs(a[34:40] - b[34:40]).max() > 1e-3
