"""Smoothing benchmark: jitter, lag and MPJPE of every smoother on mocap with synthetic noise.

What it measures, for 2D keypoints (pixels, scale = bounding-box height) and 3D joints (metres,
root-relative, scale = 1.7 m) at 30 and 60 fps, for each smoother (none, Kalman causal, Kalman
fixed-lag 0.1 s, Kalman offline RTS, One-Euro causal, One-Euro offline forward-backward, One-Euro
with MediaPipe's pose settings):

* ``mpjpe``: mean joint position error against the clean track (input units; also as % of scale),
  and its change relative to the unsmoothed noisy input;
* ``jitter``: mean norm of the per-frame second difference (``|x[t+1] - 2 x[t] + x[t-1]|``) and its
  reduction factor; ``accel_error``: the same of (smoothed - clean), i.e. acceleration error per
  frame^2 (the clean motion's own jitter is printed as ``clean_jitter``);
* ``lag``: the shift (frames, sub-frame by parabolic interpolation; and ms) that maximises the
  cross-correlation between the smoothed and the clean *velocities*, pooled over all coordinates;
* ``us_per_frame``: wall time of the live ``push`` for 17 joints x D, and of the filterpy reference
  (one ``KalmanFilter`` per coordinate) in the same run.

Data: held-out CMU clips via ``streampose_train.mocap`` (``load_mocap("cmu")`` / ``split_clips``) when that
module and ``../shared`` are available, else a synthetic human-like trajectory (stated in the JSON).
Defaults are chosen on the *training* clips by the sweep (``--sweep``) and the final table is
computed on the held-out clips only.  Clips are cut into 4 s windows that are stacked along the joint
axis so one vectorised filter pass handles them all (every coordinate is filtered independently, so
this is exact); 2D windows are divided by their median bounding-box height, so 2D errors are in
units of person height (x 100 = % of height) and the filters run with ``scale = 1``.

Reusable entry point for other data (e.g. the lead's real-video measurements)::

    from benchmarks.smoothing import evaluate_smoothers
    report = evaluate_smoothers(clean, noisy, times, conf, scale)   # dict per smoother

Run: ``python benchmarks/smoothing.py [--sweep] [--quick]``; writes
``benchmarks/results/smoothing.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streampose.smoothing import make_smoother, smooth_sequence
from streampose.smoothing.kalman import KalmanParams

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from kalman_reference import filterpy_reference  # noqa: E402  (the filterpy oracle, a dev dependency)
SHARED = ROOT.parent / "shared"
RESULTS = ROOT / "benchmarks" / "results" / "smoothing.json"
WINDOW_SECONDS = 4.0  # many CMU clips are 5-10 s long


# ------------------------------------------------------------------------------------------------
# Metrics.  All take (T, J, D) tracks and pool over joints (NaN-aware).


def mpjpe(x: np.ndarray, clean: np.ndarray) -> float:
    """Mean Euclidean joint error, input units."""
    return float(np.nanmean(np.linalg.norm(x - clean, axis=-1)))


def jitter(x: np.ndarray) -> float:
    """Mean norm of the second difference per joint and frame, input units / frame^2."""
    return float(np.nanmean(np.linalg.norm(np.diff(x, 2, axis=0), axis=-1)))


def acceleration_error(x: np.ndarray, clean: np.ndarray) -> float:
    """Mean norm of the second-difference error, input units / frame^2."""
    return jitter(x - clean)


def estimate_lag(smoothed: np.ndarray, clean: np.ndarray, max_lag: int = 30) -> float:
    """Delay of ``smoothed`` behind ``clean`` in frames (positive = late), sub-frame.

    The cross-correlation of the two velocity signals (first differences, pooled over all
    coordinates) is evaluated at integer shifts in ``[-max_lag, max_lag]``; the peak is refined with
    a parabola through its neighbours.
    """
    vs = np.nan_to_num(np.diff(smoothed, axis=0).reshape(len(smoothed) - 1, -1))
    vc = np.nan_to_num(np.diff(clean, axis=0).reshape(len(clean) - 1, -1))
    n = len(vs)
    max_lag = min(max_lag, n // 4)
    core = vc[max_lag: n - max_lag]
    scores = np.array([np.sum(vs[max_lag + k: n - max_lag + k] * core)
                       for k in range(-max_lag, max_lag + 1)])
    i = int(np.argmax(scores))
    offset = 0.0
    if 0 < i < len(scores) - 1:
        a, b, c = scores[i - 1], scores[i], scores[i + 1]
        denom = a - 2 * b + c
        offset = 0.5 * (a - c) / denom if denom != 0 else 0.0
    return float(i - max_lag + offset)


# ------------------------------------------------------------------------------------------------
# Smoother configurations.


@dataclass
class SmootherConfig:
    """One smoother setting to evaluate: ``smooth_sequence(kind, ..., causal, **params)``, or a live
    fixed-lag Kalman when ``lag_seconds`` is set."""

    kind: str
    causal: bool = True
    params: dict = field(default_factory=dict)
    lag_seconds: float | None = None

    def run(self, times: np.ndarray, x: np.ndarray, conf: np.ndarray | None,
            scale: float | np.ndarray) -> np.ndarray:
        if self.lag_seconds is None:
            return smooth_sequence(self.kind, times, x, conf, scale, causal=self.causal, **self.params)
        fps = 1.0 / float(np.median(np.diff(times)))
        smoother = make_smoother(self.kind, fps, causal=False, lag_seconds=self.lag_seconds,
                                 **self.params)
        scales = np.broadcast_to(np.asarray(scale, dtype=np.float64), times.shape)
        outs = [smoother.push(times[k], x[k], None if conf is None else conf[k], scales[k])
                for k in range(len(times))]
        return np.stack([o for o in outs if o is not None] + smoother.flush())


# MediaPipe's pose-landmark One-Euro settings (pose_landmark_filtering.pbtxt): min_cutoff 0.05,
# beta 80, derivate_cutoff 1 with speed in object-scale units, where MediaPipe's object scale is the
# mean of the landmarks' bounding-box width and height (~0.7 x our body-height scale for a standing
# person), so beta 80 there is ~80 / 0.7 = 114 per body height here.  World landmarks: 0.1 / 40 /
# 1 in metres (no scaling), i.e. beta 40 * 1.7 = 68 per 1.7 m.
MEDIAPIPE_2D = {"min_cutoff": 0.05, "beta": 80.0 / 0.7, "derivate_cutoff": 1.0}
MEDIAPIPE_3D = {"min_cutoff": 0.1, "beta": 40.0 * 1.7, "derivate_cutoff": 1.0}


def default_configs(dims: int = 3) -> dict[str, SmootherConfig]:
    """The smoothers of the main table, with the package defaults."""
    return {
        "none": SmootherConfig("none"),
        "kalman": SmootherConfig("kalman", causal=True),
        "kalman_fixed_lag_0.1s": SmootherConfig("kalman", lag_seconds=0.1),
        "kalman_rts_offline": SmootherConfig("kalman", causal=False),
        "oneeuro": SmootherConfig("oneeuro", causal=True),
        "oneeuro_fb_offline": SmootherConfig("oneeuro", causal=False),
        "oneeuro_mediapipe": SmootherConfig("oneeuro", causal=True,
                                            params=MEDIAPIPE_2D if dims == 2 else MEDIAPIPE_3D),
    }


def evaluate_smoothers(clean: np.ndarray, noisy: np.ndarray, times: np.ndarray,
                       conf: np.ndarray | None = None, scale: float | np.ndarray = 1.0,
                       configs: dict[str, SmootherConfig] | None = None) -> dict[str, dict]:
    """Smooth ``noisy`` with every config and score it against ``clean``.

    Args:
        clean: ``(T, J, D)`` ground truth (or a reference track).
        noisy: ``(T, J, D)`` input to the smoothers (NaN = missing).
        times: ``(T,)`` seconds.
        conf: ``(T, J)`` confidences or ``None``.
        scale: person size, float or ``(T,)``.
        configs: name -> :class:`SmootherConfig`; default :func:`default_configs`.

    Returns:
        name -> ``{mpjpe, mpjpe_rel_scale, mpjpe_change, jitter, jitter_reduction, accel_error,
        lag_frames, lag_ms, output_delay_ms, seconds}``; plus ``"_input"`` with the clean track's own jitter.
    """
    configs = configs or default_configs(clean.shape[-1])
    frame_ms = 1000.0 * float(np.median(np.diff(times)))
    mean_scale = float(np.mean(scale))
    base_mpjpe, base_jitter = mpjpe(noisy, clean), jitter(noisy)
    report: dict[str, dict] = {"_input": {"clean_jitter": jitter(clean), "noisy_mpjpe": base_mpjpe,
                                          "noisy_jitter": base_jitter, "frame_ms": frame_ms}}
    for name, config in configs.items():
        start = time.perf_counter()
        out = config.run(times, noisy, conf, scale)
        seconds = time.perf_counter() - start
        err, jit = mpjpe(out, clean), jitter(out)
        lag = estimate_lag(out, clean)
        report[name] = {
            "mpjpe": err, "mpjpe_rel_scale": err / mean_scale, "mpjpe_change": err / base_mpjpe - 1.0,
            "jitter": jit, "jitter_reduction": base_jitter / jit,
            "accel_error": acceleration_error(out, clean),
            "lag_frames": lag, "lag_ms": lag * frame_ms,
            # a fixed-lag smoother also delivers each frame this much later (not in lag_ms, which
            # compares each output with the clean frame it belongs to)
            "output_delay_ms": 0.0 if config.lag_seconds is None else
            round(config.lag_seconds * 1000.0 / frame_ms) * frame_ms,
            "seconds": seconds,
        }
    return report


# ------------------------------------------------------------------------------------------------
# Data: clean tracks and noise models.


@dataclass
class Windows:
    """Clean windows of one kind of data, before noise.

    Attributes:
        name: e.g. ``"2d_30fps"``.
        fps: frame rate.
        clean: ``(W, T, J, D)``: 3D root-relative metres, or 2D pixels.
        size: ``(W, T)`` person size per frame in the units of ``clean`` (2D: ``max(bbox h, w)``;
            3D: 1.7).
    """

    name: str
    fps: float
    clean: np.ndarray
    size: np.ndarray

    @property
    def times(self) -> np.ndarray:
        return np.arange(self.clean.shape[1]) / self.fps

    @property
    def dims(self) -> int:
        return int(self.clean.shape[-1])

    def stacked(self, noisy: np.ndarray, conf: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float]:
        """``(clean, noisy, conf, scale)`` with windows side by side as extra joints
        (``(T, W*J, D)``), each window divided by its median person size for 2D (so the filters run
        with ``scale = 1`` and errors are fractions of person size), unchanged for 3D (scale 1.7)."""
        if self.dims == 2:
            norm = np.median(self.size, axis=1)[:, None, None, None]
            clean, noisy, scale = self.clean / norm, noisy / norm, 1.0
        else:
            clean, scale = self.clean, SCALE_3D
        return _stack(clean), _stack(noisy), None if conf is None else _stack(conf[..., None])[..., 0], scale


SCALE_3D = 1.7


def _load_clips(split: str) -> tuple[list[np.ndarray], float, str]:
    """World-space ``(T, 17, 3)`` clips of one split, their fps, and a description."""
    reason = "load_mocap returned no clips"
    try:
        from streampose_train.mocap import load_mocap, split_clips

        clips = load_mocap("cmu")
    except Exception as exc:  # no mocap module, no ../shared, no cache: say so and go synthetic
        reason = f"{type(exc).__name__}: {exc}"
        clips = None
    if clips:
        train, held_out = split_clips(clips)
        chosen = train if split == "train" else held_out
        source = (f"CMU mocap (streampose_train.mocap.load_mocap + split_clips): {split} = {len(chosen)} "
                  f"clips, {sum(c.num_frames for c in chosen)} frames at {clips[0].fps:g} fps")
        return [np.asarray(c.joints3d, dtype=np.float64) for c in chosen], float(clips[0].fps), source
    synthetic = _synthetic_clips(60.0, 8, seed=1 if split == "train" else 2)
    return synthetic, 60.0, f"synthetic human-like trajectories (no mocap: {reason})"


def _synthetic_clips(seconds: float, count: int, seed: int, fps: float = 60.0) -> list[np.ndarray]:
    """Human-like synthetic motion (when no mocap is available): a skeleton-sized cloud of 17
    joints, 1 m above the floor, whose coordinates are sums of sinusoids with a 1/f amplitude
    spectrum over 0.1-4 Hz, plus occasional fast 0.25 s moves (punch/kick-like smoothsteps)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fps)) / fps
    clips = []
    for _ in range(count):
        base = rng.normal(0, 0.3, (17, 3)) + np.array([0.0, 1.0, 0.0])
        freqs = np.exp(rng.uniform(np.log(0.1), np.log(4.0), (12, 17, 3)))
        amps = 0.04 / freqs
        phase = rng.uniform(0, 2 * np.pi, (12, 17, 3))
        motion = (amps * np.sin(2 * np.pi * freqs * t[:, None, None, None] + phase)).sum(1)
        for start in rng.uniform(0, seconds - 1, int(seconds / 2)):
            j = rng.integers(17)
            u = np.clip((t - start) / 0.25, 0, 1)
            motion[:, j] += (u * u * (3 - 2 * u))[:, None] * rng.normal(0, 0.17, 3)
        clips.append(base + motion)
    return clips


