"""GPU throughput (runs on CPU too, for a like-for-like baseline):

1. the pure decode rate of a video (bare PyAV loop to RGB) -- the ceiling for offline processing;
2. offline pipeline throughput on the same file (symmetric lifter) and its ratio to (1);
3. live latency (causal lifter, frames released at the video's rate, realtime dropping);
4. the 2D models alone, batched (frames/s at batch 1 and 32);
5. the lifter alone on one long sequence (the VideoPose3D paper reports ~150k frames/s for its
   243-frame model on a GP100).

    python benchmarks/gpu.py --device cuda [--video path.mp4] [--max-frames 600]

Writes ``benchmarks/results/gpu_<device>.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def decode_rate(video: Path, max_frames: int) -> float:
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        started, count = time.perf_counter(), 0
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            count += 1
            if count >= max_frames:
                break
    return count / (time.perf_counter() - started)


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def model_throughput(device: str) -> dict:
    import torch

    from streampose.pose2d import load_detector, load_landmark_model

    out = {}
    for name, model, size in (("landmarks", load_landmark_model(device), 256), ("detector", load_detector(device), 224)):
        for batch in (1, 32):
            x = torch.rand(batch, 3, size, size, device=device)
            with torch.inference_mode():
                for _ in range(3):
                    model(x)
                synchronize(device)
                started, repeats = time.perf_counter(), 10
                for _ in range(repeats):
                    model(x)
                synchronize(device)
            out[f"{name}_batch{batch}_fps"] = round(batch * repeats / (time.perf_counter() - started), 1)
    return out


def lifter_throughput(device: str, frames: int) -> dict:
    from streampose.lifter import load_lifter

    lifter = load_lifter("default", causal=False, device=device)
    rng = np.random.default_rng(0)
    kp2d = np.concatenate([rng.uniform(200, 800, (frames, 17, 2)), np.ones((frames, 17, 1))], -1).astype(np.float32)
    lifter.lift_sequence(kp2d[:1000], (1000, 1000))  # warm-up
    synchronize(device)
    started = time.perf_counter()
    lifter.lift_sequence(kp2d, (1000, 1000))
    synchronize(device)
    return {"lifter_frames": frames, "lifter_receptive_field": lifter.receptive_field,
            "lifter_fps": round(frames / (time.perf_counter() - started), 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--video", type=Path, default=REPO.parent / "shared" / "data" / "videos" / "sports2d_walk_jump.mp4")
    parser.add_argument("--max-frames", type=int, default=600)
    parser.add_argument("--lifter-frames", type=int, default=100_000)
    args = parser.parse_args(argv)
    import torch

    from pipeline import run_mode  # benchmarks/pipeline.py

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu for the CPU baseline", file=sys.stderr)
        return 2
    if not args.video.is_file():
        print(f"video not found: {args.video}", file=sys.stderr)
        return 2
    report: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "device": args.device, "video": args.video.name,
                    "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None}
    report["decode_fps"] = round(decode_rate(args.video, args.max_frames), 1)
    pipeline_args = argparse.Namespace(device=args.device, threads=None, lifter="default", max_frames=args.max_frames)
    report["offline"] = run_mode(args.video, "offline", pipeline_args)
    report["offline_vs_decode"] = round(report["offline"]["fps"] / report["decode_fps"], 3)
    report["live"] = run_mode(args.video, "live", pipeline_args)
    report.update(model_throughput(args.device))
    report.update(lifter_throughput(args.device, args.lifter_frames))
    results = REPO / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"gpu_{args.device.replace(':', '')}.json").write_text(json.dumps(report, indent=2))
    print(f"| measure | {args.device} |\n|---|---|")
    print(f"| decode only (fps) | {report['decode_fps']} |")
    print(f"| offline pipeline (fps) | {report['offline']['fps']} ({report['offline_vs_decode']:.0%} of decode) |")
    print(f"| live p50 / p95 latency (ms), dropped | {report['live']['latency_p50_ms']} / "
          f"{report['live']['latency_p95_ms']}, {report['live']['dropped']} |")
    for key in ("landmarks_batch1_fps", "landmarks_batch32_fps", "detector_batch1_fps", "detector_batch32_fps"):
        print(f"| {key} | {report[key]} |")
    print(f"| lifter alone, RF {report['lifter_receptive_field']} (fps) | {report['lifter_fps']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
