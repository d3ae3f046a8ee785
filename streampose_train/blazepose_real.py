"""What BlazePose really does on video: extract its 2D on the shared videos and measure its behaviour.

The lifter is trained on projected mocap corrupted by :class:`~streampose_train.mocap.noise.Noise2D`.
This module measures, on real video, what that noise model should look like and how BlazePose's
keypoints differ in definition from our mocap joints:

* **white jitter per joint**, as a fraction of person size, from second differences of the 2D track
  on the high-frame-rate clips (``std(x[t+1] - 2 x[t] + x[t-1]) / sqrt(6)`` is the std of white
  noise; real motion adds to it, so these are upper bounds, tightest at 60 fps);
* **jitter against confidence** (does low confidence mean large error?);
* **dropout rate**: share of frames a joint's confidence falls below 0.3;
* **body proportions** of BlazePose's own GHUM world landmarks (metres, its keypoint definitions),
  relative to leg length, next to the same ratios of our mocap skeletons.

The per-track 2D sequences are cached (``<cache>/train/blazepose2d/<video>.npz``); the
semi-supervised trainer reuses them as unlabeled real 2D.  The calibrated multi-view clip
(``pose2sim_multiperson``) is the evaluation set and is never read here.

    python -m streampose_train.blazepose_real            # extract (once) + measure, prints a table
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from streampose.cache import cache_dir
from streampose.skeleton import BLAZEPOSE_TO_H36M, H36M17, map_joints

#: Videos used for measurement and unlabeled training; never the evaluation clip.
EXCLUDED_DIRS = ("pose2sim_multiperson",)
# A track ends when the person is lost or the box jumps by more than this share of its size.
MAX_BOX_JUMP = 0.5
MIN_TRACK_FRAMES = 27


def training_videos(shared_videos: Path) -> list[Path]:
    """The shared single-view videos (sorted), excluding the evaluation clip's folder."""
    return sorted(p for p in shared_videos.glob("*.mp4") if p.parent.name not in EXCLUDED_DIRS)


def _cache_file(video: Path) -> Path:
    return cache_dir("train") / "blazepose2d" / f"{video.stem}.npz"


