"""A small, dependency-free BVH reader and vectorised forward kinematics.

BVH semantics implemented here (the ones both of our archives and most exporters use):

* The HIERARCHY lists joints depth-first, so every parent precedes its children.  ``End Site``
  blocks become extra joints (named ``"<parent>_End"``, no channels) because they often carry the
  only position of a head top or finger tip.
* Each joint has 0, 3 or 6 (in general: any subset of the six) channels, in any order.  Rotation
  channels are Euler angles in degrees, composed in the order they are listed, i.e. for
  ``Zrotation Xrotation Yrotation`` the local rotation is ``R = Rz @ Rx @ Ry`` (intrinsic rotations,
  as Biovision defines them).
* Translation: a joint's local translation is its ``OFFSET``; a joint that has position channels
  uses the channel values *instead* on the axes it animates (MotionBuilder / Bandai Namco files
  write the offset into those channels every frame, and root offsets are zero, so "replace" is the
  right reading for them).
* ``world_rot[j] = world_rot[parent] @ R_local[j]`` and
  ``world_pos[j] = world_pos[parent] + world_rot[parent] @ t_local[j]``.

Units are whatever the file uses (usually centimetres); see :mod:`streampose_train.mocap.rigs` for the
conversion to metres.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streampose.errors import InputError

_CHANNEL_NAMES = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
_AXIS_INDEX = {"X": 0, "Y": 1, "Z": 2}


@dataclass
class BvhClip:
    """One parsed BVH file.

    Attributes:
        names: ``J`` joint names in file order (End Sites included as ``"<parent>_End"``).
        parents: ``(J,)`` int parent index, -1 for the root(s); parents precede children.
        offsets: ``(J, 3)`` float64 rest offsets from the parent, file units.
        channels: per joint, the tuple of its channel names in file order (empty for End Sites).
        channel_start: ``(J,)`` int index of each joint's first channel in a motion row.
        motion: ``(T, C)`` float64 channel values, one row per frame.
        frame_time: seconds per frame (``1 / fps``).
        source: the path the clip was read from ("" for in-memory text).
    """

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    channel_start: np.ndarray
    motion: np.ndarray
    frame_time: float
    source: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    def index(self, name: str) -> int:
        return self.names.index(name)

    def is_end_site(self, joint: int) -> bool:
        return self.names[joint].endswith("_End") and not self.channels[joint]


def read_bvh(path: str | Path) -> BvhClip:
    """Read a BVH file.  Raises :class:`InputError` for a missing or malformed file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read BVH file {path}: {exc.strerror or exc}") from exc
    return parse_bvh(text, source=str(path))


def parse_bvh(text: str, source: str = "") -> BvhClip:
    """Parse BVH text (see :func:`read_bvh`)."""
    where = source or "<bvh text>"
    split_at = text.find("MOTION")
    if not text.lstrip().startswith("HIERARCHY") or split_at < 0:
        raise InputError(f"{where}: not a BVH file (needs HIERARCHY ... MOTION sections)")
    tokens = text[:split_at].split()

    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    stack: list[int] = []  # open joint blocks; -2 marks an End Site block
    pending_parent = -1
    i = 1  # skip "HIERARCHY"
    try:
        while i < len(tokens):
            tok = tokens[i]
            if tok in ("ROOT", "JOINT"):
                names.append(tokens[i + 1])
                parents.append(stack[-1] if stack else -1)
                offsets.append([0.0, 0.0, 0.0])
                channels.append(())
                pending_parent = len(names) - 1
                i += 2
            elif tok == "End":  # "End Site"
                parent = stack[-1]
                names.append(f"{names[parent]}_End")
                parents.append(parent)
                offsets.append([0.0, 0.0, 0.0])
                channels.append(())
                pending_parent = len(names) - 1
                i += 2
            elif tok == "{":
                stack.append(pending_parent)
                i += 1
            elif tok == "}":
                stack.pop()
                i += 1
            elif tok == "OFFSET":
                offsets[stack[-1]] = [float(v) for v in tokens[i + 1:i + 4]]
                i += 4
            elif tok == "CHANNELS":
                count = int(tokens[i + 1])
                chans = tuple(tokens[i + 2:i + 2 + count])
                unknown = [c for c in chans if c not in _CHANNEL_NAMES]
                if unknown:
                    raise InputError(f"{where}: unknown BVH channel(s) {unknown}")
                channels[stack[-1]] = chans
                i += 2 + count
            else:
                raise InputError(f"{where}: unexpected token {tok!r} in HIERARCHY")
    except (IndexError, ValueError) as exc:
        raise InputError(f"{where}: malformed BVH hierarchy ({exc})") from exc
    if not names:
        raise InputError(f"{where}: BVH hierarchy has no joints")
    if stack:
        raise InputError(f"{where}: unbalanced braces in BVH hierarchy")

    motion_tokens = text[split_at:].split(maxsplit=5)  # MOTION Frames: N Frame Time: ...
    try:
        if motion_tokens[1] != "Frames:" or motion_tokens[3] != "Frame":
            raise ValueError("expected 'Frames:' and 'Frame Time:'")
        num_frames = int(motion_tokens[2])
        rest = motion_tokens[5].split(maxsplit=1)  # "Time:" is token 4; rest[0] = frame time
        frame_time = float(rest[0])
        values = np.array(rest[1].split() if len(rest) > 1 else [], dtype=np.float64)
    except (IndexError, ValueError) as exc:
        raise InputError(f"{where}: malformed BVH MOTION header ({exc})") from exc
    num_channels = sum(len(c) for c in channels)
    if frame_time <= 0:
        raise InputError(f"{where}: Frame Time must be positive, got {frame_time}")
    if num_channels == 0:
        motion = np.zeros((num_frames, 0))
    else:
        complete = values.size // num_channels
        if complete < num_frames:
            # Truncated files (interrupted exports) keep their complete frames.
            if complete == 0:
                raise InputError(f"{where}: BVH motion data is empty or truncated")
            num_frames = complete
        motion = values[: num_frames * num_channels].reshape(num_frames, num_channels)
    starts = np.cumsum([0] + [len(c) for c in channels[:-1]]).astype(np.int64)
    return BvhClip(
        names=tuple(names), parents=np.asarray(parents, dtype=np.int64),
        offsets=np.asarray(offsets, dtype=np.float64), channels=tuple(channels),
        channel_start=starts, motion=motion, frame_time=frame_time, source=source,
    )


