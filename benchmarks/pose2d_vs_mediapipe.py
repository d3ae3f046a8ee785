"""Our 2D stage vs MediaPipe Pose on the same frames of every shared video: who finds the person,
how far apart the landmarks are, and how much each jitters.

Both run the same BlazePose weights (full model), one person per frame, tracking on.  MediaPipe
(``mediapipe==0.10.21``, its own virtualenv, see ``vs_mediapipe.py``) runs through
``_mediapipe_worker.py`` and its results are cached per video under
``<cache>/bench/pose2d_vs_mediapipe/``; ours (``streampose.pose2d.PoseEstimator2D``) runs in this
process on the frames decoded by the same OpenCV reader, so both see the same pixels.

Per video:

* ``frames_ours`` / ``frames_mediapipe``: frames with a person; ``only_ours`` / ``only_mediapipe``:
  frames where only one of the two finds someone.
* ``same_person``: frames both find *and* their hip centres lie within one torso size of each other
  (on the multi-person clips the two trackers may lock onto different people).
* ``dist_mean`` / ``dist_p95``: landmark distance, over **all 33 landmarks**, in % of MediaPipe's
  torso size (distance mid-shoulder -> mid-hip, landmarks 11/12 and 23/24), on the same-person
  frames where MediaPipe's torso is at least ``MIN_TORSO_PX`` long (``dist_frames``).  Both are compared as they are: MediaPipe's pixel coordinates (normalised x width) are the
  very positions its OpenCV warps sample, i.e. pixel centres at integers, like ours.
* ``jitter_*``: ``_metrics.jitter_2d`` (mean |second difference| / person height) on the 33
  landmarks, over each system's own frames.  MediaPipe's published landmarks are One-Euro filtered
  (``smooth_landmarks=True``, its solution's default, at a simulated 30 fps); our 2D stage's are raw
  (the pipeline smooths later), so ``ours+filter`` also reports ours passed through the same filter
  (MediaPipe's landmark settings, ``roi.MEDIAPIPE_LANDMARK_FILTER``), for a
  like-for-like comparison.

Usage::

    python benchmarks/pose2d_vs_mediapipe.py                       # all videos, label "current"
    python benchmarks/pose2d_vs_mediapipe.py --label baseline
    python benchmarks/pose2d_vs_mediapipe.py --set min_presence=0.5 --label p05 --no-save

Results merge into ``benchmarks/results/pose2d_vs_mediapipe.json`` under their label.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _metrics import jitter_2d  # noqa: E402
from vs_mediapipe import MEDIAPIPE_VERSION, REPO, cache_dir, mediapipe_python  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "pose2d_vs_mediapipe.json"
SHARED_VIDEOS = REPO.parent / "shared" / "data" / "videos"
SINGLE_PERSON = ("pose2sim_balance_cam01.mp4",)  # clips with exactly one person in view
SHOULDERS, HIPS = (11, 12), (23, 24)
# Distances are only taken where MediaPipe's torso is at least this long: intel_people_walking has
# ~200 frames of people in the far distance (torso 0.3-20 px) where a few pixels are hundreds of %.
MIN_TORSO_PX = 20.0
# MediaPipe's image-landmark filter (pose_landmark_filtering.pbtxt) at its solutions' simulated 30 fps.
MEDIAPIPE_FRAME_SECONDS = 1.0 / 30.0


def shared_videos() -> list[Path]:
    return sorted(SHARED_VIDEOS.glob("*.mp4")) + sorted((SHARED_VIDEOS / "pose2sim_multiperson").glob("*.mp4"))


def video_name(video: Path) -> str:
    return video.name if video.parent == SHARED_VIDEOS else f"{video.parent.name}/{video.name}"


# ------------------------------------------------------------------ the two systems


# Runs the shared worker with MediaPipe's landmark filter off (its ROI filter stays on: that part of
# the graph has no switch), so that ROI and readout can be compared without the output smoothing.
_UNSMOOTHED = """
import runpy, sys
import mediapipe as mp
_Pose = mp.solutions.pose.Pose
mp.solutions.pose.Pose = lambda **kw: _Pose(**dict(kw, smooth_landmarks=False))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def mediapipe_landmarks(video: Path, max_frames: int | None, smooth: bool = True) -> np.ndarray:
    """MediaPipe's ``(T, 33, 4)`` ``[x, y, z, visibility]`` (pixels, NaN without a person), cached.

    ``smooth=False``: MediaPipe's raw landmarks (``smooth_landmarks=False``).
    """
    stat = video.stat()
    key = hashlib.sha1(f"{video.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{max_frames}|{MEDIAPIPE_VERSION}"
                       .encode()).hexdigest()[:12]
    cached = cache_dir() / "bench" / "pose2d_vs_mediapipe" / f"{video.stem}-{key}{'' if smooth else '-raw'}.npz"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        worker = [str(REPO / "benchmarks" / "_mediapipe_worker.py"), str(video), str(cached.with_suffix(".tmp.npz"))]
        command = [str(mediapipe_python())] + ([] if smooth else ["-c", _UNSMOOTHED]) + worker
        if max_frames:
            command += ["--max-frames", str(max_frames)]
        subprocess.run(command, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
        cached.with_suffix(".tmp.npz").rename(cached)
    return np.load(cached)["landmarks33"]


def read_frames(video: Path, max_frames: int | None):
    """``(index, time, rgb)`` per frame, decoded by OpenCV like the MediaPipe worker."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    index = 0
    try:
        while max_frames is None or index < max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            yield index, capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()


def our_landmarks(video: Path, max_frames: int | None, options: dict, clock_fps: float | None = None
                  ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Our ``(T, 33, 5)`` landmarks (NaN without a person), the regression readout of the same network
    outputs ``(T, 33, 2)`` (for the readout comparison) and the estimator's stats.

    ``clock_fps``: stamp frame ``i`` with ``i / clock_fps`` instead of its video time (MediaPipe's
    Python solutions stamp every frame 1/30 s after the last, whatever the video's rate).
    """
    import torch

    from streampose.pose2d import PoseEstimator2D
    from streampose.types import Frame

    estimator = PoseEstimator2D(device="cpu", **options)
    landmarks, regression = [], []
    with torch.inference_mode():
        for index, t, rgb in read_frames(video, max_frames):
            people = estimator.process(Frame(index, t if clock_fps is None else index / clock_fps, rgb))
            if people:
                landmarks.append(people[0].landmarks33)
                regression.append(_regression_xy(estimator))
            else:
                landmarks.append(np.full((33, 5), np.nan, np.float32))
                regression.append(np.full((33, 2), np.nan, np.float32))
    return np.stack(landmarks), np.stack(regression), dict(estimator.stats)


def _regression_xy(estimator) -> np.ndarray:
    """The regressed (not heat-map refined) 33 landmarks of the best person, image pixels."""
    from streampose.pose2d.roi import apply_affine, crop_from_image_matrices

    out, rois = estimator.last_outputs, estimator.last_rois
    best = int(np.argmax(out.presence.cpu().numpy()))
    crop_xy = out.landmarks[best:best + 1, :33, :2] - 0.5
    return apply_affine(crop_from_image_matrices(rois[best:best + 1], 256), crop_xy)[0].cpu().numpy()


def filtered(landmarks: np.ndarray, frame_seconds: float = MEDIAPIPE_FRAME_SECONDS) -> np.ndarray:
    """Our landmarks through MediaPipe's image-landmark filter (restarted wherever nobody is found)."""
    from streampose.pose2d.roi import MEDIAPIPE_LANDMARK_FILTER
    from streampose.smoothing import OneEuroSmoother

    smoother = OneEuroSmoother(MEDIAPIPE_LANDMARK_FILTER)
    out = np.full_like(landmarks[..., :2], np.nan)
    for t in range(len(landmarks)):
        if np.isnan(landmarks[t, 0, 0]):
            smoother.reset()
            continue
        xy = landmarks[t, :, :2].astype(np.float64)
        # MediaPipe divides speeds by its alignment ROI's side (2x hips -> scale point, about the
        # body height); the landmarks' box height is a close stand-in here.
        scale = max(float(np.ptp(xy[:, 1])), 1.0)
        out[t] = smoother.push(t * frame_seconds, xy, scale=scale)
    return out


# ------------------------------------------------------------------ metrics


def torso_size(landmarks: np.ndarray) -> np.ndarray:
    xy = landmarks[..., :2]
    shoulders = xy[:, list(SHOULDERS)].mean(1)
    hips = xy[:, list(HIPS)].mean(1)
    return np.linalg.norm(shoulders - hips, axis=-1)


def compare(ours_xy: np.ndarray, theirs: np.ndarray) -> dict:
    """Detection agreement, distance and jitter between ``ours_xy (T, 33, 2)`` (our pixel convention)
    and MediaPipe's ``theirs (T, 33, >=2)`` (continuous pixels)."""
    n = min(len(ours_xy), len(theirs))
    ours_xy, theirs = ours_xy[:n], theirs[:n, :, :2]
    found_ours = np.isfinite(ours_xy[:, 0, 0])
    found_theirs = np.isfinite(theirs[:, 0, 0])
    both = found_ours & found_theirs
    torso = torso_size(theirs)
    hip_gap = np.linalg.norm(ours_xy[:, list(HIPS)].mean(1) - theirs[:, list(HIPS)].mean(1), axis=-1)
    same = both & (hip_gap < torso)
    same_big = same & (torso >= MIN_TORSO_PX)
    dist = np.linalg.norm(ours_xy - theirs, axis=-1) / torso[:, None] * 100.0  # (T, 33) % torso
    per_frame = dist[same_big].mean(1) if same_big.any() else np.array([np.nan])
    return {
        "frames": int(n),
        "frames_ours": int(found_ours.sum()),
        "frames_mediapipe": int(found_theirs.sum()),
        "only_ours": int((found_ours & ~found_theirs).sum()),
        "only_mediapipe": int((found_theirs & ~found_ours).sum()),
        "same_person": int(same.sum()),
        "dist_frames": int(same_big.sum()),
        "dist_mean": _round(np.nanmean(dist[same_big]) if same_big.any() else np.nan),
        "dist_p95": _round(np.nanpercentile(dist[same_big], 95) if same_big.any() else np.nan),
        "dist_frame_p95": _round(np.nanpercentile(per_frame, 95)),
        # mean signed (ours - MediaPipe) in pixels: a coordinate-convention error shows here
        "offset_px": [_round(v, 2) for v in ((ours_xy - theirs)[same_big].reshape(-1, 2).mean(0)
                                             if same_big.any() else (np.nan, np.nan))],
        "jitter_ours": _round(jitter_2d(ours_xy), 5),
        "jitter_mediapipe": _round(jitter_2d(theirs), 5),
        "jitter_median_ours": _round(median_jitter(ours_xy), 5),
        "jitter_median_mediapipe": _round(median_jitter(theirs), 5),
    }


def median_jitter(xy: np.ndarray) -> float:
    """The median over frames of ``jitter_2d``'s per-frame value: ``jitter_2d`` is a mean, and one
    frame whose pose collapses to a few pixels' height (a false detection, then lost) can double it."""
    height = np.nanmax(xy[..., 1], axis=1) - np.nanmin(xy[..., 1], axis=1) if np.isfinite(xy).any() else None
    if height is None:
        return float("nan")
    second = np.linalg.norm(xy[2:] - 2 * xy[1:-1] + xy[:-2], axis=-1) / np.maximum(height[1:-1, None], 1.0)
    per_frame = second.mean(1)
    return float(np.nanmedian(per_frame)) if np.isfinite(per_frame).any() else float("nan")


def longest_gap(found: np.ndarray) -> int:
    best = run = 0
    for f in found:
        run = 0 if f else run + 1
        best = max(best, run)
    return best


def _round(value, digits: int = 3):
    value = float(value)
    return None if not np.isfinite(value) else round(value, digits)


def evaluate(video: Path, max_frames: int | None, options: dict, clock_fps: float | None = None) -> dict:
    theirs = mediapipe_landmarks(video, max_frames)
    started = time.perf_counter()
    ours, regression, stats = our_landmarks(video, max_frames, options, clock_fps)
    seconds = time.perf_counter() - started
    row = compare(ours[..., :2], theirs)
    row["longest_miss_ours"] = longest_gap(np.isfinite(ours[:, 0, 0]))
    row["longest_miss_mediapipe"] = longest_gap(np.isfinite(theirs[:, 0, 0]))
    smooth = compare(filtered(ours), theirs)
    row["ours+filter"] = {k: smooth[k] for k in ("dist_mean", "dist_p95", "jitter_ours", "jitter_median_ours")}
    row["regression_readout"] = {k: v for k, v in compare(regression, theirs).items()
                                 if k in ("dist_mean", "dist_p95", "jitter_ours")}
    raw = compare(ours[..., :2], mediapipe_landmarks(video, max_frames, smooth=False))
    row["vs_mediapipe_raw"] = {k: raw[k] for k in ("frames_mediapipe", "only_ours", "only_mediapipe", "same_person",
                                                   "dist_frames", "dist_mean", "dist_p95", "offset_px",
                                                   "jitter_mediapipe", "jitter_median_mediapipe")}
    row["stats"] = stats
    row["seconds"] = round(seconds, 1)
    return row


# ------------------------------------------------------------------ driver


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def table(runs: dict) -> str:
    lines = ["| run | video | frames | ours | MediaPipe | only ours | only MP | longest miss ours/MP | same person | "
             "dist mean % (p95) vs MP | ours+filter vs MP | ours vs MP raw | jitter ours / +filter / MP / MP raw | "
             "median jitter ours / MP raw |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, run in runs.items():
        for video, r in run["videos"].items():
            f, raw = r["ours+filter"], r.get("vs_mediapipe_raw", {})
            lines.append(
                f"| {label} | {video} | {r['frames']} | {r['frames_ours']} | {r['frames_mediapipe']} | "
                f"{r['only_ours']} | {r['only_mediapipe']} | {r['longest_miss_ours']}/{r['longest_miss_mediapipe']} | "
                f"{r['same_person']} | {r['dist_mean']} ({r['dist_p95']}) | {f['dist_mean']} ({f['dist_p95']}) | "
                f"{raw.get('dist_mean')} ({raw.get('dist_p95')}) | {r['jitter_ours']} / {f['jitter_ours']} / "
                f"{r['jitter_mediapipe']} / {raw.get('jitter_mediapipe')} | "
                f"{r.get('jitter_median_ours')} / {raw.get('jitter_median_mediapipe')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--label", default="current")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="PoseEstimator2D keyword argument (JSON value), e.g. min_presence=0.5")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock-fps", type=float, default=None,
                        help="time-stamp frames at this rate instead of the video's (MediaPipe Python: 30)")
    parser.add_argument("--no-save", action="store_true", help="print only; do not touch the results file")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    videos = args.videos or shared_videos()
    if not videos:
        print(f"no videos given and {SHARED_VIDEOS} is absent", file=sys.stderr)
        return 2
    options = dict(item.split("=", 1) for item in args.set)
    options = {key: parse_value(value) for key, value in options.items()}
    if isinstance(options.get("roi_filter"), dict):
        from streampose.smoothing import OneEuroParams

        options["roi_filter"] = OneEuroParams(**options["roi_filter"])
    if isinstance(options.get("integral"), dict):
        from streampose.pose2d.estimator import DEFAULT_INTEGRAL

        options["integral"] = dataclasses.replace(DEFAULT_INTEGRAL, **options["integral"])
    run = {"date": time.strftime("%Y-%m-%d"), "options": {k: str(v) for k, v in options.items()},
           "clock_fps": args.clock_fps, "max_frames": args.max_frames, "videos": {}}
    for video in videos:
        run["videos"][video_name(video)] = evaluate(video, args.max_frames, options, args.clock_fps)
        print(table({args.label: {"videos": {video_name(video): run["videos"][video_name(video)]}}}).splitlines()[-1],
              flush=True)
    report = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    report.setdefault("machine", f"{platform.processor() or platform.machine()}, {args.threads} torch thread(s)")
    report["mediapipe"] = MEDIAPIPE_VERSION
    report["landmarks"] = "distances and jitter on all 33 BlazePose landmarks; distance in % of torso size"
    report.setdefault("runs", {})[args.label] = run
    print(table({args.label: run}))
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
