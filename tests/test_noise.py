"""2D detector noise model: magnitudes, scaling, temporal correlation, swaps, dropouts, flips."""
from __future__ import annotations

import numpy as np
import pytest

from streampose.errors import InputError
from streampose_train.mocap.noise import (
    SWAP_GROUPS, Noise2D, flip_pose_2d, flip_pose_3d, person_size,
)
from streampose.skeleton import H36M17

J = H36M17.index
TORSO = [J(n) for n in ("Hip", "RHip", "LHip", "Spine", "Thorax", "LShoulder", "RShoulder")]


def _standing_pose_px(height_px: float = 400.0, num_frames: int = 600) -> np.ndarray:
    """A static upright stick figure ``height_px`` tall: ``(T, 17, 2)`` pixels, y down."""
    unit = np.array([
        [0, 0.46], [-0.07, 0.46], [-0.07, 0.72], [-0.07, 1.0], [0.07, 0.46], [0.07, 0.72],
        [0.07, 1.0], [0, 0.32], [0, 0.17], [0, 0.09], [0, 0.0], [0.1, 0.17], [0.12, 0.32],
        [0.13, 0.46], [-0.1, 0.17], [-0.12, 0.32], [-0.13, 0.46]])
    pose = unit * height_px + [500.0, 100.0]
    return np.repeat(pose[None], num_frames, axis=0)


def _jitter_only(**kw) -> Noise2D:
    return Noise2D(outlier_rate=0.0, swap_rate=0.0, dropout_rate=0.0, **kw)


def test_shapes_dtypes_and_determinism():
    kp = _standing_pose_px(num_frames=50)
    noisy, conf = Noise2D().apply(kp, np.random.default_rng(0))
    assert noisy.shape == (50, 17, 2) and noisy.dtype == np.float32
    assert conf.shape == (50, 17) and conf.dtype == np.float32
    assert conf.min() >= 0 and conf.max() <= 1
    again, _ = Noise2D().apply(kp, np.random.default_rng(0))
    np.testing.assert_array_equal(noisy, again)
    assert not np.allclose(noisy, kp)


def test_bad_input_raises_input_error():
    with pytest.raises(InputError):
        Noise2D().apply(np.zeros((10, 16, 2)), np.random.default_rng(0))


def test_person_size_is_bbox_extent():
    kp = _standing_pose_px(300.0, 2)
    np.testing.assert_allclose(person_size(kp), 300.0)


def test_jitter_is_calibrated_and_scales_with_person_size():
    noise = _jitter_only()
    errors = {}
    for height in (200.0, 800.0):
        kp = _standing_pose_px(height, 3000)
        noisy, _ = noise.apply(kp, np.random.default_rng(1))
        errors[height] = np.linalg.norm(noisy - kp, axis=-1).mean(axis=0)  # (17,) px
    ratio = errors[800.0] / errors[200.0]
    np.testing.assert_allclose(ratio, 4.0, rtol=0.15)
    torso = errors[200.0][TORSO].mean() / 200.0
    assert 0.02 < torso < 0.04  # 2-4 % of person height on the torso (BlazePose-like)
    wrists = errors[200.0][[J("LWrist"), J("RWrist")]].mean() / 200.0
    assert wrists > 1.5 * torso


def test_correlated_component_is_low_pass():
    kp = _standing_pose_px(400.0, 3000)

    def lag1_autocorrelation(noise: Noise2D) -> float:
        noisy, _ = noise.apply(kp, np.random.default_rng(2), fps=30.0)
        e = (noisy - kp)[:, :, 0]
        e = e - e.mean(axis=0)
        return float((e[1:] * e[:-1]).mean() / (e * e).mean())

    assert lag1_autocorrelation(_jitter_only(white_sigma=0.0)) > 0.85
    assert abs(lag1_autocorrelation(_jitter_only(correlated_sigma=0.0))) < 0.05
    assert 0.3 < lag1_autocorrelation(_jitter_only()) < 0.8


