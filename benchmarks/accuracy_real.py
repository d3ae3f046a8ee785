"""Our own real-video 3D check: monocular 3D per view vs leave-one-view-out triangulated 2D.

The Pose2Sim 4-view lab clip (``../shared/data/videos/pose2sim_multiperson``: cam01-cam04, 1088x1920,
60 fps, 100 frames, two people close together plus bystanders, calibrated) has no mocap, so the
ground truth is built from our own BlazePose 2D:

1. our 2D stage (``streampose.pipeline.Pipeline``, offline, ``max_people`` people) runs on every view;
   its per-frame people (raw BlazePose landmarks, GHUM world landmarks, the pipeline's 3D) are cached
   in ``$STREAMPOSE_CACHE/bench/accuracy_real/`` keyed by video and settings, so re-scoring another
   lifter does not rerun the 2D;
2. each frame's detections are associated across the views by triangulation consistency and linked
   over time into people (``_multiview.associate_people`` / ``link_over_time``); people seen by >= 3
   views in enough frames are the subjects;
3. for each scored view ``v`` the subject's 12 limb joints are triangulated robustly (confidence-
   weighted DLT, outlier views rejected by reprojection error) from the OTHER three views only;
4. each system's detection in view ``v`` is the one whose 2D lies nearest the projection of that
   ground truth (the same rule for every system, so the same person is scored everywhere), and its
   monocular 3D is scored: P-MPJPE (per-frame similarity alignment, primary), N-MPJPE and MPJPE in the
   camera frame after root (mid-hip) alignment, MPJVE, jitter, and the knee (hip-knee-ankle) angle.
   A frame counts when both hips and ``--min-gt-joints`` of the 12 joints got ground truth (occluded
   wrists often do not); errors are over those joints.  The headline uses 10, the strict 12 is
   reported too.  Pooled (frame-weighted) over subjects per view, then averaged over the views.

Caveats: the ground truth is BlazePose 2D triangulated, so it carries BlazePose's joint definitions
(its hips, shoulders), which favours the BlazePose-family systems (``ghum``, ``mediapipe``) over a
lifter trained on mocap joint centres; MediaPipe follows one person per view, so the common frames
are mostly of whichever person it picked.

Systems, same run, same frames: ``streampose`` (the offline pipeline, default lifter), ``lifter:NAME``
(a lifter applied to the cached raw 2D of the subject's track with ``lift_sequence``, test-time flip
as the offline pipeline; ``default`` always, more with ``--lifter``), ``mediapipe`` (MediaPipe Pose
world landmarks, its own virtualenv via ``benchmarks/vs_mediapipe.py``), ``ghum`` (our 2D stage's
BlazePose GHUM world landmarks), ``fusion`` (per-frame mean of ``streampose`` and ``ghum`` after a
similarity alignment of ``ghum`` onto ``streampose``).  A system that finds nobody (or another
person) in a frame misses it: coverage is reported per system, and all systems are scored on the
frames that every one of them has.

    python benchmarks/accuracy_real.py
    python benchmarks/accuracy_real.py --lifter cmu_bandai --lifter /path/to/lifter_x.pt

Writes ``benchmarks/results/accuracy_real.json`` and prints the tables.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _multiview as mv  # noqa: E402
from vs_mediapipe import MEDIAPIPE_VERSION, mediapipe_python, mediapipe_to_h36m, pinned  # noqa: E402

REPO = HERE.parent
DEFAULT_DIR = REPO.parent / "shared" / "data" / "videos" / "pose2sim_multiperson"
RESULTS = HERE / "results" / "accuracy_real.json"
CACHE_FORMAT = 1

# The 12 limb joints, H36M-17 indices, and the BlazePose landmarks they are.
LIMB_NAMES = ("RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle",
              "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist")
LIMB_H36M = np.array([1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16])
LIMB_BLAZE = np.array([24, 26, 28, 23, 25, 27, 11, 13, 15, 12, 14, 16])
HIPS = (0, 3)  # in the 12-joint order
LEGS = ((0, 1, 2), (3, 4, 5))  # (hip, knee, ankle), right and left, in the 12-joint order


def log(*args) -> None:
    print(*args, flush=True)


# ---------------------------------------------------------------------------- 2D stage + cache


def bench_cache() -> Path:
    from streampose.cache import cache_dir

    return cache_dir("bench") / "accuracy_real"


def _file_key(path: Path) -> dict:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _key(payload: dict) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _default_lifter_key() -> dict:
    try:
        from streampose.lifter.api import resolve_weights

        return _file_key(resolve_weights("default", causal=False))
    except Exception as exc:  # noqa: BLE001 -- the key only needs to change when the weights do
        return {"unresolved": repr(exc)}


def run_streampose_2d(video: Path, max_people: int, max_frames: int | None) -> dict:
    """Run the offline pipeline on one view; per frame up to ``max_people`` slots (NaN when empty).

    Returns arrays: ``present (T, K)`` bool, ``track (T, K)`` int, ``score (T, K)``, ``bbox (T, K, 4)``
    px, ``landmarks33 (T, K, 33, 5)`` (raw BlazePose: x, y px, z, visibility, presence), ``world33
    (T, K, 33, 3)`` m (GHUM world landmarks), ``kp3d (T, K, 17, 3)`` m root-relative camera axes (the
    pipeline's output), ``root (T, K, 3)`` m, plus ``seconds`` (wall time) and ``size`` (w, h).
    """
    from streampose.pipeline import Pipeline, PipelineConfig

    pipe = Pipeline(PipelineConfig(device="cpu", causal=False, max_people=max_people, max_frames=max_frames))
    frames = []
    started = time.perf_counter()
    for pose_frame in pipe.run(str(video)):
        frames.append(pose_frame)
    seconds = time.perf_counter() - started
    T, K = len(frames), max_people
    out = {
        "present": np.zeros((T, K), bool), "track": np.full((T, K), -1, np.int32),
        "score": np.full((T, K), np.nan, np.float32), "bbox": np.full((T, K, 4), np.nan, np.float32),
        "landmarks33": np.full((T, K, 33, 5), np.nan, np.float32),
        "world33": np.full((T, K, 33, 3), np.nan, np.float32),
        "kp3d": np.full((T, K, 17, 3), np.nan, np.float32), "root": np.full((T, K, 3), np.nan, np.float32),
    }
    for t, pose_frame in enumerate(frames):
        for k, person in enumerate(pose_frame.people[:K]):
            out["present"][t, k] = True
            out["track"][t, k] = person.id
            out["score"][t, k] = person.score
            out["bbox"][t, k] = person.bbox
            if person.landmarks33 is not None:
                out["landmarks33"][t, k] = person.landmarks33
            if person.world33 is not None:
                out["world33"][t, k] = person.world33
            if person.keypoints3d is not None:
                out["kp3d"][t, k] = person.keypoints3d
            if person.root is not None:
                out["root"][t, k] = person.root
    info = pipe.source_info
    out["size"] = np.array([info.width, info.height] if info else [0, 0])
    out["seconds"] = np.array(seconds)
    out["models"] = np.array(json.dumps(pipe.describe_models()))
    return out


def streampose_2d_cached(video: Path, max_people: int, max_frames: int | None, refresh: bool) -> tuple[dict, bool]:
    import streampose

    key = _key({"format": CACHE_FORMAT, "video": _file_key(video), "max_people": max_people,
                "max_frames": max_frames, "mode": "offline", "streampose": streampose.__version__,
                "lifter": _default_lifter_key()})
    path = bench_cache() / f"streampose-{video.stem}-{key}.npz"
    if path.is_file() and not refresh:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}, True
    log(f"  2D + offline pipeline on {video.name} (max_people={max_people}) ...")
    out = run_streampose_2d(video, max_people, max_frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)
    return out, False


def mediapipe_cached(video: Path, max_frames: int | None, refresh: bool) -> tuple[dict, bool]:
    worker = HERE / "_mediapipe_worker.py"
    key = _key({"format": CACHE_FORMAT, "video": _file_key(video), "max_frames": max_frames,
                "mediapipe": MEDIAPIPE_VERSION, "worker": hashlib.sha1(worker.read_bytes()).hexdigest()})
    path = bench_cache() / f"mediapipe-{video.stem}-{key}.npz"
    if not path.is_file() or refresh:
        log(f"  MediaPipe Pose on {video.name} ...")
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            tmp_out = Path(tmp) / "mp.npz"
            command = [str(mediapipe_python()), str(worker), str(video), str(tmp_out)]
            if max_frames:
                command += ["--max-frames", str(max_frames)]
            started = time.perf_counter()
            subprocess.run(pinned(command), check=True, env=dict(os.environ, OMP_NUM_THREADS="2"))
            with np.load(tmp_out) as data:
                out = {k: data[k] for k in data.files}
            out["seconds"] = np.array(time.perf_counter() - started)
        np.savez_compressed(path, **out)
        return out, False
    with np.load(path) as data:
        return {k: data[k] for k in data.files}, True


# ---------------------------------------------------------------------------- helpers


def git_state() -> dict:
    """HEAD and whether streampose/ had uncommitted edits (the 2D cache may predate them)."""
    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"head": git("rev-parse", "HEAD"), "streampose_dirty": bool(git("status", "--porcelain", "--", "streampose"))}


def raw_kp2d(landmarks33: np.ndarray) -> np.ndarray:
    """``(..., 33, 5)`` BlazePose landmarks -> ``(..., 17, 3)`` H36M pixels + confidence (as the
    2D stage reports them before smoothing: this is what the pipeline's lifter sees)."""
    from streampose.skeleton import BLAZEPOSE_TO_H36M, map_confidence, map_joints

    return np.concatenate([map_joints(landmarks33[..., :2], BLAZEPOSE_TO_H36M),
                           map_confidence(landmarks33[..., 3], BLAZEPOSE_TO_H36M)[..., None]], axis=-1)


def limbs2d(landmarks33: np.ndarray) -> np.ndarray:
    """``(..., 33, >=4)`` -> ``(..., 12, 3)`` limb joints ``[x, y, visibility]``."""
    return np.concatenate([landmarks33[..., LIMB_BLAZE, :2], landmarks33[..., LIMB_BLAZE, 3:4]], axis=-1)


def fill_gaps(sequence: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Linear interpolation over missing frames (edges held) of ``(T, ...)`` given ``present (T,)``."""
    t = np.arange(len(sequence))
    flat = sequence.reshape(len(sequence), -1).astype(np.float64)
    out = np.empty_like(flat)
    for j in range(flat.shape[1]):
        out[:, j] = np.interp(t, t[present], flat[present, j])
    return out.reshape(sequence.shape).astype(np.float32)


def root_relative(limbs: np.ndarray) -> np.ndarray:
    return limbs - limbs[..., HIPS, :].mean(axis=-2, keepdims=True)


def knee_angles(limbs: np.ndarray) -> np.ndarray:
    """``(..., 12, 3)`` -> ``(..., 2)`` right and left knee angles (degrees, 180 = straight)."""
    return np.stack([mv.joint_angle_deg(limbs[..., h, :], limbs[..., k, :], limbs[..., a, :])
                     for h, k, a in LEGS], axis=-1)


def _r(x, nd=1):
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def _stats(values: np.ndarray) -> dict:
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return {"n": 0}
    return {"n": int(len(values)), "median": _r(np.median(values)), "mean": _r(values.mean()),
            "p90": _r(np.percentile(values, 90)), "max": _r(values.max())}


# ---------------------------------------------------------------------------- scoring


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of ``values (F, J)`` over the joints where ``mask (F, J)``; NaN for an empty row."""
    count = mask.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mask, np.nan_to_num(values), 0.0).sum(-1) / np.where(count > 0, count, np.nan)


def smooth_over_time(poses: np.ndarray, window: int = 5) -> np.ndarray:
    """Centred NaN-aware moving average of ``(T, J, 3)`` over ``window`` frames (NaN stays NaN)."""
    half = window // 2
    out = np.full_like(poses, np.nan)
    for t in range(len(poses)):
        chunk = poses[max(0, t - half): t + half + 1]
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(chunk).all(-1)
            total = np.where(ok[..., None], chunk, 0.0).sum(0)
            n = ok.sum(0)[..., None]
            out[t] = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    out[~np.isfinite(poses).all(-1)] = np.nan
    return out


def summarise(pred_m: np.ndarray, gt_world: np.ndarray, gt_cam: np.ndarray, gt_cam_smooth: np.ndarray,
              mask: np.ndarray, frames: np.ndarray) -> dict:
    """Scores of one system on ``F`` frames.

    Args:
        pred_m: ``(F, 12, 3)`` the system's limb joints, metres, camera axes (any root).
        gt_world: ``(F, 12, 3)`` ground truth, world mm (NaN where a joint has none).
        gt_cam: ``(F, 12, 3)`` the same in the scored camera's frame, mm.
        gt_cam_smooth: ``(F, 12, 3)`` ``gt_cam`` after a 5-frame moving average (for MPJVE).
        mask: ``(F, 12)`` joints that have ground truth (both hips always do).
        frames: ``(F,)`` sorted frame numbers (for the temporal metrics).
    """
    if not len(frames):
        return {"frames": 0}
    pred = pred_m.astype(np.float64) * 1000.0
    aligned = mv.similarity_align(pred, gt_world, mask)
    p_err = _masked_mean(np.linalg.norm(aligned - gt_world, axis=-1), mask)
    pr, gr, gs = root_relative(pred), root_relative(gt_cam), root_relative(gt_cam_smooth)
    dot = np.where(mask, (pr * np.nan_to_num(gr)).sum(-1), 0.0).sum(-1)
    norm = np.where(mask, (pr * pr).sum(-1), 0.0).sum(-1)
    scale = (dot / np.maximum(norm, 1e-9))[:, None, None]
    n_err = _masked_mean(np.linalg.norm(scale * pr - gr, axis=-1), mask)
    r_err = _masked_mean(np.linalg.norm(pr - gr, axis=-1), mask)

    pair = np.flatnonzero(np.diff(frames) == 1)
    pm = mask[pair] & mask[pair + 1]
    dp = pr[pair + 1] - pr[pair]
    vel = _masked_mean(np.linalg.norm(dp - (gr[pair + 1] - gr[pair]), axis=-1), pm)
    vel_s = _masked_mean(np.linalg.norm(dp - (gs[pair + 1] - gs[pair]), axis=-1), pm & np.isfinite(gs[pair]).all(-1)
                         & np.isfinite(gs[pair + 1]).all(-1))
    triple = np.flatnonzero((frames[2:] - frames[:-2]) == 2)
    accel = lambda x: np.linalg.norm(x[triple + 2] - 2 * x[triple + 1] + x[triple], axis=-1)  # noqa: E731
    jit = accel(pr).mean(-1) if len(triple) else np.array([])
    tm = mask[triple] & mask[triple + 1] & mask[triple + 2]
    gt_jit = _masked_mean(accel(gr), tm) if len(triple) else np.array([])

    k_pred, k_gt = knee_angles(pred), knee_angles(np.nan_to_num(gt_world))
    legs = np.stack([mask[:, list(leg)].all(-1) for leg in LEGS], -1)  # (F, 2)
    k_err = np.abs(k_pred - k_gt)[legs]
    straight = legs & (k_gt > 160.0)
    bent = straight & (k_pred < 160.0)
    sums = {"p": np.nansum(p_err), "n": np.nansum(n_err), "root": np.nansum(r_err), "count": len(frames),
            "mpjve": np.nansum(vel), "mpjve_n": int(np.isfinite(vel).sum()),
            "mpjve_s": np.nansum(vel_s), "mpjve_s_n": int(np.isfinite(vel_s).sum()),
            "jitter": float(np.sum(jit)), "jitter_n": int(len(jit)),
            "gt_jitter": np.nansum(gt_jit), "gt_jitter_n": int(np.isfinite(gt_jit).sum()),
            "knee": float(k_err.sum()), "knee_n": int(k_err.size), "knee_pred": float(k_pred[legs].sum()),
            "knee_gt": float(k_gt[legs].sum()), "straight": int(straight.sum()), "straight_bent": int(bent.sum()),
            "joints": int(mask.sum())}
    out = from_sums({k: float(v) for k, v in sums.items()})
    out["scale_to_gt"] = _r(np.median(scale), 3)
    out["_sums"] = {k: float(v) for k, v in sums.items()}
    return out


def from_sums(s: dict) -> dict:
    def ratio(a, b, nd=1):
        return _r(s[a] / s[b], nd) if s[b] else None

    return {"frames": int(s["count"]), "p_mpjpe_mm": ratio("p", "count"), "n_mpjpe_mm": ratio("n", "count"),
            "mpjpe_root_mm": ratio("root", "count"), "mpjve_mm": ratio("mpjve", "mpjve_n", 2),
            "mpjve_smoothed_gt_mm": ratio("mpjve_s", "mpjve_s_n", 2), "jitter_mm": ratio("jitter", "jitter_n", 2),
            "gt_jitter_mm": ratio("gt_jitter", "gt_jitter_n", 2), "knee_abs_err_deg": ratio("knee", "knee_n"),
            "knee_mean_deg": ratio("knee_pred", "knee_n"), "knee_gt_mean_deg": ratio("knee_gt", "knee_n"),
            "straight_knees_gt": int(s["straight"]), "straight_knees_bent_in_pred": int(s["straight_bent"]),
            "joints_per_frame": ratio("joints", "count", 2)}


def pool(cells: list[dict]) -> dict:
    """Frame-weighted pooling of :func:`summarise` results."""
    cells = [c for c in cells if c.get("frames")]
    if not cells:
        return {"frames": 0}
    return from_sums({k: sum(c["_sums"][k] for c in cells) for k in cells[0]["_sums"]})


def strip(d):
    if isinstance(d, dict):
        return {k: strip(v) for k, v in d.items() if k != "_sums"}
    if isinstance(d, list):
        return [strip(v) for v in d]
    return d


def mean_over(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return _r(np.mean(values)) if values else None


# ---------------------------------------------------------------------------- main


def pipeline_3d_smoothing(poses: np.ndarray, fps: float) -> np.ndarray:
    """``(T, 17, 3)`` through the offline pipeline's 3D smoother (fixed-lag Kalman), frame by frame.

    Mirrors what :class:`streampose.tracker.Tracker` does to one track's lifted poses.
    """
    from streampose.smoothing import make_smoother
    from streampose.tracker import _PERSON_HEIGHT_M

    smoother = make_smoother("kalman", fps=fps, causal=False)
    out = []
    for t, pose in enumerate(poses):
        result = smoother.push(t / fps, pose, None, _PERSON_HEIGHT_M)
        if result is not None:
            out.append(result)
    out += list(smoother.flush())
    out = np.asarray(out, dtype=np.float64)
    return out - out[:, :1]


def parse_variant(spec: str) -> dict:
    """``'fusion=0.5,bones,reproject=1'`` -> ``PoseCorrections`` keyword arguments."""
    options: dict = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, _, value = part.partition("=")
        if key == "fusion":
            options["world_fusion"] = float(value or 0.5)
        elif key == "bones":
            options["bone_lengths"] = True
        elif key == "reproject":
            options["reproject"] = float(value or 1.0)
        elif key == "smooth":
            options["smooth"] = True
        elif key == "tau":
            options["fusion_time_constant"] = float(value)
        else:
            raise SystemExit(f"--variant {spec!r}: unknown correction {key!r} (fusion, bones, reproject, smooth)")
    return options


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DIR, help="folder with cam0N.mp4 and Calib.qca.txt")
    parser.add_argument("--lifter", action="append", default=[], metavar="NAME_OR_PATH",
                        help="also score this lifter on the cached 2D (repeatable); 'default' always is")
    parser.add_argument("--variant", action="append", default=[], metavar="SPEC",
                        help="also score every lifter with the pipeline's 3D corrections, e.g. 'fusion=0.5', "
                             "'bones', 'reproject=1', 'fusion=0.5,bones' (streampose.lifter.corrections); repeatable")
    parser.add_argument("--max-people", type=int, default=4, help="people the 2D stage tracks per view")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--refresh", action="store_true", help="rerun the 2D stages even when cached")
    parser.add_argument("--no-mediapipe", action="store_true", help="skip MediaPipe (then no ratio)")
    parser.add_argument("--min-conf", type=float, default=0.3, help="2D visibility below which a view's joint is unused")
    parser.add_argument("--assoc-cost", type=float, default=0.08,
                        help="association: worst member view's median reprojection error / person height")
    parser.add_argument("--inlier-frac", type=float, default=0.05,
                        help="triangulation inlier threshold as a fraction of the view's person height")
    parser.add_argument("--inlier-min-px", type=float, default=20.0, help="... but at least this many px")
    parser.add_argument("--match-frac", type=float, default=0.15,
                        help="a system's detection is the subject when its median 2D distance to the projected "
                             "ground truth is below this fraction of the person's height")
    parser.add_argument("--min-subject-frames", type=float, default=0.3,
                        help="a subject must be seen by >= 3 views in this fraction of the frames")
    parser.add_argument("--min-gt-joints", type=int, nargs="+", default=[10, 12],
                        help="a frame counts when both hips and this many of the 12 joints have ground truth; "
                             "the first value is the headline, the others are reported too")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    calib = args.data / "Calib.qca.txt"
    if not calib.is_file():
        print(f"{calib} is absent (needs ../shared)", file=sys.stderr)
        return 2
    cameras = mv.load_qca(calib)
    videos = [args.data / f"{cam.name}.mp4" for cam in cameras]
    missing = [v for v in videos if not v.is_file()]
    if missing:
        print(f"missing videos: {missing}", file=sys.stderr)
        return 2
    V = len(cameras)
    started = time.perf_counter()
    timing: dict = {"streampose_2d_s": {}, "mediapipe_s": {}, "cached": {}}

    # 1. 2D stages -------------------------------------------------------------------
    ours, mp = [], []
    for video in videos:
        data, cached = streampose_2d_cached(video, args.max_people, args.max_frames, args.refresh)
        ours.append(data)
        timing["streampose_2d_s"][video.stem] = _r(float(data["seconds"]), 1)
        timing["cached"][f"streampose:{video.stem}"] = cached
        if not args.no_mediapipe:
            data, cached = mediapipe_cached(video, args.max_frames, args.refresh)
            mp.append(data)
            timing["mediapipe_s"][video.stem] = _r(float(data["seconds"]), 1)
            timing["cached"][f"mediapipe:{video.stem}"] = cached
    T = min(len(d["present"]) for d in ours + [{"present": m["world33"]} for m in mp])
    width, height = (int(x) for x in ours[0]["size"])
    log(f"{V} views, {T} frames, {width}x{height}")

    # 2. association across views, then over time --------------------------------------
    det_limbs = [limbs2d(d["landmarks33"][:T]) for d in ours]  # (T, K, 12, 3) per view
    clusters_per_frame = []
    for t in range(T):
        dets = [det_limbs[v][t][ours[v]["present"][t]] for v in range(V)]
        slots = [np.flatnonzero(ours[v]["present"][t]) for v in range(V)]
        clusters = mv.associate_people(dets, cameras, max_cost=args.assoc_cost, min_conf=args.min_conf)
        for c in clusters:  # detection index -> slot index
            c.members = {v: int(slots[v][i]) for v, i in c.members.items()}
        clusters_per_frame.append(clusters)
    ids_per_frame = mv.link_over_time(clusters_per_frame)
    members: dict[int, dict[int, dict[int, int]]] = {}  # person -> frame -> {view: slot}
    assoc_errors = []
    for t, (clusters, ids) in enumerate(zip(clusters_per_frame, ids_per_frame)):
        for c, pid in zip(clusters, ids):
            members.setdefault(pid, {})[t] = c.members
            assoc_errors += list(c.errors_px.values())
    centres: dict[int, list[tuple[int, np.ndarray]]] = {}
    for t, (clusters, ids) in enumerate(zip(clusters_per_frame, ids_per_frame)):
        for c, pid in zip(clusters, ids):
            centres.setdefault(pid, []).append((t, np.nanmean(c.points3d, axis=0)))
    counts = {pid: sum(len(m) >= 3 for m in frames.values()) for pid, frames in members.items()}
    subjects = sorted((pid for pid, n in counts.items() if n >= args.min_subject_frames * T), key=lambda p: -counts[p])
    log(f"association: {sum(map(len, clusters_per_frame)) / T:.2f} clusters/frame; people with >= 3 views in >= "
        f"{args.min_subject_frames:.0%} of frames: {len(subjects)} (frames: {[counts[p] for p in subjects]})")
    if not subjects:
        print("no subject seen by >= 3 views often enough", file=sys.stderr)
        return 1

    # 3. lifters for the cached 2D -------------------------------------------------------
    from streampose.lifter import load_lifter

    lifter_names = ["default"] + [n for n in args.lifter if n != "default"]
    lifters = {}
    for name in lifter_names:
        lifter = load_lifter(name, causal=False, device="cpu", test_time_flip=True)
        # As the pipeline does: test-time flip for the offline (symmetric) model only.
        lifter.test_time_flip = not lifter.causal
        lifters[name] = lifter
    variants = {spec: parse_variant(spec) for spec in args.variant}
    systems = ["streampose"] + [f"lifter:{n}" for n in lifter_names] + \
        [f"lifter:{n}+{spec}" for n in lifter_names for spec in variants] + ["ghum", "fusion"] + \
        ([] if args.no_mediapipe else ["mediapipe"])
    from streampose.skeleton import BLAZEPOSE_TO_COCO, BLAZEPOSE_TO_H36M, map_confidence, map_joints

    mp_h36m = [mediapipe_to_h36m({"landmarks33": m["landmarks33"][:T], "world33": m["world33"][:T]}) for m in mp]

    # 4. per view and subject: leave-one-view-out ground truth and each system's detection --------
    cells_input = []  # (view, subject, gt_world, systems' predictions)
    quality = {"inlier_reproj_px": [], "heldout_2d_px": [], "outlier_view_rate": [], "views_used": []}
    per_view_quality = {}
    subject_info = {}
    for i, pid in enumerate(subjects):
        # Identity check: a swap between two people would show as a jump of ~1 m in the 4-view centre.
        steps = [np.linalg.norm(b - a) / (tb - ta) for (ta, a), (tb, b) in zip(centres[pid], centres[pid][1:])]
        views_seen = np.zeros(V, int)
        for m in members[pid].values():
            views_seen[list(m)] += 1
        subject_info[f"S{i}"] = {"person_id": int(pid), "frames": len(members[pid]),
                                 "frames_with_3plus_views": int(counts[pid]),
                                 "frames_per_view": dict(zip([c.name for c in cameras], views_seen.tolist())),
                                 "centre_step_mm_per_frame": _stats(steps)}
    for v, cam in enumerate(cameras):
        others = [u for u in range(V) if u != v]
        other_cams = [cameras[u] for u in others]
        view_quality = {"inlier_reproj_px": [], "heldout_2d_px": []}
        for s_index, pid in enumerate(subjects):
            gt_world = np.full((T, 12, 3), np.nan)
            for t, m in members[pid].items():
                obs = [(u, m[u]) for u in others if u in m]
                if len(obs) < 2:
                    continue
                pts = np.full((12, V - 1, 2), np.nan)
                conf = np.zeros((12, V - 1))
                thr = np.full((V - 1,), np.inf)
                for u, slot in obs:
                    k = others.index(u)
                    lim = det_limbs[u][t, slot]
                    pts[:, k] = lim[:, :2]
                    conf[:, k] = np.where(lim[:, 2] >= args.min_conf, lim[:, 2], 0.0)
                    thr[k] = max(args.inlier_min_px, args.inlier_frac * float(np.ptp(lim[:, 1])))
                tri = mv.triangulate_robust(pts, conf, other_cams, threshold_px=thr[None, :])
                seen = conf > 0
                quality["outlier_view_rate"].append(float((seen & ~tri.inliers).sum() / max(seen.sum(), 1)))
                quality["views_used"].append(float(tri.inliers.sum(-1).mean()))
                gt_world[t] = tri.points3d
                inl = tri.errors[tri.inliers].tolist()
                quality["inlier_reproj_px"] += inl
                view_quality["inlier_reproj_px"] += inl
            jvalid = np.isfinite(gt_world).all(-1)  # (T, 12)
            usable = jvalid[:, list(HIPS)].all(-1) & (jvalid.sum(-1) >= min(args.min_gt_joints))
            gt2d, _ = cam.project(gt_world)  # (T, 12, 2) in the scored view
            with np.errstate(invalid="ignore"):
                gt_h = np.where(usable, np.nanmax(np.where(jvalid, gt2d[..., 1], -np.inf), -1)
                                - np.nanmin(np.where(jvalid, gt2d[..., 1], np.inf), -1), np.nan)

            def nearest(candidates: np.ndarray, t: int) -> tuple[int, float]:
                """Index of the candidate ``(P, 12, >=2)`` nearest the projected ground truth, or -1."""
                d = np.linalg.norm(candidates[..., :2] - gt2d[t], axis=-1)
                d = np.array([np.median(row[jvalid[t]]) for row in d])
                if not np.isfinite(d).any():
                    return -1, np.inf
                i = int(np.nanargmin(d))
                return (i, float(d[i])) if d[i] < args.match_frac * gt_h[t] else (-1, float(d[i]))

            slot = np.full(T, -1)
            heldout = np.full(T, np.nan)
            for t in np.flatnonzero(usable):
                present = np.flatnonzero(ours[v]["present"][t])
                if len(present):
                    i, dist = nearest(det_limbs[v][t, present], t)
                    if i >= 0:
                        slot[t], heldout[t] = present[i], dist
            quality["heldout_2d_px"] += heldout[np.isfinite(heldout)].tolist()
            view_quality["heldout_2d_px"] += heldout[np.isfinite(heldout)].tolist()
            have = slot >= 0
            tt = np.flatnonzero(have)
            preds = {name: np.full((T, 17, 3), np.nan) for name in systems}
            preds["streampose"][tt] = ours[v]["kp3d"][tt, slot[tt]]
            preds["ghum"][tt] = map_joints(ours[v]["world33"][tt, slot[tt]], BLAZEPOSE_TO_H36M)
            if have.sum() >= 1:
                lm = ours[v]["landmarks33"][np.arange(T), np.maximum(slot, 0)]  # (T, 33, 5)
                for name, lifter in lifters.items():
                    if lifter.input_layout == "coco17":
                        kp = np.concatenate([map_joints(lm[..., :2], BLAZEPOSE_TO_COCO),
                                             map_confidence(lm[..., 3], BLAZEPOSE_TO_COCO)[..., None]], -1)
                    else:
                        kp = raw_kp2d(lm)
                    # Gaps (frames where the subject is not matched) are interpolated for the lifter's
                    # input but stay missing in its output.
                    filled = fill_gaps(kp, have)
                    kp3d, _ = lifter.lift_sequence(filled, image_size=(width, height))
                    preds[f"lifter:{name}"][tt] = kp3d[tt]
                    world = ours[v]["world33"][np.arange(T), np.maximum(slot, 0)]
                    for spec, options in variants.items():
                        # Frame by frame in order, as the pipeline's tracker runs them (one track).
                        from streampose.lifter.corrections import PoseCorrections
                        smooth = options.pop("smooth", False)
                        correct = PoseCorrections(**options, fps=float(ours[v].get("fps", 60.0)))
                        corrected = np.stack([correct(kp3d[t], filled[t], world[t] if have[t] else None)
                                              for t in range(T)])
                        options["smooth"] = smooth
                        if smooth:
                            corrected = pipeline_3d_smoothing(corrected, fps=float(ours[v].get("fps", 60.0)))
                        preds[f"lifter:{name}+{spec}"][tt] = corrected[tt]
            a, c = preds["streampose"], preds["ghum"]
            both = np.isfinite(a).all((1, 2)) & np.isfinite(c).all((1, 2))
            if both.any():
                preds["fusion"][both] = 0.5 * (a[both] + mv.similarity_align(c[both], a[both]))
            if mp_h36m:
                mp2d, mp3d = mp_h36m[v]
                for t in np.flatnonzero(usable):
                    if np.isfinite(mp3d[t]).all() and nearest(mp2d[t][None, LIMB_H36M], t)[0] == 0:
                        preds["mediapipe"][t] = mp3d[t]
            cells_input.append((cam, f"S{s_index}", gt_world, preds))
            if v == 0:
                subject_info[f"S{s_index}"]["mean_hip_world_mm"] = [
                    _r(x, 0) for x in np.nanmean(gt_world[usable][:, list(HIPS)], axis=(0, 1))]
        per_view_quality[cam.name] = {k: _stats(x) for k, x in view_quality.items()}

    # 5. score, for each ground-truth completeness rule ------------------------------------------
    views = [cam.name for cam in cameras]
    protocols = {}
    for min_joints in args.min_gt_joints:
        cells: dict[str, dict[str, dict]] = {}
        for cam, sname, gt_world, preds in cells_input:
            jvalid = np.isfinite(gt_world).all(-1)
            valid = jvalid[:, list(HIPS)].all(-1) & (jvalid.sum(-1) >= min_joints)
            gt_cam = cam.to_camera(gt_world)
            gt_cam_smooth = smooth_over_time(gt_cam)
            present = {n: np.isfinite(p[:, LIMB_H36M]).all((1, 2)) & valid for n, p in preds.items()}
            common = np.logical_and.reduce([present[n] for n in systems])

            def score(sel: np.ndarray, name: str) -> dict:
                f = np.flatnonzero(sel)
                return summarise(preds[name][f][:, LIMB_H36M], gt_world[f], gt_cam[f], gt_cam_smooth[f],
                                 jvalid[f], f)

            cells.setdefault(cam.name, {})[sname] = {
                "gt_frames": int(valid.sum()),
                "coverage": {n: _r(present[n].sum() / max(valid.sum(), 1), 3) for n in systems},
                "common_frames": int(common.sum()),
                "systems": {n: score(common, n) for n in systems},
                "own_frames": {n: score(present[n], n) for n in systems},
            }
        protocols[f"min_gt_joints={min_joints}"] = aggregate(cells, systems, views)
    runtime = time.perf_counter() - started
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores visible (shared)",
        "data": str(args.data), "frames": T, "image_size": [width, height],
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "git": git_state(), "mediapipe": MEDIAPIPE_VERSION,
        "pipeline_models": json.loads(str(ours[0]["models"])),
        "lifters": {n: l.description for n, l in lifters.items()},
        "protocol": (
            "Per scored view v and subject: the 12 limb joints are triangulated (confidence-weighted DLT, outlier "
            "views rejected by reprojection error > max(inlier_min_px, inlier_frac x person height)) from the "
            "OTHER views' streampose 2D; a frame counts when both hips and >= min_gt_joints joints have ground "
            "truth, and errors are over those joints. Each system is scored on the frames where EVERY system "
            "has the subject (its 2D in view v nearest the projected ground truth, within match_frac x height). "
            "P-MPJPE: per-frame similarity alignment in world mm. N-MPJPE / MPJPE root: camera-v frame after "
            "mid-hip alignment (N: least-squares scale). MPJVE: root-relative camera-frame velocity error "
            "(mm/frame at 60 fps), against the raw and a 5-frame-mean ground truth. Jitter: mean |second "
            "difference| of root-relative joints (mm/frame^2). Pooled over subjects (frame-weighted) per view, "
            "then the mean over views."),
        "subjects": subject_info,
        "ground_truth_quality": {
            "association_member_median_reproj_px": _stats(assoc_errors),
            "association_clusters_per_frame": _r(sum(map(len, clusters_per_frame)) / T, 2),
            "inlier_reproj_px": _stats(quality["inlier_reproj_px"]),
            "heldout_view_median_2d_distance_px": _stats(quality["heldout_2d_px"]),
            "outlier_view_rate": _r(np.mean(quality["outlier_view_rate"]), 3) if quality["outlier_view_rate"] else None,
            "mean_inlier_views_per_joint": _r(np.mean(quality["views_used"]), 2) if quality["views_used"] else None,
            "per_view": per_view_quality},
        "headline": f"min_gt_joints={args.min_gt_joints[0]}",
        "protocols": protocols,
        "timing": {**timing, "total_s": _r(runtime, 1)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(strip(report), indent=2))
    print_tables(report, systems, views)
    log(f"\nwrote {args.out} ({runtime:.0f} s)")
    return 0


def aggregate(cells: dict, systems: list[str], views: list[str]) -> dict:
    """Per-view pooling over subjects, the mean over views, ratios and coverage."""
    per_view = {view: {n: pool([c["systems"][n] for c in cells[view].values()]) for n in systems} for view in views}
    own_per_view = {view: {n: pool([c["own_frames"][n] for c in cells[view].values()]) for n in systems}
                    for view in views}
    metrics = ("p_mpjpe_mm", "n_mpjpe_mm", "mpjpe_root_mm", "mpjve_mm", "mpjve_smoothed_gt_mm", "jitter_mm",
               "gt_jitter_mm", "knee_abs_err_deg", "knee_mean_deg", "knee_gt_mean_deg")
    mean_views, own_mean = {}, {}
    for n in systems:
        mean_views[n] = {m: mean_over([per_view[view][n].get(m) for view in views]) for m in metrics}
        mean_views[n]["views_scored"] = sum(bool(per_view[view][n].get("frames")) for view in views)
        for key in ("straight_knees_gt", "straight_knees_bent_in_pred"):
            mean_views[n][key] = sum(per_view[view][n].get(key, 0) for view in views)
        own_mean[n] = {m: mean_over([own_per_view[view][n].get(m) for view in views])
                       for m in ("p_mpjpe_mm", "n_mpjpe_mm", "knee_abs_err_deg")}
    all_cells = [c for view in views for c in cells[view].values()]
    gt_total = max(sum(c["gt_frames"] for c in all_cells), 1)
    coverage = {n: _r(sum(c["coverage"][n] * c["gt_frames"] for c in all_cells) / gt_total, 3) for n in systems}
    ratio = {}
    if "mediapipe" in systems and mean_views["mediapipe"]["p_mpjpe_mm"]:
        ratio = {n: _r(mean_views[n]["p_mpjpe_mm"] / mean_views["mediapipe"]["p_mpjpe_mm"], 3)
                 for n in systems if mean_views[n]["p_mpjpe_mm"] is not None}
    subjects = sorted({s for view in views for s in cells[view]})
    per_subject = {s: {n: {m: mean_over([cells[view][s]["systems"][n].get(m) for view in views if s in cells[view]])
                           for m in ("p_mpjpe_mm", "n_mpjpe_mm", "knee_abs_err_deg")} for n in systems}
                   for s in subjects}
    return {"mean_over_views": mean_views, "ratio_to_mediapipe_p_mpjpe": ratio, "coverage": coverage,
            "gt_frames": {view: {s: c["gt_frames"] for s, c in cells[view].items()} for view in views},
            "common_frames_total": sum(c["common_frames"] for c in all_cells),
            "own_frames_mean_over_views": own_mean, "per_subject_mean_over_views": per_subject,
            "per_view": per_view, "per_view_subject": cells}


def print_tables(report: dict, systems: list[str], views: list[str]) -> None:
    def fmt(x, nd=1):
        return "-" if x is None else f"{x:.{nd}f}"

    head = report["protocols"][report["headline"]]
    cells = head["per_view_subject"]
    subjects = report["subjects"]
    log(f"\nsubjects: " + "; ".join(f"{s} = person {i['person_id']}, mean hip (world mm) {i.get('mean_hip_world_mm')}"
                                    for s, i in subjects.items()))
    log(f"\nP-MPJPE (mm, 12 limb joints, {report['headline']}) per view; every system on the frames ALL systems "
        "have (common); ground truth triangulated from the other views")
    log("| view | subject | GT frames | common | " + " | ".join(systems) + " |")
    log("|---" * (4 + len(systems)) + "|")
    for view in views:
        for s, c in cells[view].items():
            log(f"| {view} | {s} | {c['gt_frames']} | {c['common_frames']} | " + " | ".join(
                fmt(c["systems"][n].get("p_mpjpe_mm")) for n in systems) + " |")
        pv = head["per_view"][view]
        log(f"| {view} | pooled | | {pv[systems[0]]['frames']} | " + " | ".join(
            fmt(pv[n].get("p_mpjpe_mm")) for n in systems) + " |")
    mean = head["mean_over_views"]
    log(f"| mean of {mean[systems[0]]['views_scored']} views | | | {head['common_frames_total']} | "
        + " | ".join(fmt(mean[n]["p_mpjpe_mm"]) for n in systems) + " |")
    if head["ratio_to_mediapipe_p_mpjpe"]:
        log("| ratio to MediaPipe | | | | " + " | ".join(
            fmt(head["ratio_to_mediapipe_p_mpjpe"].get(n), 3) for n in systems) + " |")

    log("\nMean over the views (common frames): secondary metrics")
    cols = [("P-MPJPE", "p_mpjpe_mm", 1), ("N-MPJPE", "n_mpjpe_mm", 1), ("MPJPE root", "mpjpe_root_mm", 1),
            ("MPJVE", "mpjve_mm", 2), ("MPJVE (5f GT)", "mpjve_smoothed_gt_mm", 2), ("jitter", "jitter_mm", 2),
            ("knee |err| °", "knee_abs_err_deg", 1), ("knee mean °", "knee_mean_deg", 1),
            ("GT knee °", "knee_gt_mean_deg", 1)]
    log("| system | coverage | " + " | ".join(c[0] for c in cols) + " | GT-straight knees bent <160° |")
    log("|---" * (3 + len(cols)) + "|")
    for n in systems:
        r = mean[n]
        log(f"| {n} | {fmt(head['coverage'][n] * 100, 1)}% | " + " | ".join(fmt(r[k], nd) for _, k, nd in cols)
            + f" | {r['straight_knees_bent_in_pred']}/{r['straight_knees_gt']} |")
    log(f"(mm; MPJVE mm/frame, jitter mm/frame² at 60 fps; the ground truth's own jitter is "
        f"{fmt(mean[systems[0]]['gt_jitter_mm'], 2)} mm/frame²: triangulation noise inflates MPJVE vs the raw GT)")
    log("\nEach system on ALL the frames it has (frame sets differ between systems!): P-MPJPE mm (frames)")
    log("| view | subject | " + " | ".join(systems) + " |")
    log("|---" * (2 + len(systems)) + "|")
    for view in views:
        for s, c in cells[view].items():
            log(f"| {view} | {s} | " + " | ".join(
                f"{fmt(c['own_frames'][n].get('p_mpjpe_mm'))} ({c['own_frames'][n]['frames']})" for n in systems) + " |")
    own = head["own_frames_mean_over_views"]
    log("each system on ALL its own frames (different frame sets!), mean over views, P-MPJPE: "
        + ", ".join(f"{n} {fmt(own[n]['p_mpjpe_mm'])}" for n in systems))
    for key, proto in report["protocols"].items():
        if key == report["headline"]:
            continue
        m = proto["mean_over_views"]
        log(f"{key}: mean over views P-MPJPE " + ", ".join(f"{n} {fmt(m[n]['p_mpjpe_mm'])}" for n in systems)
            + f" ({proto['common_frames_total']} common frames); ratio to MediaPipe "
            + ", ".join(f"{n} {fmt(v, 3)}" for n, v in proto["ratio_to_mediapipe_p_mpjpe"].items()))
    q = report["ground_truth_quality"]
    log(f"\nground truth: association member median reprojection {q['association_member_median_reproj_px']} px; "
        f"inlier reprojection {q['inlier_reproj_px']} px; held-out view's 2D vs projected GT (median over joints) "
        f"{q['heldout_view_median_2d_distance_px']} px; outlier views rejected {q['outlier_view_rate']}, "
        f"inlier views per joint {q['mean_inlier_views_per_joint']}")
    log(f"timing: {report['timing']}")


if __name__ == "__main__":
    sys.exit(main())
