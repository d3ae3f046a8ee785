"""Frame rates outside the lifter's training range: resampling, offline and live agree, warnings."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from streampose.lifter import framerate, load_lifter


def test_resample_is_exact_on_linear_motion_and_holds_the_ends():
    times = np.arange(5) / 10.0
    x = np.stack([times * 3.0, -times], axis=-1)[:, None, :]          # (5, 1, 2)
    new_times = np.arange(-2, 15) / 30.0
    out = framerate.resample(x, times, new_times)
    inside = (new_times >= 0) & (new_times <= times[-1])
    np.testing.assert_allclose(out[inside, 0, 0], 3.0 * new_times[inside], atol=1e-12)
    np.testing.assert_allclose(out[new_times < 0, 0, 0], 0.0)
    np.testing.assert_allclose(out[new_times > times[-1], 0, 0], 3.0 * times[-1])


def test_target_rates_are_integer_multiples_and_warn_far_outside(caplog):
    trained = (25.0, 60.0)
    assert framerate.target_rate(30.0, trained) is None
    assert framerate.target_rate(None, trained) is None
    assert framerate.target_rate(10.0, trained) == 30.0
    assert framerate.target_rate(120.0, trained) == 60.0
    assert framerate.target_rate(90.0, trained) == 45.0
    assert framerate.upsampling_factor(10.0, trained) == 3
    assert framerate.upsampling_factor(120.0, trained) == 1
    with caplog.at_level(logging.WARNING, logger="streampose.lifter"):
        framerate.target_rate(5.0, trained)
    assert "far outside" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="streampose.lifter"):
        framerate.target_rate(20.0, trained)
    assert caplog.text == ""


def _walk_2d(frames: int, fps: float) -> np.ndarray:
    """A figure whose joints swing at 1 Hz, ``(T, 17, 3)`` pixels + confidence."""
    t = np.arange(frames)[:, None] / fps
    rng = np.random.default_rng(0)
    base = rng.uniform(200, 400, size=(17, 2))
    phase = rng.uniform(0, 2 * np.pi, size=17)
    xy = base[None] + 25 * np.sin(2 * np.pi * t + phase)[..., None]
    return np.concatenate([xy, np.ones((frames, 17, 1))], axis=-1).astype(np.float32)


@pytest.mark.parametrize("causal", [False, True])
def test_slow_video_is_lifted_at_a_trained_rate_live_and_offline_alike(causal):
    lifter = load_lifter("default", causal=causal)
    kp2d = _walk_2d(20, fps=10.0)
    plain, _ = lifter.lift_sequence(kp2d, (640, 480))
    resampled, root = lifter.lift_sequence(kp2d, (640, 480), fps=10.0)
    assert resampled.shape == plain.shape and root.shape == (20, 3)
    assert np.abs(resampled - plain).mean() > 1e-3                    # it really ran at another rate
    # by hand: 3x upsampled 2D, lifted, every 3rd frame kept
    times, fine = framerate.resampled_times(20, 10.0, 30.0)
    by_hand, _ = lifter.lift_sequence(framerate.resample(kp2d, times, fine), (640, 480))
    np.testing.assert_allclose(resampled, by_hand[::3] - by_hand[::3, :1], atol=1e-5)
    stream = lifter.stream((640, 480), fps=10.0)
    assert stream.factor == 3
    results = [r for frame in kp2d for r in stream.push(frame)] + stream.flush()
    assert [r.index for r in results] == list(range(20))
    np.testing.assert_allclose(np.stack([r.keypoints3d for r in results]), resampled, atol=1e-4)
