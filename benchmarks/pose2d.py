"""Speed of the 2D stage on CPU at 1 and 2 torch threads, against the TFLite reference runtime.

Rows (per thread count, all interleaved round-robin in one process -- every round runs every row at
every thread count, so load from other processes hits all of them alike):

* ``tracked_step_<readout>``: :meth:`PoseEstimator2D.process` on real video frames while tracking
  (no detector run): ROI crop from the uint8 frame, landmark model, readout, projection back to
  image pixels, ``Person2D`` assembly.  This is the per-frame cost of live mode.
* ``detector_step``: :meth:`PoseDetector.detect_frame` on a real frame -- uint8 letterbox, network,
  decode, NMS (runs only when nobody is tracked).
* ``landmark_model`` / ``landmark_model_no_heatmap`` / ``detector_model``: the converted networks
  alone, batch 1, fed channels-last input as the estimator feeds them.
* ``reference_tflite_landmark`` / ``reference_tflite_detector``: the original ``.tflite`` files in
  ``ai-edge-litert`` (XNNPACK, same thread count) -- the peer figure for the model rows; MediaPipe's
  own CPU pipeline runs these same two models.
* ``integral_readout_only``: the windowed soft-argmax readout on one crop's heat maps.

``OMP_WAIT_POLICY=PASSIVE`` is set before torch loads (unless already set), as the CLI does: with
the default spinning policy a 2-thread torch on an oversubscribed 2-core machine runs many times
slower.

Usage: ``python benchmarks/pose2d.py [--threads 1 2] [--rounds 6] [--iters 3]``; writes
``benchmarks/results/pose2d.json`` and prints a table.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must precede the torch import (libgomp reads it once)

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from streampose.pose2d.detection import PoseDetector  # noqa: E402
from streampose.pose2d.estimator import PoseEstimator2D  # noqa: E402
from streampose.pose2d.readout import integral_readout  # noqa: E402
from streampose.pose2d.weights import ensure_blazepose_models, load_detector, load_landmark_model  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pose2d_models import reference_runner  # noqa: E402  (the TFLite peer figure, one definition)

RESULTS = Path(__file__).resolve().parent / "results" / "pose2d.json"
SHARED_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "pose2sim_balance_cam01.mp4"


def synthetic_frames(count: int) -> list[np.ndarray]:
    """Stand-in frames (noise) when the shared video is absent; tracking then cannot be timed."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8) for _ in range(count)]


def video_frames(path: Path, count: int) -> list[np.ndarray]:
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))  # row-padded, as the reader delivers them
            if len(frames) >= count:
                break
    return frames


def model_runner(model: torch.nn.Module, size: int):
    # The estimator's crops and letterbox are NHWC buffers viewed as NCHW (channels-last strides).
    x = torch.rand(1, 3, size, size).contiguous(memory_format=torch.channels_last)

    def run():
        with torch.inference_mode():
            model(x)
    return run


def tracked_runner(estimator: PoseEstimator2D, frames: list[np.ndarray]):
    """Process frames in a loop; the first call detects, the rest must be pure tracking steps."""
    state = {"i": 0}
    estimator.reset()
    estimator.process(frames[0])

    def run():
        state["i"] = state["i"] % (len(frames) - 1) + 1
        before = estimator.stats["detector_runs"]
        estimator.process(frames[state["i"]])
        if estimator.stats["detector_runs"] != before:  # lost the person: would time the detector too
            raise RuntimeError("tracking was lost during the tracked-step benchmark")
    return run


