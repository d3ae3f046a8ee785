"""Post-lift corrections: world-landmark fusion and per-track bone lengths."""
from __future__ import annotations

import numpy as np
import pytest

from streampose.lifter.fusion import BoneLengths, fuse_world_landmarks
from streampose.skeleton import H36M17


def _pose(rng, n=None):
    shape = (17, 3) if n is None else (n, 17, 3)
    pose = rng.normal(scale=0.3, size=shape)
    return pose - pose[..., :1, :]


def _rotation(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def test_fusion_shapes_and_extremes():
    rng = np.random.default_rng(0)
    lifted, world = _pose(rng, 5), _pose(rng, 5)
    assert fuse_world_landmarks(lifted, world, 0.5).shape == (5, 17, 3)
    np.testing.assert_allclose(fuse_world_landmarks(lifted, world, 0.0), lifted, atol=1e-6)
    full = fuse_world_landmarks(lifted, world, 1.0)
    # weight 1: the world landmarks' shape, only moved/rotated/scaled onto the lifter's pose
    d_world = np.linalg.norm(world[:, :, None] - world[:, None], axis=-1)
    d_full = np.linalg.norm(full[:, :, None] - full[:, None], axis=-1)
    ratio = d_full[d_world > 0] / d_world[d_world > 0]
    assert np.ptp(ratio.reshape(5, -1), axis=1).max() < 1e-4
    with pytest.raises(ValueError):
        fuse_world_landmarks(lifted, world, 1.5)


def test_fusion_ignores_frame_rotation_scale_and_missing_landmarks():
    rng = np.random.default_rng(1)
    lifted = _pose(rng, 3)
    # the same body in another frame, scale and origin: nothing to correct
    world = 0.7 * lifted @ _rotation(0.8).T + np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(fuse_world_landmarks(lifted, world, 0.5), lifted, atol=1e-5)
    world[1] = np.nan
    out = fuse_world_landmarks(lifted, world, 0.5, valid=np.array([True, True, False]))
    np.testing.assert_allclose(out, lifted, atol=1e-5)


def test_fusion_averages_independent_errors():
    rng = np.random.default_rng(2)
    truth = _pose(rng, 200)
    lifted = truth + rng.normal(scale=0.05, size=truth.shape)
    world = (truth + rng.normal(scale=0.05, size=truth.shape)) @ _rotation(0.3).T
    err = lambda p: np.linalg.norm((p - p[:, :1]) - truth, axis=-1).mean()
    assert err(fuse_world_landmarks(lifted, world, 0.5)) < 0.8 * err(lifted)


def test_bone_lengths_become_constant_and_symmetric_keeping_directions():
    rng = np.random.default_rng(3)
    base = np.array([[0, 0, 0], [-0.12, 0, 0], [-0.12, 0.45, 0], [-0.12, 0.9, 0], [0.12, 0, 0],
                     [0.12, 0.45, 0], [0.12, 0.9, 0], [0, -0.25, 0], [0, -0.5, 0], [0, -0.6, 0],
                     [0, -0.7, 0], [0.18, -0.5, 0], [0.45, -0.5, 0], [0.7, -0.5, 0], [-0.18, -0.5, 0],
                     [-0.45, -0.5, 0], [-0.7, -0.5, 0]], float)
    fix = BoneLengths(window=50)
    bones = np.array(H36M17.bones)
    outputs, inputs = [], []
    for _ in range(60):
        pose = base * rng.uniform(0.8, 1.2, size=(17, 1)) + rng.normal(scale=0.02, size=(17, 3))
        pose -= pose[0]
        inputs.append(pose)
        outputs.append(fix(pose))
    lengths = np.array([np.linalg.norm(o[bones[:, 0]] - o[bones[:, 1]], axis=-1) for o in outputs[-20:]])
    assert lengths.std(axis=0).max() < 0.02                       # near-constant once the median settles
    raw = np.array([np.linalg.norm(i[bones[:, 0]] - i[bones[:, 1]], axis=-1) for i in inputs[-20:]])
    assert raw.std(axis=0).max() > 0.03
    thigh_r = [k for k, (c, p) in enumerate(H36M17.bones) if (c, p) == (2, 1)][0]
    thigh_l = [k for k, (c, p) in enumerate(H36M17.bones) if (c, p) == (5, 4)][0]
    assert abs(lengths[-1, thigh_r] - lengths[-1, thigh_l]) < 1e-6
    last_in, last_out = inputs[-1], outputs[-1]
    for child, parent in H36M17.bones:
        a = last_in[child] - last_in[parent]
        b = last_out[child] - last_out[parent]
        assert np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.9999


# -- 2D-consistent depths -------------------------------------------------------------------------
from streampose.lifter.reproject import fit_weak_perspective, reproject_consistent  # noqa: E402


def _standing(knee_forward: float = 0.0) -> np.ndarray:
    """A frontal standing pose (camera axes, y down), knees pushed toward the camera by ``knee_forward``."""
    pose = np.array([[0, 0, 0], [-0.12, 0, 0], [-0.12, 0.45, -knee_forward], [-0.12, 0.9, 0],
                     [0.12, 0, 0], [0.12, 0.45, -knee_forward], [0.12, 0.9, 0], [0, -0.25, 0],
                     [0, -0.5, 0], [0, -0.62, -0.08], [0, -0.72, 0.02], [0.18, -0.5, 0], [0.3, -0.25, 0.05],
                     [0.35, 0.0, -0.05], [-0.18, -0.5, 0], [-0.3, -0.25, 0.05], [-0.35, 0.0, -0.05]], float)
    return pose


def _knee_angle(pose: np.ndarray, hip: int = 1, knee: int = 2, ankle: int = 3) -> float:
    a, b = pose[hip] - pose[knee], pose[ankle] - pose[knee]
    return float(np.degrees(np.arccos(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))))


