"""BVH export: writer -> (independent) reader -> forward kinematics reproduces the exported joints,
constant bone lengths, continuous angles, the file's conventions, and the .bvh output of the CLI."""
from __future__ import annotations

import numpy as np
import pytest

from streampose import cli
from streampose.errors import OutputError
from streampose.export.bvh import (
    AT, EULER_ORDERS, NAMES, BvhWriter, euler_angles, retarget, write_bvh,
)
from streampose.skeleton import H36M17
from streampose.types import Person, PoseFrame
from streampose_train.mocap.bvh import euler_to_matrix, forward_kinematics, read_bvh
from videogen import make_video

J = H36M17.index


def fk_h36m(path, units: str = "m") -> np.ndarray:
    """``(T, 17, 3)`` metres: the H36M joints of a written file, by the training code's BVH reader."""
    clip = read_bvh(path)
    positions = forward_kinematics(clip) / (100.0 if units == "cm" else 1.0)
    out = np.full((clip.num_frames, 17, 3), np.nan)
    for name, at in zip(NAMES, AT):
        out[:, at] = positions[:, clip.index(name)]
    out[:, J("Head")] = positions[:, clip.index("Head_End")]
    return out


def _walk(frames: int = 60, seed: int = 0) -> np.ndarray:
    """``(T, 17, 3)`` Y-up world joints: a noisy figure that turns, walks and swings its limbs."""
    rng = np.random.default_rng(seed)
    stand = np.array([
        [0, 0.95, 0], [-0.13, 0.95, 0], [-0.13, 0.5, 0.02], [-0.13, 0.08, 0], [0.13, 0.95, 0],
        [0.13, 0.5, 0.02], [0.13, 0.08, 0], [0, 1.2, 0], [0, 1.45, 0], [0, 1.6, 0.1], [0, 1.75, 0],
        [0.17, 1.45, 0], [0.2, 1.2, 0], [0.22, 0.95, 0.05], [-0.17, 1.45, 0], [-0.2, 1.2, 0], [-0.22, 0.95, 0.05]])
    out = []
    for t in range(frames):
        a = 0.05 * t
        turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        pose = stand.copy()
        swing = 0.25 * np.sin(0.3 * t)
        pose[J("LWrist"), 2] += swing
        pose[J("RWrist"), 2] -= swing
        pose[J("LFoot"), 2] -= swing
        pose[J("RFoot"), 2] += swing
        pose = (pose - pose[0]) @ turn.T + [0.02 * t, 0, 0.01 * t] + pose[0]
        out.append(pose + rng.normal(0, 0.01, pose.shape))
    return np.asarray(out)


def test_round_trip_reproduces_the_exported_joints(tmp_path):
    joints = _walk()
    for units in ("m", "cm"):
        path = tmp_path / f"walk_{units}.bvh"
        motion = write_bvh(path, joints, fps=30.0, units=units)
        np.testing.assert_allclose(fk_h36m(path, units), motion.positions, atol=1e-3)  # <= 1 mm (target 1 cm)
        # What was exported is the input's bone directions with constant lengths (the pelvis made
        # rigid: both hips on the hip line, perpendicular to the lower spine), from the input's root.
        np.testing.assert_allclose(motion.positions[:, 0], joints[:, 0], atol=1e-12)
        for child, parent in H36M17.bones:
            if child in (J("LHip"), J("RHip")):
                continue
            a = motion.positions[:, child] - motion.positions[:, parent]
            b = joints[:, child] - joints[:, parent]
            cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
            assert cos.min() > 1 - 1e-9


def test_constant_bone_lengths_are_the_track_medians():
    joints = _walk(seed=1)
    motion = retarget(joints)
    for child, parent in H36M17.bones:
        lengths = np.linalg.norm(motion.positions[:, child] - motion.positions[:, parent], axis=-1)
        assert np.ptp(lengths) < 1e-9
        mirror = H36M17.flip_permutation[child]
        raw = np.linalg.norm(joints[:, [child, mirror]] - joints[:, [parent, H36M17.flip_permutation[parent]]],
                             axis=-1)
        assert lengths[0] == pytest.approx(0.5 * (np.median(raw[:, 0]) + np.median(raw[:, 1])), abs=1e-9)


def test_a_skeleton_of_constant_bones_is_reproduced_exactly():
    joints = _walk(seed=2)
    exported = retarget(joints).positions  # constant bones, rigid pelvis: a fixed point of the export
    np.testing.assert_allclose(retarget(exported).positions, exported, atol=1e-9)


def test_file_states_its_conventions(tmp_path):
    path = tmp_path / "walk.bvh"
    write_bvh(path, _walk(frames=12), fps=25.0)
    text = path.read_text()
    assert text.startswith("HIERARCHY\nROOT Hips\n")
    assert "CHANNELS 6 Xposition Yposition Zposition Yrotation Xrotation Zrotation" in text
    assert "Frames: 12\nFrame Time: 0.04000000\n" in text
    clip = read_bvh(path)
    assert clip.fps == pytest.approx(25.0) and clip.num_frames == 12
    for name in NAMES:
        rotation = "".join(c[0] for c in clip.channels[clip.index(name)] if c.endswith("rotation"))
        assert rotation == EULER_ORDERS[name]
    # Y up: the head is above the feet in the file's world.
    h36m = fk_h36m(path)
    assert (h36m[:, J("Head"), 1] > h36m[:, J("LFoot"), 1] + 1.0).all()


