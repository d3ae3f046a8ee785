"""Batch-1 CPU latency of the converted BlazePose models vs the reference TFLite runtime.

Compares, in one run and interleaved round-robin (so load from other processes hits all variants
alike), our converted detector / landmark model under several build options against
``ai-edge-litert`` (XNNPACK) with the same thread count.  Reports medians and the ratio
ours / reference.  Issue target: landmark step <= 1.5x the reference latency.

    python benchmarks/pose2d_models.py [--threads 1 2] [--rounds 10] [--iters 3]

Writes ``benchmarks/results/pose2d_models.json``.

``OMP_WAIT_POLICY=PASSIVE`` is set before torch loads (unless already set): on an oversubscribed
CPU, spinning OpenMP workers of a 2-thread torch stall each other at every op's barrier (we
measured ~900 ms instead of ~100 ms per landmark call with the default policy under load 6-9).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must precede the torch import (libgomp reads it once)

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from streampose.tflite import ConvertedGraph  # noqa: E402
from streampose.pose2d.weights import (  # noqa: E402
    BlazePoseDetector,
    BlazePoseLandmarkModel,
    _load_graph,
    ensure_blazepose_models,
)

RESULTS = Path(__file__).resolve().parent / "results" / "pose2d_models.json"


def reference_runner(model_path: Path, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model_path), num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    x = np.random.default_rng(0).uniform(0, 1, detail["shape"]).astype(np.float32)

    def run():
        interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()
        for out in interpreter.get_output_details():
            interpreter.get_tensor(out["index"])

    return run


def plain_conv2d(model: torch.nn.Module) -> torch.nn.Module:
    """Switch off the prepacked oneDNN convolutions (every conv through ``F.conv2d``), for comparison."""
    for node in model.net.nodes:
        node._prepack = False
    return model


def torch_runner(model: torch.nn.Module, size: int, inference_mode: bool = True, channels_last: bool = False,
                 frozen: bool = False, channels_last_input: bool = False):
    x = torch.rand(1, 3, size, size)
    if channels_last_input:  # what the estimator's crops / letterbox give (NHWC buffers viewed as NCHW)
        x = x.contiguous(memory_format=torch.channels_last)
    if channels_last:
        model.net.use_channels_last(True)
        x = x.contiguous(memory_format=torch.channels_last)
    context = torch.inference_mode if inference_mode else torch.no_grad
    if frozen:
        # TorchScript trace + freeze + optimize_for_inference: prepacked oneDNN weights and fused
        # conv+add/clamp.  Deprecated API in torch 2.x, measured only to show what fusion buys.
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model.net, x, check_trace=False)
            net = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))

        def run():
            with context():
                net(x)

        return run

    def run():
        with context():
            model(x)

    return run


def landmark_variants(graph: ConvertedGraph) -> dict[str, object]:
    def build(**kw):
        fold = kw.pop("fold_pads", True)
        return BlazePoseLandmarkModel(graph, fold_pads=fold, **kw).eval()

    return {
        "all_heads_nofold_no_grad": torch_runner(build(with_segmentation=True, fold_pads=False), 256, inference_mode=False),
        "all_heads_nofold": torch_runner(build(with_segmentation=True, fold_pads=False), 256),
        "all_heads": torch_runner(build(with_segmentation=True), 256),
        "pruned_no_seg_nofold": torch_runner(build(fold_pads=False), 256),
        "pruned_no_seg": torch_runner(build(), 256),
        "pruned_no_seg_channels_last": torch_runner(build(), 256, channels_last=True),
        "pruned_no_seg_no_heatmap": torch_runner(build(with_heatmap=False), 256),
        "pruned_no_seg_jit_frozen": torch_runner(build(), 256, frozen=True),
        "pruned_no_seg_cl_input_plain_conv2d": torch_runner(plain_conv2d(build()), 256, channels_last_input=True),
        "pruned_no_seg_cl_input": torch_runner(build(), 256, channels_last_input=True),
    }


def detector_variants(graph: ConvertedGraph) -> dict[str, object]:
    return {
        "nofold": torch_runner(BlazePoseDetector(graph, fold_pads=False).eval(), 224),
        "default": torch_runner(BlazePoseDetector(graph).eval(), 224),
        "channels_last": torch_runner(BlazePoseDetector(graph).eval(), 224, channels_last=True),
        "jit_frozen": torch_runner(BlazePoseDetector(graph).eval(), 224, frozen=True),
        "cl_input_plain_conv2d": torch_runner(plain_conv2d(BlazePoseDetector(graph).eval()), 224, channels_last_input=True),
        "cl_input": torch_runner(BlazePoseDetector(graph).eval(), 224, channels_last_input=True),
    }


def measure(runners: dict[str, object], rounds: int, iters: int) -> dict[str, dict[str, float]]:
    for run in runners.values():  # warm-up (allocator, oneDNN primitive caches, XNNPACK packing)
        for _ in range(3):
            run()
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            for _ in range(iters):
                start = time.perf_counter()
                run()
                samples[name].append((time.perf_counter() - start) * 1e3)
    return {
        name: {"median_ms": statistics.median(v), "p10_ms": float(np.percentile(v, 10)), "n": len(v)}
        for name, v in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--iters", type=int, default=3)
    args = parser.parse_args()
    files = ensure_blazepose_models()

    results: dict[str, dict] = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        for model_name, tflite_path, graph_path, variants, default in [
            ("landmark", files.landmark_tflite, files.landmark_converted, landmark_variants, "pruned_no_seg_cl_input"),
            ("detector", files.detector_tflite, files.detector_converted, detector_variants, "cl_input"),
        ]:
            runners = {f"ours_{k}": v for k, v in variants(_load_graph(graph_path)).items()}
            try:
                runners["reference_litert"] = reference_runner(tflite_path, threads)
            except ImportError:
                print("ai-edge-litert not installed: no reference timings")
            timings = measure(runners, args.rounds, args.iters)
            reference = timings.get("reference_litert", {})
            for entry in timings.values():
                # p10 is reported beside the median: on a shared CPU the median of the 2-thread runs
                # is dominated by descheduling, the p10 is closer to the uncontended cost.
                entry["ratio_vs_reference"] = entry["median_ms"] / reference["median_ms"] if reference else None
                entry["p10_ratio_vs_reference"] = entry["p10_ms"] / reference["p10_ms"] if reference else None
            results[f"{model_name}_threads{threads}"] = {"default_variant": f"ours_{default}", "timings": timings}

    report = {
        "benchmark": "pose2d_models",
        "batch": 1,
        "threads": args.threads,
        "rounds": args.rounds,
        "iters_per_round": args.iters,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_at_end": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "note": "medians of interleaved runs on a shared, oversubscribed CPU; ratios are measured in the same run",
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'model':20s} {'variant':38s} {'median ms':>10s} {'p10 ms':>8s} {'x ref':>7s} {'p10 x ref':>9s}")
    for model_name, data in results.items():
        for name, entry in data["timings"].items():
            ratio = entry["ratio_vs_reference"] or float("nan")
            p10_ratio = entry["p10_ratio_vs_reference"] or float("nan")
            mark = " *" if name == data["default_variant"] else ""
            print(f"{model_name:20s} {name + mark:38s} {entry['median_ms']:10.2f} {entry['p10_ms']:8.2f} {ratio:7.2f} {p10_ratio:9.2f}")
    print(f"(* = what the estimator runs: default models, channels-last input; load avg {os.getloadavg()[0]:.1f})  -> {RESULTS}")


if __name__ == "__main__":
    main()
