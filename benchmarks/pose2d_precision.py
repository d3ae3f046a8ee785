"""fp32 vs bf16 arithmetic for the BlazePose networks: speed of the 2D stage and how far keypoints move.

bfloat16 keeps float32's exponent with an 8-bit mantissa; oneDNN runs it on native bf16 units
(AVX512-BF16 / AMX) where the CPU has them.  This measures, on the shared videos (frames decoded
into memory first, so decoding is excluded):

* ``ms_per_frame``: ``PoseEstimator2D.process`` per frame for precisions fp32, mixed (bf16 detector,
  fp32 landmark model) and bf16 (both), run in
  alternation (``--repeats`` each, best total kept), 1 torch thread; ``speedup`` = fp32 / other.
* ``same_crop_px``: the bf16 landmark network run on the *same* crops as the fp32 one (no tracking
  feedback): distance of the 33 regressed landmarks, in 256-px crop pixels (the crop spans about
  1.25x the person), mean and p95 -- the pure arithmetic error.
* ``end_to_end_rel``: both estimators run on their own (tracking follows their own landmarks):
  mean per-joint distance of the 17 output keypoints / person height, on frames where both found
  someone; ``frames_with_person`` per precision; 2D jitter (``_metrics.jitter_2d``) per precision.
  Compare ``end_to_end_rel`` with the jitter: a difference well below the frame-to-frame noise is
  invisible downstream.

Usage: ``python benchmarks/pose2d_precision.py [--max-frames 300] [--repeats 2]``; writes
``benchmarks/results/pose2d_precision.json``.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads; see pose2d_models.py

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _metrics import jitter_2d  # noqa: E402

from streampose.pose2d.estimator import PoseEstimator2D  # noqa: E402
from streampose.pose2d.weights import load_detector, load_landmark_model, native_bf16_cpu  # noqa: E402

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
VIDEOS = ("intel_people_walking.mp4", "pose2sim_balance_cam01.mp4", "sports2d_walk_jump.mp4")
RESULTS = Path(__file__).resolve().parent / "results" / "pose2d_precision.json"


class SameCropTwin(torch.nn.Module):
    """The fp32 landmark network, which also runs the bf16 one on every batch of crops it gets and
    records how far the regressed landmarks differ (crop pixels)."""

    def __init__(self, fp32: torch.nn.Module, bf16: torch.nn.Module):
        super().__init__()
        self.fp32, self.bf16 = fp32, bf16
        self.distances: list[np.ndarray] = []

    def forward(self, crops: torch.Tensor):
        reference = self.fp32(crops)
        other = self.bf16(crops)
        a = reference.landmarks.reshape(len(crops), -1, 5)[:, :33, :2]
        b = other.landmarks.reshape(len(crops), -1, 5)[:, :33, :2]
        self.distances.append(torch.linalg.norm(a - b, dim=-1).flatten().numpy())
        return reference


def decode(path: Path, max_frames: int) -> list[np.ndarray]:
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if len(frames) >= max_frames:
                break
            frames.append(frame.to_ndarray(format="rgb24"))
    return frames


def run(estimator: PoseEstimator2D, frames: list[np.ndarray]) -> tuple[float, np.ndarray]:
    """Seconds for the whole clip and the (T, 17, 3) keypoints (NaN where nobody was found)."""
    estimator.reset()
    keypoints = np.full((len(frames), 17, 3), np.nan)
    started = time.perf_counter()
    for t, image in enumerate(frames):
        people = estimator.process(image)
        if people:
            keypoints[t] = people[0].keypoints2d
    return time.perf_counter() - started, keypoints


def relative_distance(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per-joint distance / person height on frames where both found someone; ``(N, 17)``."""
    a, b = reference[..., :2], other[..., :2]
    both = np.isfinite(a[:, 0, 0]) & np.isfinite(b[:, 0, 0])
    height = np.ptp(a[both][..., 1], axis=1)
    return np.linalg.norm(a[both] - b[both], axis=-1) / np.maximum(height[:, None], 1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    videos = [SHARED_VIDEOS / name for name in VIDEOS if (SHARED_VIDEOS / name).is_file()]
    if not videos:
        print(f"no shared videos under {SHARED_VIDEOS}", file=sys.stderr)
        return 1

    estimators = {p: PoseEstimator2D(precision=p) for p in ("fp32", "mixed", "bf16")}
    twin = SameCropTwin(load_landmark_model(precision="fp32"), load_landmark_model(precision="bf16"))
    same_crop = PoseEstimator2D(detector_model=load_detector(precision="fp32"), landmark_model=twin)

    rows = []
    for path in videos:
        frames = decode(path, args.max_frames)
        seconds = {p: float("inf") for p in estimators}
        keypoints = {}
        for _ in range(args.repeats):  # alternate, so background load hits both alike
            for precision, estimator in estimators.items():
                elapsed, keypoints[precision] = run(estimator, frames)
                seconds[precision] = min(seconds[precision], elapsed)
        twin.distances.clear()
        run(same_crop, frames)
        crop_px = np.concatenate(twin.distances) if twin.distances else np.array([np.nan])
        rel = {p: relative_distance(keypoints["fp32"], keypoints[p]) for p in ("mixed", "bf16")}
        rows.append({
            "video": path.name,
            "frames": len(frames),
            "ms_per_frame": {p: 1e3 * s / len(frames) for p, s in seconds.items()},
            "speedup": {p: seconds["fp32"] / seconds[p] for p in ("mixed", "bf16")},
            "same_crop_px_mean": float(np.mean(crop_px)),
            "same_crop_px_p95": float(np.percentile(crop_px, 95)),
            "end_to_end_rel_mean": {p: float(d.mean()) if d.size else float("nan") for p, d in rel.items()},
            "end_to_end_rel_p95": {p: float(np.percentile(d, 95)) if d.size else float("nan")
                                   for p, d in rel.items()},
            "frames_with_person": {p: int(np.isfinite(k[:, 0, 0]).sum()) for p, k in keypoints.items()},
            "jitter_2d": {p: jitter_2d(k) for p, k in keypoints.items()},
        })

    report = {
        "benchmark": "pose2d_precision",
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.machine(),
        "native_bf16_cpu": native_bf16_cpu(),
        "torch": torch.__version__,
        "threads": args.threads,
        "repeats": args.repeats,
        "load_average_at_end": os.getloadavg(),
        "note": "decode excluded; best of repeats, fp32 and bf16 alternated; ratios from the same run",
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{'video':28s} {'ms fp32/mixed/bf16':>20s} {'speedup m/b':>11s} {'crop px':>8s} {'p95':>6s} "
          f"{'e2e rel m/b':>13s} {'persons f/m/b':>13s} {'jitter f/m/b':>22s}")
    for r in rows:
        ms, fw, jit, sp, e2e = (r["ms_per_frame"], r["frames_with_person"], r["jitter_2d"], r["speedup"],
                                r["end_to_end_rel_mean"])
        print(f"{r['video']:28s} {ms['fp32']:6.2f}/{ms['mixed']:6.2f}/{ms['bf16']:6.2f} "
              f"{sp['mixed']:5.2f}/{sp['bf16']:5.2f} {r['same_crop_px_mean']:8.3f} {r['same_crop_px_p95']:6.2f} "
              f"{e2e['mixed']:.4f}/{e2e['bf16']:.4f} {fw['fp32']:>4d}/{fw['mixed']:>3d}/{fw['bf16']:<4d} "
              f"{jit['fp32']:.4f}/{jit['mixed']:.4f}/{jit['bf16']:.4f}")
    print(f"native bf16: {report['native_bf16_cpu']}; load avg {report['load_average_at_end'][0]:.1f} -> {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
