"""Per-frame cost of the drawing stages in ``streampose.viz`` (the live demo redraws all of them).

Measured on synthetic poses, one stage at a time, with OpenCV limited to one thread:

* ``render_skeleton_3d`` -- the 3D panel (one and three people; fresh array and reused ``out``);
* ``draw_people`` -- 2D skeleton, box and id tag on a video frame;
* ``render_pose_frame`` -- the whole overlay frame (2D + 3D panel + composition);
* ``rgb_to_yuv420p`` vs FFmpeg's own rgb24 -> yuv420p conversion, on an overlay-sized frame;
* ``OverlayWriter.write`` -- drawing plus H.264 encoding, per frame.

Each stage is timed ``--repeats`` times after a warm-up; we report the median and the 90th
percentile in milliseconds, wall time and this process's CPU time (the latter is much less
sensitive to other processes on shared cores).  The live demo budget the 3D panel is held to is
3 ms at 480x480.

Usage::

    python benchmarks/viz.py                # ~1 minute on 2 cores
    python benchmarks/viz.py --repeats 50

Writes ``benchmarks/results/viz.json``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np

from streampose.types import Person, PoseFrame
from streampose.viz import OverlayWriter, draw_people, render_pose_frame, render_skeleton_3d, rgb_to_yuv420p

RESULTS = Path(__file__).resolve().parent / "results" / "viz.json"
PANEL_TARGET_MS = 3.0

# H36M-17 standing pose: metres, camera axes (x right, y down, z forward), root-relative.
STANDING = np.array([
    (0.0, 0.0, 0.0), (-0.13, 0.0, 0.0), (-0.14, 0.45, 0.02), (-0.15, 0.88, 0.05), (0.13, 0.0, 0.0),
    (0.14, 0.45, 0.02), (0.15, 0.88, 0.05), (0.0, -0.23, 0.0), (0.0, -0.48, 0.0), (0.0, -0.58, -0.08),
    (0.0, -0.72, -0.02), (0.18, -0.45, 0.0), (0.26, -0.2, 0.05), (0.3, 0.02, 0.0), (-0.18, -0.45, 0.0),
    (-0.26, -0.2, 0.05), (-0.3, 0.02, 0.0),
])


def person_in(width: int, height: int, offset_x: float = 0.0, track_id: int = 0) -> Person:
    """The standing pose 3.5 m in front of a pinhole camera filling a ``width x height`` frame."""
    root = np.array([offset_x, 0.1, 3.5])
    cam = STANDING + root
    focal = 1.2 * height
    uv = cam[:, :2] / cam[:, 2:] * focal + np.array([width / 2, height / 2])
    kp2d = np.concatenate([uv, np.full((17, 1), 0.9)], axis=1)
    box = np.concatenate([uv.min(axis=0) - 10, uv.max(axis=0) + 10])
    return Person(track_id, 0.9, box, kp2d, STANDING.copy(), root)


def time_stage(fn: Callable[[int], object], repeats: int) -> dict:
    """Run ``fn(i)`` ``repeats`` times after two warm-up calls; milliseconds per call."""
    fn(-1)
    fn(-2)
    wall, cpu = [], []
    for i in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        fn(i)
        wall.append((time.perf_counter() - started) * 1e3)
        cpu.append((time.process_time() - cpu_started) * 1e3)
    wall.sort()
    return {
        "repeats": repeats,
        "wall_ms_median": round(statistics.median(wall), 3),
        "wall_ms_p90": round(wall[int(0.9 * (len(wall) - 1))], 3),
        "cpu_ms_median": round(statistics.median(cpu), 3),
    }


def stages(repeats: int, tmp: Path) -> list[dict]:
    rows = []

    def add(name: str, size: str, fn: Callable[[int], object], n: int = repeats) -> None:
        row = {"stage": name, "size": size, **time_stage(fn, n)}
        rows.append(row)
        print(f"  {name} {size}: {row['wall_ms_median']:.2f} ms", file=sys.stderr)

    for side in (480, 1080):
        add("render_skeleton_3d, 1 person", f"{side}x{side}",
            lambda i, s=side: render_skeleton_3d(STANDING, (s, s), float(i % 360)))
    buffer = np.empty((480, 480, 3), np.uint8)
    add("render_skeleton_3d, 1 person, out=", "480x480",
        lambda i: render_skeleton_3d(STANDING, (480, 480), float(i % 360), out=buffer))
    three = [person_in(640, 480, x, k) for k, x in enumerate((-1.0, 0.0, 1.0))]
    add("render_skeleton_3d, 3 people", "480x480",
        lambda i: render_skeleton_3d([p.keypoints3d for p in three], (480, 480), float(i % 360),
                                     roots=[p.root for p in three]))

    for width, height in ((640, 480), (1920, 1080)):
        image = np.full((height, width, 3), 90, np.uint8)
        person = person_in(width, height)
        add("draw_people, 1 person", f"{width}x{height}", lambda i, im=image, p=person: draw_people(im, [p]))
        frame = PoseFrame(0, 0.0, [person])
        add("render_pose_frame, 1 person", f"{width}x{height}",
            lambda i, im=image, f=frame: render_pose_frame(im, f, azimuth_deg=float(i % 360)))

    overlay = render_pose_frame(np.full((1080, 1920, 3), 90, np.uint8), PoseFrame(0, 0.0, [person_in(1920, 1080)]))
    size = f"{overlay.shape[1]}x{overlay.shape[0]}"
    add("rgb_to_yuv420p", size, lambda i: rgb_to_yuv420p(overlay))
    add("FFmpeg rgb24 -> yuv420p", size,
        lambda i: av.VideoFrame.from_ndarray(overlay, format="rgb24").reformat(format="yuv420p"))

    image = np.full((480, 640, 3), 90, np.uint8)
    frame = PoseFrame(0, 0.0, [person_in(640, 480)])
    ticks = itertools.count()
    with OverlayWriter(tmp / "bench.mp4", fps=30, view3d=True) as writer:
        add("OverlayWriter.write, view3d", "640x480 -> 1120x480",
            lambda i: writer.write(image, next(ticks) / 30, frame))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per stage")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    # Single-threaded OpenCV: the figures then compare across machines with different core counts,
    # and are the one-core figures the viz docstrings quote.
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory(prefix="streampose-bench-") as tmp:
        rows = stages(args.repeats, Path(tmp))
    panel = next(r for r in rows if r["stage"] == "render_skeleton_3d, 1 person" and r["size"] == "480x480")
    result = {
        "benchmark": "viz",
        "what": "milliseconds per call of the viz drawing stages on synthetic poses, one thread",
        "panel_target_ms": PANEL_TARGET_MS,
        "panel_480_within_target": panel["wall_ms_median"] < PANEL_TARGET_MS,
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "pyav": av.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": list(os.getloadavg()),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"{'stage':38} {'size':>20} {'wall ms':>8} {'p90':>7} {'CPU ms':>7}")
    for row in rows:
        print(f"{row['stage']:38} {row['size']:>20} {row['wall_ms_median']:>8.2f} {row['wall_ms_p90']:>7.2f}"
              f" {row['cpu_ms_median']:>7.2f}")
    print(f"(median of {args.repeats} calls after warm-up; 3D panel target {PANEL_TARGET_MS:.0f} ms at 480x480:"
          f" {'met' if result['panel_480_within_target'] else 'missed'})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
