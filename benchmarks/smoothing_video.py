"""Smoothing on real video (no ground truth): jitter reduction and added lag per smoother.

For each shared video the 2D stage runs once; its output is replayed into full pipelines that
differ only in ``smoothing`` (none / kalman / oneeuro) and lifter (live causal / offline
symmetric).  Reported per setting: 2D jitter (mean |second difference| / person height), 3D jitter
(mm/frame^2), and the lag each smoother adds relative to the unsmoothed output of the same mode
(cross-correlation peak of joint velocities, frames and ms).

    python benchmarks/smoothing_video.py --max-frames 300

Writes ``benchmarks/results/smoothing_video.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _metrics import jitter_2d, jitter_3d_mm, lag_frames  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
SMOOTHERS = ("none", "kalman", "oneeuro")


class Replay2D:
    """A 2D stage that returns recorded results (so every setting sees identical 2D input)."""

    def __init__(self, recorded: list):
        self.recorded = recorded

    def process(self, frame):
        return self.recorded[frame.index]


def record_2d(video: Path, max_frames: int | None):
    from streampose.pose2d import PoseEstimator2D
    from streampose.reader import open_source

    estimator = PoseEstimator2D(device="cpu")
    with open_source(video, max_frames=max_frames) as reader:
        frames = list(reader)
        fps = reader.info.fps or 30.0
    return frames, [estimator.process(f) for f in frames], fps


def arrays(pose_frames) -> tuple[np.ndarray, np.ndarray]:
    """First person's (T,17,3) 2D and 3D, NaN where nobody is."""
    kp2d = np.full((len(pose_frames), 17, 3), np.nan)
    kp3d = np.full((len(pose_frames), 17, 3), np.nan)
    for i, f in enumerate(pose_frames):
        if f.people:
            kp2d[i] = f.people[0].keypoints2d
            if f.people[0].keypoints3d is not None:
                kp3d[i] = f.people[0].keypoints3d
    return kp2d, kp3d


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--max-frames", type=int, default=300)
    parser.add_argument("--lifter-offline", default="default")
    parser.add_argument("--lifter-live", default="default")
    args = parser.parse_args(argv)
    import torch

    from streampose.lifter import load_lifter
    from streampose.pipeline import Pipeline, PipelineConfig

    torch.set_num_threads(1)
    videos = args.videos or sorted((REPO.parent / "shared" / "data" / "videos").glob("*.mp4"))
    if not videos:
        print("no videos given and ../shared/data/videos is absent", file=sys.stderr)
        return 2
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "max_frames": args.max_frames, "videos": {}}
    rows = []
    for video in videos:
        frames, recorded, fps = record_2d(video, args.max_frames)
        per_video = {}
        for mode, causal in (("live", True), ("offline", False)):
            lifter = load_lifter(args.lifter_live if causal else args.lifter_offline, causal=causal)
            outputs = {}
            for smoothing in SMOOTHERS:
                pipe = Pipeline(PipelineConfig(device="cpu", causal=causal, smoothing=smoothing),
                                pose2d=Replay2D(recorded), lifter=lifter)
                outputs[smoothing] = arrays(list(pipe.run(iter(frames))))
            raw2d, raw3d = outputs["none"]
            for smoothing, (kp2d, kp3d) in outputs.items():
                lag = lag_frames(raw3d, kp3d) if smoothing != "none" else 0.0
                result = {
                    "jitter2d_per_height": round(jitter_2d(kp2d), 5),
                    "jitter3d_mm_per_frame2": round(jitter_3d_mm(kp3d), 2),
                    "jitter3d_reduction": round(jitter_3d_mm(raw3d) / max(jitter_3d_mm(kp3d), 1e-9), 2),
                    "lag_frames": lag,
                    "lag_ms": round(lag / fps * 1000, 1),
                }
                per_video[f"{mode}:{smoothing}"] = result
                rows.append((video.name, mode, smoothing, result))
        report["videos"][video.name] = {"fps": fps, "frames": len(frames), "settings": per_video}
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "smoothing_video.json").write_text(json.dumps(report, indent=2))
    print("| video | lifter | smoothing | 2D jitter | 3D jitter mm/f² | 3D jitter ÷ | added lag |")
    print("|---|---|---|---|---|---|---|")
    for name, mode, smoothing, r in rows:
        print(f"| {name} | {mode} | {smoothing} | {r['jitter2d_per_height']} | {r['jitter3d_mm_per_frame2']} | "
              f"{r['jitter3d_reduction']}× | {r['lag_frames']} f ({r['lag_ms']} ms) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
