"""Decode throughput of the frame reader stage vs a bare PyAV decode loop on the same file.

The bare loop is the least work that yields the same thing (RGB arrays of every frame)::

    for frame in container.decode(video=0):
        frame.to_ndarray(format="rgb24")

The reader adds its decode thread, bounded queue, per-packet error handling, timestamps and
``Frame`` records.  Runs alternate (bare, reader, bare, reader, ...) so that load from other
processes hits both alike; we report the median fps of each and the reader's overhead in percent.
Both use FFmpeg's automatic threading (``thread_type="AUTO"``), the reader's default for files.

Usage::

    python benchmarks/reader.py                      # generated 720p and 1080p H.264 clips
    python benchmarks/reader.py --video a.mp4 b.mp4  # your own files

Each configuration runs in its own process, once with glibc's default allocator settings and once
after ``streampose.reader.tune_allocator()`` (what the CLI does), because the reader hands
multi-megabyte frames between threads and the default settings page-fault them in again per frame.

Writes ``benchmarks/results/reader.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from streampose.reader import open_source, tune_allocator

RESULTS = Path(__file__).resolve().parent / "results" / "reader.json"
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def bare_decode(path: Path, thread_type: str) -> tuple[int, float, float]:
    """Decode every frame to RGB with plain PyAV; returns (frames, wall seconds, CPU seconds)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = thread_type
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            count += 1
    return count, time.perf_counter() - started, time.process_time() - cpu_started


def reader_decode(path: Path) -> tuple[int, float, float]:
    """Decode every frame through ``open_source``; returns (frames, wall s, CPU s), open/close included."""
    started, cpu_started = time.perf_counter(), time.process_time()
    count = 0
    with open_source(path) as reader:
        for _ in reader:
            count += 1
    return count, time.perf_counter() - started, time.process_time() - cpu_started


def make_clip(path: Path, size: tuple[int, int], frames: int, fps: int = 30) -> Path:
    """A moving-texture H.264 clip (motion keeps P-frames realistic, unlike a static picture)."""
    width, height = size
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height, width * 2, 3), dtype=np.uint8)
    texture = (texture // 32 * 32).astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {"preset": "veryfast", "crf": "23"}
        for i in range(frames):
            shift = (i * 8) % width
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(texture[:, shift: shift + width]), format="rgb24"
            )
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def measure(path: Path, runs: int, thread_type: str) -> dict:
    bare_fps, reader_fps, bare_cpu, reader_cpu = [], [], [], []
    frames = None
    bare_decode(path, thread_type)  # warm the page cache and libraries before timing
    for _ in range(runs):
        n_bare, t_bare, c_bare = bare_decode(path, thread_type)
        n_reader, t_reader, c_reader = reader_decode(path)
        if n_bare != n_reader:
            raise RuntimeError(f"{path}: bare loop decoded {n_bare} frames, reader {n_reader}")
        frames = n_bare
        bare_fps.append(n_bare / t_bare)
        reader_fps.append(n_reader / t_reader)
        # CPU time of all the process's threads: the work done, much less sensitive than wall
        # time to other processes competing for the same cores.
        bare_cpu.append(c_bare / n_bare * 1e3)
        reader_cpu.append(c_reader / n_reader * 1e3)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        size = f"{stream.codec_context.width}x{stream.codec_context.height}"
        codec = stream.codec_context.name
    bare_median, reader_median = statistics.median(bare_fps), statistics.median(reader_fps)
    bare_cpu_median, reader_cpu_median = statistics.median(bare_cpu), statistics.median(reader_cpu)
    return {
        "file": path.name,
        "size": size,
        "codec": codec,
        "frames": frames,
        "runs": runs,
        "bare_fps_median": round(bare_median, 2),
        "reader_fps_median": round(reader_median, 2),
        "bare_fps_runs": [round(v, 2) for v in bare_fps],
        "reader_fps_runs": [round(v, 2) for v in reader_fps],
        # Extra time per frame the reader costs, relative to the bare loop.
        "overhead_percent": round((bare_median / reader_median - 1.0) * 100.0, 2),
        "bare_best_fps": round(max(bare_fps), 2),
        "reader_best_fps": round(max(reader_fps), 2),
        "best_overhead_percent": round((max(bare_fps) / max(reader_fps) - 1.0) * 100.0, 2),
        "bare_cpu_ms_per_frame_median": round(bare_cpu_median, 3),
        "reader_cpu_ms_per_frame_median": round(reader_cpu_median, 3),
        "cpu_overhead_percent": round((reader_cpu_median / bare_cpu_median - 1.0) * 100.0, 2),
    }


