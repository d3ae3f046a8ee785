"""streampose vs MediaPipe Pose, side by side on the same videos, in the same run.

MediaPipe (``mediapipe==0.10.21``) is installed into its own virtualenv under the cache dir, so its
numpy<2 / jax dependencies never enter ours.  Each system runs in a fresh subprocess per video and
mode (so peak RSS is its own), runs alternate, and both are pinned to the same 2 CPU threads.

Per video and system we report frames/s (model time only: decoding is excluded for both),
p50/p95 per-frame latency, peak RSS, and jitter: mean |second difference| per joint of the 2D
keypoints (normalised by the person's keypoint height) and of the root-relative 3D joints (mm/frame^2),
both on the H36M-17 joints (MediaPipe's 33 landmarks mapped with streampose.skeleton).

    python benchmarks/vs_mediapipe.py                 # all videos in ../shared/data/videos
    python benchmarks/vs_mediapipe.py --max-frames 150 --repeats 1
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _metrics import jitter_2d, jitter_3d_mm  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
MEDIAPIPE_VERSION = "0.10.21"
MODES = {
    "live": dict(causal=True, realtime=False, refine=False),
    "live+bf16": dict(causal=True, realtime=False, refine=False, precision="bf16"),
    "offline": dict(causal=False, realtime=False, refine=False),
    "live+refine": dict(causal=True, realtime=False, refine=True),
    "offline+refine": dict(causal=False, realtime=False, refine=True),
}


def cache_dir() -> Path:
    return Path(os.environ.get("STREAMPOSE_CACHE", Path.home() / ".cache" / "streampose"))


def mediapipe_python() -> Path:
    """Python of the private MediaPipe virtualenv, created on first use."""
    venv = cache_dir() / "bench" / "mediapipe-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with mediapipe=={MEDIAPIPE_VERSION} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run([str(python), "-c", "import mediapipe"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"mediapipe=={MEDIAPIPE_VERSION}"], check=True)
    return python


def pinned(command: list[str]) -> list[str]:
    # Same two cores for both systems; torch is also told to use 2 threads.
    cpus = sorted(os.sched_getaffinity(0))[:2]
    return ["taskset", "-c", ",".join(map(str, cpus))] + command


# ------------------------------------------------------------------ the streampose worker


def streampose_worker(video: str, out: str, mode: str, max_frames: int | None, threads: int) -> None:
    import resource

    import torch

    from streampose.pipeline import Pipeline, PipelineConfig
    from streampose.reader import open_source

    pipe = Pipeline(PipelineConfig(device="cpu", threads=threads, **MODES[mode]))
    latencies, results = [], []
    with open_source(video, max_frames=max_frames) as reader:
        for frame in reader:
            started = time.perf_counter()
            done = pipe.push(frame.image, frame.time)
            latencies.append(time.perf_counter() - started)
            results += done
    started = time.perf_counter()
    results += pipe.flush()
    latencies[-1] += time.perf_counter() - started
    n = len(results)
    kp2d = np.full((n, 17, 3), np.nan, np.float32)
    kp3d = np.full((n, 17, 3), np.nan, np.float32)
    for i, pose_frame in enumerate(results):
        if pose_frame.people:
            person = pose_frame.people[0]
            kp2d[i] = person.keypoints2d
            if person.keypoints3d is not None:
                kp3d[i] = person.keypoints3d
    np.savez(out, keypoints2d=kp2d, keypoints3d=kp3d, latencies=np.array(latencies),
             peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)


# ------------------------------------------------------------------ metrics


def summarise(latencies: np.ndarray, kp2d: np.ndarray, kp3d: np.ndarray, rss: float) -> dict:
    return {
        "frames": int(len(latencies)),
        "fps": round(float(len(latencies) / latencies.sum()), 2),
        "latency_p50_ms": round(float(np.percentile(latencies, 50) * 1000), 2),
        "latency_p95_ms": round(float(np.percentile(latencies, 95) * 1000), 2),
        "peak_rss_mb": round(float(rss), 1),
        "frames_with_person": int(np.isfinite(kp2d[:, 0, 0]).sum()),
        "jitter2d_per_height": round(jitter_2d(kp2d), 5),
        "jitter3d_mm_per_frame2": round(jitter_3d_mm(kp3d), 2),
    }


def mediapipe_to_h36m(data) -> tuple[np.ndarray, np.ndarray]:
    from streampose.skeleton import BLAZEPOSE_TO_H36M, map_confidence, map_joints

    landmarks = data["landmarks33"]
    kp2d = np.concatenate(
        [map_joints(landmarks[..., :2], BLAZEPOSE_TO_H36M),
         map_confidence(landmarks[..., 3], BLAZEPOSE_TO_H36M)[..., None]], axis=-1)
    # MediaPipe world landmarks: metres, hip-centred, y down -- same axes as our camera frame.
    kp3d = map_joints(data["world33"], BLAZEPOSE_TO_H36M)
    return kp2d, kp3d


# ------------------------------------------------------------------ driver


def run_once(system: str, video: Path, mode: str | None, max_frames: int | None, workdir: Path,
             threads: int = 2) -> dict:
    out = workdir / f"{system}-{mode}-{video.stem}.npz"
    if system == "mediapipe":
        command = [str(mediapipe_python()), str(REPO / "benchmarks" / "_mediapipe_worker.py"), str(video), str(out)]
    else:
        command = [sys.executable, __file__, "--worker", str(video), str(out), "--mode", mode,
                   "--threads", str(threads)]
    if max_frames:
        command += ["--max-frames", str(max_frames)]
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONPATH=str(REPO))
    subprocess.run(pinned(command), check=True, env=env)
    data = np.load(out)
    if system == "mediapipe":
        kp2d, kp3d = mediapipe_to_h36m(data)
    else:
        kp2d, kp3d = data["keypoints2d"], data["keypoints3d"]
    return summarise(data["latencies"], kp2d, kp3d, float(data["peak_rss_mb"]))


def median_runs(runs: list[dict]) -> dict:
    merged = dict(runs[0])
    for key in ("fps", "latency_p50_ms", "latency_p95_ms", "peak_rss_mb"):
        merged[key] = round(float(np.median([r[key] for r in runs])), 2)
    merged["runs"] = len(runs)
    return merged


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--modes", default="live,offline")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--worker", nargs=2, metavar=("VIDEO", "OUT"))
    parser.add_argument("--mode", default="live")
    parser.add_argument("--threads", default="2",
                        help="torch threads for streampose; a comma list runs each (e.g. 1,2)")
    args = parser.parse_args(argv)
    if args.worker:
        streampose_worker(args.worker[0], args.worker[1], args.mode, args.max_frames, int(args.threads))
        return 0

    videos = args.videos or sorted((REPO.parent / "shared" / "data" / "videos").glob("*.mp4"))
    if not videos:
        print("no videos given and ../shared/data/videos is absent", file=sys.stderr)
        return 2
    modes = args.modes.split(",")
    thread_counts = [int(t) for t in args.threads.split(",")]
    variants = [(m, t) for m in modes for t in thread_counts]
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores visible, 2 used", "mediapipe": MEDIAPIPE_VERSION, "videos": {}}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for video in videos:
            runs: dict[str, list[dict]] = {"mediapipe": []} | {f"streampose:{m} ({t}t)": [] for m, t in variants}
            for _ in range(args.repeats):  # alternate the systems so drift hits both alike
                runs["mediapipe"].append(run_once("mediapipe", video, None, args.max_frames, workdir))
                for mode, threads in variants:
                    runs[f"streampose:{mode} ({threads}t)"].append(
                        run_once("streampose", video, mode, args.max_frames, workdir, threads))
            report["videos"][video.name] = {name: median_runs(r) for name, r in runs.items()}

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "vs_mediapipe.json").write_text(json.dumps(report, indent=2))
    lines = ["| video | system | fps | p50 ms | p95 ms | RSS MB | 2D jitter (/height) | 3D jitter (mm/f²) |",
             "|---|---|---|---|---|---|---|---|"]
    for video, systems in report["videos"].items():
        for name, r in systems.items():
            lines.append(f"| {video} | {name} | {r['fps']} | {r['latency_p50_ms']} | {r['latency_p95_ms']} | "
                         f"{r['peak_rss_mb']} | {r['jitter2d_per_height']} | {r['jitter3d_mm_per_frame2']} |")
    table = "\n".join(lines)
    (RESULTS / "vs_mediapipe.md").write_text(f"Measured {report['date']} on {report['machine']}.\n\n{table}\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