def euler_to_matrix(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """Rotation matrices from intrinsic Euler angles.

    Args:
        angles_deg: ``(..., K)`` angles in degrees, one per axis of ``order``.
        order: ``K`` axis letters, e.g. ``"ZXY"``: ``R = Rz(a0) @ Rx(a1) @ Ry(a2)``.

    Returns:
        ``(..., 3, 3)`` rotation matrices.
    """
    angles = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    out = np.broadcast_to(np.eye(3), angles.shape[:-1] + (3, 3)).copy()
    for k, axis in enumerate(order):
        out = out @ _axis_rotation(angles[..., k], axis)
    return out


def _axis_rotation(theta: np.ndarray, axis: str) -> np.ndarray:
    """``(...,)`` radians -> ``(..., 3, 3)`` right-handed rotation about one coordinate axis."""
    c, s = np.cos(theta), np.sin(theta)
    rot = np.zeros(theta.shape + (3, 3))
    a = _AXIS_INDEX[axis]
    b, d = (a + 1) % 3, (a + 2) % 3
    rot[..., a, a] = 1.0
    rot[..., b, b] = c
    rot[..., d, d] = c
    rot[..., b, d] = -s
    rot[..., d, b] = s
    return rot


def forward_kinematics(
    clip: BvhClip, joints: list[int] | None = None, return_rotations: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """World positions (and optionally orientations) of joints for every frame.

    Args:
        clip: a parsed BVH clip with ``T`` frames and ``J`` joints.
        joints: evaluate only these joints (and, implicitly, their ancestors) -- the CMU rig has
            ~150 joints incl. fingers and face, a mapping needs ~20 of them.  ``None`` = all.
        return_rotations: also return world rotation matrices.

    Returns:
        ``(T, J, 3)`` positions in file units (joints not evaluated are NaN), and with
        ``return_rotations`` also ``(T, J, 3, 3)`` world rotations.
    """
    num_frames, num_joints = clip.num_frames, clip.num_joints
    needed = np.zeros(num_joints, dtype=bool)
    for j in (range(num_joints) if joints is None else joints):
        while j >= 0 and not needed[j]:
            needed[j] = True
            j = int(clip.parents[j])
    positions = np.full((num_frames, num_joints, 3), np.nan)
    rotations = np.full((num_frames, num_joints, 3, 3), np.nan)
    identity = np.broadcast_to(np.eye(3), (num_frames, 3, 3))
    for j in np.flatnonzero(needed):
        translation = np.broadcast_to(clip.offsets[j], (num_frames, 3)).copy()
        chans = clip.channels[j]
        start = int(clip.channel_start[j])
        rot_cols, rot_axes = [], ""
        for k, name in enumerate(chans):
            if name.endswith("position"):
                translation[:, _AXIS_INDEX[name[0]]] = clip.motion[:, start + k]
            else:
                rot_cols.append(start + k)
                rot_axes += name[0]
        local_rot = euler_to_matrix(clip.motion[:, rot_cols], rot_axes) if rot_axes else identity
        parent = int(clip.parents[j])
        if parent < 0:
            positions[:, j] = translation
            rotations[:, j] = local_rot
        else:
            positions[:, j] = positions[:, parent] + np.einsum(
                "tij,tj->ti", rotations[:, parent], translation)
            rotations[:, j] = rotations[:, parent] @ local_rot
    return (positions, rotations) if return_rotations else positions
