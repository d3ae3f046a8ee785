"""Make mocap skeletons look like what BlazePose reports, and widen the training poses.

Three data transforms applied to world-frame H36M-17 mocap (``(T, 17, 3)`` metres, Y up) before it
is filmed:

* :func:`blazepose_bone_scales` -- our mocap rigs are retargeted, stylised bodies (CMU's Character
  Creator rig has upper arms of 0.26 x leg length); BlazePose's keypoints, measured on real video
  through its own metric world landmarks (:mod:`streampose_train.blazepose_real`), sit at other
  proportions (upper arms 0.34 x leg, shoulders 31 % wider, hips 10 % narrower).  A lifter trained
  on the rig's proportions returns them, and is scored against real people.  The factors rescale
  each bone group to the measured ratio (median over the measured videos, so one clip cannot dominate).
* :func:`random_bone_scales` -- people differ: a log-normal factor per bone group and clip
  (left and right together) so the lifter does not learn one body.
* :func:`body_scale` -- each rig is one body (CMU's 1.85 m, Bandai's 1.5 m); scaling every clip to
  an adult leg length (:data:`ADULT_LEG_M`) with a per-clip spread teaches metric sizes of people
  rather than of two rigs.
* :func:`rare_pose_weights` -- walking and standing dominate mocap; frames with a low pelvis
  (squat, sit, kneel), hands above the head, hands together, or a bent torso are drawn more often.

Bones are rescaled keeping their directions, rebuilding the pose outward from the root.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from streampose.skeleton import H36M17

CALIBRATION = Path(__file__).parent / "calibration" / "blazepose_real.json"

_J = H36M17.index
#: Bone groups by the proportion that measures them (``blazepose_real.PROPORTIONS``), as (child, parent).
BONE_GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "hip_width": (("RHip", "Hip"), ("LHip", "Hip")),
    "shoulder_width": (("RShoulder", "Thorax"), ("LShoulder", "Thorax")),
    "thigh": (("RKnee", "RHip"), ("LKnee", "LHip")),
    "shank": (("RFoot", "RKnee"), ("LFoot", "LKnee")),
    "upper_arm": (("RElbow", "RShoulder"), ("LElbow", "LShoulder")),
    "forearm": (("RWrist", "RElbow"), ("LWrist", "LElbow")),
    "torso": (("Spine", "Hip"), ("Thorax", "Spine")),
    "thorax_nose": (("Neck/Nose", "Thorax"),),
    "nose_head": (("Head", "Neck/Nose"),),
}

_BONES = np.array(H36M17.bones)
_BONE_INDEX = {(int(c), int(p)): k for k, (c, p) in enumerate(_BONES)}


def _group_bones(group: str) -> list[int]:
    return [_BONE_INDEX[(_J(c), _J(p))] for c, p in BONE_GROUPS[group]]


_ORDER = H36M17.bones_root_outward


def rescale_bones(joints: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``joints (..., 17, 3)`` with bone ``k`` (``H36M17.bones`` order) scaled by ``factors[k]``.

    The root stays where it is; every bone keeps its direction.
    """
    joints = np.asarray(joints, dtype=np.float64)
    vectors = joints[..., _BONES[:, 0], :] - joints[..., _BONES[:, 1], :]
    out = joints.copy()
    for k in _ORDER:
        child, parent = _BONES[k]
        out[..., child, :] = out[..., parent, :] + factors[k] * vectors[..., k, :]
    return out.astype(np.float32)


def measured_proportions(calibration: Path = CALIBRATION) -> dict[str, float]:
    """Median over the measured videos of each BlazePose world-landmark proportion (x leg length)."""
    report = json.loads(Path(calibration).read_text())
    per_video = [v["world_proportions"] for v in report["videos"].values() if v.get("world_proportions")]
    return {name: float(np.median([v[name] for v in per_video])) for name in BONE_GROUPS}


