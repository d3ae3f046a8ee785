"""Refiner cost per frame (``Refiner.refine``: limb crops + part map + network) per backbone/modality.

    python benchmarks/refiner.py [--threads 1] [--repeats 20] [--device cpu|cuda]

One person in a 1920x1080 frame, with and without a person mask; times are medians over repeats
after warm-up, measured in the same run so ratios are comparable.  Writes
``benchmarks/results/refiner.json`` and prints a table.  The networks are randomly initialised:
cost does not depend on the weights.  ``network_ms`` is the network alone on ready patches;
``total_ms`` the whole ``refine`` call on a 1080p uint8 frame.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from streampose.refine import Refiner, limbs
from streampose.refine.config import RefinerArch, make_net
from streampose.refine.inputs import channels_for

RESULTS = Path(__file__).resolve().parent / "results" / "refiner.json"


def _person(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A standing person about 60 % of the frame tall: kp2d (17, 3) pixels and kp3d (17, 3) metres."""
    pose = np.array([
        [0, 0, 0], [-.12, 0, 0], [-.12, .45, .02], [-.12, .9, 0], [.12, 0, 0], [.12, .45, .02],
        [.12, .9, 0], [0, -.25, 0], [0, -.5, 0], [0, -.6, -.05], [0, -.72, 0], [.18, -.5, 0],
        [.3, -.25, 0], [.35, 0, -.05], [-.18, -.5, 0], [-.3, -.25, 0], [-.35, 0, -.05]], np.float32)
    scale = 0.6 * height / 1.62
    xy = pose[:, :2] * scale + [width / 2, height / 2]
    return np.concatenate([xy, np.ones((17, 1), np.float32)], 1), pose


def _median_ms(fn, repeats: int, sync) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    width, height = 1920, 1080
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    kp2d, kp3d = _person(width, height)
    mask = np.zeros((height, width), np.float32)
    mask[height // 5: height * 4 // 5, width // 3: width * 2 // 3] = 1.0
    lengths = torch.ones(limbs.NUM_LIMBS) * 0.3

    cases = [("small", "rgb+seg", 32), ("small", "rgb", 32), ("small", "seg", 32),
             ("small", "whole", 128), ("small", "rgb+seg", 64), ("resnet50", "rgb+seg", 64),
             ("resnet50", "rgb+seg", 256)]
    rows = []
    for backbone, modality, size in cases:
        config = RefinerArch(modality=modality, backbone=backbone, patch_size=size, whole_size=size)
        refiner = Refiner(make_net(config), config, lengths, device=str(device))
        for with_mask in (True, False):
            if with_mask and modality not in ("seg", "rgb+seg"):
                continue
            m = mask if with_mask else None
            patches = torch.randn(1, 1 if modality == "whole" else 16, channels_for(modality), size, size,
                                  device=device)
            u0 = torch.zeros(1, 16, 3, device=device)

            @torch.no_grad()
            def run_net():
                return refiner.net(patches, u0)

            def full():
                return refiner.refine(frame, kp2d, kp3d, m)

            repeats = max(3, args.repeats // 4) if backbone == "resnet50" else args.repeats
            network = _median_ms(run_net, repeats, sync)
            total = _median_ms(full, repeats, sync)
            rows.append({
                "backbone": backbone, "modality": modality, "patch": size, "mask": with_mask,
                "params_m": round(sum(p.numel() for p in refiner.net.parameters()) / 1e6, 2),
                "network_ms": round(network, 2), "total_ms": round(total, 2),
                "inputs_ms_est": round(total - network, 2),
            })
            print(rows[-1], flush=True)

    result = {"device": str(device), "threads": args.threads, "frame": [width, height],
              "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
              "note": "one person per frame; median ms over repeats; machine shared with other jobs",
              "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\n{'backbone':9} {'modality':8} {'patch':>5} {'mask':>5} {'params M':>8} {'network':>8} "
          f"{'total ms':>8}")
    for r in rows:
        print(f"{r['backbone']:9} {r['modality']:8} {r['patch']:5d} {str(r['mask']):>5} "
              f"{r['params_m']:8.2f} {r['network_ms']:8.2f} {r['total_ms']:8.2f}")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