def _windows(clips: list[np.ndarray], fps_in: float, fps_out: float) -> np.ndarray:
    """Cut clips (decimated by an integer factor) into ``WINDOW_SECONDS`` windows:
    ``(W, T, J, 3)``; shorter tails are dropped."""
    step = int(round(fps_in / fps_out))
    length = int(round(WINDOW_SECONDS * fps_out))
    out = []
    for clip in clips:
        clip = clip[::step]
        for start in range(0, len(clip) - length + 1, length):
            out.append(clip[start:start + length])
    return np.stack(out)


def _stack(windows: np.ndarray) -> np.ndarray:
    """``(W, T, J, D) -> (T, W*J, D)``: windows side by side as extra joints."""
    w, t, j, d = windows.shape
    return windows.transpose(1, 0, 2, 3).reshape(t, w * j, d)


def _person_size(kp2d: np.ndarray) -> np.ndarray:
    """``(..., J, 2) -> (...)``: ``max(bbox height, bbox width)`` in pixels (Noise2D's measure)."""
    extent = kp2d.max(axis=-2) - kp2d.min(axis=-2)
    return np.maximum(extent.max(axis=-1), 1.0)


def build_windows(split: str, quick: bool, seed: int = 0) -> tuple[dict[str, Windows], str]:
    """Clean windows ``{"3d_30fps", "2d_30fps", "3d_60fps", "2d_60fps"}`` of one split; 2D is the
    world motion filmed by a random ``VirtualCamera`` per window."""
    from streampose_train.filming import VirtualCamera

    clips, fps_in, source = _load_clips(split)
    if quick:
        clips = clips[:6]
    rng = np.random.default_rng(seed)
    out = {}
    for fps in (30.0, 60.0):
        world = _windows(clips, fps_in, fps)
        rel = world - world[:, :, :1]  # root-relative, as the lifter outputs
        out[f"3d_{fps:.0f}fps"] = Windows(f"3d_{fps:.0f}fps", fps, rel,
                                          np.full(world.shape[:2], SCALE_3D))
        pixels = np.stack([VirtualCamera.sample(rng, subject=w).project(w) for w in world])
        out[f"2d_{fps:.0f}fps"] = Windows(f"2d_{fps:.0f}fps", fps, pixels, _person_size(pixels))
    return out, source