def skeleton_proportions(joints: np.ndarray) -> dict[str, float]:
    """The same proportions of mocap ``joints (N, 17, 3)``: median bone length / median leg length."""
    lengths = np.linalg.norm(joints[..., _BONES[:, 0], :] - joints[..., _BONES[:, 1], :], axis=-1)
    median = np.median(lengths.reshape(-1, len(_BONES)), axis=0)
    leg = np.mean([median[k] for k in _group_bones("thigh") + _group_bones("shank")]) * 2
    # Widths span both sides of the root/thorax and the torso both of its halves: two bones each.
    doubled = {"hip_width", "shoulder_width", "torso"}
    return {name: float(np.mean([median[k] for k in _group_bones(name)])) * (2 if name in doubled else 1) / leg
            for name in BONE_GROUPS}


def blazepose_bone_scales(joints: np.ndarray, calibration: Path = CALIBRATION) -> np.ndarray:
    """``(B,)`` factors that give a skeleton like ``joints (N, 17, 3)`` BlazePose's measured proportions.

    The legs' total length is kept (the proportions are relative to it), so thigh and shank are
    rescaled by their measured share of it.
    """
    target = measured_proportions(calibration)
    source = skeleton_proportions(joints)
    factors = np.ones(len(_BONES))
    for name in BONE_GROUPS:
        for k in _group_bones(name):
            factors[k] = target[name] / source[name]
    leg_factor = (target["thigh"] + target["shank"]) / (source["thigh"] + source["shank"])
    for k in _group_bones("thigh") + _group_bones("shank"):
        factors[k] /= leg_factor
    return factors


#: Hip-to-ankle length of an adult of 1.70 m (thigh 0.245 H + shank 0.246 H, Drillis & Contini).
ADULT_LEG_M = 0.835


def leg_length(joints: np.ndarray) -> float:
    """Median hip-knee-ankle length of ``joints (N, 17, 3)`` (both legs), metres."""
    legs = [np.linalg.norm(joints[:, _J(h)] - joints[:, _J(k)], axis=-1) + np.linalg.norm(joints[:, _J(k)] - joints[:, _J(a)], axis=-1)
            for h, k, a in (("RHip", "RKnee", "RFoot"), ("LHip", "LKnee", "LFoot"))]
    return float(np.median(np.concatenate(legs)))


def body_scale(joints: np.ndarray, rng: np.random.Generator | None = None, spread: float = 0.0) -> float:
    """Uniform factor taking ``joints``' legs to :data:`ADULT_LEG_M` (times a log-normal spread)."""
    factor = ADULT_LEG_M / max(leg_length(joints), 1e-6)
    if rng is not None and spread > 0:
        factor *= float(np.exp(rng.normal(0.0, spread)))
    return factor


def random_bone_scales(rng: np.random.Generator, spread: float) -> np.ndarray:
    """``(B,)`` log-normal factors, one per bone group (both sides alike), std ``spread`` in log space."""
    factors = np.ones(len(_BONES))
    if spread <= 0:
        return factors
    for name in BONE_GROUPS:
        value = float(np.exp(rng.normal(0.0, spread)))
        for k in _group_bones(name):
            factors[k] = value
    return factors


def rare_pose_weights(joints: np.ndarray, boost: float) -> np.ndarray:
    """``(T,)`` sampling weights ``1 + boost * rarity``, rarity in ``[0, 4]`` summed over four cues.

    Args:
        joints: ``(T, 17, 3)`` world metres, Y up.
        boost: 0 gives uniform weights.

    Cues (each in ``[0, 1]``): pelvis lowered relative to the clip's standing height (squat, sit,
    kneel, lie), a wrist above the head, the wrists together, the torso bent away from vertical.
    """
    if boost <= 0:
        return np.ones(len(joints))
    hip, head = joints[:, _J("Hip")], joints[:, _J("Head")]
    feet = np.minimum(joints[:, _J("LFoot"), 1], joints[:, _J("RFoot"), 1])
    leg = np.median(np.linalg.norm(joints[:, _J("RHip")] - joints[:, _J("RKnee")], axis=-1)
                    + np.linalg.norm(joints[:, _J("RKnee")] - joints[:, _J("RFoot")], axis=-1))
    pelvis_height = (hip[:, 1] - feet) / max(leg, 1e-6)                    # ~1 standing
    lowered = np.clip((0.85 - pelvis_height) / 0.45, 0.0, 1.0)
    wrists = joints[:, [_J("LWrist"), _J("RWrist")]]
    overhead = np.clip((wrists[:, :, 1].max(axis=1) - head[:, 1]) / 0.15, 0.0, 1.0)
    together = np.clip(1.0 - np.linalg.norm(wrists[:, 0] - wrists[:, 1], axis=-1) / (0.2 * leg), 0.0, 1.0)
    spine = joints[:, _J("Thorax")] - hip
    cos_up = spine[:, 1] / np.maximum(np.linalg.norm(spine, axis=-1), 1e-9)
    bent = np.clip((0.9 - cos_up) / 0.6, 0.0, 1.0)
    return 1.0 + boost * (lowered + overhead + together + bent)


