"""BVH reader, forward kinematics and rig mapping on small BVH files written by the tests.

The shared-marked tests at the end read a few real clips of both archives in ../shared.
"""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest

from streampose.errors import InputError
from streampose_train.mocap.bvh import euler_to_matrix, forward_kinematics, parse_bvh, read_bvh
from streampose_train.mocap.rigs import (
    BANDAI, CC_BASE, bone_lengths, clip_to_h36m, detect_rig, unit_scale,
)
from streampose.skeleton import H36M17

SHARED = Path(__file__).resolve().parents[2] / "shared"
needs_shared = pytest.mark.skipif(not (SHARED / "data" / "mocap").is_dir(),
                                  reason="../shared/data/mocap not available")

# Root with 6 channels (ZXY), a 3-channel ZXY child with an End Site, a 3-channel XYZ child, and a
# grandchild with 6 channels (translation channels on a non-root joint).
SMALL_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Chest
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
  JOINT Arm
  {
    OFFSET 5 0 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    JOINT Hand
    {
      OFFSET 10 0 0
      CHANNELS 6 Xposition Yposition Zposition Xrotation Yrotation Zrotation
      End Site
      {
        OFFSET 2 0 0
      }
    }
  }
}
MOTION
Frames: 4
Frame Time: 0.0333333
"""
# channel columns: Hips 0-5 | Chest 6-8 | Arm 9-11 | Hand 12-17
FRAMES = np.zeros((4, 18))
FRAMES[:, 12] = 10.0                       # Hand's position channels repeat its offset
FRAMES[1, 6] = 90.0                        # Chest Zrotation 90
FRAMES[2, 10] = 90.0                       # Arm Yrotation 90
FRAMES[3, 0:3] = [1.0, 2.0, 3.0]           # root translation
FRAMES[3, 9:12] = [30.0, 45.0, 60.0]       # Arm X, Y, Z in XYZ order
FRAMES[3, 12:15] = [4.0, 1.0, 0.0]         # Hand translated by its channels, not its offset


def _bvh_text(frames: np.ndarray = FRAMES) -> str:
    return SMALL_BVH + "\n".join(" ".join(f"{v:.6f}" for v in row) for row in frames) + "\n"


def _rot(axis: str, degrees: float) -> np.ndarray:
    """Independent reference: rotation about a unit axis by Rodrigues' formula."""
    k = {"X": np.array([1.0, 0, 0]), "Y": np.array([0, 1.0, 0]), "Z": np.array([0, 0, 1.0])}[axis]
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    a = np.radians(degrees)
    return np.eye(3) + np.sin(a) * K + (1 - np.cos(a)) * K @ K


@pytest.fixture()
def small_clip(tmp_path):
    path = tmp_path / "small.bvh"
    path.write_text(_bvh_text())
    return read_bvh(path)


def test_reads_hierarchy_channels_and_motion(small_clip):
    clip = small_clip
    assert clip.names == ("Hips", "Chest", "Chest_End", "Arm", "Hand", "Hand_End")
    assert clip.parents.tolist() == [-1, 0, 1, 0, 3, 4]
    assert clip.channels[0][3:] == ("Zrotation", "Xrotation", "Yrotation")
    assert clip.channels[3] == ("Xrotation", "Yrotation", "Zrotation")
    assert clip.channels[2] == () and clip.is_end_site(2)
    assert clip.channel_start.tolist() == [0, 6, 9, 9, 12, 18]
    assert clip.motion.shape == (4, 18)
    assert clip.frame_time == pytest.approx(0.0333333)
    assert clip.fps == pytest.approx(30.0, rel=1e-5)
    np.testing.assert_allclose(clip.offsets[5], [2, 0, 0])


def test_fk_rest_pose(small_clip):
    pos = forward_kinematics(small_clip)
    assert pos.shape == (4, 6, 3)
    np.testing.assert_allclose(pos[0], [[0, 0, 0], [0, 10, 0], [0, 15, 0], [5, 0, 0], [15, 0, 0],
                                        [17, 0, 0]], atol=1e-9)


def test_fk_known_rotations(small_clip):
    pos = forward_kinematics(small_clip)
    # Chest turned 90 deg about Z: its end site (0,5,0) swings to -x.
    np.testing.assert_allclose(pos[1, 2], [-5, 10, 0], atol=1e-9)
    # Arm turned 90 deg about Y: the hand (10,0,0) goes to -z; the end site follows.
    np.testing.assert_allclose(pos[2, 4], [5, 0, -10], atol=1e-9)
    np.testing.assert_allclose(pos[2, 5], [5, 0, -12], atol=1e-9)


