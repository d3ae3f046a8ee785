"""BVH export: a track's 3D joints as a skeleton of constant bone lengths with joint rotations.

The skeleton (``SKELETON``, 19 joints, Mixamo-like names so retargeting tools map it on their own)::

    Hips (root: position + rotation) -- H36M Hip
    |- LeftUpLeg - LeftLeg - LeftFoot (End Site: toe)      H36M LHip, LKnee, LFoot
    |- RightUpLeg - RightLeg - RightFoot (End Site: toe)   H36M RHip, RKnee, RFoot
    `- Spine - Chest                                        H36M Spine, Thorax
               |- Neck - Head (End Site: head top)         at Thorax; H36M Neck/Nose; H36M Head
               |- LeftShoulder - LeftArm - LeftForeArm - LeftHand (End Site)
               |     at Thorax;   H36M LShoulder, LElbow, LWrist
               `- RightShoulder - ... (mirrored)

Conventions (Blender's BVH importer defaults, and most other tools'):

* **Y up**, right-handed; the rest pose is a T-pose facing **+Z** with the character's left on **+X**.
  Offsets and root positions in metres (``units="m"``, Blender's scale 1) or centimetres
  (``units="cm"``, MotionBuilder/Unity habit).
* Every joint's channels are stated in the file, in a per-joint Euler order (degrees, intrinsic:
  ``Zrotation Xrotation Yrotation`` means ``R = Rz @ Rx @ Ry``) whose middle axis -- the one that
  locks at +-90 degrees -- is a motion the joint rarely makes that far (:data:`EULER_ORDERS`: legs,
  spine and head bend about X first, arms swing about Z, elbows about Y; the root turns about Y
  first).  The root's channels are ``Xposition Yposition Zposition`` then its rotations.  Angles are
  kept continuous over time (of the two Euler solutions the nearer one, unwrapped), so Blender's
  F-curves do not jump.
* Frame time = 1 / the video's frame rate.

Rotations from 17 joints.  A bone's direction is known, the twist about it is not; the twist is
chosen by a fixed rule so that limbs cannot flip from frame to frame: each bone's rotation is the
*smallest* rotation (swing, no twist) that turns its rest direction into its current direction,
relative to its parent's frame.  Two joints get full frames from their neighbours instead: the
pelvis (``Hips``: up = hip->spine, left = the hip line made perpendicular to it) and the chest
(``Chest``: up = spine->thorax, left = the shoulder line).  Joints where H36M branches (the thorax)
get zero-length children (``Neck``, ``LeftShoulder``, ``RightShoulder``) so that every bone has its
own rotation.  The singular configuration of a swing (a bone pointing exactly opposite its rest
direction relative to its parent: an elbow or knee folded 180 degrees, an upper arm through the
chest) does not occur in human motion.

Constant bone lengths: each bone gets the track's median length (left and right averaged); the pelvis
is rigid (both hips on the hip line, perpendicular to the lower spine).  The *exported* joint
positions -- what the file reproduces, to the printed precision -- are therefore the input joints'
bone directions laid out with those lengths (:func:`retarget` returns them); they differ from the
input by the input's bone-length wobble.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streampose.errors import InputError, OutputError
from streampose.skeleton import H36M17

_H = H36M17.index
UNITS = {"m": 1.0, "cm": 100.0}

# name, parent name, H36M joint the BVH joint sits at, how its rotation is found:
#   ("frame", kind) -- a full frame from neighbouring joints (pelvis, chest),
#   ("aim", H36M joint, rest direction) -- the swing that aims its child bone at that joint,
#   ("fixed",) -- follows its parent (hands, feet: 17 joints say nothing about them).
_LEFT, _RIGHT, _UP, _DOWN = (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, -1.0, 0.0)
_TABLE: tuple[tuple[str, str | None, str, tuple], ...] = (
    ("Hips", None, "Hip", ("frame", "pelvis")),
    ("LeftUpLeg", "Hips", "LHip", ("aim", "LKnee", _DOWN)),
    ("LeftLeg", "LeftUpLeg", "LKnee", ("aim", "LFoot", _DOWN)),
    ("LeftFoot", "LeftLeg", "LFoot", ("fixed",)),
    ("RightUpLeg", "Hips", "RHip", ("aim", "RKnee", _DOWN)),
    ("RightLeg", "RightUpLeg", "RKnee", ("aim", "RFoot", _DOWN)),
    ("RightFoot", "RightLeg", "RFoot", ("fixed",)),
    ("Spine", "Hips", "Spine", ("aim", "Thorax", _UP)),
    ("Chest", "Spine", "Thorax", ("frame", "chest")),
    ("Neck", "Chest", "Thorax", ("aim", "Neck/Nose", _UP)),
    ("Head", "Neck", "Neck/Nose", ("aim", "Head", _UP)),
    ("LeftShoulder", "Chest", "Thorax", ("aim", "LShoulder", _LEFT)),
    ("LeftArm", "LeftShoulder", "LShoulder", ("aim", "LElbow", _LEFT)),
    ("LeftForeArm", "LeftArm", "LElbow", ("aim", "LWrist", _LEFT)),
    ("LeftHand", "LeftForeArm", "LWrist", ("fixed",)),
    ("RightShoulder", "Chest", "Thorax", ("aim", "RShoulder", _RIGHT)),
    ("RightArm", "RightShoulder", "RShoulder", ("aim", "RElbow", _RIGHT)),
    ("RightForeArm", "RightArm", "RElbow", ("aim", "RWrist", _RIGHT)),
    ("RightHand", "RightForeArm", "RWrist", ("fixed",)),
)
NAMES: tuple[str, ...] = tuple(row[0] for row in _TABLE)
PARENTS: tuple[int, ...] = tuple(-1 if row[1] is None else NAMES.index(row[1]) for row in _TABLE)
AT: tuple[int, ...] = tuple(_H(row[2]) for row in _TABLE)
# Per joint Euler order (outer to inner axis, see the module doc).
EULER_ORDERS: dict[str, str] = {
    "Hips": "YXZ", "Spine": "XZY", "Chest": "XZY", "Neck": "XZY", "Head": "XZY",
    **{f"{side}{part}": order for side in ("Left", "Right")
       for part, order in (("UpLeg", "XZY"), ("Leg", "XZY"), ("Foot", "XZY"), ("Shoulder", "ZYX"),
                           ("Arm", "ZYX"), ("ForeArm", "YZX"), ("Hand", "ZYX"))},
}
# End Sites: joint -> rest offset as a fraction of the skeleton's height (Head's is the head bone).
_END_SITES = {"LeftFoot": (0.0, -0.03, 0.07), "RightFoot": (0.0, -0.03, 0.07),
              "LeftHand": (0.05, 0.0, 0.0), "RightHand": (-0.05, 0.0, 0.0), "Head": None}
# Bones whose lengths are averaged left/right: (child H36M joint, parent H36M joint) pairs.
_BONES = H36M17.bones  # (child, parent)


def bone_lengths(poses: np.ndarray) -> np.ndarray:
    """``(J,)`` per H36M joint, the median length of the bone from its parent (0 for the root), left
    and right averaged; ``poses (T, 17, 3)``, frames with NaN ignored."""
    poses = np.asarray(poses, dtype=np.float64)
    lengths = np.zeros(H36M17.num_joints)
    for child, parent in _BONES:
        values = np.linalg.norm(poses[:, child] - poses[:, parent], axis=-1)
        values = values[np.isfinite(values)]
        lengths[child] = float(np.median(values)) if values.size else np.nan
    flip = H36M17.flip_permutation
    lengths = 0.5 * (lengths + lengths[flip])
    if not np.isfinite(lengths).all() or (lengths[1:] <= 0).any():
        raise InputError("BVH export: the track has no frame with all 17 joints")
    return lengths


def rest_offsets(lengths: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(19, 3)`` rest offsets of the BVH joints from their parents, metres, and the End Sites'
    offsets, from the H36M bone ``lengths`` (:func:`bone_lengths`)."""
    offsets = np.zeros((len(NAMES), 3))
    for j, (name, parent, at, rule) in enumerate(_TABLE):
        if parent is None:
            continue
        parent_row = _TABLE[PARENTS[j]]
        if AT[j] == AT[PARENTS[j]]:
            continue  # zero-length branch joint
        if parent_row[3][0] == "aim":
            direction = np.asarray(parent_row[3][2])
        elif name in ("LeftUpLeg", "RightUpLeg"):
            direction = np.asarray(_LEFT if name.startswith("Left") else _RIGHT)
        else:  # the chest's child along the spine
            direction = np.asarray(_UP)
        offsets[j] = lengths[AT[j]] * direction
    height = skeleton_span(lengths)
    ends = {}
    for name, fraction in _END_SITES.items():
        ends[name] = (np.array([0.0, lengths[_H("Head")], 0.0]) if fraction is None
                      else np.asarray(fraction) * height)
    return offsets, ends


