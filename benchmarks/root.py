"""Root (Hip) position in camera space on held-out mocap, through the tracker as the pipeline runs it.

    python benchmarks/root.py [--cameras 4] [--bandai-clips 40] [--fps 30]

Held-out clips only (``split_clips``' default whole-clip split), resampled to ``--fps`` and filmed by
random virtual cameras (``streampose_train.filming.film``: 50-85 degree lenses across the long side,
0.5-2.5 m high, 2.5-8 m away, radial distortion, 30 % portrait) with ``Noise2D`` detector noise, all
from one fixed seed.  Each filmed clip goes through :class:`streampose.tracker.Tracker` with the
shipped lifter -- the exact per-track path of the pipeline: lifter stream, root solve, the track's
3D smoother -- under several camera settings:

* ``trajectory``: the lifter's trajectory model (the root before this benchmark's work);
* ``given``: the true intrinsics and distortion (as ``--calibration`` gives them);
* ``given+height``: the same plus the subject's true height (``--height``; the skeleton height of the
  ground-truth pose, :func:`streampose.lifter.root.skeleton_height`);
* ``assumed``: no intrinsics -- the default 65-degree lens across the long side;
* ``assumed+height``.

Metrics per frame, frame-weighted means over all clips: root position error as % of the camera
distance (``|root - gt| / |gt|``), root depth error % (``|z - z_gt| / z_gt``), also in metres, plus
the 90th percentile of the position error.  Two sets: CMU held-out (the subjects the lifter was
trained on, other clips) and Bandai Namco held-out (other actors, smaller: a body-size mismatch).

Real video (``--real``, when ``../shared`` is there): the calibrated 4-view Pose2Sim clip.  The 2D
and the offline pipeline's 3D come from ``benchmarks/accuracy_real.py``'s per-view cache (run there
if missing); per frame the people are associated across the views by triangulation
(``_multiview.associate_people``) and, for people seen by >= 3 views, each view's root is solved
from its own 2D, its 3D pose and its calibration (per frame, unsmoothed), and compared with the
triangulated mid-hip in that camera: error as % of the camera distance, with the lifter's scale, an
assumed 1.70 m person, and the person's triangulated skeleton height as ``--height``.

Writes ``benchmarks/results/root.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streampose.camera import Calibration, CameraOptions  # noqa: E402
from streampose.lifter.root import skeleton_height  # noqa: E402
from streampose.tracker import Tracker  # noqa: E402
from streampose.types import Frame, Person2D  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "root.json"
VARIANTS = ("trajectory", "given", "given+height", "assumed", "assumed+height")


def calibration_of(intrinsics) -> Calibration:
    """The virtual camera as a calibration file would give it."""
    return Calibration(matrix=tuple(map(tuple, intrinsics.matrix)), distortion=intrinsics.distortion,
                       size=(intrinsics.width, intrinsics.height), source="virtual camera")


def run_tracker(lifter, shot, fps: float, variant: str, causal: bool, height: float | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(T, 3)`` roots and ``(T, 17, 3)`` root-relative poses the tracker reports for one filmed clip
    (NaN where it reported none)."""
    camera = CameraOptions(calibration=calibration_of(shot.camera.intrinsics)) if variant.startswith("given") \
        else CameraOptions()
    tracker = Tracker(lifter, smoothing="kalman", causal=causal, fps=fps, camera=camera,
                      person_height=height if variant.endswith("+height") else None,
                      root="trajectory" if variant == "trajectory" else "geometry")
    width, height_px = shot.image_size
    image = np.zeros((height_px, width, 3), np.uint8)
    keypoints = np.concatenate([shot.pixels, shot.confidence[..., None]], -1).astype(np.float32)
    frames = []
    for t, kp in enumerate(keypoints):
        x0, y0 = kp[:, :2].min(0)
        x1, y1 = kp[:, :2].max(0)
        # One person whose box always overlaps the last one: a single track per clip.
        person = Person2D(bbox=np.array([x0, y0, x1, y1], np.float32), score=0.9, keypoints2d=kp)
        frames += tracker.push(Frame(index=t, time=t / fps, image=image), [person])
    frames += tracker.flush()
    roots = np.full((len(keypoints), 3), np.nan)
    poses = np.full((len(keypoints), 17, 3), np.nan)
    for frame in frames:
        if frame.people and frame.people[0].root is not None:
            roots[frame.index] = frame.people[0].root
        if frame.people and frame.people[0].keypoints3d is not None:
            poses[frame.index] = frame.people[0].keypoints3d
    return roots, poses