def test_fk_euler_order_and_translation_channels(small_clip):
    pos, rot = forward_kinematics(small_clip, return_rotations=True)
    arm_rot = _rot("X", 30) @ _rot("Y", 45) @ _rot("Z", 60)  # XYZ channels: R = Rx Ry Rz
    np.testing.assert_allclose(rot[3, 3], arm_rot, atol=1e-12)
    root = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(pos[3, 3], root + [5, 0, 0], atol=1e-9)
    # The Hand's position channels (4,1,0) replace its (10,0,0) offset.
    np.testing.assert_allclose(pos[3, 4], root + [5, 0, 0] + arm_rot @ [4, 1, 0], atol=1e-9)
    # A wrong composition order gives a clearly different matrix (the test can fail).
    assert not np.allclose(arm_rot, _rot("Z", 60) @ _rot("Y", 45) @ _rot("X", 30), atol=1e-3)


def test_euler_to_matrix_matches_reference_for_any_order():
    rng = np.random.default_rng(1)
    for order in ("ZXY", "XYZ", "ZYX", "YXZ"):
        angles = rng.uniform(-180, 180, size=3)
        ref = _rot(order[0], angles[0]) @ _rot(order[1], angles[1]) @ _rot(order[2], angles[2])
        np.testing.assert_allclose(euler_to_matrix(angles, order), ref, atol=1e-12)


def test_fk_subset_evaluates_ancestors_only(small_clip):
    pos = forward_kinematics(small_clip, joints=[small_clip.index("Chest_End")])
    assert np.isfinite(pos[:, [0, 1, 2]]).all()
    assert np.isnan(pos[:, [3, 4, 5]]).all()


def test_truncated_motion_keeps_complete_frames():
    text = _bvh_text()
    cut = text[: text.rstrip().rfind("\n")] + "\n1 2 3\n"  # last frame incomplete
    clip = parse_bvh(cut)
    assert clip.num_frames == 3


@pytest.mark.parametrize("text", [
    "not a bvh",
    "HIERARCHY\nROOT A\n{\n OFFSET 0 0\n}\nMOTION\nFrames: 1\nFrame Time: 0.1\n0\n",
    "HIERARCHY\nROOT A\n{\n OFFSET 0 0 0\n CHANNELS 1 Wrotation\n}\nMOTION\nFrames: 1\nFrame Time: 0.1\n0\n",
    "HIERARCHY\nROOT A\n{\n OFFSET 0 0 0\n CHANNELS 1 Xrotation\n}\nMOTION\nFrames: 1\nFrame Time: 0\n0\n",
])
def test_malformed_bvh_raises_input_error(text):
    with pytest.raises(InputError):
        parse_bvh(text)


def test_missing_file_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_bvh(tmp_path / "nope.bvh")


@pytest.mark.parametrize("femur,scale", [(45.0, 0.01), (0.45, 1.0), (450.0, 0.001), (17.7, 0.0254)])
def test_unit_scale_from_femur(femur, scale):
    assert unit_scale(femur) == scale


# ---------------------------------------------------------------------------------------------
# synthetic rigs with the real joint names


def _write_rig_bvh(joints: list[tuple[str, str, tuple[float, float, float]]], frames: np.ndarray,
                   root_channels: str = "Xposition Yposition Zposition Zrotation Xrotation Yrotation"
                   ) -> str:
    """``joints``: (name, parent, offset) in depth-first order; every non-root joint has 3 ZXY
    rotation channels; ``frames`` (T, C) motion."""
    children: dict[str, list] = {}
    for name, parent, offset in joints:
        children.setdefault(parent, []).append((name, offset))
    lines = ["HIERARCHY"]

    def emit(name, offset, depth, is_root=False):
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if is_root else 'JOINT'} {name}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {offset[0]} {offset[1]} {offset[2]}")
        chans = f"6 {root_channels}" if is_root else "3 Zrotation Xrotation Yrotation"
        lines.append(f"{pad}  CHANNELS {chans}")
        for child, child_offset in children.get(name, []):
            emit(child, child_offset, depth + 1)
        if name not in children:
            lines.extend([f"{pad}  End Site", pad + "  {", f"{pad}    OFFSET 0 1 0", pad + "  }"])
        lines.append(pad + "}")

    root_name, _, root_offset = joints[0]
    emit(root_name, root_offset, 0, is_root=True)
    lines += ["MOTION", f"Frames: {len(frames)}", "Frame Time: 0.016667"]
    lines += [" ".join(f"{v:.5f}" for v in row) for row in frames]
    return "\n".join(lines) + "\n"