def _measure_in_child(clips, args, allocator: str) -> list[dict]:
    """Measure in a fresh process: allocator settings are process-wide and must not leak between
    configurations."""
    with tempfile.NamedTemporaryFile(suffix=".json") as rows_file:
        command = [sys.executable, __file__, "--child-allocator", allocator, "--child-rows",
                   rows_file.name, "--runs", str(args.runs), "--thread-type", args.thread_type,
                   "--video", *[str(path) for _, path in clips],
                   "--names", *[name for name, _ in clips]]
        subprocess.run(command, check=True)
        return json.loads(Path(rows_file.name).read_text())


def _child(args) -> int:
    tuned = tune_allocator() if args.child_allocator == "tuned" else False
    rows = []
    for name, path in zip(args.names, args.video):
        row = measure(path, args.runs, args.thread_type)
        row.update(name=name, allocator=args.child_allocator, allocator_tuned=tuned)
        rows.append(row)
        print(f"  measured {name} ({args.child_allocator} allocator)", file=sys.stderr)
    Path(args.child_rows).write_text(json.dumps(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", nargs="*", type=Path, help="files to measure (default: generated)")
    parser.add_argument("--frames", type=int, default=150, help="frames per generated clip")
    parser.add_argument("--runs", type=int, default=5, help="alternating runs per file")
    parser.add_argument("--thread-type", default="AUTO", choices=("AUTO", "FRAME", "SLICE", "NONE"),
                        help="FFmpeg threading of the bare loop (the reader uses AUTO for files)")
    parser.add_argument("--allocator", choices=("default", "tuned", "both"), default="both",
                        help="glibc malloc as is, after reader.tune_allocator() (what the CLI "
                             "does), or both")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child-allocator", help=argparse.SUPPRESS)
    parser.add_argument("--child-rows", help=argparse.SUPPRESS)
    parser.add_argument("--names", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_allocator:
        return _child(args)

    rows = []
    allocators = ("default", "tuned") if args.allocator == "both" else (args.allocator,)
    with tempfile.TemporaryDirectory(prefix="streampose-bench-") as tmp:
        if args.video:
            clips = [(p.stem, p) for p in args.video]
        else:
            clips = [(name, make_clip(Path(tmp) / f"{name}.mp4", size, args.frames))
                     for name, size in SIZES.items()]
        for allocator in allocators:
            rows.extend(_measure_in_child(clips, args, allocator))

    result = {
        "benchmark": "reader",
        "what": "frames/s decoding every frame to RGB: streampose reader vs bare PyAV loop",
        "thread_type_bare": args.thread_type,
        "thread_type_reader": "AUTO",
        "target_overhead_percent": 10.0,
        "python": platform.python_version(),
        "pyav": av.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": list(os.getloadavg()),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"{'clip':8} {'allocator':>9} {'size':>10} {'frames':>6} {'bare fps':>9} {'reader fps':>10}"
          f" {'overhead':>9} {'best-run ovh':>12} {'CPU ms/f bare':>13} {'reader':>7} {'CPU ovh':>8}")
    for row in rows:
        print(f"{row['name']:8} {row['allocator']:>9} {row['size']:>10} {row['frames']:>6}"
              f" {row['bare_fps_median']:>9.1f} {row['reader_fps_median']:>10.1f}"
              f" {row['overhead_percent']:>8.1f}% {row['best_overhead_percent']:>11.1f}%"
              f" {row['bare_cpu_ms_per_frame_median']:>13.2f} {row['reader_cpu_ms_per_frame_median']:>7.2f}"
              f" {row['cpu_overhead_percent']:>7.1f}%")
    print("(fps: median of alternating runs; overhead: extra wall time per frame vs the bare loop;"
          " CPU: process CPU time per frame, all threads)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
