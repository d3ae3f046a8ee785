"""3D corrections and lifters on every shared video: jitter, bone stability, and straight legs.

No ground truth here (the calibrated clip's scores are ``accuracy_real.py``'s job); what can be
checked on any video:

* **3D jitter**: mean |second difference| of root-relative joints (mm/frame^2);
* **bone-length std**: per bone over the track, mean over bones (mm) -- one person's bones do not
  change length -- and the left/right thigh asymmetry (mm);
* **straight legs**: frames where a leg is straight in the 2D (2D knee angle > 170 deg) and not
  foreshortened (2D hip-ankle length >= 90 % of the video's 95th percentile, so the leg lies
  roughly in the image plane): the share whose 3D knee angle is > 160 deg.

The 2D stage runs once per video; its output is replayed into pipelines that differ only in the
lifter and the corrections, offline (symmetric lifter) and live (causal).

    python benchmarks/corrections_video.py --lifter default --setting none --setting fusion=0.5

Writes ``benchmarks/results/corrections_video.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _metrics import jitter_3d_mm  # noqa: E402
from smoothing_video import Replay2D, arrays, record_2d  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "corrections_video.json"
SHARED_VIDEOS = REPO.parent / "shared" / "data" / "videos"
THIGH_R, THIGH_L = (1, 2), (4, 5)


def parse_setting(spec: str) -> dict:
    """``'none'``, ``'fusion=0.5'``, ``'fusion=0.5,bones'``, ``'reproject=0.5'`` -> PipelineConfig fields."""
    options = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, _, value = part.partition("=")
        if key == "none":
            continue
        if key == "fusion":
            options["world_fusion"] = float(value or 0.5)
        elif key == "bones":
            options["bone_lengths"] = True
        elif key == "reproject":
            options["reproject"] = float(value or 1.0)
        elif key == "resample":
            options["resample_fps"] = True
        else:
            raise SystemExit(f"--setting {spec!r}: unknown {key!r} (none, fusion, bones, reproject, resample)")
    return options


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    u, v = a - b, c - b
    cos = (u * v).sum(-1) / np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1), 1e-9)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def metrics(kp2d: np.ndarray, kp3d: np.ndarray) -> dict:
    """First person's ``(T, 17, 3)`` 2D (px) and 3D (m), NaN where nobody is."""
    have = np.isfinite(kp3d).all((1, 2))
    out = {"frames_3d": int(have.sum())}
    if have.sum() < 3:
        return out
    out["jitter_3d_mm"] = round(jitter_3d_mm(kp3d), 2)
    from streampose.skeleton import H36M17
    bones = np.array(H36M17.bones)
    lengths = np.linalg.norm(kp3d[have][:, bones[:, 0]] - kp3d[have][:, bones[:, 1]], axis=-1)
    out["bone_std_mm"] = round(1000 * float(lengths.std(0).mean()), 1)
    thigh = lambda p: np.linalg.norm(kp3d[have][:, p[0]] - kp3d[have][:, p[1]], axis=-1)
    out["thigh_asymmetry_mm"] = round(1000 * float(np.abs(thigh(THIGH_R) - thigh(THIGH_L)).mean()), 1)
    straight, total = 0, 0
    for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
        ok = have & np.isfinite(kp2d[:, [hip, knee, ankle]]).all((1, 2)) & (kp2d[:, [hip, knee, ankle], 2] > 0.5).all(1)
        if ok.sum() < 3:
            continue
        angle2d = _angle(kp2d[ok, hip, :2], kp2d[ok, knee, :2], kp2d[ok, ankle, :2])
        length2d = np.linalg.norm(kp2d[ok, hip, :2] - kp2d[ok, ankle, :2], axis=-1)
        full = length2d >= 0.9 * np.percentile(length2d, 95)
        chosen = (angle2d > 170) & full
        angle3d = _angle(kp3d[ok, hip], kp3d[ok, knee], kp3d[ok, ankle])
        straight += int((angle3d[chosen] > 160).sum())
        total += int(chosen.sum())
    out["straight_leg_frames"] = total
    out["straight_leg_share_3d"] = round(straight / total, 3) if total else None
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=Path, nargs="*", default=None)
    parser.add_argument("--lifter", action="append", default=[], help="offline lifter name/path (repeatable)")
    parser.add_argument("--causal-lifter", action="append", default=[], help="live lifter name/path (repeatable)")
    parser.add_argument("--setting", action="append", default=[], help="corrections (repeatable), e.g. fusion=0.5")
    parser.add_argument("--max-frames", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    videos = args.videos or (sorted(SHARED_VIDEOS.glob("*.mp4")) + sorted(SHARED_VIDEOS.glob("*/*.mp4")))
    if not videos:
        print(f"no videos (looked in {SHARED_VIDEOS})", file=sys.stderr)
        return 2
    settings = args.setting or ["none"]
    offline = args.lifter or ["default"]
    live = args.causal_lifter or ["default"]
    from streampose.pipeline import Pipeline, PipelineConfig

    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "max_frames": args.max_frames, "videos": {}}
    rows = []
    for video in videos:
        frames, people, fps = record_2d(video, args.max_frames)
        entry = report["videos"].setdefault(video.name if video.parent == SHARED_VIDEOS else
                                            f"{video.parent.name}/{video.name}", {"fps": fps, "runs": {}})
        for causal, lifters in ((False, offline), (True, live)):
            for lifter in lifters:
                for spec in settings:
                    config = PipelineConfig(causal=causal, lifter=lifter, device="cpu", **parse_setting(spec))
                    with Pipeline(config, pose2d=Replay2D(people)) as pipe:
                        result = list(pipe.run((f.image, f.time) for f in frames))
                    values = metrics(*arrays(result))
                    key = f"{'live' if causal else 'offline'}|{lifter}|{spec}"
                    entry["runs"][key] = values
                    rows.append((video.name, key, values))
                    print(f"{video.name:28s} {key:48s} {values}", file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print("| video | mode / lifter / corrections | 3D jitter mm/f² | bone std mm | thigh L-R mm | straight 2D legs straight in 3D |")
    print("|---|---|---|---|---|---|")
    for name, key, v in rows:
        share = v.get("straight_leg_share_3d")
        print(f"| {name} | {key.replace('|', ' / ')} | {v.get('jitter_3d_mm', '-')} | {v.get('bone_std_mm', '-')} | "
              f"{v.get('thigh_asymmetry_mm', '-')} | {'-' if share is None else f'{share:.0%}'} "
              f"({v.get('straight_leg_frames', 0)}) |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