def test_swaps_happen_at_the_configured_rate_and_exchange_limbs():
    kp = _standing_pose_px(400.0, 20000)
    noise = Noise2D(correlated_sigma=0.0, white_sigma=0.0, outlier_rate=0.0, dropout_rate=0.0,
                    swap_rate=0.01, swap_frames=(2, 2))
    noisy, _ = noise.apply(kp, np.random.default_rng(3))
    lw, rw = J("LWrist"), J("RWrist")
    lf, rf = J("LFoot"), J("RFoot")
    wrist_swapped = np.all(np.isclose(noisy[:, lw], kp[:, rw]), axis=-1)
    foot_swapped = np.all(np.isclose(noisy[:, lf], kp[:, rf]), axis=-1)
    changed = np.any(~np.isclose(noisy, kp), axis=(1, 2))
    # every changed frame is explained by a swap of one of the groups
    assert np.all(wrist_swapped | foot_swapped | ~changed)
    # 1 % starts per frame x 2 frames each (overlaps make it a little less)
    assert 0.013 < changed.mean() < 0.025
    # wrists are in 2 of the 4 groups, feet in the other 2
    assert 0.3 < wrist_swapped.sum() / max(changed.sum(), 1) < 0.7
    assert len(SWAP_GROUPS) == 4
    # swapped wrists are exactly exchanged with each other
    assert np.allclose(noisy[wrist_swapped][:, rw], kp[wrist_swapped][:, lw])


def test_dropouts_freeze_with_low_confidence():
    rng_pose = np.random.default_rng(4)
    kp = _standing_pose_px(400.0, 3000) + rng_pose.normal(0, 5, size=(3000, 17, 2))  # moving
    noise = Noise2D(correlated_sigma=0.0, white_sigma=0.0, outlier_rate=0.0, swap_rate=0.0,
                    dropout_rate=0.002, dropout_frames=(3, 3))
    noisy, conf = noise.apply(kp, np.random.default_rng(5))
    frozen = np.all(noisy[1:] == noisy[:-1], axis=-1)  # (T-1, J)
    assert 0.002 * 3 * 0.6 < frozen.mean() < 0.002 * 3 * 1.3
    assert conf[1:][frozen].max() <= 0.2
    assert np.median(conf[1:][~frozen]) > 0.9


def test_outliers_are_rare_large_and_low_confidence():
    kp = _standing_pose_px(400.0, 5000)
    noise = Noise2D(correlated_sigma=0.0, white_sigma=0.0, swap_rate=0.0, dropout_rate=0.0,
                    outlier_rate=0.01)
    noisy, conf = noise.apply(kp, np.random.default_rng(6))
    moved = np.linalg.norm(noisy - kp, axis=-1)
    outliers = moved > 1.0
    assert 0.007 < outliers.mean() < 0.013
    assert moved[outliers].min() >= 0.1 * 400 - 1e-3
    assert conf[outliers].mean() < 0.3 < conf[~outliers].mean()


def test_flip_helpers_swap_sides():
    kp = _standing_pose_px(400.0, 3)
    flipped = flip_pose_2d(kp, width=1000)
    np.testing.assert_allclose(flipped[:, J("LWrist"), 0], 999 - kp[:, J("RWrist"), 0])
    np.testing.assert_allclose(flip_pose_2d(flipped, width=1000), kp)
    with_conf = np.concatenate([kp, np.arange(17.0)[None, :, None].repeat(3, 0)], -1)
    assert flip_pose_2d(with_conf, 1000)[0, J("LWrist"), 2] == J("RWrist")
    pose3d = np.random.default_rng(0).normal(size=(17, 3))
    f3 = flip_pose_3d(pose3d)
    np.testing.assert_allclose(f3[J("LKnee")], pose3d[J("RKnee")] * [-1, 1, 1])
    np.testing.assert_allclose(flip_pose_3d(f3), pose3d)
