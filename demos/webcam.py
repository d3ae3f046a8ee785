"""Live webcam demo: 2D skeleton on the video, a rotating 3D skeleton beside it, FPS and latency.

    python demos/webcam.py                 # webcam 0; q or Esc quits
    python demos/webcam.py video.mp4       # no camera? use a video file instead
    python demos/webcam.py 0 --headless --save demo.mp4   # no display: write the frames

``streampose webcam`` runs the same code.  The implementation is in :mod:`streampose.apps.demo` so
the installed package has it; this script only re-exports it:

* ``run_demo(source=0, device="auto", max_frames=None, headless=None, save=None) -> int``
* ``compose_demo_frame(image, pose_frame, fps, latency, azimuth) -> image``
* ``demo_loop(pairs, headless=..., save=...)`` for any iterator of ``(image, PoseFrame)`` pairs.
"""
from __future__ import annotations

from streampose.apps.demo import DemoResult, compose_demo_frame, demo_loop, display_available, run_demo, webcam_main

__all__ = ["DemoResult", "compose_demo_frame", "demo_loop", "display_available", "run_demo", "webcam_main"]

if __name__ == "__main__":
    raise SystemExit(webcam_main())