def extract(video: Path, refresh: bool = False) -> dict:
    """Our 2D stage over ``video``: per frame the tracked person's H36M-17 2D and world landmarks.

    Returns:
        ``fps``, ``size (w, h)``, ``kp2d (T, 17, 3)`` pixels + confidence (NaN where nobody),
        ``world (T, 17, 3)`` metres (NaN where nobody), ``track (T,)`` int track number (-1: nobody).
    """
    path = _cache_file(video)
    if path.is_file() and not refresh:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    from tqdm import tqdm

    from streampose.pose2d import PoseEstimator2D
    from streampose.reader import open_source

    estimator = PoseEstimator2D(max_people=1)
    kp2d, world, track = [], [], []
    current, previous_box = -1, None
    with open_source(str(video)) as reader:
        info = reader.info
        for frame in tqdm(reader, desc=video.name, unit="frame", total=info.frame_count or None):
            people = estimator.process(frame)
            if not people:
                kp2d.append(np.full((17, 3), np.nan))
                world.append(np.full((17, 3), np.nan))
                track.append(-1)
                previous_box = None
                continue
            person = people[0]
            box = np.asarray(person.bbox, dtype=np.float64)
            size = max(box[2] - box[0], box[3] - box[1], 1.0)
            if previous_box is None or np.abs(box - previous_box).max() > MAX_BOX_JUMP * size:
                current += 1
            previous_box = box
            kp2d.append(person.keypoints2d)
            world.append(map_joints(person.world33, BLAZEPOSE_TO_H36M) if person.world33 is not None
                         else np.full((17, 3), np.nan))
            track.append(current)
    out = {"fps": np.float64(info.fps or 30.0), "size": np.array([info.width, info.height]),
           "kp2d": np.array(kp2d, np.float32), "world": np.array(world, np.float32),
           "track": np.array(track, np.int32)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def tracks(record: dict, min_frames: int = MIN_TRACK_FRAMES) -> list[np.ndarray]:
    """Frame indices of each track with at least ``min_frames`` frames."""
    out = []
    for t in np.unique(record["track"]):
        if t < 0:
            continue
        index = np.flatnonzero(record["track"] == t)
        if len(index) >= min_frames:
            out.append(index)
    return out


def _person_size(kp: np.ndarray) -> np.ndarray:
    """``(T, 17, 2+)`` -> ``(T,)`` max(bbox width, height) in pixels."""
    xy = kp[..., :2]
    return np.maximum(np.ptp(xy[..., 0], axis=-1), np.ptp(xy[..., 1], axis=-1))


def white_jitter(record: dict) -> dict:
    """Per-joint white-noise std (fraction of person size) and its dependence on confidence."""
    residuals, confidences = [], []
    for index in tracks(record):
        kp = record["kp2d"][index].astype(np.float64)
        size = _person_size(kp)
        second = kp[2:, :, :2] - 2 * kp[1:-1, :, :2] + kp[:-2, :, :2]       # (T-2, 17, 2)
        residuals.append(second / np.sqrt(6.0) / size[1:-1, None, None])
        confidences.append(kp[1:-1, :, 2])
    if not residuals:
        return {}
    r = np.concatenate(residuals)                                         # (N, 17, 2)
    c = np.concatenate(confidences)                                       # (N, 17)
    # A robust std (1.4826 x MAD) so rare tracking jumps do not dominate the white component.
    robust = 1.4826 * np.median(np.abs(r - np.median(r, axis=0)), axis=0).mean(-1)   # (17,)
    bins = [(0.0, 0.5), (0.5, 0.8), (0.8, 0.95), (0.95, 1.01)]
    by_conf = {}
    for low, high in bins:
        chosen = (c >= low) & (c < high)
        if chosen.sum() >= 20:
            values = r[chosen]
            by_conf[f"{low:.2f}-{min(high, 1.0):.2f}"] = {
                "count": int(chosen.sum()),
                "std": round(float(1.4826 * np.median(np.abs(values - np.median(values, 0)))), 5)}
    return {"frames": int(len(r)), "per_joint_std": {H36M17.joints[j]: round(float(robust[j]), 5)
                                                     for j in range(17)},
            "by_confidence": by_conf,
            "dropout_rate": {H36M17.joints[j]: round(float((c[:, j] < 0.3).mean()), 4) for j in range(17)}}


# Bones whose length relative to the leg tells how a keypoint set is defined.
PROPORTIONS = {
    "hip_width": ("RHip", "LHip"),
    "shoulder_width": ("RShoulder", "LShoulder"),
    "thigh": ("RHip", "RKnee"),
    "shank": ("RKnee", "RFoot"),
    "upper_arm": ("RShoulder", "RElbow"),
    "forearm": ("RElbow", "RWrist"),
    "torso": ("Hip", "Thorax"),
    "thorax_nose": ("Thorax", "Neck/Nose"),
    "nose_head": ("Neck/Nose", "Head"),
}


def proportions(poses: np.ndarray) -> dict:
    """Median bone lengths over ``poses (N, 17, 3)`` divided by the median leg (thigh + shank, both sides)."""
    j = H36M17.index
    poses = poses[np.isfinite(poses).all(axis=(1, 2))]

    def length(a: str, b: str) -> np.ndarray:
        return np.linalg.norm(poses[:, j(a)] - poses[:, j(b)], axis=-1)

    leg = 0.5 * (length("RHip", "RKnee") + length("RKnee", "RFoot") + length("LHip", "LKnee")
                 + length("LKnee", "LFoot"))
    out = {"frames": int(len(poses)), "leg_m": round(float(np.median(leg)), 4)}
    for name, (a, b) in PROPORTIONS.items():
        out[name] = round(float(np.median(length(a, b) / leg)), 4)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streampose_train.blazepose_real", description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=Path, default=None, help="folder of videos (default: shared/data/videos)")
    parser.add_argument("--refresh", action="store_true", help="re-run the 2D stage instead of the cache")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "calibration" / "blazepose_real.json")
    args = parser.parse_args(argv)
    from streampose_train.mocap import load_mocap, shared_data_dir

    folder = args.videos or (shared_data_dir() / "videos" if shared_data_dir() else None)
    if folder is None or not folder.is_dir():
        print("no videos folder (../shared/data/videos); pass --videos", file=sys.stderr)
        return 2
    report = {"videos": {}, "mocap": {}}
    worlds = []
    for video in training_videos(folder):
        record = extract(video, refresh=args.refresh)
        found = record["track"] >= 0
        worlds.append(record["world"][found])
        report["videos"][video.name] = {"fps": float(record["fps"]), "frames": int(len(found)),
                                        "frames_with_person": int(found.sum()),
                                        "tracks": len(tracks(record)), "jitter": white_jitter(record),
                                        "world_proportions": proportions(record["world"][found])}
    report["blazepose_world_proportions"] = proportions(np.concatenate(worlds))
    for dataset in ("cmu", "bandai"):
        try:
            clips = load_mocap(dataset)
        except Exception as exc:  # noqa: BLE001 -- a missing archive only drops that comparison row
            report["mocap"][dataset] = {"error": str(exc)}
            continue
        sample = np.concatenate([c.joints3d[::10] for c in clips])
        report["mocap"][dataset] = proportions(sample)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    names = ["leg_m"] + list(PROPORTIONS)
    rows = [("blazepose world (real video)", report["blazepose_world_proportions"])]
    rows += [(f"mocap {k}", v) for k, v in report["mocap"].items() if "error" not in v]
    print("| source | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for label, values in rows:
        print(f"| {label} | " + " | ".join(f"{values[n]:.3f}" for n in names) + " |")
    print()
    print("| video | joint | white jitter std (% of size) | dropout rate |")
    print("|---|---|---|---|")
    for name, entry in report["videos"].items():
        jitter = entry["jitter"]
        if not jitter:
            continue
        for joint in ("Hip", "RKnee", "RFoot", "RWrist", "Neck/Nose"):
            print(f"| {name} | {joint} | {100 * jitter['per_joint_std'][joint]:.2f} | "
                  f"{jitter['dropout_rate'][joint]:.3f} |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
