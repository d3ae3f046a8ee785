"""The live demo: camera (or a video file) -> pose pipeline -> 2D overlay + rotating 3D view.

``streampose webcam`` / ``python demos/webcam.py`` call :func:`run_demo`.  The window shows the video
with the 2D skeleton next to a 3D skeleton view that slowly orbits, with FPS and latency on screen;
``q`` or Esc quits.  Without a display (no ``DISPLAY``, or OpenCV built without GUI support as
``opencv-python-headless`` is) the demo runs headless and writes the composed frames to ``save``
(a video file via :class:`~streampose.viz.OverlayWriter`, or a folder of PNGs).

The code lives in the package (not only in ``demos/``) so the installed ``streampose`` command can
run it.  It is split so each part can be tested without a camera or a trained model:

* :func:`compose_demo_frame` draws one demo frame from an image and a ``PoseFrame``;
* :func:`demo_loop` consumes any iterator of ``(image, PoseFrame)`` pairs (display / save / quit);
* :func:`run_demo` opens the pipeline on the source and feeds the loop.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import cv2
import numpy as np

from streampose.errors import InputError, OutputError, StreamposeError
from streampose.types import Frame, PoseFrame
from streampose.viz import VIDEO_EXTENSIONS, OverlayWriter, check_video_path, render_pose_frame

WINDOW_NAME = "streampose"
_QUIT_KEYS = (ord("q"), ord("Q"), 27)  # 27 = Esc


def display_available() -> bool:
    """Whether OpenCV can open a window here (a display exists and cv2 has GUI support)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    # opencv-python-headless reports "GUI: NONE"; its cv2.imshow raises cv2.error.
    info = cv2.getBuildInformation()
    gui = info.split("GUI:", 1)[1].splitlines()[0].strip() if "GUI:" in info else ""
    return gui.upper() not in ("NONE", "")


def compose_demo_frame(
    image: np.ndarray,
    pose_frame: PoseFrame | None,
    fps: float | None,
    latency: float | None,
    azimuth: float,
    *,
    show_keys: bool = False,
) -> np.ndarray:
    """One demo frame: the video with 2D skeletons, an orbiting 3D view, FPS and latency.

    Args:
        image: ``(H, W, 3)`` uint8 RGB camera frame (not modified).
        pose_frame: the pipeline's result for this frame (``None``: draw nothing on it).
        fps: measured frames per second (``None`` while unknown).
        latency: capture-to-result latency in seconds (``None`` if unknown).
        azimuth: viewpoint of the 3D panel in degrees.
        show_keys: add a "q / Esc: quit" line (only useful in a window).

    Returns:
        ``(H, W + H, 3)`` uint8 RGB for landscape frames (narrower panel for portrait ones).
    """
    people = pose_frame.people if pose_frame is not None else []
    lines = [
        f"{fps:5.1f} fps" if fps else "  --- fps",
        f"latency {latency * 1000:4.0f} ms" if latency is not None else "latency --",
        f"{len(people)} person" if len(people) == 1 else f"{len(people)} people",
    ]
    if show_keys:
        lines.append("q / Esc: quit")
    return render_pose_frame(image, pose_frame, view3d=True, azimuth_deg=azimuth, text_lines=lines)


