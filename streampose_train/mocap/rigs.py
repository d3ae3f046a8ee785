"""Map mocap rigs (BVH skeletons) to the 17 Human3.6M joints, in metres.

Two rigs are supported and detected from joint names:

``cc_base`` -- the CMU subset retargeted to a Character Creator rig (~100 joints, ``CC_Base_*``):
    RHip/LHip = ``CC_Base_{R,L}_Thigh``, knees = ``*_Calf``, feet (= ankles) = ``*_Foot``,
    shoulders = ``*_Upperarm``, elbows = ``*_Forearm``, wrists = ``*_Hand``.
``bandai`` -- Bandai Namco Research Motion Dataset 2 (21 joints):
    RHip/LHip = ``UpperLeg_{R,L}``, knees = ``LowerLeg_*``, feet = ``Foot_*``,
    shoulders = ``UpperArm_*``, elbows = ``LowerArm_*``, wrists = ``Hand_*``.

Torso and head joints are synthesised the same way for both rigs, and deliberately the same way
:data:`streampose.skeleton.BLAZEPOSE_TO_H36M` synthesises them from BlazePose at inference time,
so the 2D a lifter is trained on means the same thing as the 2D it sees on video:

* ``LHip``/``RHip`` = the rig's thigh joints moved apart symmetrically to Human3.6M's hip width
  relative to leg length (0.148 x leg; the rigs' thigh joints are much closer together, see
  :func:`_set_half_width`); the shoulders likewise (0.168 x leg);
* ``Hip``    = midpoint of the two hip joints;
* ``Thorax`` = midpoint of the two shoulder (upper-arm) joints;
* ``Spine``  = midpoint of Hip and Thorax (= mean of hips and shoulders);
* ``Neck/Nose`` = the nose tip;
* ``Head``   = mid-ears + (mid-eyes - mid-mouth), i.e. a point on the upper back of the head,
  about 5 cm above eye level (the same recipe as for BlazePose; the skull vertex is ~6 cm higher).

Neither rig has nose/ear/mouth joints (CC has eyes and a jaw, Bandai only a ``Head`` joint at the
skull base), so the face points are fixed offsets in the head joint's frame.  The offsets below
are anthropometric estimates relative to the CC rig's ``CC_Base_Head`` joint, checked against
that rig's eye joints (which sit at 8.2 cm up / 8.2 cm forward of it); for other rigs they are
scaled by leg length (thigh + shin) relative to the CC rig's 0.975 m.  This makes the face
points approximate (a few cm), which is below the 2D detector's own error for them.

Mean bone lengths in metres (``python -m streampose_train.mocap.dataset --stats``), next to the
Human3.6M means:

=====================  ======  ======  =======
bone                   CMU/CC  Bandai  H36M(*)
=====================  ======  ======  =======
Hip-R/LHip             0.145   0.119   0.133
R/LHip-Knee            0.478   0.391   0.443
Knee-Foot (ankle)      0.498   0.410   0.454
Hip-Spine              0.245   0.198   0.233
Spine-Thorax           0.245   0.198   0.257
Thorax-Neck/Nose       0.208   0.174   0.121
Neck/Nose-Head         0.152   0.125   0.115
Thorax-R/LShoulder     0.164   0.135   0.151
Shoulder-Elbow         0.257   0.230   0.279
Elbow-Wrist            0.257   0.223   0.252
=====================  ======  ======  =======

(*) H36M: approximate means over its subjects as commonly quoted in the literature.

Each archive is retargeted to *one* skeleton (CC: a ~1.85 m body, Bandai: ~1.5 m), so bone lengths
do not vary within a dataset.  Thorax-Neck/Nose is longer than in H36M because H36M's "Neck/Nose"
marker sits between the chin and the nose while ours is the nose tip, matching what BlazePose
reports at inference.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streampose.errors import InputError
from streampose_train.mocap.bvh import BvhClip, forward_kinematics
from streampose.skeleton import H36M17

# Face landmarks in a canonical head frame (x = subject's left, y = up, z = forward), metres, for
# the CC rig's head joint and its 0.975 m leg.  Eyes: measured on the rig.  Nose tip: 3.8 cm below
# and 3 cm in front of the eyeball centres.  Ear canals: 1.5 cm below eye level, 8 cm behind the
# eyeball centres.  Mouth (corners' midpoint): 7 cm below the eyes, 1 cm in front of them.
_REF_LEG_LENGTH = 0.975
_FACE_CANONICAL = {
    "eyes": np.array([0.0, 0.082, 0.082]),
    "nose": np.array([0.0, 0.044, 0.112]),
    "ears": np.array([0.0, 0.067, 0.002]),
    "mouth": np.array([0.0, 0.012, 0.092]),
}
# Human3.6M mean: hip half-width 0.133 m over a 0.897 m leg (thigh 0.443 + shin 0.454).
# Shoulders: 0.151 m from the thorax.
HIP_HALF_WIDTH_PER_LEG = 0.133 / 0.897
SHOULDER_HALF_WIDTH_PER_LEG = 0.151 / 0.897
ANKLE_HEIGHT = 0.08  # metres above the floor, standing
NOSE_OFFSET = _FACE_CANONICAL["nose"]
HEAD_OFFSET = _FACE_CANONICAL["ears"] + _FACE_CANONICAL["eyes"] - _FACE_CANONICAL["mouth"]


@dataclass(frozen=True)
class RigSpec:
    """How one BVH rig maps to H36M-17.

    Attributes:
        name: rig id.
        joints: H36M limb joint name -> BVH joint name (hips, knees, feet, shoulders, elbows,
            wrists); torso and head joints are synthesised (see module docs).
        head: the BVH head joint whose frame carries the face offsets.
        head_axes: ``(3, 3)`` matrix whose columns are the canonical left/up/forward axes written
            in the head joint's local frame.
        world_from_file: ``(3, 3)`` rotation from the file's world axes to ours (Y up).
        drop_first_frame: the archive prepends a T-pose frame to every clip.
    """

    name: str
    joints: dict[str, str]
    head: str
    head_axes: np.ndarray
    world_from_file: np.ndarray
    drop_first_frame: bool


def _limbs(hip, knee, foot, shoulder, elbow, wrist) -> dict[str, str]:
    """H36M limb joint -> rig joint, from one name builder per joint taking the side "L"/"R"."""
    out = {}
    for side in "LR":
        out.update({f"{side}Hip": hip(side), f"{side}Knee": knee(side), f"{side}Foot": foot(side),
                    f"{side}Shoulder": shoulder(side), f"{side}Elbow": elbow(side),
                    f"{side}Wrist": wrist(side)})
    return out


CC_BASE = RigSpec(
    name="cc_base",
    joints=_limbs(lambda s: f"CC_Base_{s}_Thigh", lambda s: f"CC_Base_{s}_Calf",
                  lambda s: f"CC_Base_{s}_Foot", lambda s: f"CC_Base_{s}_Upperarm",
                  lambda s: f"CC_Base_{s}_Forearm", lambda s: f"CC_Base_{s}_Hand"),
    head="CC_Base_Head",
    # CC head joint: +x left, +y up, +z forward (measured from its eye joints).
    head_axes=np.eye(3),
    world_from_file=np.eye(3),  # the root rotation already turns the rig Y-up
    drop_first_frame=True,
)

BANDAI = RigSpec(
    name="bandai",
    joints=_limbs(lambda s: f"UpperLeg_{s}", lambda s: f"LowerLeg_{s}", lambda s: f"Foot_{s}",
                  lambda s: f"UpperArm_{s}", lambda s: f"LowerArm_{s}", lambda s: f"Hand_{s}"),
    head="Head",
    # Bandai bones point along local +x (up the neck), +y is the face direction, +z the left.
    head_axes=np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
    world_from_file=np.eye(3),  # Y-up already
    drop_first_frame=False,
)

RIGS = {r.name: r for r in (CC_BASE, BANDAI)}


def detect_rig(clip: BvhClip) -> RigSpec:
    """Pick the rig whose joint names the clip has; :class:`InputError` when none fits."""
    names = set(clip.names)
    for rig in RIGS.values():
        if rig.head in names and all(j in names for j in rig.joints.values()):
            return rig
    sample = ", ".join(clip.names[:6])
    raise InputError(f"{clip.source or 'BVH clip'}: unknown rig (joints {sample}, ...); "
                     f"supported rigs: {', '.join(RIGS)}")


# Plausible unit scales from file units to metres.
_UNIT_SCALES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254}


def unit_scale(femur_length_file_units: float) -> float:
    """File-units -> metres factor from a measured femur (hip-knee) length.

    A human femur is 0.35-0.55 m; pick the standard unit that puts the measured length nearest to
    0.45 m (in log space), so a cm, mm, inch or metre file all come out right.
    """
    if not np.isfinite(femur_length_file_units) or femur_length_file_units <= 0:
        raise InputError(f"cannot infer mocap units from femur length {femur_length_file_units}")
    return min(_UNIT_SCALES.values(),
               key=lambda s: abs(np.log(femur_length_file_units * s / 0.45)))


def clip_to_h36m(clip: BvhClip, rig: RigSpec | None = None) -> np.ndarray:
    """Forward kinematics + rig mapping: a BVH clip as H36M-17 joints in metres.

    Args:
        clip: parsed BVH with ``T`` frames.
        rig: the rig spec, auto-detected from joint names when ``None``.

    Returns:
        ``(T', 17, 3)`` float32 metres, world axes Y up (``T' = T - 1`` when the rig drops its
        prepended T-pose frame).
    """
    rig = rig or detect_rig(clip)
    limb_idx = {h36m: clip.index(src) for h36m, src in rig.joints.items()}
    head_idx = clip.index(rig.head)
    positions, rotations = forward_kinematics(
        clip, joints=list(limb_idx.values()) + [head_idx], return_rotations=True)
    if rig.drop_first_frame:
        positions, rotations = positions[1:], rotations[1:]
    if positions.shape[0] == 0:
        raise InputError(f"{clip.source or 'BVH clip'}: no frames after dropping the T-pose")
    positions = positions @ rig.world_from_file.T
    head_rot = rig.world_from_file @ rotations[:, head_idx] @ rig.head_axes  # (T,3,3) canonical

    femurs = [np.linalg.norm(positions[:, limb_idx[f"{s}Knee"]] - positions[:, limb_idx[f"{s}Hip"]],
                             axis=-1).mean() for s in "LR"]
    scale = unit_scale(float(np.mean(femurs)))
    positions = positions * scale

    out = np.zeros((positions.shape[0], H36M17.num_joints, 3))
    for name, j in limb_idx.items():
        out[:, H36M17.index(name)] = positions[:, j]
    leg = np.mean([
        np.linalg.norm(out[:, H36M17.index(f"{s}Knee")] - out[:, H36M17.index(f"{s}Hip")], axis=-1)
        + np.linalg.norm(out[:, H36M17.index(f"{s}Foot")] - out[:, H36M17.index(f"{s}Knee")],
                         axis=-1)
        for s in "LR"])
    _set_half_width(out, "LHip", "RHip", HIP_HALF_WIDTH_PER_LEG * leg)
    _set_half_width(out, "LShoulder", "RShoulder", SHOULDER_HALF_WIDTH_PER_LEG * leg)
    hip = 0.5 * (out[:, H36M17.index("LHip")] + out[:, H36M17.index("RHip")])
    thorax = 0.5 * (out[:, H36M17.index("LShoulder")] + out[:, H36M17.index("RShoulder")])
    out[:, H36M17.index("Hip")] = hip
    out[:, H36M17.index("Thorax")] = thorax
    out[:, H36M17.index("Spine")] = 0.5 * (hip + thorax)

    face_scale = leg / _REF_LEG_LENGTH
    head_pos = positions[:, head_idx]
    out[:, H36M17.index("Neck/Nose")] = head_pos + face_scale * head_rot @ NOSE_OFFSET
    out[:, H36M17.index("Head")] = head_pos + face_scale * head_rot @ HEAD_OFFSET
    _put_on_floor(out)
    return out.astype(np.float32)


def _set_half_width(joints: np.ndarray, left_name: str, right_name: str, half_width: float) -> None:
    """Move a left/right joint pair (in place) along their common axis to ``half_width`` from
    their midpoint, which stays put.

    ``joints``: ``(T, 17, 3)``.  Both rigs put the thigh joints close together (CC: 0.10 m, Bandai:
    0.065 m from the middle) while Human3.6M's hips and the hip keypoints of 2D detectors sit
    further out (H36M: 0.133 m for a 0.90 m leg); the shoulders differ the other way between the
    rigs (CC 0.184 m, Bandai 0.10 m; H36M 0.151 m).
    """
    left, right = H36M17.index(left_name), H36M17.index(right_name)
    middle = 0.5 * (joints[:, left] + joints[:, right])
    axis = joints[:, left] - joints[:, right]
    axis /= np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-9)
    joints[:, left] = middle + half_width * axis
    joints[:, right] = middle - half_width * axis


def _put_on_floor(joints: np.ndarray) -> None:
    """Shift a clip vertically (in place) so its floor is ``y = 0``.

    ``joints``: ``(T, 17, 3)``.  Rigs put their origin anywhere (some CMU clips have the hips at
    y = 0).  The feet joints are ankles, ~8 cm above the floor when standing; the floor is taken
    as the 5th percentile over frames of the lower ankle, minus that ankle height.
    """
    feet = joints[:, [H36M17.index("LFoot"), H36M17.index("RFoot")], 1].min(axis=1)
    joints[..., 1] -= np.percentile(feet, 5) - ANKLE_HEIGHT


def bone_lengths(joints3d: np.ndarray) -> dict[str, float]:
    """Mean length of every H36M bone: ``(T, 17, 3)`` -> ``{"Parent-Child": metres}``."""
    out = {}
    for child, parent in H36M17.bones:
        length = np.linalg.norm(joints3d[:, child] - joints3d[:, parent], axis=-1).mean()
        out[f"{H36M17.joints[parent]}-{H36M17.joints[child]}"] = float(length)
    return out
