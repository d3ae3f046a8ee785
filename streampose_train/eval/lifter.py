"""Evaluate lifters on held-out mocap clips filmed by virtual cameras with realistic 2D noise.

    python -m streampose_train.eval.lifter --model models/lifter_cmu.pt --data cmu
    python -m streampose_train.eval.lifter --model a.pt b.pt --data cmu+bandai --json results.json

The held-out clips are the mocap stage's whole-clip split (``split_clips``, default seed), never
frames of training clips.  Every clip is resampled to ``--fps`` and filmed by ``--cameras`` virtual
cameras with :class:`~streampose_train.mocap.noise.Noise2D` noise, all from one fixed seed, so every model
sees identical inputs.  The lifter runs offline on whole sequences (``Lifter.lift_sequence``, replicate
padding at both ends).

Metrics (millimetres, root-relative poses, frame-weighted means):
MPJPE (protocol 1), P-MPJPE (Procrustes, protocol 2), N-MPJPE (scale only, protocol 3), MPJVE (velocity
error, mm per frame at ``--fps``), and the root (trajectory) error when the model has one.  Also per
action label.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from streampose.metrics import mpjpe, mpjve, n_mpjpe, p_mpjpe
from streampose_train.lifter import RenderedClip, default_noise, load_training_clips, render_clip

METRICS = ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve")


def render_heldout(clips, fps: float = 30.0, cameras: int = 2, seed: int = 0, noise: str = "default",
                   definitions: str = "mocap", adult_scale: bool = False) -> list[RenderedClip]:
    """Film each held-out clip ``cameras`` times at ``fps`` (deterministic for a given seed).

    ``noise``: a :data:`~streampose_train.mocap.noise.NOISE_MODELS` name.  ``definitions``:
    ``"blazepose"`` rescales each dataset's bones to BlazePose's measured keypoint proportions
    (:mod:`streampose_train.adapt`), the ground truth included; ``adult_scale`` scales each
    dataset's bodies to an adult's leg length, as ``--adult-scale`` training does.
    """
    from streampose_train import adapt
    from streampose_train.mocap.noise import NOISE_MODELS

    rng = np.random.default_rng(seed)
    model = NOISE_MODELS[noise]() if noise != "default" else default_noise()
    if definitions == "blazepose":
        scales = {}
        for dataset in sorted({c.dataset for c in clips}):
            joints = np.concatenate([c.joints3d[::10] for c in clips if c.dataset == dataset])
            scales[dataset] = adapt.blazepose_bone_scales(joints)
        clips = [dataclasses.replace(c, joints3d=adapt.rescale_bones(c.joints3d, scales[c.dataset])) for c in clips]
    if adult_scale:
        sizes = {d: adapt.body_scale(np.concatenate([c.joints3d[::10] for c in clips if c.dataset == d]))
                 for d in sorted({c.dataset for c in clips})}
        clips = [dataclasses.replace(c, joints3d=(c.joints3d * sizes[c.dataset]).astype(np.float32)) for c in clips]
    return [render_clip(clip, rng, fps=fps, noise=model) for clip in clips for _ in range(cameras)]


def evaluate(lifter, rendered: list[RenderedClip], fps: float | None = None) -> dict:
    """Metrics of one lifter over rendered held-out clips: overall, per action, per dataset.

    ``fps``: passed to ``lift_sequence`` (frame-rate resampling outside the trained range); ``None``
    lifts the frames as they are.
    """
    per_clip = []
    for clip in rendered:
        kp3d, root = lifter.lift_sequence(clip.pixels, clip.image_size, fps=fps)
        row = {"name": clip.name, "action": clip.action, "frames": len(kp3d),
               "mpjpe": 1000 * mpjpe(kp3d, clip.poses), "p_mpjpe": 1000 * p_mpjpe(kp3d, clip.poses),
               "n_mpjpe": 1000 * n_mpjpe(kp3d, clip.poses)}
        row["mpjve"] = 1000 * mpjve(kp3d, clip.poses) if len(kp3d) > 1 else float("nan")
        if root is not None:
            row["root_error"] = 1000 * float(np.linalg.norm(root - clip.roots, axis=-1).mean())
            row["root_depth_error"] = 1000 * float(np.abs(root[:, 2] - clip.roots[:, 2]).mean())
            row["root_relative_depth_error"] = float(
                (np.abs(root[:, 2] - clip.roots[:, 2]) / clip.roots[:, 2]).mean())
        per_clip.append(row)

    def summarise(rows) -> dict:
        weights = np.array([r["frames"] for r in rows], dtype=float)
        keys = [k for k in rows[0] if k not in ("name", "action", "frames")]
        out = {k: round(float(np.average([r[k] for r in rows], weights=weights)), 2) for k in keys}
        out["frames"] = int(weights.sum())
        out["clips"] = len({r["name"] for r in rows})
        return out

    by_action: dict[str, list] = defaultdict(list)
    by_dataset: dict[str, list] = defaultdict(list)
    for row in per_clip:
        by_action[row["action"]].append(row)
        by_dataset[row["name"].split("/")[0]].append(row)
    return {"overall": summarise(per_clip),
            "per_dataset": {k: summarise(v) for k, v in sorted(by_dataset.items())},
            "per_action": {k: summarise(v) for k, v in sorted(by_action.items())}}


def format_table(results: dict[str, dict]) -> str:
    """One line per model: overall and per-dataset MPJPE / P-MPJPE / N-MPJPE / MPJVE / root error."""
    lines = [f"{'model':32s} {'set':8s} {'MPJPE':>7s} {'P-MPJPE':>8s} {'N-MPJPE':>8s} {'MPJVE':>7s} "
             f"{'root':>7s} {'frames':>7s}"]
    for name, res in results.items():
        groups = {"all": res["overall"], **res["per_dataset"]}
        for group, m in groups.items():
            if group != "all" and len(res["per_dataset"]) == 1:
                continue
            root = f"{m['root_error']:7.0f}" if "root_error" in m else f"{'-':>7s}"
            lines.append(f"{name[:32]:32s} {group:8s} {m['mpjpe']:7.1f} {m['p_mpjpe']:8.1f} {m['n_mpjpe']:8.1f} "
                         f"{m['mpjve']:7.2f} {root} {m['frames']:7d}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m streampose_train.eval.lifter", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", nargs="+", required=True, help="weights files or shipped names")
    p.add_argument("--data", default="cmu", help="held-out clips of cmu, bandai or cmu+bandai")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--cameras", type=int, default=2, help="virtual cameras per held-out clip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-clips-per-dataset", type=int, default=None,
                   help="evaluate only the first N held-out clips of each dataset (large sets)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--per-action", action="store_true", help="also print the per-action MPJPE")
    p.add_argument("--test-time-flip", action="store_true", help="average with the mirrored input")
    p.add_argument("--noise", default="default", choices=["default", "measured"], help="2D noise model")
    p.add_argument("--definitions", default="mocap", choices=["mocap", "blazepose"],
                   help="joint proportions of the held-out clips (blazepose: BlazePose's measured ones)")
    p.add_argument("--adult-scale", action="store_true", help="held-out bodies scaled to an adult's leg length")
    p.add_argument("--resample", action="store_true",
                   help="tell the lifter the frame rate (resampled when outside its trained range)")
    a = p.parse_args(argv)

    from streampose.lifter import load_lifter

    held = []
    for name in a.data.split("+"):
        _, clips = load_training_clips(name)
        held += clips[: a.max_clips_per_dataset]
    rendered = render_heldout(held, fps=a.fps, cameras=a.cameras, seed=a.seed, noise=a.noise,
                              definitions=a.definitions, adult_scale=a.adult_scale)
    results = {}
    for model in a.model:
        lifter = load_lifter(model, causal=False, test_time_flip=a.test_time_flip)
        key = Path(model).stem + ("+flip" if a.test_time_flip else "")
        results[key] = evaluate(lifter, rendered, fps=a.fps if a.resample else None)
        results[key]["model"] = {"path": str(model), "receptive_field": lifter.receptive_field,
                                 "causal": lifter.causal, "test_time_flip": a.test_time_flip,
                                 "training_data": lifter.metadata.get("training_data")}
    print(format_table(results))
    if a.per_action:
        for name, res in results.items():
            print(name, {k: v["mpjpe"] for k, v in res["per_action"].items()})
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"data": a.data, "fps": a.fps, "cameras": a.cameras, "seed": a.seed,
                                            "noise": a.noise, "definitions": a.definitions, "resample": a.resample,
                                            "adult_scale": a.adult_scale,
                                            "held_out_clips": sorted({c.name for c in held}),
                                            "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