#: Knee angle limits (degrees between thigh and shank): full extension and deep flexion.
KNEE_RANGE = (40.0, 179.0)


def _smooth_noise(rng: np.random.Generator, count: int, frames_per_change: float) -> np.ndarray:
    """``(count,)`` smooth values in ``[0, 1]``: a random walk low-passed over ``frames_per_change``."""
    steps = max(2, int(np.ceil(count / max(frames_per_change, 1.0))) + 1)
    knots = rng.uniform(0.0, 1.0, steps)
    return np.interp(np.linspace(0, steps - 1, count), np.arange(steps), knots)


def perturb_knees(joints: np.ndarray, rng: np.random.Generator, probability: float = 0.5,
                  frames_per_change: float = 60.0) -> np.ndarray:
    """Extend or flex the knees of a clip, smoothly over time, within anatomical limits.

    Mocap is mostly dynamic: CMU's median knee angle is 140 deg (90 % of frames below 158), while
    people on video stand and walk with nearly straight legs (BlazePose's world landmarks: median
    149-165 deg, 90th percentile 168-173 on the shared videos).  For each leg, with ``probability``,
    the shank is turned about the knee in the leg's own plane toward full extension or further
    flexion by a smoothly varying share, so the lifter sees straight and deeply bent legs in
    every motion.

    Args:
        joints: ``(T, 17, 3)`` world metres.
        rng: random generator.
        probability: chance per leg and clip of a perturbation.
        frames_per_change: time scale of the variation (frames).

    Returns:
        ``(T, 17, 3)`` float32; the thigh and everything above the knee unchanged.
    """
    out = np.asarray(joints, dtype=np.float64).copy()
    for hip, knee, ankle in ((_J("RHip"), _J("RKnee"), _J("RFoot")), (_J("LHip"), _J("LKnee"), _J("LFoot"))):
        if rng.random() >= probability:
            continue
        thigh = out[:, hip] - out[:, knee]                       # knee -> hip
        shank = out[:, ankle] - out[:, knee]                     # knee -> ankle
        cos = (thigh * shank).sum(-1) / np.maximum(np.linalg.norm(thigh, axis=-1) * np.linalg.norm(shank, axis=-1), 1e-9)
        angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))   # (T,)
        share = _smooth_noise(rng, len(out), frames_per_change)
        if rng.random() < 0.7:                                   # mostly toward straight legs
            target = angle + share * (KNEE_RANGE[1] - angle)
        else:
            target = angle - share * np.clip(angle - 90.0, 0.0, None)
        target = np.clip(target, *KNEE_RANGE)
        axis = np.cross(thigh, shank)
        norm = np.linalg.norm(axis, axis=-1, keepdims=True)
        planar = norm[:, 0] > 1e-6                               # a fully straight leg has no plane
        axis = np.where(planar[:, None], axis / np.maximum(norm, 1e-12), 0.0)
        # Rotating the shank about `axis` (thigh x shank) by +phi moves it away from the thigh,
        # opening the knee angle by phi.
        phi = np.radians(np.where(planar, target - angle, 0.0))
        c, s = np.cos(phi)[:, None], np.sin(phi)[:, None]
        rotated = shank * c + np.cross(axis, shank) * s + axis * (axis * shank).sum(-1, keepdims=True) * (1 - c)
        out[:, ankle] = out[:, knee] + rotated
    return out.astype(np.float32)
