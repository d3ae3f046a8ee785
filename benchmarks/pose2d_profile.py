"""Where the time of one tracked 2D step goes: ROI crop, landmark model, readout, projection.

Runs :class:`PoseEstimator2D` on real video frames while tracking and times each part of the step
separately with ``time.perf_counter`` (same code path as ``process``, split at its stages), at each
requested torch thread count.  ``--torch-profile`` additionally prints the top ops of
``torch.profiler`` for whole tracked steps.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/pose2d_profile.py [--threads 1 2] [--frames 60]

Prints a table (median and p10 ms per part); writes nothing (the numbers feed ``benchmarks/pose2d.py``
and the commit messages).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: libgomp reads it once

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from streampose.pose2d.estimator import LANDMARK_INPUT_SIZE, CropLandmarks, PoseEstimator2D  # noqa: E402
from streampose.pose2d.roi import crop_rois_uint8  # noqa: E402

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


def video_frames(path: Path, count: int) -> list[np.ndarray]:
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= count:
                break
    return frames


def profile_parts(estimator: PoseEstimator2D, frames: list[np.ndarray], repeats: int) -> dict[str, list[float]]:
    """Milliseconds of each part of the tracked step, per frame (tracking must hold throughout)."""
    samples: dict[str, list[float]] = {"crop": [], "landmark_model": [], "readout_projection": [], "process_total": []}
    estimator.reset()
    estimator.process(frames[0])
    for _ in range(repeats):
        for image in frames[1:]:
            if not estimator._tracks:
                raise RuntimeError("tracking lost while profiling")
            rois = torch.stack([t.roi for t in estimator._tracks])
            frame_u8 = torch.from_numpy(image)
            with torch.inference_mode():
                t0 = time.perf_counter()
                crops = crop_rois_uint8(frame_u8, rois, LANDMARK_INPUT_SIZE)
                t1 = time.perf_counter()
                raw = estimator.landmark_model(crops)
                t2 = time.perf_counter()
                outputs = CropLandmarks.from_model_outputs(raw)
                estimator._read_people(outputs, rois, (image.shape[1], image.shape[0]))
                t3 = time.perf_counter()
            # The real public call on the same frame, after the split run moved the track on: the
            # ROI differs slightly, the work does not.
            before = estimator.stats["detector_runs"]
            t4 = time.perf_counter()
            estimator.process(image)
            t5 = time.perf_counter()
            if estimator.stats["detector_runs"] != before:
                raise RuntimeError("tracking lost while profiling")
            for name, value in (("crop", t1 - t0), ("landmark_model", t2 - t1), ("readout_projection", t3 - t2),
                                ("process_total", t5 - t4)):
                samples[name].append(value * 1e3)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=VIDEOS / "pose2sim_balance_cam01.mp4")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--readout", default="integral")
    parser.add_argument("--torch-profile", action="store_true")
    args = parser.parse_args(argv)
    if not args.video.is_file():
        print(f"video {args.video} not found")
        return 1
    frames = video_frames(args.video, args.frames)
    estimator = PoseEstimator2D("cpu", readout=args.readout)
    print(f"{args.video.name} {frames[0].shape[1]}x{frames[0].shape[0]}, readout={args.readout}, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"{'threads':>7s} {'part':22s} {'median ms':>10s} {'p10 ms':>8s}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        profile_parts(estimator, frames[:4], 1)  # warm-up
        samples = profile_parts(estimator, frames, args.repeats)
        for name, values in samples.items():
            print(f"{threads:7d} {name:22s} {statistics.median(values):10.2f} {np.percentile(values, 10):8.2f}")
        if args.torch_profile:
            estimator.reset()
            estimator.process(frames[0])
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                for image in frames[1:]:
                    estimator.process(image)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    return 0


if __name__ == "__main__":
    sys.exit(main())
