"""Per-frame cost of the lifter: streaming runner vs offline (amortised), with the matrix-vector floor.

    python benchmarks/lifter.py [--channels 256 1024] [--receptive-fields 27 81 243] [--threads 1]

For each receptive field and channel count (symmetric model, eval mode, random weights -- the cost
does not depend on the values), all in the same run, same thread count:

* ``offline``  -- one ``forward_sequence`` over ``--offline-frames`` (10,000) frames, divided by frames:
  the amortised cost when the whole video is available (matrix-matrix products);
* ``stream``   -- :meth:`StreamingTemporalModel.push`, one frame at a time, one stream (O(1) per frame);
* ``stream_p99`` -- 99th percentile of single ``push`` times: the runner batches the older dilated
  taps every ``d`` frames, so some frames cost more than the mean;
* ``gemv``     -- the floor of a plain runner that applies every weight to every frame: just those
  matrix-vector products (same shapes, BatchNorm folded), no other work.  Such a frame reads every
  weight once, so it is bound by cache bandwidth, not FLOPs; the streaming runner beats it by
  deferring the older taps (see ``streampose/lifter/streaming.py``);
* ``stream_bN`` -- :meth:`StreamingTemporalModel.push_batch` advancing N streams together (people,
  or a frame and its mirror for test-time flip), cost per stream-frame;
* ``window``   -- naive live inference: the strided pass on the last ``receptive_field`` frames for
  every new frame (what the streaming runner replaces).

Ratios are to ``offline``.  Writes ``benchmarks/results/lifter.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from streampose.lifter.model import TemporalModel, temporal_model
from streampose.lifter.streaming import StreamingTemporalModel

RESULTS = Path(__file__).resolve().parent / "results" / "lifter.json"
BATCHES = (2, 8, 32)


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _gemv_floor(model: TemporalModel, frames: int, repeats: int) -> float:
    """Seconds per frame of the per-frame matrix-vector products alone (float32, bias column folded)."""
    rng = np.random.default_rng(0)
    c, width0 = model.channels, model.filter_widths[0]
    shapes = [(c, width0 * (model.num_joints_in * model.in_features + 1))]
    for width in model.filter_widths[1:]:
        shapes += [(c, width * (c + 1)), (c, c + 1)]
    shapes.append((model.num_joints_out * 3, c + 1))
    products = [(rng.standard_normal(s, dtype=np.float32), rng.standard_normal((s[1], 1), dtype=np.float32),
                 np.empty((s[0], 1), dtype=np.float32)) for s in shapes]

    def run():
        for _ in range(frames):
            for weight, column, out in products:
                np.dot(weight, column, out=out)

    run()
    return _best_of(run, repeats) / frames


@torch.inference_mode()
def measure(receptive_field: int, channels: int, offline_frames: int, stream_frames: int, repeats: int,
            runner_class=StreamingTemporalModel) -> dict:
    torch.manual_seed(0)
    model = temporal_model(receptive_field, causal=False, channels=channels).eval()
    out: dict = {"receptive_field": receptive_field, "channels": channels,
                 "parameters": sum(p.numel() for p in model.parameters())}

    seq = torch.randn(1, offline_frames, 17, 2)
    model.forward_sequence(seq[:, :1000])  # warm-up
    out["offline_us"] = 1e6 * _best_of(lambda: model.forward_sequence(seq), repeats) / offline_frames

    frames_np = seq[0, :stream_frames].numpy()
    runner = runner_class(model)

    def stream():
        for x in frames_np:
            runner.push(x)
        runner.flush()

    stream()  # warm-up
    out["stream_us"] = 1e6 * _best_of(stream, repeats) / stream_frames
    push_times = []
    for x in frames_np:
        started = time.perf_counter()
        runner.push(x)
        push_times.append(time.perf_counter() - started)
    runner.flush()
    out["stream_p99_us"] = 1e6 * float(np.percentile(push_times, 99))
    out["gemv_us"] = 1e6 * _gemv_floor(model, stream_frames, repeats)

    if hasattr(runner_class, "push_batch"):
        for batch in BATCHES:
            batched = runner_class(model, batch=batch)
            frames_b = np.random.default_rng(batch).standard_normal((stream_frames, batch, 17, 2)).astype(np.float32)

            def stream_batch():
                for x in frames_b:
                    batched.push_batch(x)
                batched.flush_batch()

            stream_batch()
            out[f"stream_b{batch}_us"] = 1e6 * _best_of(stream_batch, repeats) / (stream_frames * batch)

    window_frames = 20
    padded = torch.cat([seq[:, :1].expand(-1, receptive_field - 1, -1, -1), seq[:, :window_frames]], dim=1)

    def window():
        for t in range(window_frames):
            model.forward_single(padded[:, t: t + receptive_field])

    out["window_us"] = 1e6 * _best_of(window, repeats) / window_frames

    for key in [k for k in out if k.endswith("_us") and k not in ("offline_us", "stream_p99_us")]:
        out[key.replace("_us", "_vs_offline")] = round(out[key] / out["offline_us"], 2)
    for key in [k for k in out if k.endswith("_us")]:
        out[key] = round(out[key], 1)
    return out


def print_table(rows: list[dict]) -> None:
    batch_cols = [f"b{b}" for b in BATCHES]
    print(f"{'RF':>4s} {'C':>5s} {'offline':>8s} {'stream':>8s} {'p99':>8s} {'gemv':>8s} "
          + " ".join(f"{c:>8s}" for c in batch_cols) + f" {'window':>9s}   |  "
          + " ".join(f"{c:>7s}" for c in ["str/off", "gemv/off"] + [f"{c}/off" for c in batch_cols])
          + "   (us per frame per stream)")
    for r in rows:
        batch_us = " ".join(f"{r.get(f'stream_b{b}_us', float('nan')):8.1f}" for b in BATCHES)
        batch_ratio = " ".join(f"{r.get(f'stream_b{b}_vs_offline', float('nan')):7.2f}" for b in BATCHES)
        print(f"{r['receptive_field']:4d} {r['channels']:5d} {r['offline_us']:8.1f} {r['stream_us']:8.1f} "
              f"{r['stream_p99_us']:8.1f} "
              f"{r['gemv_us']:8.1f} {batch_us} {r['window_us']:9.1f}   |  {r['stream_vs_offline']:7.2f} "
              f"{r['gemv_vs_offline']:7.2f} {batch_ratio}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--channels", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--receptive-fields", type=int, nargs="+", default=[27, 81, 243])
    p.add_argument("--offline-frames", type=int, default=10_000)
    p.add_argument("--stream-frames", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)

    rows = []
    for channels in a.channels:
        # 1024 channels stream ~16x the bytes per frame: fewer frames keep the run short.
        stream_frames = a.stream_frames if channels <= 256 else max(a.stream_frames // 4, 100)
        for rf in a.receptive_fields:
            rows.append(measure(rf, channels, a.offline_frames, stream_frames, a.repeats))
    print_table(rows)
    meta = {"machine": f"{platform.machine()} {platform.processor()}".strip(), "torch": torch.__version__,
            "numpy": np.__version__, "threads": a.threads, "offline_frames": a.offline_frames,
            "stream_frames": a.stream_frames, "repeats": a.repeats, "target": "stream_vs_offline <= 1.5",
            "note": "best of repeats; CPU shared with other processes, so absolute times are noisy -- "
                    "compare the ratios, measured in the same run. numpy BLAS threads follow "
                    "OMP_NUM_THREADS / OPENBLAS_NUM_THREADS (set them to --threads)."}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
