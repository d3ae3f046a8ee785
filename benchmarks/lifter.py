"""Per-frame cost of the lifter: streaming runner vs offline (amortised) vs recomputing each window.

    python benchmarks/lifter.py [--channels 256 1024] [--frames 600] [--threads 1]

For receptive fields 27 / 81 / 243 (symmetric; the causal model has the same cost), eval mode,
random weights (cost does not depend on the values):

* ``stream``     -- :class:`StreamingTemporalModel.push`, one frame at a time (O(1) per frame);
* ``offline``    -- one ``forward_sequence`` over the whole ``--frames`` sequence, divided by frames;
* ``window_dil`` -- naive live inference: the dilated net on the last ``receptive_field`` frames for
  every new frame;
* ``window_str`` -- the same with the strided pass (the cheapest way to recompute one output).

All timings are taken in the same run, on the same device and thread count; ratios are to
``offline``.  CUDA timings (offline / window only -- the streaming runner is CPU numpy by design) are
added when a GPU is present.  Writes ``benchmarks/results/lifter.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from streampose.lifter.model import temporal_model
from streampose.lifter.streaming import StreamingTemporalModel

RESULTS = Path(__file__).resolve().parent / "results" / "lifter.json"


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def measure(receptive_field: int, channels: int, frames: int, device: torch.device, repeats: int) -> dict:
    torch.manual_seed(0)
    model = temporal_model(receptive_field, causal=False, channels=channels).eval()
    seq = torch.randn(1, frames, 17, 2)
    out: dict = {"receptive_field": receptive_field, "channels": channels, "device": device.type,
                 "parameters": sum(p.numel() for p in model.parameters())}

    model = model.to(device)
    seq_dev = seq.to(device)
    model.forward_sequence(seq_dev)  # warm-up
    _sync(device)

    def offline():
        model.forward_sequence(seq_dev)
        _sync(device)

    out["offline_us"] = 1e6 * _best_of(offline, repeats) / frames

    padded = torch.cat([seq_dev[:, :1].expand(-1, receptive_field - 1, -1, -1), seq_dev], dim=1)
    window_frames = min(frames, 100)

    def window(strided: bool):
        def run():
            for t in range(window_frames):
                clip = padded[:, t: t + receptive_field]
                model.forward_single(clip) if strided else model(clip)
            _sync(device)
        return run

    out["window_dil_us"] = 1e6 * _best_of(window(False), repeats) / window_frames
    out["window_str_us"] = 1e6 * _best_of(window(True), repeats) / window_frames

    if device.type == "cpu":
        runner = StreamingTemporalModel(model.cpu())
        frames_np = seq[0].numpy()

        def stream():
            for x in frames_np:
                runner.push(x)
            runner.flush()

        out["stream_us"] = 1e6 * _best_of(stream, repeats) / frames
        out["stream_vs_offline"] = round(out["stream_us"] / out["offline_us"], 2)
    out["window_dil_vs_offline"] = round(out["window_dil_us"] / out["offline_us"], 2)
    out["window_str_vs_offline"] = round(out["window_str_us"] / out["offline_us"], 2)
    for key in [k for k in out if k.endswith("_us")]:
        out[key] = round(out[key], 1)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--channels", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--receptive-fields", type=int, nargs="+", default=[27, 81, 243])
    p.add_argument("--frames", type=int, default=600)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = [measure(rf, ch, a.frames, dev, a.repeats)
            for dev in devices for ch in a.channels for rf in a.receptive_fields]

    print(f"{'dev':5s} {'RF':>4s} {'C':>5s} {'params':>8s} {'stream':>9s} {'offline':>9s} {'win_dil':>9s} "
          f"{'win_str':>9s} {'str/off':>8s} {'wdil/off':>8s} {'wstr/off':>8s}   (us per frame)")
    for r in rows:
        stream = f"{r['stream_us']:9.1f}" if "stream_us" in r else f"{'-':>9s}"
        ratio = f"{r['stream_vs_offline']:8.2f}" if "stream_vs_offline" in r else f"{'-':>8s}"
        print(f"{r['device']:5s} {r['receptive_field']:4d} {r['channels']:5d} {r['parameters']:8d} {stream} "
              f"{r['offline_us']:9.1f} {r['window_dil_us']:9.1f} {r['window_str_us']:9.1f} {ratio} "
              f"{r['window_dil_vs_offline']:8.2f} {r['window_str_vs_offline']:8.2f}")
    meta = {"machine": f"{platform.machine()} {platform.processor()}".strip(), "torch": torch.__version__,
            "numpy": np.__version__, "threads": a.threads, "frames": a.frames, "repeats": a.repeats,
            "note": "best of repeats; CPU shared with other processes, so absolute times are noisy -- "
                    "compare the ratios, measured in the same run"}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