# Noise settings.  3D: white Gaussian of 1 / 2 / 4 cm per axis.  2D: white Gaussian of 0.5 / 1 / 2 %
# of person size per axis, and engineer D's detector model ``Noise2D`` (correlated + white jitter,
# outliers, left/right swaps, frozen dropouts, matching confidences) at half and full strength.
NOISE_3D = {"gauss_1cm": 0.01, "gauss_2cm": 0.02, "gauss_4cm": 0.04}
NOISE_2D = {"gauss_0.5%": 0.005, "gauss_1%": 0.01, "gauss_2%": 0.02, "Noise2D_x0.5": "noise2d:0.5",
            "Noise2D_x1": "noise2d:1.0"}


def add_noise(windows: Windows, setting: float | str, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """Noisy ``(W, T, J, D)`` copy of ``windows.clean`` and ``(W, T, J)`` confidences (``None``
    for Gaussian noise).  A float setting is the per-axis sigma: metres for 3D, fraction of person
    size for 2D."""
    if isinstance(setting, str):
        from streampose_train.mocap import Noise2D

        model = Noise2D(scale=float(setting.split(":")[1]))
        pairs = [model.apply(w, rng, fps=windows.fps) for w in windows.clean]
        return (np.stack([p[0] for p in pairs]).astype(np.float64),
                np.stack([p[1] for p in pairs]).astype(np.float64))
    sigma = setting * (windows.size[..., None, None] if windows.dims == 2 else 1.0)
    return windows.clean + rng.normal(0, 1, windows.clean.shape) * sigma, None


# ------------------------------------------------------------------------------------------------
# Sweep, timing, table.


# The innovation gate is not swept: in a first sweep (gate 4 sigma) it never lowered the error (Noise2D
# outliers already come with low confidence) and with small process noise it lost lock on fast moves.
KALMAN_GRID = [{"process_noise": pn} for pn in (0.2, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0)]
ONE_EURO_GRID = [{"min_cutoff": mc, "beta": b} for mc in (0.5, 1.0, 1.5, 2.0, 3.0, 5.0)
                 for b in (0.0, 3.0, 10.0, 20.0, 30.0, 50.0, 100.0)]
NEAR_BEST = 0.03  # settings within 3 % of the best error count as tied; the smoothest tie wins


def _label(kind: str, params: dict) -> str:
    return kind + " " + " ".join(f"{k}={v}" for k, v in params.items())


def sweep(windows: dict[str, Windows], seed: int = 0) -> dict:
    """Causal-filter parameter sweep on training windows.

    For every data kind (2D, 3D), frame rate and noise setting, each grid point's causal MPJPE and
    jitter are divided by the unsmoothed input's; the ratios are averaged over settings and frame
    rates.  Choice rule: among the settings whose mean error ratio is within ``NEAR_BEST`` of the
    best, take the one with the lowest mean jitter ratio (users see jitter; a 3 % error difference
    is invisible).  Chosen for 2D, 3D and both together (``"all"``, the package defaults: one setting
    for 2D and 3D, since every parameter is relative to the person size).
    """
    per_setting: dict[str, dict] = {}
    for name, win in windows.items():
        noises = NOISE_2D if win.dims == 2 else NOISE_3D
        for noise_name, setting in noises.items():
            noisy, conf = add_noise(win, setting, np.random.default_rng(seed))
            clean_s, noisy_s, conf_s, scale = win.stacked(noisy, conf)
            base_err, base_jit = mpjpe(noisy_s, clean_s), jitter(noisy_s)
            row = per_setting[f"{name}/{noise_name}"] = {}
            for kind, grid in (("kalman", KALMAN_GRID), ("oneeuro", ONE_EURO_GRID)):
                for params in grid:
                    out = smooth_sequence(kind, win.times, noisy_s, conf_s, scale, causal=True, **params)
                    row[_label(kind, params)] = (mpjpe(out, clean_s) / base_err, jitter(out) / base_jit)
            print(f"  swept {name}/{noise_name}", flush=True)
    summary: dict[str, dict] = {}
    for dims in ("2d", "3d", "all"):
        keys = [k for k in per_setting if dims == "all" or k.startswith(dims)]
        labels = list(per_setting[keys[0]])
        mean_err = {lab: float(np.mean([per_setting[k][lab][0] for k in keys])) for lab in labels}
        mean_jit = {lab: float(np.mean([per_setting[k][lab][1] for k in keys])) for lab in labels}
        chosen = {}
        for kind in ("kalman", "oneeuro"):
            fam = [lab for lab in labels if lab.startswith(kind + " ")]
            best_err = min(mean_err[lab] for lab in fam)
            tied = [lab for lab in fam if mean_err[lab] <= best_err * (1 + NEAR_BEST)]
            pick = min(tied, key=mean_jit.get)
            chosen[kind] = {"setting": pick, "mean_error_ratio": mean_err[pick],
                            "mean_jitter_ratio": mean_jit[pick], "best_error_ratio": best_err,
                            "lowest_error_setting": min(fam, key=mean_err.get)}
        summary[dims] = {"chosen": chosen, "mean_error_ratio": mean_err, "mean_jitter_ratio": mean_jit}
    return {"per_setting": per_setting, "summary": summary}


def time_push(repeats: int = 300) -> dict[str, float]:
    """Microseconds per live ``push`` for 17 x 3 joints, and per frame for filterpy (51 filters)."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, (repeats, 17, 3))
    conf = rng.uniform(0.3, 1, (repeats, 17))
    out = {}
    for name, kw in (("kalman", {}), ("kalman_fixed_lag_0.1s", {"causal": False}),
                     ("oneeuro", {}), ("none", {})):
        kind = name.split("_")[0]
        smoother = make_smoother(kind, 30.0, **kw)
        start = time.perf_counter()
        for k in range(repeats):
            smoother.push(k / 30.0, x[k], conf[k], 1.7)
        out[name] = 1e6 * (time.perf_counter() - start) / repeats
    times = np.arange(repeats) / 30.0
    weights = np.clip(conf, 0.05, 1.0)
    start = time.perf_counter()
    for j in range(17):
        for d in range(3):
            filterpy_reference(times, x[:, j, d], weights[:, j], 1.7, KalmanParams(), smooth=False)
    out["filterpy_51_kalmanfilters"] = 1e6 * (time.perf_counter() - start) / repeats
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sweep", action="store_true", help="also run the parameter sweep")
    parser.add_argument("--quick", action="store_true", help="use at most 4 clips per split")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    result: dict = {"benchmark": "smoothing", "units": {
        "mpjpe_rel_scale": "fraction of person size (2D: max(bbox h, w) per window; 3D: 1.7 m)",
        "mpjpe": "2D: person sizes; 3D: metres", "jitter": "input units per frame^2",
        "lag_frames": "frames (positive = late)"}}
    if args.sweep:
        train, source = build_windows("train", args.quick)
        print(f"sweep on training data: {source}", flush=True)
        result["sweep"] = sweep(train)
        result["sweep_data"] = source
    held_out, source = build_windows("held_out", args.quick, seed=1)
    result["data"] = source
    from streampose.smoothing.one_euro import OneEuroParams

    result["defaults"] = {"kalman": dataclasses.asdict(KalmanParams()),
                          "oneeuro": dataclasses.asdict(OneEuroParams())}
    table = []
    for name, win in held_out.items():
        noises = NOISE_2D if win.dims == 2 else NOISE_3D
        for noise_name, setting in noises.items():
            noisy, conf = add_noise(win, setting, np.random.default_rng(1))
            clean_s, noisy_s, conf_s, scale = win.stacked(noisy, conf)
            report = evaluate_smoothers(clean_s, noisy_s, win.times, conf_s, scale)
            for smoother_name, row in report.items():
                if smoother_name.startswith("_"):
                    continue
                table.append({"data": name, "noise": noise_name, "smoother": smoother_name, **row,
                              "clean_jitter": report["_input"]["clean_jitter"],
                              "frames": int(clean_s.shape[0]), "windows": int(win.clean.shape[0])})
    result["table"] = table
    result["us_per_frame_17x3"] = time_push()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))

    print(f"data: {source}")
    print(f"{'data':9} {'noise':13} {'smoother':22} {'MPJPE %size':>11} {'change':>8} "
          f"{'jitter /':>8} {'lag fr':>7} {'lag ms':>7}")
    for row in table:
        print(f"{row['data']:9} {row['noise']:13} {row['smoother']:22} "
              f"{100 * row['mpjpe_rel_scale']:11.3f} {100 * row['mpjpe_change']:+7.1f}% "
              f"{row['jitter_reduction']:8.2f} {row['lag_frames']:7.2f} {row['lag_ms']:7.1f}")
    print("us per frame (17x3):", {k: round(v, 1) for k, v in result["us_per_frame_17x3"].items()})
    if "sweep" in result:
        for dims, s in result["sweep"]["summary"].items():
            for kind, c in s["chosen"].items():
                print(f"sweep {dims} {kind}: chose {c['setting']} (error x{c['mean_error_ratio']:.3f}, "
                      f"jitter x{c['mean_jitter_ratio']:.3f}); lowest error "
                      f"{c['lowest_error_setting']} x{c['best_error_ratio']:.3f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