def skeleton_span(lengths: np.ndarray) -> float:
    """Foot-to-head-top chain length of the H36M ``lengths`` (for sizing the End Sites)."""
    leg = lengths[_H("LKnee")] + lengths[_H("LFoot")]
    trunk = sum(lengths[_H(n)] for n in ("Spine", "Thorax", "Neck/Nose", "Head"))
    return float(leg + trunk)


def _unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norm, 1e-12)


def _frame(up: np.ndarray, left: np.ndarray) -> np.ndarray:
    """``(T, 3, 3)`` rotations whose columns are left (x), up (y) and forward (x cross y)."""
    y = _unit(up)
    x = left - (left * y).sum(-1, keepdims=True) * y
    bad = np.linalg.norm(x, axis=-1) < 1e-9  # left parallel to up: any perpendicular will do
    if bad.any():
        x[bad] = np.cross(y[bad], [0.0, 0.0, 1.0])
    x = _unit(x)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def _swing(rest: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(T, 3, 3)`` smallest rotations turning the unit ``rest (3,)`` into unit ``target (T, 3)``."""
    a = np.broadcast_to(np.asarray(rest, float), target.shape)
    axis = np.cross(a, target)
    sin = np.linalg.norm(axis, axis=-1)
    cos = (a * target).sum(-1)
    angle = np.arctan2(sin, cos)
    # Opposite vectors: the axis is any perpendicular (never reached by human motion, see module doc).
    fallback = np.cross(a, [0.0, 0.0, 1.0]) if abs(rest[2]) < 0.9 else np.cross(a, [1.0, 0.0, 0.0])
    axis = np.where((sin < 1e-9)[..., None], fallback, axis)
    return _axis_angle(_unit(axis), angle)


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    c, s = np.cos(angle), np.sin(angle)
    C = 1 - c
    return np.stack([
        np.stack([c + x * x * C, x * y * C - z * s, x * z * C + y * s], -1),
        np.stack([y * x * C + z * s, c + y * y * C, y * z * C - x * s], -1),
        np.stack([z * x * C - y * s, z * y * C + x * s, c + z * z * C], -1),
    ], -2)


@dataclass
class BvhMotion:
    """A retargeted track, ready to write.

    Attributes:
        offsets: ``(19, 3)`` rest offsets (metres); ``end_sites``: End Site offsets by joint name.
        root: ``(T, 3)`` the Hips' position per frame (metres, BVH world).
        rotations: ``(T, 19, 3, 3)`` world rotations of the BVH joints.
        local: ``(T, 19, 3, 3)`` rotations relative to the parent (the root's: world).
        positions: ``(T, 17, 3)`` the exported H36M joint positions (metres, BVH world): constant
            bone lengths, the input's bone directions.  The file reproduces these.
        lengths: ``(17,)`` the bone lengths used.
    """

    offsets: np.ndarray
    end_sites: dict[str, np.ndarray]
    root: np.ndarray
    rotations: np.ndarray
    local: np.ndarray
    positions: np.ndarray
    lengths: np.ndarray


def retarget(joints: np.ndarray, lengths: np.ndarray | None = None) -> BvhMotion:
    """Joint rotations and constant-length positions for ``joints (T, 17, 3)`` (metres, BVH world:
    Y up).  ``lengths`` default to the track's medians (:func:`bone_lengths`)."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (H36M17.num_joints, 3):
        raise InputError(f"BVH export expects (T, 17, 3) joints, got {joints.shape}")
    if not np.isfinite(joints).all():
        raise InputError("BVH export: joints contain NaN (fill or drop missing frames first)")
    lengths = bone_lengths(joints) if lengths is None else np.asarray(lengths, dtype=np.float64)
    offsets, ends = rest_offsets(lengths)
    t = len(joints)
    rotations = np.zeros((t, len(NAMES), 3, 3))
    positions = np.zeros_like(joints)
    positions[:, _H("Hip")] = joints[:, _H("Hip")]
    placed = {_H("Hip")}
    for j, (name, _, _, rule) in enumerate(_TABLE):
        at = AT[j]
        if at not in placed:  # the joint sits where its parent's bone ends
            p = PARENTS[j]
            positions[:, at] = positions[:, AT[p]] + np.einsum("tij,j->ti", rotations[:, p], offsets[j])
            placed.add(at)
        if rule[0] == "frame" and rule[1] == "pelvis":
            rotations[:, j] = _frame(joints[:, _H("Spine")] - joints[:, _H("Hip")],
                                     joints[:, _H("LHip")] - joints[:, _H("RHip")])
        elif rule[0] == "frame":  # chest
            rotations[:, j] = _frame(joints[:, _H("Thorax")] - joints[:, _H("Spine")],
                                     joints[:, _H("LShoulder")] - joints[:, _H("RShoulder")])
        elif rule[0] == "aim":
            parent = rotations[:, PARENTS[j]]
            direction = _unit(joints[:, _H(rule[1])] - joints[:, at])
            local_direction = np.einsum("tji,tj->ti", parent, direction)  # parent^T @ d
            rotations[:, j] = parent @ _swing(np.asarray(rule[2]), local_direction)
        else:  # fixed: follows the parent
            rotations[:, j] = rotations[:, PARENTS[j]]
    # The Head End Site is H36M's Head joint.
    head = NAMES.index("Head")
    positions[:, _H("Head")] = positions[:, AT[head]] + np.einsum("tij,j->ti", rotations[:, head], ends["Head"])
    local = rotations.copy()
    for j, p in enumerate(PARENTS):
        if p >= 0:
            local[:, j] = np.swapaxes(rotations[:, p], -1, -2) @ rotations[:, j]
    return BvhMotion(offsets, ends, positions[:, _H("Hip")].copy(), rotations, local, positions, lengths)


_AXES = {"X": 0, "Y": 1, "Z": 2}


def euler_angles(rotations: np.ndarray, order: str) -> np.ndarray:
    """``(T, 3, 3)`` -> ``(T, 3)`` degrees for the intrinsic Euler ``order`` (e.g. ``"ZXY"``:
    ``R = Rz(a0) @ Rx(a1) @ Ry(a2)``, BVH's reading), continuous in time: of the two solutions each
    frame the one nearer the previous frame, shifted by whole turns to lie nearest it."""
    r = np.asarray(rotations, dtype=np.float64)
    i, j, k = (_AXES[a] for a in order.upper())
    if len({i, j, k}) != 3:
        raise InputError(f"Euler order must name three different axes, got {order!r}")
    sign = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
    middle = np.arcsin(np.clip(sign * r[:, i, k], -1.0, 1.0))
    outer = np.arctan2(-sign * r[:, j, k], r[:, k, k])
    inner = np.arctan2(-sign * r[:, i, j], r[:, i, i])
    locked = np.abs(r[:, i, k]) > 1 - 1e-9
    if locked.any():  # gimbal lock: outer and inner turn about the same axis; put it all outer
        inner[locked] = 0.0
        p, q = (i + 1) % 3, (i + 2) % 3
        m = r[locked] @ np.swapaxes(_axis_matrix(j, middle[locked]), -1, -2)
        outer[locked] = np.arctan2(m[:, q, p], m[:, p, p])
    first = np.stack([outer, middle, inner], -1)
    second = np.stack([outer + np.pi, np.pi - middle, inner + np.pi], -1)
    out = np.empty_like(first)
    previous = None
    for t in range(len(r)):
        if previous is None:
            best = first[t]
        else:
            best = min((_nearest(o, previous) for o in (first[t], second[t])),
                       key=lambda o: float(np.abs(o - previous).sum()))
        out[t] = previous = best
    return np.degrees(out)


def _axis_matrix(axis: int, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    m = np.zeros(angle.shape + (3, 3))
    p, q = (axis + 1) % 3, (axis + 2) % 3
    m[..., axis, axis] = 1.0
    m[..., p, p] = c
    m[..., q, q] = c
    m[..., p, q] = -s
    m[..., q, p] = s
    return m


def _nearest(angles: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """``angles`` shifted by multiples of 2 pi to lie nearest ``previous``."""
    return angles + 2 * np.pi * np.round((previous - angles) / (2 * np.pi))


def bvh_text(motion: BvhMotion, fps: float, units: str = "m") -> str:
    """The BVH file's text for a retargeted track."""
    if units not in UNITS:
        raise InputError(f"BVH units must be one of {', '.join(UNITS)}; got {units!r}")
    if not (np.isfinite(fps) and fps > 0):
        raise InputError(f"BVH export needs a positive frame rate, got {fps!r}")
    scale = UNITS[units]
    children = {j: [c for c, p in enumerate(PARENTS) if p == j] for j in range(len(NAMES))}
    lines = ["HIERARCHY"]

    def number(v: float) -> str:
        return f"{v:.6f}"

    def emit(j: int, depth: int) -> None:
        pad = "\t" * depth
        keyword = "ROOT" if PARENTS[j] < 0 else "JOINT"
        lines.append(f"{pad}{keyword} {NAMES[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}\tOFFSET " + " ".join(number(v * scale) for v in motion.offsets[j]))
        rotation_channels = " ".join(f"{axis}rotation" for axis in EULER_ORDERS[NAMES[j]])
        if PARENTS[j] < 0:
            lines.append(f"{pad}\tCHANNELS 6 Xposition Yposition Zposition {rotation_channels}")
        else:
            lines.append(f"{pad}\tCHANNELS 3 {rotation_channels}")
        for c in children[j]:
            emit(c, depth + 1)
        if NAMES[j] in motion.end_sites:
            lines.append(f"{pad}\tEnd Site")
            lines.append(f"{pad}\t{{")
            lines.append(f"{pad}\t\tOFFSET " + " ".join(number(v * scale) for v in motion.end_sites[NAMES[j]]))
            lines.append(f"{pad}\t}}")
        lines.append(f"{pad}}}")

    emit(0, 0)
    # Channels are written in hierarchy (depth-first) order, which is the NAMES order here.
    order = _depth_first(children)
    angles = np.stack([euler_angles(motion.local[:, j], EULER_ORDERS[NAMES[j]]) for j in order], axis=1)
    lines += ["MOTION", f"Frames: {len(motion.root)}", f"Frame Time: {1.0 / fps:.8f}"]
    for k in range(len(motion.root)):
        values = [number(v * scale) for v in motion.root[k]] + [number(v) for v in angles[k].ravel()]
        lines.append(" ".join(values))
    return "\n".join(lines) + "\n"


def _depth_first(children: dict[int, list[int]]) -> list[int]:
    order: list[int] = []

    def visit(j: int) -> None:
        order.append(j)
        for c in children[j]:
            visit(c)

    visit(0)
    return order


def write_bvh(path: str | os.PathLike, joints: np.ndarray, fps: float, units: str = "m",
              lengths: np.ndarray | None = None) -> BvhMotion:
    """Write ``joints (T, 17, 3)`` (metres, BVH world, Y up) as a BVH file; returns the motion written
    (its ``positions`` are what the file reproduces).  Written to a temporary name and renamed."""
    motion = retarget(joints, lengths)
    text = bvh_text(motion, fps, units)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as error:
        if tmp.exists():
            tmp.unlink()
        raise OutputError(f"{path}: write failed ({error.strerror or error})") from None
    return motion


# ------------------------------------------------------------------------------------ camera -> world


# Without a floor estimate: the camera's own axes turned to Y up (x right, y up, z towards the camera).
CAMERA_TO_BVH = np.diag([1.0, -1.0, -1.0])


def track_world_joints(keypoints3d: np.ndarray, roots: np.ndarray, ground: Any = None) -> np.ndarray:
    """``(T, 17, 3)`` joints in the BVH world from a track's root-relative ``keypoints3d (T, 17, 3)``
    and ``roots (T, 3)`` (camera frame; NaN rows are interpolated, all-NaN: the root stays at the
    origin).  ``ground``: a :class:`streampose.world.GroundPlane` (floor at y = 0, y up), or ``None``
    for the camera's axes turned Y-up."""
    keypoints3d = np.asarray(keypoints3d, dtype=np.float64)
    roots = fill_missing(np.asarray(roots, dtype=np.float64))
    camera = keypoints3d + roots[:, None]
    if ground is not None:
        return ground.to_world(camera)
    return camera @ CAMERA_TO_BVH.T


def fill_missing(values: np.ndarray) -> np.ndarray:
    """``(T, D)`` with NaN rows filled by linear interpolation (ends held); all NaN -> zeros."""
    values = np.array(values, dtype=np.float64)
    ok = np.isfinite(values).all(-1)
    if not ok.any():
        return np.zeros_like(values)
    if ok.all():
        return values
    index = np.arange(len(values))
    for d in range(values.shape[1]):
        values[:, d] = np.interp(index, index[ok], values[ok, d])
    return values


def resample_uniform(times: np.ndarray, values: np.ndarray, fps: float) -> np.ndarray:
    """``values (T, ...)`` at ``times (T,)`` -> on the uniform grid ``t0 + k / fps`` (linear)."""
    times = np.asarray(times, dtype=np.float64)
    if len(times) < 2:
        return np.asarray(values)
    steps = np.diff(times) * fps
    if np.all(np.abs(steps - 1.0) < 0.01):
        return np.asarray(values)
    count = int(np.floor((times[-1] - times[0]) * fps + 1e-6)) + 1
    grid = times[0] + np.arange(count) / fps
    flat = np.asarray(values, dtype=np.float64).reshape(len(times), -1)
    out = np.stack([np.interp(grid, times, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape((count,) + np.asarray(values).shape[1:])


# ------------------------------------------------------------------------------------ output writer


class BvhWriter:
    """The pipeline's ``.bvh`` output: collects each track's frames, writes on ``close()``.

    Files: the track with the most frames goes to ``path``; every other track to
    ``<stem>_track<ID>.bvh`` beside it.  With ``track``, only that person, to ``path``.  The root
    moves in the world frame of the floor estimated from the track's feet (:mod:`streampose.world`;
    y up, floor at 0), or, where no floor can be fitted, in the camera's axes turned Y-up.

    Attributes:
        written: ``{track id: path}`` after ``close()``.
        motions: ``{track id: BvhMotion}`` after ``close()`` (exported positions, rotations).
    """

    def __init__(self, path: str | os.PathLike, header: dict[str, Any], track: int | None = None,
                 units: str = "m") -> None:
        if units not in UNITS:
            raise OutputError(f"BVH units must be one of {', '.join(UNITS)}; got {units!r}")
        self.path = Path(path)
        self.header = header
        self.track = track
        self.units = units
        self.frames_written = 0
        self.summary: dict[str, Any] | None = None
        self.written: dict[int, Path] = {}
        self.motions: dict[int, BvhMotion] = {}
        self.grounds: dict[int, Any] = {}
        self._tracks: dict[int, dict[str, list]] = {}
        self._closed = False

    @property
    def fps(self) -> float:
        fps = (self.header.get("source") or {}).get("fps")
        if fps:
            return float(fps)
        times = sorted({t for track in self._tracks.values() for t in track["time"]})
        if len(times) > 1:
            return float(1.0 / np.median(np.diff(times)))
        return 30.0

    def write_frame(self, frame) -> None:
        if self._closed:
            raise OutputError(f"{self.path}: writer is closed")
        self.frames_written += 1
        for person in frame.people:
            if person.keypoints3d is None or (self.track is not None and person.id != self.track):
                continue
            data = self._tracks.setdefault(int(person.id), {"time": [], "kp3d": [], "root": []})
            data["time"].append(float(frame.time))
            data["kp3d"].append(np.asarray(person.keypoints3d, dtype=np.float64))
            data["root"].append(np.full(3, np.nan) if person.root is None
                                else np.asarray(person.root, dtype=np.float64).reshape(3))

    def write_summary(self, summary: dict[str, Any]) -> None:
        self.summary = summary

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.track is not None and self.track not in self._tracks:
            seen = ", ".join(str(t) for t in sorted(self._tracks)) or "none"
            raise OutputError(f"{self.path}: no person with track id {self.track} (tracks seen: {seen})")
        if not self._tracks:
            raise OutputError(f"{self.path}: nobody was tracked, so there is no motion to write")
        fps = self.fps
        main = max(self._tracks, key=lambda k: len(self._tracks[k]["time"]))
        for track_id, data in self._tracks.items():
            target = self.path if track_id == main else self.path.with_name(
                f"{self.path.stem}_track{track_id}{self.path.suffix}")
            times = np.asarray(data["time"])
            kp3d = resample_uniform(times, np.stack(data["kp3d"]), fps)
            roots = resample_uniform(times, fill_missing(np.stack(data["root"])), fps)
            ground = None
            try:
                from streampose.world import fit_ground

                ground = fit_ground(kp3d + roots[:, None], fps)
            except InputError:
                ground = None
            joints = track_world_joints(kp3d, roots, ground)
            self.motions[track_id] = write_bvh(target, joints, fps, self.units)
            self.written[track_id] = target
            self.grounds[track_id] = ground

    def __enter__(self) -> "BvhWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