def errors(pred: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    distance = np.linalg.norm(gt, axis=-1)
    ok = np.isfinite(pred).all(-1)
    return {"position": np.linalg.norm(pred - gt, axis=-1)[ok] / distance[ok],
            "depth": np.abs(pred[ok, 2] - gt[ok, 2]) / gt[ok, 2],
            "position_m": np.linalg.norm(pred - gt, axis=-1)[ok],
            "depth_m": np.abs(pred[ok, 2] - gt[ok, 2]),
            "missing": np.array([float((~ok).sum())]), "frames": np.array([float(len(ok))])}


def summarise(parts: list[dict[str, np.ndarray]]) -> dict[str, float]:
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return {"position_error_pct": round(100 * float(cat["position"].mean()), 2),
            "depth_error_pct": round(100 * float(cat["depth"].mean()), 2),
            "position_error_p90_pct": round(100 * float(np.percentile(cat["position"], 90)), 2),
            "position_error_m": round(float(cat["position_m"].mean()), 3),
            "depth_error_m": round(float(cat["depth_m"].mean()), 3),
            "frames": int(cat["frames"].sum()), "frames_without_root": int(cat["missing"].sum())}


def evaluate(lifter, clips, cameras: int, fps: float, causal: bool, seed: int) -> dict:
    from streampose_train.filming import film
    from streampose_train.lifter import default_noise
    from streampose_train.mocap import resample

    rng = np.random.default_rng(seed)
    noise = default_noise()
    parts: dict[str, list] = {v: [] for v in VARIANTS}
    world: list[dict] = []
    distances, heights = [], []
    for clip in clips:
        clip = resample(clip, fps)
        for _ in range(cameras):
            shot = film(clip.joints3d, rng, fps=fps, noise=noise)
            gt_root = shot.joints_cam[:, 0]
            height = float(np.median(skeleton_height(shot.joints_cam - gt_root[:, None])))
            distances.append(np.linalg.norm(gt_root, axis=-1).mean())
            heights.append(height)
            for variant in VARIANTS:
                if variant == "trajectory" and not lifter.has_trajectory:
                    continue
                roots, poses = run_tracker(lifter, shot, fps, variant, causal, height)
                parts[variant].append(errors(roots, gt_root))
                if variant == "given":
                    world.append(world_errors(shot, roots, poses, fps))
    return {"clips": len(clips), "cameras_per_clip": cameras,
            "mean_camera_distance_m": round(float(np.mean(distances)), 2),
            "mean_skeleton_height_m": round(float(np.mean(heights)), 3),
            "variants": {v: summarise(p) for v, p in parts.items() if p},
            "world_given": summarise_world(world)}


def world_errors(shot, roots: np.ndarray, poses: np.ndarray, fps: float) -> dict:
    """Floor fit and foot sliding of one clip's tracker output (true intrinsics), vs the ground truth."""
    from streampose.export.bvh import fill_missing
    from streampose.world import fit_ground, foot_contacts, foot_sliding

    camera_joints = poses + fill_missing(roots)[:, None]
    ok = np.isfinite(camera_joints).all((1, 2))
    try:
        ground = fit_ground(camera_joints[ok], fps)
    except Exception:  # noqa: BLE001 -- a clip whose feet never stand still: counted as a failure
        return {"failed": True}
    true_up = shot.camera.rotation[:, 1]  # world +y in camera coordinates
    angle = float(np.degrees(np.arccos(np.clip(ground.up @ true_up, -1.0, 1.0))))
    estimated = ground.to_world(camera_joints[ok])
    from streampose_train.filming import camera_to_world

    truth = camera_to_world(shot.joints_cam[ok], shot.camera)
    true_contacts = foot_contacts(truth, fps)
    return {"failed": False, "method": ground.method, "up_angle_deg": angle,
            "camera_height_error_m": abs(ground.camera_height - float(shot.camera.position[1])),
            "camera_height_m": float(shot.camera.position[1]),
            "sliding_estimated": foot_sliding(estimated, foot_contacts(estimated, fps)),
            "sliding_estimated_at_true_contacts": foot_sliding(estimated, true_contacts),
            "sliding_truth": foot_sliding(truth, true_contacts)}


def summarise_world(rows: list[dict]) -> dict:
    good = [r for r in rows if not r["failed"]]
    if not good:
        return {"clips": len(rows), "fitted": 0}

    def sliding(key: str) -> float:
        frames = sum(r[key]["contact_frames"] for r in good)
        total = sum(r[key]["mm_per_contact_frame"] * r[key]["contact_frames"] for r in good
                    if r[key]["contact_frames"])
        return round(total / frames, 2) if frames else float("nan")

    return {"clips": len(rows), "fitted": len(good),
            "fitted_by_contacts": sum(r["method"] == "contacts" for r in good),
            "up_angle_error_deg_mean": round(float(np.mean([r["up_angle_deg"] for r in good])), 2),
            "up_angle_error_deg_p90": round(float(np.percentile([r["up_angle_deg"] for r in good], 90)), 2),
            "camera_height_error_m_mean": round(float(np.mean([r["camera_height_error_m"] for r in good])), 3),
            "camera_height_m_mean": round(float(np.mean([r["camera_height_m"] for r in good])), 3),
            "foot_sliding_mm_per_contact_frame": {
                "estimated_contacts": sliding("sliding_estimated"),
                "true_contacts": sliding("sliding_estimated_at_true_contacts"),
                "ground_truth_motion": sliding("sliding_truth")},
            "contact_frames": {"estimated": sum(r["sliding_estimated"]["contact_frames"] for r in good),
                               "true": sum(r["sliding_truth"]["contact_frames"] for r in good)}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, default=4, help="virtual cameras per CMU held-out clip")
    parser.add_argument("--bandai-clips", type=int, default=40,
                        help="Bandai held-out clips (1 camera each; 0: skip)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--live", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the causal (live) lifter")
    parser.add_argument("--real", action=argparse.BooleanOptionalAction, default=True,
                        help="also the calibrated 4-view real clip (skipped without ../shared)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch

    from streampose.lifter import load_lifter
    from streampose_train.mocap import load_mocap, split_clips

    torch.set_num_threads(1)
    sets = {"cmu": (split_clips(load_mocap("cmu"))[1], args.cameras)}
    if args.bandai_clips:
        sets["bandai"] = (split_clips(load_mocap("bandai"))[1][: args.bandai_clips], 1)
    modes = [("offline", False)] + ([("live", True)] if args.live else [])
    started = time.perf_counter()
    results: dict = {}
    for mode, causal in modes:
        lifter = load_lifter("default", causal=causal, test_time_flip=not causal)
        for name, (clips, cameras) in sets.items():
            results.setdefault(mode, {})[name] = evaluate(lifter, clips, cameras, args.fps, causal, args.seed)
            results[mode][name]["lifter"] = lifter.description
    real = real_video_check() if args.real else None
    if real is not None:
        results["real_pose2sim"] = real
    meta = {"fps": args.fps, "seed": args.seed, "machine": platform.machine(),
            "seconds": round(time.perf_counter() - started, 1),
            "targets": "given focal length: position error <= 10 % of the camera distance, depth error <= 8 %",
            "notes": ["held-out clips only (split_clips default split); Bandai Namco clips are CC BY-NC 4.0 and "
                      "used here for evaluation only",
                      "'given' = the true K and distortion; 'assumed' = 65 deg across the long side while the "
                      "virtual lenses span 50-85 deg, so its error is mostly the focal-length error",
                      "'+height' = the subject's true skeleton height (streampose.lifter.root.skeleton_height "
                      "of the ground truth) as --height"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    print(format_table(results))
    if real is not None:
        for scale, m in real["scales"].items():
            print(f"real pose2sim  scale {scale:24s} pos {m['position_error_pct']:5.1f} %  depth "
                  f"{m['depth_error_pct']:5.1f} % (signed {m['depth_bias_pct']:+.1f} %)  n={m['samples']}")
    print(f"wrote {args.out}")
    return 0


def format_table(results: dict) -> str:
    lines = [f"{'lifter':8s} {'set':7s} {'variant':15s} {'pos %':>6s} {'depth %':>7s} {'p90 %':>6s} "
             f"{'pos m':>6s} {'depth m':>7s} {'frames':>7s}"]
    for mode, sets in results.items():
        if mode == "real_pose2sim":
            continue
        for name, res in sets.items():
            for variant, m in res["variants"].items():
                lines.append(f"{mode:8s} {name:7s} {variant:15s} {m['position_error_pct']:6.1f} "
                             f"{m['depth_error_pct']:7.1f} {m['position_error_p90_pct']:6.1f} "
                             f"{m['position_error_m']:6.2f} {m['depth_error_m']:7.2f} {m['frames']:7d}")
    return "\n".join(lines)


def real_video_check() -> dict | None:
    """The per-view geometric root on the calibrated 4-view clip vs the triangulated mid-hip."""
    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "pose2sim_multiperson"
    if not (data / "Calib.qca.txt").is_file():
        print("real video check skipped: ../shared/data/videos/pose2sim_multiperson is absent")
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _multiview as mv
    import accuracy_real as ar

    from streampose.camera import undistort_normalized
    from streampose.lifter.root import solve_root

    cameras = mv.load_qca(data / "Calib.qca.txt")
    views = [ar.streampose_2d_cached(data / f"{c.name}.mp4", 4, None, False)[0] for c in cameras]
    intrinsics = [CameraOptions(calibration=Calibration(tuple(map(tuple, c.K)), tuple(c.dist), tuple(c.size)))
                  .resolve(*(int(x) for x in v["size"])).intrinsics for c, v in zip(cameras, views)]
    scales = {"lifter": None, "assumed_height_1.70m": 1.70, "triangulated_height": "triangulated"}
    rows: dict[str, list[tuple[float, float]]] = {k: [] for k in scales}
    for t in range(min(len(v["present"]) for v in views)):
        detections, members = [], []
        for v in views:
            kp = ar.raw_kp2d(v["landmarks33"][t])
            ok = v["present"][t] & np.isfinite(v["kp3d"][t]).all((1, 2))
            detections.append(kp[ok])
            members.append([(v["kp3d"][t, k].astype(np.float64), kp[k]) for k in np.flatnonzero(ok)])
        for cluster in mv.associate_people(detections, cameras):
            if len(cluster.members) < 3:
                continue
            height_true = float(skeleton_height(cluster.points3d / 1000.0))
            for view, det in cluster.members.items():
                pose, kp = members[view][det]
                camera = cameras[view]
                hip = (camera.R @ cluster.points3d[0] + camera.t) / 1000.0  # metres, this camera
                if not np.isfinite(hip).all():
                    continue
                uv = undistort_normalized(kp[:, :2], intrinsics[view])
                for name, height in scales.items():
                    target = height_true if height == "triangulated" else height
                    if target is not None and not np.isfinite(target):
                        continue
                    scaled = pose if target is None else pose * (target / float(skeleton_height(pose)))
                    root = solve_root(scaled, uv, kp[:, 2])
                    if np.isfinite(root).all():
                        rows[name].append((float(np.linalg.norm(root - hip) / np.linalg.norm(hip)),
                                           float((root[2] - hip[2]) / hip[2])))
    out = {}
    for name, values in rows.items():
        a = np.array(values)
        out[name] = {"position_error_pct": round(100 * float(a[:, 0].mean()), 2),
                     "position_error_median_pct": round(100 * float(np.median(a[:, 0])), 2),
                     "depth_error_pct": round(100 * float(np.abs(a[:, 1]).mean()), 2),
                     "depth_bias_pct": round(100 * float(a[:, 1].mean()), 2), "samples": int(len(a))}
    return {"clip": "pose2sim_multiperson (4 calibrated views, 100 frames, 60 fps)",
            "note": "per-frame roots (not smoothed) of people seen by >= 3 views vs their triangulated "
                    "mid-hip (BlazePose 2D of all member views); the lifter's default scale is the CMU "
                    "training rig's (skeleton height ~1.9 m)", "scales": out}


if __name__ == "__main__":
    sys.exit(main())