# CC-like rig in cm, Y-up, facing +z, subject's left = +x; all rotations zero = standing.
CC_JOINTS = [
    ("RL_BoneRoot", None, (0, 0, 0)),
    ("CC_Base_Hip", "RL_BoneRoot", (0, 100, 0)),
    ("CC_Base_L_Thigh", "CC_Base_Hip", (9, -2, 0)),
    ("CC_Base_L_Calf", "CC_Base_L_Thigh", (0, -46, 0)),
    ("CC_Base_L_Foot", "CC_Base_L_Calf", (0, -44, 0)),
    ("CC_Base_R_Thigh", "CC_Base_Hip", (-9, -2, 0)),
    ("CC_Base_R_Calf", "CC_Base_R_Thigh", (0, -46, 0)),
    ("CC_Base_R_Foot", "CC_Base_R_Calf", (0, -44, 0)),
    ("CC_Base_Spine02", "CC_Base_Hip", (0, 45, 0)),
    ("CC_Base_Head", "CC_Base_Spine02", (0, 20, 0)),
    ("CC_Base_L_Upperarm", "CC_Base_Spine02", (17, 4, 0)),
    ("CC_Base_L_Forearm", "CC_Base_L_Upperarm", (0, -27, 0)),
    ("CC_Base_L_Hand", "CC_Base_L_Forearm", (0, -25, 0)),
    ("CC_Base_R_Upperarm", "CC_Base_Spine02", (-17, 4, 0)),
    ("CC_Base_R_Forearm", "CC_Base_R_Upperarm", (0, -27, 0)),
    ("CC_Base_R_Hand", "CC_Base_R_Forearm", (0, -25, 0)),
]


def _cc_frames(num_frames: int = 5) -> np.ndarray:
    frames = np.zeros((num_frames, 6 + 3 * (len(CC_JOINTS) - 1)))
    frames[0, 6:] = 40.0  # frame 0: a different pose that the rig must drop (prepended T-pose)
    frames[1:, 2] = np.arange(1, num_frames) * 1.0  # walk 1 cm per frame along +z
    return frames


def test_cc_rig_mapping_synthetic():
    clip = parse_bvh(_write_rig_bvh(CC_JOINTS, _cc_frames()), source="cc.bvh")
    assert detect_rig(clip) is CC_BASE
    joints = clip_to_h36m(clip)
    assert joints.shape == (4, 17, 3) and joints.dtype == np.float32  # frame 0 dropped
    j = {name: joints[0, i] for i, name in enumerate(H36M17.joints)}
    assert j["LHip"][0] > j["RHip"][0]                     # left = +x for a subject facing +z
    lengths = bone_lengths(joints)
    assert lengths["LHip-LKnee"] == pytest.approx(0.46, abs=0.01)  # widened hip, same knee
    assert lengths["Hip-LHip"] == pytest.approx(0.133 / 0.897 * 0.90, abs=0.002)
    assert lengths["Thorax-LShoulder"] == pytest.approx(0.151 / 0.897 * 0.90, abs=0.002)
    assert j["LFoot"][1] == pytest.approx(0.08, abs=1e-4)  # floor at y = 0, ankles 8 cm up
    head_joint_y = j["LFoot"][1] + 0.90 + 0.02 + 0.45 + 0.20
    assert j["Neck/Nose"][2] > j["Thorax"][2] + 0.05          # the nose is in front (+z)
    assert j["Head"][1] > j["Neck/Nose"][1] > head_joint_y   # head point above the nose
    np.testing.assert_allclose(joints[1, :, 2] - joints[0, :, 2], 0.01, atol=1e-6)