def test_euler_angles_round_trip_every_order_and_stay_continuous():
    rng = np.random.default_rng(3)
    for order in ("ZXY", "XZY", "YXZ", "ZYX", "YZX", "XYZ"):
        angles = np.cumsum(rng.normal(0, 4, (200, 3)), axis=0)  # a wandering rotation, many turns
        matrices = euler_to_matrix(angles, order)
        back = euler_angles(matrices, order)
        np.testing.assert_allclose(euler_to_matrix(back, order), matrices, atol=1e-9)
        steps = np.abs(np.diff(back, axis=0)).max()
        assert steps < 60, (order, steps)  # no 360-degree wraps or branch flips


def test_a_sweeping_arm_does_not_flip():
    """An arm raised from hanging down to overhead, in front of the body: the bone's rotation moves
    a little every frame and so must every angle in the file (no twist flips)."""
    joints = np.repeat(_walk(frames=1), 90, axis=0).copy()
    shoulder = joints[0, J("LShoulder")]
    for t, angle in enumerate(np.linspace(0, np.radians(170), 90)):
        direction = np.array([0.2, -np.cos(angle), np.sin(angle)])
        direction /= np.linalg.norm(direction)
        joints[t, J("LElbow")] = shoulder + 0.27 * direction
        joints[t, J("LWrist")] = shoulder + 0.52 * direction
    motion = retarget(joints)
    arm = NAMES.index("LeftArm")
    rel = np.swapaxes(motion.local[:-1, arm], -1, -2) @ motion.local[1:, arm]
    geodesic = np.degrees(np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert geodesic.max() < 3.0  # 170 degrees over 90 frames: ~1.9 per frame
    for j in (arm, NAMES.index("LeftForeArm")):
        angles = euler_angles(motion.local[:, j], EULER_ORDERS[NAMES[j]])
        assert np.abs(np.diff(angles, axis=0)).max() < 10.0


@pytest.mark.shared
def test_held_out_mocap_round_trip(shared_dir, tmp_path):
    from streampose_train.mocap import load_mocap, resample, split_clips

    clip = resample(split_clips(load_mocap("cmu"))[1][0], 30.0)
    path = tmp_path / "mocap.bvh"
    motion = write_bvh(path, clip.joints3d, fps=30.0)
    assert np.linalg.norm(fk_h36m(path) - motion.positions, axis=-1).max() < 0.01


# ------------------------------------------------------------------------------- writer and CLI


def _frame(index: int, people: list[tuple[int, np.ndarray, np.ndarray | None]]) -> PoseFrame:
    frame = PoseFrame(index=index, time=index / 30.0)
    for track, pose, root in people:
        frame.people.append(Person(id=track, score=0.9, bbox=np.zeros(4), keypoints2d=np.zeros((17, 3)),
                                   keypoints3d=pose, root=root))
    return frame


def _camera_track(frames: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Root-relative camera-frame poses (y down) and roots of a walk seen from 4 m."""
    world = _walk(frames)
    cam = world * [1, -1, -1] + [0, 1.3, 4.0]
    return cam - cam[:, :1], cam[:, 0]


def test_writer_one_file_per_track_and_the_selected_track(tmp_path):
    poses, roots = _camera_track()
    header = {"source": {"fps": 30.0}}
    writer = BvhWriter(tmp_path / "out.bvh", header)
    for t in range(40):
        people = [(3, poses[t], roots[t])] + ([(7, poses[t], None)] if t < 10 else [])
        writer.write_frame(_frame(t, people))
    writer.close()
    assert writer.written == {3: tmp_path / "out.bvh", 7: tmp_path / "out_track7.bvh"}
    assert read_bvh(tmp_path / "out.bvh").num_frames == 40 and read_bvh(tmp_path / "out_track7.bvh").num_frames == 10
    np.testing.assert_allclose(fk_h36m(tmp_path / "out.bvh"), writer.motions[3].positions, atol=1e-3)
    # World frame: floor at y = 0 under the feet, y up.
    feet = writer.motions[3].positions[:, [J("LFoot"), J("RFoot")], 1]
    assert 0.0 < np.median(feet) < 0.2
    only = BvhWriter(tmp_path / "seven.bvh", header, track=7)
    for t in range(12):
        only.write_frame(_frame(t, [(3, poses[t], roots[t]), (7, poses[t], roots[t])]))
    only.close()
    assert only.written == {7: tmp_path / "seven.bvh"} and not (tmp_path / "seven_track3.bvh").exists()
    missing = BvhWriter(tmp_path / "none.bvh", header, track=9)
    missing.write_frame(_frame(0, [(3, poses[0], roots[0])]))
    with pytest.raises(OutputError, match="track id 9"):
        missing.close()


def test_cli_bvh_output_and_track_errors(tmp_path, capsys, monkeypatch):
    from fakes import fake_pipeline

    monkeypatch.setattr(cli, "build_pipeline", fake_pipeline)
    video = make_video(tmp_path / "clip.mp4", frames=12, size=(96, 64), fps=24.0)
    out = tmp_path / "poses.bvh"
    assert cli.main([str(video), "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    clip = read_bvh(out)
    assert clip.num_frames == 12 and clip.fps == pytest.approx(24.0) and np.isfinite(clip.motion).all()
    for argv in (["--track", "4"], ["--track", "0", "--out", str(tmp_path / "p.jsonl")]):
        status = cli.main([str(video), "--out", str(out), "--device", "cpu", "--quiet", *argv])
        err = capsys.readouterr().err
        assert status == 2 and err.startswith("streampose: error: ") and err.count("\n") == 1