class _PngFolder:
    """Writes composed frames as ``frame_000000.png`` ... into a folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.frames_written = 0

    def write(self, image_rgb: np.ndarray, time_s: float | None = None) -> None:
        path = self.folder / f"frame_{self.frames_written:06d}.png"
        if not cv2.imwrite(str(path), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)):
            raise OutputError(f"cannot write {path}")
        self.frames_written += 1

    def close(self) -> None:
        pass


def open_frame_sink(save: str | Path, fps: float | None = None):
    """Validate ``save`` and open it: a video path -> :class:`OverlayWriter`, else a PNG folder.

    Raises:
        OutputError: the path cannot be written (checked here, before any work starts).
    """
    path = Path(save)
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        check_video_path(path)
        return OverlayWriter(path, fps=fps or 30.0)
    if path.exists() and not path.is_dir():
        raise OutputError(f"cannot save demo frames to {path}: it is a file (use a folder or a video path)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot save demo frames to {path}: directory {parent} does not exist")
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {path}: {exc.strerror or exc}") from exc
    if not os.access(path, os.W_OK):
        raise OutputError(f"cannot save demo frames to {path}: permission denied")
    return _PngFolder(path)


@dataclass
class DemoResult:
    """What a demo run did: frames shown/written, wall time, mean FPS, whether the user quit."""

    frames: int
    seconds: float
    fps: float
    quit_by_user: bool
    frames_saved: int


def demo_loop(
    pairs: Iterable[tuple[np.ndarray, PoseFrame]],
    *,
    headless: bool,
    save: str | Path | None = None,
    max_frames: int | None = None,
    rotate_deg_per_s: float = 30.0,
    fps_hint: float | None = None,
    sink=None,
    progress_every_s: float = 2.0,
) -> DemoResult:
    """Show (or save) demo frames for a stream of ``(image, PoseFrame)`` pairs.

    The 3D view turns by ``rotate_deg_per_s`` per second of *video time* (``PoseFrame.time``), so a
    file gives the same pictures on every run.  FPS is measured over wall-clock time (exponential
    average); latency is ``PoseFrame.latency``.

    Args:
        pairs: ``(image (H, W, 3) uint8 RGB, PoseFrame)`` in frame order.
        headless: never open a window; write to ``save`` (or just run, printing progress).
        save: video path or PNG folder for the composed frames (``None``: do not save).
        max_frames: stop after this many frames.
        rotate_deg_per_s: orbit speed of the 3D view.
        fps_hint: nominal frame rate for the saved video's header (timestamps come from the frames).
        sink: an already opened sink (``write(image, time)``, ``close()``) instead of ``save``.
        progress_every_s: headless progress line interval on stderr (0 = never).

    Returns:
        :class:`DemoResult`.
    """
    if sink is None and save is not None:
        sink = open_frame_sink(save, fps_hint)
    elif headless and sink is None:
        print("streampose webcam: running headless (no window) without saving "
              "(pass --save out.mp4 or a folder to keep the frames)", file=sys.stderr)
    window_open = False
    frames, quit_by_user = 0, False
    fps_avg: float | None = None
    started = last = time.perf_counter()
    last_progress = started
    try:
        for image, pose_frame in pairs:
            if max_frames is not None and frames >= max_frames:
                break
            now = time.perf_counter()
            if frames:
                instant = 1.0 / max(now - last, 1e-6)
                fps_avg = instant if fps_avg is None else 0.9 * fps_avg + 0.1 * instant
            last = now
            azimuth = rotate_deg_per_s * float(pose_frame.time)
            composed = compose_demo_frame(image, pose_frame, fps_avg, pose_frame.latency, azimuth,
                                          show_keys=not headless)
            if sink is not None:
                sink.write(composed, float(pose_frame.time))
            frames += 1
            if not headless:
                try:
                    if not window_open:
                        cv2.namedWindow(WINDOW_NAME, cv2.WINDOW_NORMAL)
                        window_open = True
                    cv2.imshow(WINDOW_NAME, cv2.cvtColor(composed, cv2.COLOR_RGB2BGR))
                    key = cv2.waitKey(1) & 0xFF
                except cv2.error:
                    # A display variable can exist without a usable GUI backend; keep running.
                    headless, window_open = True, False
                    print("streampose webcam: cannot open a window here, continuing headless",
                          file=sys.stderr)
                    continue
                if key in _QUIT_KEYS or cv2.getWindowProperty(WINDOW_NAME, cv2.WND_PROP_VISIBLE) < 1:
                    quit_by_user = True
                    break
            elif progress_every_s and now - last_progress >= progress_every_s:
                last_progress = now
                print(f"streampose webcam: {frames} frames, {fps_avg or 0:.1f} fps", file=sys.stderr)
    finally:
        # Closing the generator runs the pipeline's shutdown now (threads, camera), not at GC time.
        if hasattr(pairs, "close"):
            pairs.close()
        if sink is not None:
            sink.close()
        if window_open:
            cv2.destroyWindow(WINDOW_NAME)
            cv2.waitKey(1)
    seconds = time.perf_counter() - started
    saved = getattr(sink, "frames_written", 0) if sink is not None else 0
    return DemoResult(frames=frames, seconds=seconds, fps=frames / seconds if seconds > 0 else 0.0,
                      quit_by_user=quit_by_user, frames_saved=saved)


def _pairs_from_pipeline(pipeline, source: Any) -> Iterator[tuple[np.ndarray, PoseFrame]]:
    for pose_frame in pipeline.run(source):
        image = getattr(pose_frame, "image", None)
        if image is None:
            raise StreamposeError("the pose pipeline returned no image (PipelineConfig.keep_images is needed)")
        yield image, pose_frame


def _like_a_camera(frames: Iterable[Frame], pace: bool = True) -> Iterator[Frame]:
    """Play file frames the way a camera delivers them, for the demo's FPS and latency read-outs.

    A file decodes ahead of the pipeline, so its ``capture_time`` would count the time a frame waited
    in the reader's queue -- seconds that a camera never accumulates.  Each frame is re-stamped when
    the pipeline takes it; with ``pace`` it is also held back until its presentation time (relative to
    the first frame) so a fast machine does not play the file faster than real time.
    """
    wall_start = first_time = None
    for frame in frames:
        if pace:
            if wall_start is None:
                wall_start, first_time = time.perf_counter(), frame.time
            wait = wall_start + (frame.time - first_time) - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        yield dataclasses.replace(frame, capture_time=time.perf_counter())


def _is_camera(source: Any) -> bool:
    if isinstance(source, int) and not isinstance(source, bool):
        return True
    text = str(source)
    return text.startswith("webcam") or text.startswith("/dev/video")


def run_demo(
    source: int | str | Path = 0,
    device: str = "auto",
    max_frames: int | None = None,
    headless: bool | None = None,
    save: str | Path | None = None,
    *,
    rotate_deg_per_s: float = 30.0,
    pipeline=None,
    pace_files: bool = True,
    lifter: str = "default",
    max_people: int = 1,
) -> int:
    """Run the live demo and return a process exit code.

    Args:
        source: webcam index (``0``), ``"webcam:N"``, ``/dev/videoN``, a stream URL, or a video file
            to try the demo without a camera.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` for the pose models.
        max_frames: stop after this many frames (``None``: until the source ends or the user quits).
        headless: ``None`` = decide automatically (:func:`display_available`).
        save: write the composed frames to this video file or PNG folder.
        rotate_deg_per_s: orbit speed of the 3D view.
        pipeline: a ready object whose ``run(frames)`` takes an iterable of ``Frame`` and yields
            ``PoseFrame`` with ``.image`` (default: ``streampose.pipeline.Pipeline`` with the causal
            lifter and ``keep_images=True``).
        pace_files: play a video file no faster than real time, like a camera.
        lifter: lifter model name or weights path for the default pipeline (causal variant).
        max_people: people tracked at once by the default pipeline.

    Returns:
        0 on success (incl. the user quitting), 2 when the source cannot be opened (no camera, bad
        file) or ``save`` cannot be written, 1 for any other streampose error.  Errors are printed
        as one line on stderr, never as a traceback.
    """
    if headless is None:
        headless = not display_available()
    created = pipeline is None
    sink = reader = None
    try:
        from streampose.reader import is_live_source, open_source

        if save is not None:
            sink = open_frame_sink(save)  # checked before any camera or model is touched
        # Open the source first so "no camera" is reported at once, not after loading models.  A
        # live source drops its oldest frames when the demo falls behind (bounded latency); a file
        # plays every frame.
        live = is_live_source(source)
        reader = open_source(source, realtime=live, queue_size=2, max_frames=max_frames)
        if pipeline is None:
            from streampose.pipeline import Pipeline, PipelineConfig

            try:
                # Short queues: a live view wants the newest frame, not a backlog.
                pipeline = Pipeline(PipelineConfig(device=device, causal=True, realtime=live, keep_images=True,
                                                   max_frames=max_frames, queue_size=2, lifter=lifter,
                                                   max_people=max_people))
            except ImportError as exc:
                raise StreamposeError(f"the pose pipeline is not available in this install ({exc})") from exc
        # The pipeline accepts any iterable of Frames, so the demo keeps the reader: a camera's capture
        # times make PoseFrame.latency capture -> result; a file is played like a camera.
        frames = reader if live else _like_a_camera(reader, pace=pace_files)
        result = demo_loop(_pairs_from_pipeline(pipeline, frames), headless=headless, sink=sink,
                           max_frames=max_frames, rotate_deg_per_s=rotate_deg_per_s,
                           fps_hint=reader.info.fps)
    except InputError as exc:
        hint = (" -- to try the demo without a camera, pass a video file: streampose webcam video.mp4"
                if _is_camera(source) else "")
        print(f"streampose webcam: error: {exc}{hint}", file=sys.stderr)
        return 2
    except OutputError as exc:
        print(f"streampose webcam: error: {exc}", file=sys.stderr)
        return 2
    except StreamposeError as exc:
        print(f"streampose webcam: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("streampose webcam: interrupted", file=sys.stderr)
        return 0
    finally:
        if sink is not None:
            sink.close()
        if created and pipeline is not None and hasattr(pipeline, "close"):
            pipeline.close()
        if reader is not None:
            reader.close()
    saved = f", {result.frames_saved} saved to {save}" if save is not None else ""
    print(f"streampose webcam: {result.frames} frames in {result.seconds:.1f} s "
          f"({result.fps:.1f} fps){saved}", file=sys.stderr)
    return 0


def webcam_main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry (``streampose webcam`` / ``python demos/webcam.py``); returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="streampose webcam",
        description="Live 3D pose demo: camera (or a video file) with 2D overlay and a rotating 3D view.",
    )
    parser.add_argument("source", nargs="?", default="0",
                        help="webcam index, webcam:N, /dev/videoN, stream URL or video file (default 0)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--max-frames", type=int, default=None)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--headless", dest="headless", action="store_true", default=None,
                      help="never open a window")
    mode.add_argument("--window", dest="headless", action="store_false", help="always try a window")
    parser.add_argument("--save", default=None, help="write composed frames to a video file or PNG folder")
    parser.add_argument("--rotate", type=float, default=30.0, help="3D view orbit speed, degrees per second")
    parser.add_argument("--lifter", default="default", metavar="NAME|PATH",
                        help="lifter model name or weights file (the causal variant is used)")
    parser.add_argument("--max-people", type=int, default=1, help="people to track at once")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    source: int | str = int(args.source) if args.source.isdigit() else args.source
    return run_demo(source, device=args.device, max_frames=args.max_frames, headless=args.headless,
                    save=args.save, rotate_deg_per_s=args.rotate, lifter=args.lifter, max_people=args.max_people)
