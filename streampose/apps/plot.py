"""``streampose plot poses.jsonl -o out.png``: joint trajectories and a 3D skeleton filmstrip.

The PNG has one panel per axis (x, y, z over time, metres, camera frame, root-relative) for a few key
joints of one tracked person, and below them a filmstrip of that person's 3D skeleton every few
frames (rendered with :func:`streampose.viz.render_skeleton_3d`, same colours as the overlay: left
blue, right red).  Files without 3D keypoints get their 2D pixel trajectories instead.

The JSONL reader is tolerant on purpose: a run killed mid-write leaves a truncated last line, and
frames before the lifter's first output carry ``"keypoints3d": null``; both are normal.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from streampose.errors import InputError, OutputError, StreamposeError
from streampose.skeleton import H36M17

DEFAULT_JOINTS = ("Head", "LWrist", "RWrist", "LFoot", "RFoot")

# Trajectory colours follow the overlay's side code (left blue, right red, centre amber); feet are
# the lighter shade of their side and dashed so wrists and feet are told apart.
_JOINT_STYLE = {
    "Head": ("#f5b700", "-"), "Neck/Nose": ("#c99400", "-"), "Thorax": ("#a07600", "-"),
    "Spine": ("#7a5a00", "-"), "Hip": ("#555555", "-"),
    "LWrist": ("#1f6fe0", "-"), "LElbow": ("#1f6fe0", ":"), "LShoulder": ("#1f6fe0", "-."),
    "RWrist": ("#e0362b", "-"), "RElbow": ("#e0362b", ":"), "RShoulder": ("#e0362b", "-."),
    "LFoot": ("#7fb2ff", "--"), "LKnee": ("#7fb2ff", ":"), "LHip": ("#7fb2ff", "-."),
    "RFoot": ("#ff9a8f", "--"), "RKnee": ("#ff9a8f", ":"), "RHip": ("#ff9a8f", "-."),
}


@dataclass
class PoseTrack:
    """One person's poses read from a JSONL file, one row per frame record.

    Attributes:
        person_id: the track id these rows belong to.
        times: ``(T,)`` seconds.
        indices: ``(T,)`` frame indices.
        keypoints2d: ``(T, 17, 3)`` pixels + confidence; NaN where the person is absent.
        keypoints3d: ``(T, 17, 3)`` metres (camera frame, root-relative); NaN where absent or null.
        header: the file's header record (``{}`` if none).
        skipped_lines: lines that were not valid JSON (a truncated last line counts here).
    """

    person_id: int | None
    times: np.ndarray
    indices: np.ndarray
    keypoints2d: np.ndarray
    keypoints3d: np.ndarray
    header: dict = field(default_factory=dict)
    skipped_lines: int = 0

    @property
    def has_3d(self) -> bool:
        return bool(np.isfinite(self.keypoints3d).all(axis=(1, 2)).any())


def read_frame_records(path: str | Path) -> tuple[dict, list[dict], int]:
    """Parse a streampose JSONL file with :func:`streampose.output.read_jsonl` (tolerates a truncated
    last line) and insist on at least one frame record.

    Returns:
        ``(header, frames, skipped)``: the header record (``{}`` if absent), the ``"frame"`` records in
        file order, and how many lines were ignored (1 for a truncated last line, else 0).

    Raises:
        InputError: the file is missing, unreadable, malformed before its last line, or holds no
            frame records.
    """
    from streampose.output import read_jsonl

    path = Path(path)
    if not path.is_file():
        raise InputError(f"pose file {path} does not exist" if not path.exists() else f"{path} is not a file")
    contents = read_jsonl(path)
    if not contents.frames:
        raise InputError(f"{path} holds no streampose frame records (is it a streampose .jsonl?)")
    frames = [f for f in contents.frames if isinstance(f.get("people"), list)]
    return contents.header or {}, frames, int(contents.truncated)


def _array_or_nan(value, shape: tuple[int, ...]) -> np.ndarray:
    if value is None:
        return np.full(shape, np.nan)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return np.full(shape, np.nan)
    return arr if arr.shape == shape else np.full(shape, np.nan)


def load_track(path: str | Path, person: int | None = None) -> PoseTrack:
    """Read one person's 2D/3D keypoints over time from a streampose JSONL file.

    Args:
        path: the ``.jsonl`` written by ``streampose video.mp4 --out poses.jsonl``.
        person: track id to follow; ``None`` = the id present in the most frames.

    Returns:
        :class:`PoseTrack` with one row per frame record (NaN where the person is missing).
    """
    header, frames, skipped = read_frame_records(path)
    if person is None:
        counts = Counter(p.get("id") for f in frames for p in f["people"] if isinstance(p, dict))
        counts.pop(None, None)
        person = counts.most_common(1)[0][0] if counts else None
    fps = None
    source = header.get("source") if isinstance(header.get("source"), dict) else {}
    if isinstance(source.get("fps"), (int, float)) and source["fps"] > 0:
        fps = float(source["fps"])

    joints = H36M17.num_joints
    times, indices, kp2d, kp3d = [], [], [], []
    for row, record in enumerate(frames):
        index = record.get("index", row)
        index = int(index) if isinstance(index, (int, float)) else row
        t = record.get("time")
        times.append(float(t) if isinstance(t, (int, float)) else (index / fps if fps else float(index)))
        indices.append(index)
        match = next((p for p in record["people"] if isinstance(p, dict) and p.get("id") == person), None)
        kp2d.append(_array_or_nan(None if match is None else match.get("keypoints2d"), (joints, 3)))
        kp3d.append(_array_or_nan(None if match is None else match.get("keypoints3d"), (joints, 3)))
    return PoseTrack(
        person_id=person, times=np.asarray(times), indices=np.asarray(indices, dtype=np.int64),
        keypoints2d=np.stack(kp2d), keypoints3d=np.stack(kp3d), header=header, skipped_lines=skipped,
    )


def plot_jsonl(
    jsonl_path: str | Path,
    png_path: str | Path,
    *,
    joints: Sequence[str] = DEFAULT_JOINTS,
    person: int | None = None,
    filmstrip_frames: int = 8,
    azimuth_deg: float = 30.0,
    dpi: int = 110,
) -> Path:
    """Write a PNG of joint trajectories and a 3D skeleton filmstrip for one person of a JSONL file.

    Args:
        jsonl_path: streampose JSONL (header + frame records; a truncated last line is fine).
        png_path: output ``.png``.
        joints: H36M-17 joint names to plot (default head, wrists, feet).
        person: track id; ``None`` = the id present in the most frames.
        filmstrip_frames: number of evenly spaced frames in the 3D filmstrip (0 = none).
        azimuth_deg: viewpoint of the filmstrip (30 degrees shows depth better than the camera view).
        dpi: PNG resolution.

    Returns:
        ``png_path`` as ``Path``.

    Raises:
        InputError: unreadable JSONL, unknown joint names, or nobody in the file.
        OutputError: the PNG cannot be written.
    """
    png_path = Path(png_path)
    if png_path.suffix.lower() != ".png":
        raise OutputError(f"plot output {png_path} must end in .png")
    if png_path.is_dir() or not (png_path.parent if str(png_path.parent) else Path(".")).is_dir():
        raise OutputError(f"cannot write {png_path}: not a file path in an existing directory")
    unknown = [j for j in joints if j not in H36M17.joints]
    if unknown:
        raise InputError(f"unknown joint name(s) {', '.join(unknown)}; choose from {', '.join(H36M17.joints)}")

    track = load_track(jsonl_path, person)
    if track.person_id is None:
        raise InputError(f"{jsonl_path} has frame records but no people in them")

    try:
        import matplotlib

        matplotlib.use("Agg")  # never needs a display
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise OutputError(f"plotting needs matplotlib ({exc}); install it with: pip install matplotlib") from exc

    use_3d = track.has_3d
    axes_names = ("x", "y", "z") if use_3d else ("x", "y")
    data = track.keypoints3d if use_3d else track.keypoints2d
    unit = "m" if use_3d else "px"
    film = _filmstrip(track, filmstrip_frames, azimuth_deg) if use_3d and filmstrip_frames > 0 else None

    rows = len(axes_names) + (1 if film is not None else 0)
    heights = [1.0] * len(axes_names) + ([1.5] if film is not None else [])
    fig, axes = plt.subplots(rows, 1, figsize=(12, 2.3 * len(axes_names) + (3.2 if film is not None else 0)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    axes = axes[:, 0]
    for k, name in enumerate(axes_names):
        ax = axes[k]
        for joint in joints:
            j = H36M17.index(joint)
            color, style = _JOINT_STYLE.get(joint, (None, "-"))
            ax.plot(track.times, data[:, j, k], style, color=color, lw=1.4, label=joint)
        desc = {"x": "x (right)", "y": "y (down; axis flipped, up is up)", "z": "z (away from camera)"}[name]
        ax.set_ylabel(f"{desc}\n[{unit}]", fontsize=8)
        if name == "y":
            ax.invert_yaxis()  # camera y points down; flipping keeps "up" up for the reader
        ax.grid(alpha=0.3)
        if k < len(axes_names) - 1:
            ax.tick_params(labelbottom=False)
    axes[0].legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(joints), fontsize=8,
                   frameon=False)
    axes[len(axes_names) - 1].set_xlabel("time [s]")
    kind = "3D, root-relative, camera frame" if use_3d else "2D pixels (file has no 3D keypoints)"
    note = f"; {track.skipped_lines} unreadable line(s) skipped" if track.skipped_lines else ""
    fig.suptitle(f"{Path(jsonl_path).name}: person {track.person_id}, {kind}, "
                 f"{len(track.times)} frames{note}", fontsize=10)
    for ax in axes[1:len(axes_names)]:
        ax.sharex(axes[0])
    if len(track.times) > 1:
        axes[0].set_xlim(float(np.nanmin(track.times)), float(np.nanmax(track.times)))

    if film is not None:
        image, labels = film
        ax = axes[-1]
        ax.imshow(image)
        ax.set_xticks([(i + 0.5) * image.shape[1] / len(labels) for i in range(len(labels))])
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_yticks([])
        ax.set_title(f"3D skeleton every {_film_step_label(track, len(labels))} "
                     f"(view azimuth {azimuth_deg:.0f} deg; left blue, right red)", fontsize=9)
    fig.tight_layout()
    try:
        fig.savefig(png_path, dpi=dpi)
    except OSError as exc:
        raise OutputError(f"cannot write {png_path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
    return png_path


def _filmstrip(track: PoseTrack, count: int, azimuth_deg: float) -> tuple[np.ndarray, list[str]] | None:
    from streampose.viz import render_skeleton_3d

    valid = np.flatnonzero(np.isfinite(track.keypoints3d).all(axis=(1, 2)))
    if len(valid) == 0:
        return None
    picks = valid[np.unique(np.round(np.linspace(0, len(valid) - 1, min(count, len(valid)))).astype(int))]
    tiles, labels = [], []
    for row in picks:
        tile = render_skeleton_3d(track.keypoints3d[row], (220, 260), azimuth_deg, 15.0)
        tile[:, -2:] = 0  # thin separator between tiles
        tiles.append(tile)
        labels.append(f"t={track.times[row]:.2f}s\n#{track.indices[row]}")
    return np.concatenate(tiles, axis=1), labels


def _film_step_label(track: PoseTrack, tiles: int) -> str:
    if tiles < 2:
        return "frame"
    span = float(np.nanmax(track.times) - np.nanmin(track.times))
    return f"~{span / (tiles - 1):.2f} s"


def plot_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``streampose plot``; returns the process exit code (0 ok, 1 error, 2 usage)."""
    parser = argparse.ArgumentParser(
        prog="streampose plot",
        description="Plot joint trajectories and a 3D skeleton filmstrip from a streampose JSONL file.",
    )
    parser.add_argument("jsonl", help="poses .jsonl written by streampose")
    parser.add_argument("-o", "--out", help="output .png (default: next to the input, same name)")
    parser.add_argument("--joints", default=",".join(DEFAULT_JOINTS),
                        help=f"comma-separated H36M joint names (default {','.join(DEFAULT_JOINTS)})")
    parser.add_argument("--person", type=int, default=None, help="track id (default: the longest track)")
    parser.add_argument("--frames", type=int, default=8, help="skeletons in the filmstrip (0 = none)")
    parser.add_argument("--azimuth", type=float, default=30.0, help="filmstrip view azimuth in degrees")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage message
        return int(exc.code or 0)
    out = Path(args.out) if args.out else Path(args.jsonl).with_suffix(".png")
    joints = [j.strip() for j in args.joints.split(",") if j.strip()]
    try:
        path = plot_jsonl(args.jsonl, out, joints=joints, person=args.person,
                          filmstrip_frames=max(0, args.frames), azimuth_deg=args.azimuth)
    except StreamposeError as exc:
        print(f"streampose plot: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(plot_main())