def build_runners(frames: list[np.ndarray], tracking: bool, threads: int, with_reference: bool) -> dict[str, object]:
    detector = load_detector("cpu")
    landmarks = load_landmark_model("cpu", with_heatmap=True)
    landmarks_no_heatmap = load_landmark_model("cpu", with_heatmap=False)
    pose_detector = PoseDetector(detector)
    frame = torch.from_numpy(frames[0])
    heatmaps = torch.randn(1, 39, 64, 64)
    regressed = torch.rand(1, 39, 2) * 255
    runners: dict[str, object] = {
        "detector_model": model_runner(detector, 224),
        "landmark_model": model_runner(landmarks, 256),
        "landmark_model_no_heatmap": model_runner(landmarks_no_heatmap, 256),
        "integral_readout_only": lambda: integral_readout(heatmaps, regressed),
        "detector_step": lambda: pose_detector.detect_frame(frame),
    }
    if tracking:
        runners["tracked_step_integral"] = tracked_runner(
            PoseEstimator2D("cpu", readout="integral", detector_model=detector, landmark_model=landmarks), frames)
        runners["tracked_step_regression"] = tracked_runner(
            PoseEstimator2D("cpu", readout="regression", detector_model=detector, landmark_model=landmarks_no_heatmap),
            frames)
    if with_reference:
        files = ensure_blazepose_models()
        runners["reference_tflite_detector"] = reference_runner(files.detector_tflite, threads)
        runners["reference_tflite_landmark"] = reference_runner(files.landmark_tflite, threads)
    return runners


def measure(runners_by_threads: dict[int, dict[str, object]], rounds: int, iters: int) -> dict[int, dict[str, dict]]:
    """Median / p10 ms per call of each runner at each thread count, interleaved across both."""
    samples = {t: {name: [] for name in runners} for t, runners in runners_by_threads.items()}
    for threads, runners in runners_by_threads.items():  # warm-up: oneDNN primitives, XNNPACK packing
        torch.set_num_threads(threads)
        for run in runners.values():
            for _ in range(2):
                run()
    for _ in range(rounds):
        for threads, runners in runners_by_threads.items():
            torch.set_num_threads(threads)
            for name, run in runners.items():
                for _ in range(iters):
                    start = time.perf_counter()
                    run()
                    samples[threads][name].append((time.perf_counter() - start) * 1e3)
    return {t: {name: {"median_ms": round(statistics.median(v), 2), "p10_ms": round(float(np.percentile(v, 10)), 2),
                       "n": len(v)} for name, v in rows.items()} for t, rows in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    ensure_blazepose_models()
    tracking = SHARED_VIDEO.is_file()
    frames = video_frames(SHARED_VIDEO, 30) if tracking else synthetic_frames(2)
    try:
        import ai_edge_litert.interpreter  # noqa: F401
        with_reference = True
    except ImportError as exc:
        with_reference = False
        print(f"TFLite reference not measured: {exc}")
    load_before = os.getloadavg()
    runners = {t: build_runners(frames, tracking, t, with_reference) for t in args.threads}
    rows_by_threads = measure(runners, args.rounds, args.iters)
    results: dict = {
        "benchmark": "pose2d", "torch": torch.__version__, "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "video": SHARED_VIDEO.name if tracking else None,
        "frame_size_wh": [frames[0].shape[1], frames[0].shape[0]], "rounds": args.rounds, "iters": args.iters,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "note": "medians of round-robin runs interleaved across rows and thread counts, reference TFLite included, "
                "on a shared CPU; compare ratios measured in this run",
    }
    for threads, rows in rows_by_threads.items():
        if with_reference:
            for ours, ref in (("detector_model", "reference_tflite_detector"),
                              ("landmark_model", "reference_tflite_landmark"),
                              ("landmark_model_no_heatmap", "reference_tflite_landmark")):
                rows[ours]["ratio_vs_reference"] = round(rows[ours]["median_ms"] / rows[ref]["median_ms"], 2)
        if tracking:
            rows["tracked_step_integral"]["fps"] = round(1000 / rows["tracked_step_integral"]["median_ms"], 1)
        results[f"cpu_{threads}t"] = rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")

    names = list(next(iter(rows_by_threads.values())))
    header = "".join(f"{f'{t}t median':>11s} {'p10':>6s} {'x ref':>6s}" for t in rows_by_threads)
    print(f"{results['video']} {results['frame_size_wh'][0]}x{results['frame_size_wh'][1]}, load "
          f"{load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}, OMP_WAIT_POLICY={results['omp_wait_policy']}")
    print(f"{'row (ms)':28s}{header}")
    for name in names:
        line = f"{name:28s}"
        for rows in rows_by_threads.values():
            row = rows[name]
            line += f"{row['median_ms']:11.1f} {row['p10_ms']:6.1f} {row.get('ratio_vs_reference', float('nan')):6.2f}"
        print(line)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
