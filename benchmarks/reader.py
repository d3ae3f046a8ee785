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

Writes ``benchmarks/results/reader.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from streampose.reader import open_source

RESULTS = Path(__file__).resolve().parent / "results" / "reader.json"
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def bare_decode(path: Path, thread_type: str) -> tuple[int, float]:
    """Decode every frame to RGB with plain PyAV; returns (frames, seconds)."""
    started = time.perf_counter()
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = thread_type
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            count += 1
    return count, time.perf_counter() - started


def reader_decode(path: Path) -> tuple[int, float]:
    """Decode every frame through ``open_source``; returns (frames, seconds), open/close included."""
    started = time.perf_counter()
    count = 0
    with open_source(path) as reader:
        for _ in reader:
            count += 1
    return count, time.perf_counter() - started


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
    bare_fps, reader_fps = [], []
    frames = None
    bare_decode(path, thread_type)  # warm the page cache and libraries before timing
    for _ in range(runs):
        n_bare, t_bare = bare_decode(path, thread_type)
        n_reader, t_reader = reader_decode(path)
        if n_bare != n_reader:
            raise RuntimeError(f"{path}: bare loop decoded {n_bare} frames, reader {n_reader}")
        frames = n_bare
        bare_fps.append(n_bare / t_bare)
        reader_fps.append(n_reader / t_reader)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        size = f"{stream.codec_context.width}x{stream.codec_context.height}"
        codec = stream.codec_context.name
    bare_median, reader_median = statistics.median(bare_fps), statistics.median(reader_fps)
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
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", nargs="*", type=Path, help="files to measure (default: generated)")
    parser.add_argument("--frames", type=int, default=150, help="frames per generated clip")
    parser.add_argument("--runs", type=int, default=5, help="alternating runs per file")
    parser.add_argument("--thread-type", default="AUTO", choices=("AUTO", "FRAME", "SLICE", "NONE"),
                        help="FFmpeg threading of the bare loop (the reader uses AUTO for files)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="streampose-bench-") as tmp:
        if args.video:
            clips = [(p.stem, p) for p in args.video]
        else:
            clips = [(name, make_clip(Path(tmp) / f"{name}.mp4", size, args.frames))
                     for name, size in SIZES.items()]
        for name, path in clips:
            row = measure(path, args.runs, args.thread_type)
            row["name"] = name
            rows.append(row)
            print(f"  measured {name}", file=sys.stderr)

    result = {
        "benchmark": "reader",
        "what": "frames/s decoding every frame to RGB: streampose reader vs bare PyAV loop",
        "thread_type_bare": args.thread_type,
        "thread_type_reader": "AUTO",
        "target_overhead_percent": 10.0,
        "python": platform.python_version(),
        "pyav": av.__version__,
        "machine": platform.machine(),
        "cpu_count": __import__("os").cpu_count(),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"{'clip':8} {'size':>10} {'frames':>6} {'bare fps':>9} {'reader fps':>10} {'overhead':>9}")
    for row in rows:
        print(f"{row['name']:8} {row['size']:>10} {row['frames']:>6} {row['bare_fps_median']:>9.1f} "
              f"{row['reader_fps_median']:>10.1f} {row['overhead_percent']:>8.1f}%")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
