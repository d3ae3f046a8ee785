"""End-to-end pipeline speed: frames/s, latency p50/p95 and each stage's share, offline and live.

* **offline** -- the symmetric lifter, every frame processed as fast as possible (``run`` on the
  file).  Latency includes the lifter's look-ahead wait.
* **live** -- the causal lifter with ``realtime=True``, frames fed at the video's own frame rate
  like a camera; the reader drops the oldest frames when the pipeline falls behind.  Reports the
  frames processed, the frames dropped and capture-to-result latency.

    python benchmarks/pipeline.py                      # ../shared/data/videos/*.mp4
    python benchmarks/pipeline.py --max-frames 150 --threads 2 --device cpu

Writes ``benchmarks/results/pipeline.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI does, before torch loads


def paced(frames, fps: float):
    """Yield frames no faster than ``fps`` (a camera), stamping capture time on release."""
    started = time.perf_counter()
    for frame in frames:
        due = started + frame.time
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        frame.capture_time = time.perf_counter()
        yield frame


def run_mode(video: Path, mode: str, args) -> dict:
    import numpy as np

    from streampose.pipeline import Pipeline, PipelineConfig
    from streampose.reader import open_source

    live = mode == "live"
    config = PipelineConfig(device=args.device, causal=live, realtime=live, threads=args.threads,
                            lifter=args.lifter, max_frames=args.max_frames, queue_size=2 if live else 8)
    pipe = Pipeline(config)
    if live:
        # A camera cannot be asked to wait: decode ahead into memory, then release frames on time;
        # with realtime=True the pipeline drops the oldest waiting frames when it falls behind.
        with open_source(video, max_frames=args.max_frames) as reader:
            fps = reader.info.fps or 30.0
            frames = list(reader)
        source = paced(frames, fps)
    else:
        source = video
    started = time.perf_counter()
    results = list(pipe.run(source))
    wall = time.perf_counter() - started
    stats = pipe.stats.to_dict()
    pipe.close()
    late = [r.latency for r in results if r.latency is not None]
    out = {
        "frames": len(results),
        "wall_s": round(wall, 2),
        "fps": round(len(results) / wall, 2),
        "latency_p50_ms": round(float(np.percentile(late, 50)) * 1000, 1) if late else None,
        "latency_p95_ms": round(float(np.percentile(late, 95)) * 1000, 1) if late else None,
        "frames_with_person": stats["frames_with_person"],
        "dropped": stats["dropped"],
        "stage_share": stats["stage_share"],
    }
    if live:
        out["source_fps"] = round(fps, 2)
        out["kept_up"] = stats["dropped"] == 0
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--modes", default="offline,live")
    parser.add_argument("--max-frames", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lifter", default="default")
    args = parser.parse_args(argv)
    import torch

    videos = args.videos or sorted((REPO.parent / "shared" / "data" / "videos").glob("*.mp4"))
    if not videos:
        print("no videos given and ../shared/data/videos is absent", file=sys.stderr)
        return 2
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "device": args.device, "threads": args.threads,
              "torch": torch.__version__, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "max_frames": args.max_frames, "videos": {}}
    for video in videos:
        report["videos"][video.name] = {mode: run_mode(video, mode, args) for mode in args.modes.split(",")}
    results = REPO / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    name = "pipeline.json" if args.device == "cpu" else f"pipeline_{args.device}.json"
    (results / name).write_text(json.dumps(report, indent=2))
    print("| video | mode | frames | dropped | fps | p50 ms | p95 ms | 2D / lift / post share |")
    print("|---|---|---|---|---|---|---|---|")
    for video, modes in report["videos"].items():
        for mode, r in modes.items():
            share = r["stage_share"]
            print(f"| {video} | {mode} | {r['frames']} | {r['dropped']} | {r['fps']} | {r['latency_p50_ms']} | {r['latency_p95_ms']} | "
                  f"{share.get('pose2d', 0):.2f} / {share.get('lift', 0):.2f} / {share.get('post', 0):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
