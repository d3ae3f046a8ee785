"""Refiner on real videos (no ground truth): how large are its corrections, and do they make the
pose sequence more or less temporally consistent?

    python benchmarks/refiner_video.py [--refiner default] [--max-frames 120] [VIDEO ...]

Per video: BlazePose 2D (``streampose.pose2d``, with person mask) on every frame -> initial 3D from a
lifter on the whole 2D sequence (the project's ``streampose.lifter`` default weights when they
exist, else the refiner's fallback MLP lifter from its dataset cache) -> refiner per frame.  Frames
are kept at half resolution for memory (the refiner's crops are person-relative, so this only
lowers the pixels it sees).  Reports the mean/95th-percentile correction per joint, mean joint
acceleration (mm/frame^2) and bone-length standard deviation over time, initial vs refined.
Writes ``benchmarks/results/refiner_video.json``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from streampose.refine import limbs, load_refiner

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
RESULTS = Path(__file__).resolve().parent / "results" / "refiner_video.json"
DEFAULT_VIDEOS = ("pose2sim_balance_cam01.mp4", "sports2d_walk_jump.mp4")


def _lifter(name: str, log):
    from streampose.lifter import load_lifter
    lifter = load_lifter(name)
    return (lambda kp, size: lifter.lift_sequence(kp, image_size=size)[0]), f"streampose.lifter:{name}"


def _consistency(poses: np.ndarray) -> dict:
    """``(T, 17, 3)`` metres -> acceleration and bone-length stability (mm)."""
    accel = np.linalg.norm(poses[2:] - 2 * poses[1:-1] + poses[:-2], axis=-1).mean()
    bones = np.linalg.norm(limbs.limb_vectors(torch.from_numpy(poses)).numpy(), axis=-1)
    return {"accel_mm_per_frame2": round(1000 * float(accel), 2),
            "bone_length_std_mm": round(1000 * float(bones.std(0).mean()), 2)}


def run_video(path: Path, refiner, lift, max_frames: int, log) -> dict:
    from streampose.pose2d import PoseEstimator2D
    from streampose.reader import open_source
    estimator = PoseEstimator2D(want_mask=True, max_people=1)
    frames, masks, kp2d, found = [], [], [], []
    started = time.perf_counter()
    with open_source(str(path), max_frames=max_frames) as reader:
        width, height = reader.info.width, reader.info.height
        for frame in reader:
            people = estimator.process(frame)
            image = torch.from_numpy(frame.image).permute(2, 0, 1)[None].float()
            small = F.interpolate(image, scale_factor=0.5, mode="area")[0]
            frames.append(small.permute(1, 2, 0).round().to(torch.uint8).numpy())
            if people:
                person = people[0]
                kp2d.append(person.keypoints2d.astype(np.float32))
                mask = person.mask if person.mask is not None else np.zeros((height, width), np.float32)
                masks.append(F.interpolate(torch.from_numpy(mask)[None, None].float(), scale_factor=0.5,
                                           mode="area")[0, 0].numpy())
                found.append(True)
            else:
                kp2d.append(kp2d[-1] if kp2d else np.zeros((17, 3), np.float32))
                masks.append(masks[-1] if masks else np.zeros(frames[-1].shape[:2], np.float32))
                found.append(False)
    seconds_2d = time.perf_counter() - started
    kp2d = np.stack(kp2d)
    initial = lift(kp2d, (width, height))
    initial = initial - initial[:, :1]
    started = time.perf_counter()
    kp_half = kp2d.copy()
    kp_half[..., :2] = (kp2d[..., :2] + 0.5) / 2 - 0.5          # pixel centres at half resolution
    refined = np.concatenate([refiner.refine_batch(frames[i:i + 16], kp_half[i:i + 16],
                                                   initial[i:i + 16], masks[i:i + 16])
                              for i in range(0, len(frames), 16)])
    seconds_refine = time.perf_counter() - started
    keep = np.asarray(found)
    change = np.linalg.norm(refined - initial, axis=-1)[keep]     # (T', 17)
    result = {
        "video": path.name, "frames": len(frames), "frames_with_person": int(keep.sum()),
        "size": [width, height],
        "correction_mean_mm": round(1000 * float(change.mean()), 1),
        "correction_p95_mm": round(1000 * float(np.percentile(change, 95)), 1),
        "correction_per_joint_mm": [round(1000 * float(v), 1) for v in change.mean(0)],
        "initial": _consistency(initial), "refined": _consistency(refined),
        "seconds_2d": round(seconds_2d, 1), "refine_ms_per_frame": round(1000 * seconds_refine / len(frames), 1),
    }
    log(json.dumps({k: v for k, v in result.items() if k != "correction_per_joint_mm"}))
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("videos", nargs="*")
    parser.add_argument("--refiner", default="default")
    parser.add_argument("--max-frames", type=int, default=120)
    parser.add_argument("--lifter", default="default", help="streampose.lifter weights name")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    videos = [Path(v) for v in args.videos] or [SHARED / name for name in DEFAULT_VIDEOS]
    refiner = load_refiner(args.refiner)
    lift, lifter_name = _lifter(args.lifter, print)
    rows = [run_video(v, refiner, lift, args.max_frames, print) for v in videos]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"refiner": str(args.refiner), "lifter": lifter_name,
                               "refiner_config": vars(refiner.config) if hasattr(refiner.config, "__dict__") else None,
                               "videos": rows}, indent=1))
    print(f"\n{'video':28} {'frames':>6} {'corr mm':>8} {'p95':>6} {'accel init':>10} {'accel ref':>9} "
          f"{'bone std init':>13} {'ref':>6}")
    for r in rows:
        print(f"{r['video']:28} {r['frames']:6d} {r['correction_mean_mm']:8.1f} {r['correction_p95_mm']:6.1f} "
              f"{r['initial']['accel_mm_per_frame2']:10.2f} {r['refined']['accel_mm_per_frame2']:9.2f} "
              f"{r['initial']['bone_length_std_mm']:13.2f} {r['refined']['bone_length_std_mm']:6.2f}")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
