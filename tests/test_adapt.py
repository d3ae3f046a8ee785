"""Training-data transforms: BlazePose proportions, body-shape variety, rare poses, knee perturbation."""
from __future__ import annotations

import json

import numpy as np
import pytest

from streampose.skeleton import H36M17
from streampose_train import adapt

_J = H36M17.index


def _walker(frames: int = 90) -> np.ndarray:
    """A Y-up walking figure with bent knees, ``(T, 17, 3)`` metres."""
    t = np.arange(frames)[:, None] / 30.0
    base = np.array([[0, 0.95, 0], [-0.15, 0.95, 0], [-0.15, 0.52, 0.08], [-0.15, 0.08, 0], [0.15, 0.95, 0],
                     [0.15, 0.52, 0.08], [0.15, 0.08, 0], [0, 1.2, 0], [0, 1.45, 0], [0, 1.6, 0.1],
                     [0, 1.7, -0.02], [0.17, 1.45, 0], [0.2, 1.18, 0], [0.22, 0.92, 0], [-0.17, 1.45, 0],
                     [-0.2, 1.18, 0], [-0.22, 0.92, 0]], float)
    pose = np.repeat(base[None], frames, 0)
    pose[:, :, 2] += 0.05 * np.sin(2 * np.pi * t)
    return pose.astype(np.float32)


def _knee_angle(p, hip, knee, ankle):
    u, v = p[:, hip] - p[:, knee], p[:, ankle] - p[:, knee]
    c = (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.degrees(np.arccos(np.clip(c, -1, 1)))


def test_rescale_bones_scales_lengths_and_keeps_directions():
    pose = _walker(5)
    factors = np.linspace(0.8, 1.3, len(H36M17.bones))
    out = adapt.rescale_bones(pose, factors)
    bones = np.array(H36M17.bones)
    before = pose[:, bones[:, 0]] - pose[:, bones[:, 1]]
    after = out[:, bones[:, 0]] - out[:, bones[:, 1]]
    np.testing.assert_allclose(np.linalg.norm(after, axis=-1), factors * np.linalg.norm(before, axis=-1), rtol=1e-5)
    cos = (before * after).sum(-1) / (np.linalg.norm(before, axis=-1) * np.linalg.norm(after, axis=-1))
    assert cos.min() > 0.99999
    np.testing.assert_allclose(out[:, 0], pose[:, 0])


def test_blazepose_scales_reach_the_measured_proportions(tmp_path):
    calibration = tmp_path / "calibration.json"
    target = {"hip_width": 0.25, "shoulder_width": 0.45, "thigh": 0.52, "shank": 0.48, "upper_arm": 0.34,
              "forearm": 0.30, "torso": 0.61, "thorax_nose": 0.28, "nose_head": 0.18}
    calibration.write_text(json.dumps({"videos": {"a.mp4": {"world_proportions": target},
                                                  "b.mp4": {"world_proportions": target}}}))
    pose = _walker(30)
    out = adapt.rescale_bones(pose, adapt.blazepose_bone_scales(pose, calibration))
    reached = adapt.skeleton_proportions(out)
    for name, value in target.items():
        if name not in ("thigh", "shank"):       # the legs keep their total length by design
            assert reached[name] == pytest.approx(value, rel=1e-3), name
    assert reached["thigh"] / reached["shank"] == pytest.approx(0.52 / 0.48, rel=1e-3)


def test_random_bone_scales_are_symmetric_and_centred():
    rng = np.random.default_rng(0)
    draws = np.stack([adapt.random_bone_scales(rng, 0.05) for _ in range(400)])
    thigh = [k for k, b in enumerate(H36M17.bones) if b in ((_J("RKnee"), _J("RHip")), (_J("LKnee"), _J("LHip")))]
    np.testing.assert_array_equal(draws[:, thigh[0]], draws[:, thigh[1]])
    assert abs(np.log(draws).mean()) < 0.01 and 0.04 < np.log(draws[:, thigh[0]]).std() < 0.06
    np.testing.assert_array_equal(adapt.random_bone_scales(rng, 0.0), 1.0)


def test_rare_pose_weights_favour_squats_and_overhead_arms():
    pose = _walker(10)
    squat = pose.copy()
    squat[:, [0, 1, 4, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], 1] -= 0.45   # pelvis and above lowered
    overhead = pose.copy()
    overhead[:, [13, 16], 1] = 1.95
    plain = adapt.rare_pose_weights(pose, 1.0)
    assert adapt.rare_pose_weights(np.concatenate([pose, squat]), 1.0)[10:].mean() > plain.mean() + 0.5
    assert adapt.rare_pose_weights(overhead, 1.0).mean() > plain.mean() + 0.5
    np.testing.assert_array_equal(adapt.rare_pose_weights(squat, 0.0), 1.0)


def test_knee_perturbation_changes_only_the_shank_within_limits():
    pose = _walker(120)
    rng = np.random.default_rng(3)
    out = adapt.perturb_knees(pose, rng, probability=1.0)
    others = [j for j in range(17) if j not in (_J("RFoot"), _J("LFoot"))]
    np.testing.assert_allclose(out[:, others], pose[:, others], atol=1e-6)
    for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
        np.testing.assert_allclose(np.linalg.norm(out[:, ankle] - out[:, knee], axis=-1),
                                   np.linalg.norm(pose[:, ankle] - pose[:, knee], axis=-1), rtol=1e-5)
        angle = _knee_angle(out, hip, knee, ankle)
        assert angle.min() >= adapt.KNEE_RANGE[0] - 1e-3 and angle.max() <= adapt.KNEE_RANGE[1] + 1e-3
    changed = np.abs(_knee_angle(out, 1, 2, 3) - _knee_angle(pose, 1, 2, 3)).max()
    assert changed > 1.0
    np.testing.assert_array_equal(adapt.perturb_knees(pose, rng, probability=0.0), pose)


def test_body_scale_reaches_an_adult_leg_length():
    pose = _walker(20)
    factor = adapt.body_scale(pose)
    assert adapt.leg_length(pose * factor) == pytest.approx(adapt.ADULT_LEG_M, rel=1e-4)
    rng = np.random.default_rng(0)
    spread = [adapt.body_scale(pose, rng, 0.06) / factor for _ in range(300)]
    assert 0.045 < np.log(spread).std() < 0.075
