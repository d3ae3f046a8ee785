"""Speed of the 2D stage: detector and landmark model (batch 1 and batched), and the tracked step.

All timings are medians of round-robin interleaved runs in one process (other load on the machine
hits every variant alike), on CPU for each of ``--threads`` torch thread counts; CUDA rows are added
when a GPU is present.  Rows:

* ``detector_model`` / ``landmark_model``: the converted networks alone, batch 1 (per-frame latency)
  and batch ``B`` (throughput, reported per image).
* ``detector_step``: :class:`PoseDetector.detect` on a real frame -- letterbox, network, decode, NMS.
* ``tracked_step_<readout>``: :meth:`PoseEstimator2D.process` on real video frames while tracking
  (no detector run): upload, ROI crop, landmark model, readout, projection, ``Person2D`` assembly.
* ``reference_tflite_*``: the original ``.tflite`` files in the TFLite runtime (XNNPACK), via engineer
  B's ``benchmarks/pose2d_models.py`` helper, when ``ai_edge_litert`` is installed, interleaved with
  ours.
* ``integral_readout_only``: the soft-argmax readout alone on a (1, 39, 64, 64) heat map.

Usage: ``python benchmarks/pose2d.py [--threads 1 2] [--rounds 5]``; writes
``benchmarks/results/pose2d.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import av
import numpy as np
import torch

from streampose.pose2d.detection import PoseDetector
from streampose.pose2d.estimator import PoseEstimator2D, _image_tensor
from streampose.pose2d.readout import integral_readout
from streampose.pose2d.weights import ensure_blazepose_models, load_detector, load_landmark_model

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
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= count:
                break
    return frames


def measure(runners: dict[str, object], rounds: int, iters: int) -> dict[str, dict[str, float]]:
    """Median / p10 milliseconds per call of each runner, interleaved round-robin."""
    for run in runners.values():
        run()
        run()
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            for _ in range(iters):
                start = time.perf_counter()
                run()
                samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: {"median_ms": round(statistics.median(v), 2), "p10_ms": round(float(np.percentile(v, 10)), 2),
                   "n": len(v)} for name, v in samples.items()}


def model_runner(model: torch.nn.Module, batch: int, size: int, device: torch.device):
    x = torch.rand(batch, 3, size, size, device=device)

    def run():
        with torch.inference_mode():
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
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


def rows_for_device(device: torch.device, frames: list[np.ndarray], batch: int, rounds: int, iters: int,
                    tracking: bool, extra: dict[str, object] | None = None) -> dict[str, dict[str, float]]:
    detector = load_detector(device)
    landmarks = load_landmark_model(device, with_heatmap=True)
    landmarks_no_heatmap = load_landmark_model(device, with_heatmap=False)
    pose_detector = PoseDetector(detector)
    frame_tensor = _image_tensor(frames[0], device)

    def detect_step():
        pose_detector.detect(frame_tensor)
        if device.type == "cuda":
            torch.cuda.synchronize()

    heatmaps = torch.randn(1, 39, 64, 64, device=device)
    regressed = torch.rand(1, 39, 2, device=device) * 255

    def readout_only():
        integral_readout(heatmaps, regressed)
        if device.type == "cuda":
            torch.cuda.synchronize()

    runners = {
        "detector_model_b1": model_runner(detector, 1, 224, device),
        f"detector_model_b{batch}": model_runner(detector, batch, 224, device),
        "landmark_model_b1": model_runner(landmarks, 1, 256, device),
        "landmark_model_b1_no_heatmap": model_runner(landmarks_no_heatmap, 1, 256, device),
        "integral_readout_only": readout_only,
        f"landmark_model_b{batch}": model_runner(landmarks, batch, 256, device),
        "detector_step": detect_step,
    }
    if tracking:
        runners["tracked_step_integral"] = tracked_runner(
            PoseEstimator2D(device, readout="integral", detector_model=detector, landmark_model=landmarks), frames)
        runners["tracked_step_regression"] = tracked_runner(
            PoseEstimator2D(device, readout="regression", detector_model=detector, landmark_model=landmarks_no_heatmap),
            frames)
    runners.update(extra or {})
    rows = measure(runners, rounds, iters)
    for name in (f"detector_model_b{batch}", f"landmark_model_b{batch}"):
        rows[name]["per_image_ms"] = round(rows[name]["median_ms"] / batch, 2)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    files = ensure_blazepose_models()
    tracking = SHARED_VIDEO.is_file()
    frames = video_frames(SHARED_VIDEO, 30) if tracking else synthetic_frames(2)
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from pose2d_models import reference_runner  # engineer B's TFLite-runtime runner
    except ImportError as exc:
        reference_runner = None
        print(f"TFLite reference not measured: {exc}")
    results: dict = {"benchmark": "pose2d", "batch": args.batch, "torch": torch.__version__,
                     "machine": platform.machine(), "video": SHARED_VIDEO.name if tracking else None,
                     "frame_size": list(frames[0].shape[:2][::-1]),
                     "note": "medians of round-robin interleaved runs (reference TFLite included) on a shared, "
                             "loaded CPU; compare ratios within one thread count"}
    for threads in args.threads:
        torch.set_num_threads(threads)
        extra = {}
        if reference_runner is not None:
            extra = {"reference_tflite_detector_b1": reference_runner(files.detector_tflite, threads),
                     "reference_tflite_landmark_b1": reference_runner(files.landmark_tflite, threads)}
        rows = rows_for_device(torch.device("cpu"), frames, args.batch, args.rounds, args.iters, tracking, extra)
        if extra:
            for ours, ref in (("detector_model_b1", "reference_tflite_detector_b1"),
                              ("landmark_model_b1", "reference_tflite_landmark_b1"),
                              ("landmark_model_b1_no_heatmap", "reference_tflite_landmark_b1")):
                rows[ours]["ratio_vs_reference"] = round(rows[ours]["median_ms"] / rows[ref]["median_ms"], 2)
        results[f"cpu_{threads}t"] = rows
    if torch.cuda.is_available():
        results["cuda"] = rows_for_device(torch.device("cuda"), frames, args.batch, args.rounds * 4, args.iters, tracking)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))

    for key in [k for k in results if k.startswith("cpu_") or k == "cuda"]:
        print(f"\n{key}")
        print(f"{'row':34s} {'median ms':>10s} {'p10 ms':>8s} {'per img':>8s} {'vs ref':>7s}")
        for name, row in results[key].items():
            print(f"{name:34s} {row['median_ms']:10.1f} {row['p10_ms']:8.1f} {row.get('per_image_ms', float('nan')):8.1f} "
                  f"{row.get('ratio_vs_reference', float('nan')):7.2f}")
        if tracking:
            fps = 1000 / results[key]["tracked_step_integral"]["median_ms"]
            print(f"tracked step ({results['frame_size'][0]}x{results['frame_size'][1]} frames, integral): {fps:.1f} fps")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