# Bandai-like rig: bones along local +x, the root turns local +x to world up (Rz 90), so the face
# (local +y) looks along world -x and the subject's left (local +z) is world +z.
BANDAI_JOINTS = [
    ("Hips", None, (0, 90, 0)),
    ("Spine", "Hips", (15, 0, 0)), ("Chest", "Spine", (15, 0, 0)), ("Neck", "Chest", (16, 0, 0)),
    ("Head", "Neck", (6, 0, 0)),
    ("Shoulder_L", "Chest", (12, 0, 3)), ("UpperArm_L", "Shoulder_L", (0, 0, 8)),
    ("LowerArm_L", "UpperArm_L", (0, 0, 24)), ("Hand_L", "LowerArm_L", (0, 0, 22)),
    ("Shoulder_R", "Chest", (12, 0, -3)), ("UpperArm_R", "Shoulder_R", (0, 0, -8)),
    ("LowerArm_R", "UpperArm_R", (0, 0, -24)), ("Hand_R", "LowerArm_R", (0, 0, -22)),
    ("UpperLeg_L", "Hips", (-3, 0, 7)), ("LowerLeg_L", "UpperLeg_L", (-39, 0, 0)),
    ("Foot_L", "LowerLeg_L", (-41, 0, 0)),
    ("UpperLeg_R", "Hips", (-3, 0, -7)), ("LowerLeg_R", "UpperLeg_R", (-39, 0, 0)),
    ("Foot_R", "LowerLeg_R", (-41, 0, 0)),
]


def test_bandai_rig_mapping_synthetic():
    frames = np.zeros((3, 6 + 3 * (len(BANDAI_JOINTS) - 1)))
    frames[:, 1] = 90.0
    frames[:, 3] = 90.0  # root Zrotation
    clip = parse_bvh(_write_rig_bvh(BANDAI_JOINTS, frames), source="bandai.bvh")
    assert detect_rig(clip) is BANDAI
    joints = clip_to_h36m(clip)
    assert joints.shape == (3, 17, 3)  # Bandai keeps frame 0
    j = {name: joints[0, i] for i, name in enumerate(H36M17.joints)}
    assert j["LHip"][2] > j["RHip"][2] and j["LWrist"][2] > j["RWrist"][2]
    assert j["Head"][1] > j["Neck/Nose"][1] > j["Thorax"][1] > j["Spine"][1] > j["Hip"][1]
    assert j["Neck/Nose"][0] < j["Thorax"][0] - 0.05   # nose towards the face direction (-x)
    lengths = bone_lengths(joints)
    assert lengths["LKnee-LFoot"] == pytest.approx(0.41, abs=1e-3)
    assert lengths["Hip-LHip"] == pytest.approx(lengths["Hip-RHip"], abs=1e-6)


def test_unknown_rig_raises_input_error():
    with pytest.raises(InputError, match="unknown rig"):
        detect_rig(parse_bvh(_bvh_text()))


# ---------------------------------------------------------------------------------------------
# real archives (../shared)


def _first_bvh_members(archive: Path, count: int, dest: Path) -> list[Path]:
    """Extract the first ``count`` BVH files of an archive (streaming, stops early)."""
    out = []
    with tarfile.open(archive, "r|*") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".bvh"):
                target = dest / Path(member.name).name
                target.write_bytes(tar.extractfile(member).read())
                out.append(target)
                if len(out) == count:
                    break
    return out


HUMAN_RANGES = {  # metres, generous adult ranges
    "LHip-LKnee": (0.30, 0.55), "LKnee-LFoot": (0.30, 0.55), "LShoulder-LElbow": (0.20, 0.38),
    "LElbow-LWrist": (0.18, 0.33), "Hip-Spine": (0.15, 0.35), "Thorax-Neck/Nose": (0.1, 0.3),
}


@pytest.mark.shared
@needs_shared
@pytest.mark.parametrize("archive,rig", [("cmu_subset.tar.xz", CC_BASE),
                                         ("bandai_namco_2.tar.xz", BANDAI)])
def test_real_clips_have_human_symmetric_bones(tmp_path, archive, rig):
    files = _first_bvh_members(SHARED / "data" / "mocap" / archive, 3, tmp_path)
    assert len(files) == 3
    for path in files:
        clip = read_bvh(path)
        assert detect_rig(clip) is rig
        joints = clip_to_h36m(clip)
        assert np.isfinite(joints).all()
        lengths = bone_lengths(joints)
        for bone, (low, high) in HUMAN_RANGES.items():
            assert low < lengths[bone] < high, (path.name, bone, lengths[bone])
        mirrored = 0
        for bone, length in lengths.items():
            parts = bone.split("-")
            if not any(p.startswith("L") for p in parts):
                continue
            mirror = "-".join("R" + p[1:] if p.startswith("L") else p for p in parts)
            assert length == pytest.approx(lengths[mirror], rel=0.03), (bone, mirror)
            mirrored += 1
        assert mirrored == 6
        # Y up: head above hips above feet on average.
        mean = joints.mean(axis=0)
        assert mean[H36M17.index("Head"), 1] > mean[0, 1] > mean[H36M17.index("LFoot"), 1]
