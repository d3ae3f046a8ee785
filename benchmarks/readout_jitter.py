"""Direct regression vs integral (soft-argmax) readout of BlazePose landmarks on the shared videos.

The estimator tracks one person per video (detector only when lost).  For every tracked frame the
*same* landmark-network outputs are read out by each readout variant, so differences come from the
readout alone.  Per variant we report, over the 33 landmarks:

* ``agreement_px``: mean distance (image pixels) to the regressed landmarks, and the same divided by
  the person's box size (``max(w, h)`` of the regressed landmarks) as ``agreement_rel``.
* ``jitter``: mean |x[t+1] - 2 x[t] + x[t-1]| (Euclidean, px) / box size over consecutive tracked
  frames -- frame-to-frame acceleration, which on these videos is dominated by readout noise; real
  motion contributes equally to every variant.  ``jitter_visible`` only counts landmarks with
  visibility > 0.5 in all three frames.
* ``offset_px``: mean signed (dx, dy) from regression (a systematic shift would reveal a coordinate
  convention error).

Usage: ``python benchmarks/readout_jitter.py [--max-frames 400]``; writes
``benchmarks/results/readout_jitter.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import av
import numpy as np
import torch

from streampose.pose2d.estimator import PoseEstimator2D
from streampose.pose2d.readout import IntegralOptions, integral_readout
from streampose.pose2d.roi import apply_affine, crop_from_image_matrices
from streampose.pose2d.weights import load_detector, load_landmark_model

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
VIDEOS = ("pose2sim_balance_cam01.mp4", "sports2d_walk_jump.mp4", "intel_people_walking.mp4")
VARIANTS: dict[str, IntegralOptions | None] = {
    "regression": None,
    "integral_softmax_w7": IntegralOptions("softmax", 7, 0.5),
    "integral_softmax_w5": IntegralOptions("softmax", 5, 0.5),
    "integral_softmax_w9": IntegralOptions("softmax", 9, 0.5),
    "integral_softmax_full": IntegralOptions("softmax", None, 0.5),
    "integral_sigmoid_w7": IntegralOptions("sigmoid", 7, 0.5),  # MediaPipe's refinement
    "integral_softmax_w7_ungated": IntegralOptions("softmax", 7, 0.0),
    # the geometric cell-centre grid instead of MediaPipe's (see IntegralOptions.cell_origin)
    "integral_softmax_w7_cellcentre": IntegralOptions("softmax", 7, 0.5, cell_origin=0.5),
}
NUM_LANDMARKS = 33


def read_variants(estimator: PoseEstimator2D) -> dict[str, np.ndarray]:
    """Image-pixel landmarks ``(33, 2)`` of the tracked person under every readout variant, and the
    crop-pixel ones (``<name>@crop``)."""
    out, rois = estimator.last_outputs, estimator.last_rois
    crop_xy = out.landmarks[..., :2] - 0.5
    to_image = crop_from_image_matrices(rois, 256)
    result = {}
    for name, options in VARIANTS.items():
        xy = crop_xy if options is None else integral_readout(out.heatmaps, crop_xy, 256, options)
        result[name] = apply_affine(to_image, xy)[0, :NUM_LANDMARKS].cpu().numpy()
        result[name + "@crop"] = xy[0, :NUM_LANDMARKS].cpu().numpy()
    return result


def run_video(estimator: PoseEstimator2D, path: Path, max_frames: int) -> dict:
    estimator.reset()
    detector_runs_before = estimator.stats["detector_runs"]
    runs: list[list[dict]] = [[]]  # consecutive tracked frames
    frames = 0
    started = time.perf_counter()
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frames >= max_frames:
                break
            frames += 1
            people = estimator.process(frame.to_ndarray(format="rgb24"))
            if not people or estimator.last_outputs is None:
                runs.append([])
                continue
            variants = read_variants(estimator)
            variants["visibility"] = people[0].landmarks33[:, 3]
            runs[-1].append(variants)
    elapsed = time.perf_counter() - started
    tracked = sum(len(r) for r in runs)
    stats: dict = {"frames": frames, "tracked_frames": tracked, "detector_runs": estimator.stats["detector_runs"] - detector_runs_before,
                   "seconds": round(elapsed, 1), "variants": {}}
    for name in VARIANTS:
        distances, rel, offsets, crop_offsets, jitter, jitter_vis = [], [], [], [], [], []
        for run in runs:
            for t, rec in enumerate(run):
                reg = rec["regression"]
                size = float(np.ptp(reg, axis=0).max())
                d = rec[name] - reg
                distances.append(np.linalg.norm(d, axis=1).mean())
                rel.append(distances[-1] / size)
                offsets.append(d.mean(axis=0))
                # In crop pixels and only where the readout moved the point (confident heat maps):
                # a convention error in the heat-map grid would show here as a constant shift.
                crop_d = rec[name + "@crop"] - rec["regression@crop"]
                moved = np.abs(crop_d).sum(axis=1) > 0
                if moved.any():
                    crop_offsets.append(crop_d[moved].mean(axis=0))
                if 0 < t < len(run) - 1:
                    accel = np.linalg.norm(run[t + 1][name] - 2 * rec[name] + run[t - 1][name], axis=1) / size
                    jitter.append(accel.mean())
                    visible = (run[t - 1]["visibility"] > 0.5) & (rec["visibility"] > 0.5) & (run[t + 1]["visibility"] > 0.5)
                    if visible.any():
                        jitter_vis.append(accel[visible].mean())
        stats["variants"][name] = {
            "agreement_px": round(float(np.mean(distances)), 3) if distances else None,
            "agreement_rel": round(float(np.mean(rel)), 5) if rel else None,
            "offset_px": [round(float(v), 3) for v in np.mean(offsets, axis=0)] if offsets else None,
            "offset_crop_px": [round(float(v), 3) for v in np.mean(crop_offsets, axis=0)] if crop_offsets else None,
            "jitter": round(float(np.mean(jitter)), 6) if jitter else None,
            "jitter_visible": round(float(np.mean(jitter_vis)), 6) if jitter_vis else None,
            "jitter_triplets": len(jitter),
        }
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-frames", type=int, default=400, help="frames per video (from the start)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "readout_jitter.json")
    args = parser.parse_args(argv)
    if not SHARED_VIDEOS.is_dir():
        print(f"shared videos not found at {SHARED_VIDEOS}; nothing to measure")
        return 1
    torch.set_num_threads(args.threads)
    # Tracking (the next ROI) follows the regressed landmarks so every variant sees identical crops.
    estimator = PoseEstimator2D(readout="regression", detector_model=load_detector("cpu"),
                                landmark_model=load_landmark_model("cpu", with_heatmap=True))
    results = {"benchmark": "readout_jitter", "max_frames": args.max_frames, "torch": torch.__version__,
               "machine": platform.machine(), "threads": args.threads, "videos": {}}
    for name in VIDEOS:
        print(f"{name} ...", flush=True)
        results["videos"][name] = run_video(estimator, SHARED_VIDEOS / name, args.max_frames)
    # Pool over videos, weighting each video's means by its tracked frames / triplets.
    pooled = {}
    for variant in VARIANTS:
        rows = [v["variants"][variant] | {"n": v["tracked_frames"]} for v in results["videos"].values() if v["tracked_frames"]]
        def pool(key, weight):
            pairs = [(r[key], r[weight]) for r in rows if r[key] is not None and r[weight]]
            total = sum(w for _, w in pairs)
            return round(sum(x * w for x, w in pairs) / total, 6) if total else None
        pooled[variant] = {"agreement_px": pool("agreement_px", "n"), "agreement_rel": pool("agreement_rel", "n"),
                           "jitter": pool("jitter", "jitter_triplets"),
                           "jitter_visible": pool("jitter_visible", "jitter_triplets")}
    results["pooled"] = pooled
    base = pooled["regression"]["jitter"]
    for variant in VARIANTS:
        pooled[variant]["jitter_vs_regression"] = round(pooled[variant]["jitter"] / base, 4) if base else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))

    def fmt(value, spec):
        return format(value, spec) if value is not None else format("-", spec.rstrip("f").split(".")[0] + "s")

    print(f"\n{'video':28s} {'variant':30s} {'agree px':>9s} {'jitter':>9s} {'jit vis':>9s} {'crop offset px':>18s}")
    for video, v in results["videos"].items():
        for variant, s in v["variants"].items():
            print(f"{video[:28]:28s} {variant:30s} {fmt(s['agreement_px'], '9.3f')} {fmt(s['jitter'], '9.5f')} "
                  f"{fmt(s['jitter_visible'], '9.5f')} {str(s['offset_crop_px']):>18s}")
        print(f"{'':28s} tracked {v['tracked_frames']}/{v['frames']} frames, {v['detector_runs']} detector runs")
    print(f"\n{'pooled':28s} {'variant':30s} {'agree px':>9s} {'jitter':>9s} {'vs regr':>9s}")
    for variant, s in pooled.items():
        print(f"{'':28s} {variant:30s} {fmt(s['agreement_px'], '9.3f')} {fmt(s['jitter'], '9.5f')} "
              f"{fmt(s['jitter_vs_regression'], '9.3f')}")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