def test_weak_perspective_fit_recovers_scale_and_offset():
    pose = _standing()
    kp = 400.0 * pose[:, :2] + np.array([320.0, 240.0])
    scale, offset = fit_weak_perspective(pose, kp, np.ones(17))
    assert abs(scale - 400.0) < 1e-9 and np.allclose(offset, [320, 240])


def test_a_leg_straight_in_2d_becomes_straight_in_3d():
    truth = _standing()
    kp = np.concatenate([500.0 * truth[:, :2] + 300.0, np.ones((17, 1))], axis=1)
    bent = _standing(knee_forward=0.2)              # the lifter's mistake: knees toward the camera
    lengths = np.linalg.norm(truth[_BONES_T[:, 0]] - truth[_BONES_T[:, 1]], axis=-1)
    assert _knee_angle(bent) < 140
    fixed = reproject_consistent(bent, kp, lengths)
    assert _knee_angle(fixed) > 175 and _knee_angle(fixed, 4, 5, 6) > 175
    np.testing.assert_allclose(fixed, truth - truth[:1], atol=1e-6)
    # weight 0 is the lifter's pose; untrusted 2D keeps the lifter's bones
    np.testing.assert_allclose(reproject_consistent(bent, kp, lengths, weight=0.0), bent, atol=1e-6)
    low = kp.copy()
    low[:, 2] = 0.1
    np.testing.assert_allclose(reproject_consistent(bent, low, lengths), bent, atol=1e-6)


def test_foreshortened_bones_keep_the_lifters_depth_order():
    truth = _standing()
    truth[13] = truth[12] + np.array([0.0, 0.0, -0.25])          # forearm pointing at the camera
    kp = np.concatenate([500.0 * truth[:, :2] + 300.0, np.ones((17, 1))], axis=1)
    lengths = np.linalg.norm(truth[_BONES_T[:, 0]] - truth[_BONES_T[:, 1]], axis=-1)
    guess = truth.copy()
    guess[13] = truth[12] + np.array([0.05, 0.0, -0.1])           # right direction in depth, wrong size
    fixed = reproject_consistent(guess, kp, lengths)
    np.testing.assert_allclose(fixed[13] - fixed[12], [0, 0, -0.25], atol=1e-6)


_BONES_T = np.array(H36M17.bones)


# -- the per-track corrections object ----------------------------------------------------------------
from streampose.lifter.corrections import PoseCorrections  # noqa: E402
from streampose.skeleton import BLAZEPOSE_TO_H36M  # noqa: E402


def _world33_for(h36m: np.ndarray) -> np.ndarray:
    """33 BlazePose landmarks whose H36M-17 mapping is ``h36m`` (least squares through the mapping)."""
    return np.linalg.lstsq(BLAZEPOSE_TO_H36M, h36m, rcond=None)[0]


def test_fusion_low_passes_the_correction_but_keeps_a_steady_bias():
    rng = np.random.default_rng(5)
    truth = _standing()
    biased = truth.copy()
    biased[[2, 5], 2] -= 0.15                                   # the lifter's bent knees, every frame
    corrections = PoseCorrections(world_fusion=1.0, fps=30.0, fusion_time_constant=0.2)
    per_frame = PoseCorrections(world_fusion=1.0, fps=30.0, fusion_time_constant=0.0)
    smooth_out, raw_out = [], []
    for _ in range(90):
        noisy_world = _world33_for(truth + rng.normal(scale=0.03, size=truth.shape))
        smooth_out.append(corrections(biased, np.ones((17, 3)), noisy_world))
        raw_out.append(per_frame(biased, np.ones((17, 3)), noisy_world))
    smooth_out, raw_out = np.array(smooth_out), np.array(raw_out)
    jitter = lambda x: np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1).mean()
    assert jitter(smooth_out) < 0.3 * jitter(raw_out)
    # after settling, the knees have moved back toward the truth (the bias is corrected)
    assert np.abs(smooth_out[-30:, [2, 5], 2].mean(0) - truth[[2, 5], 2]).max() < 0.05
    assert np.abs(biased[[2, 5], 2] - truth[[2, 5], 2]).max() > 0.1


def test_corrections_without_world_landmarks_leave_the_pose_alone():
    pose = _standing(0.1)
    out = PoseCorrections(world_fusion=0.5)(pose, np.ones((17, 3)), None)
    np.testing.assert_allclose(out, pose - pose[:1], atol=1e-6)
    assert not PoseCorrections().active
