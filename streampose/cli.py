"""The ``streampose`` command, a thin shell over :class:`streampose.pipeline.Pipeline`.

    streampose VIDEO --out poses.jsonl [--overlay overlay.mp4 --view3d] [--causal] ...
    streampose plot poses.jsonl -o poses.png
    streampose webcam [SOURCE]

``main`` validates every output path *before* any decoding or model loading, opens the source (so
a bad input is reported at once), builds the pipeline, and hands everything to ``process``, which
writes one record per frame as frames become final.  Errors streampose raises on purpose
(``StreamposeError``) print as one ``streampose: error: ...`` line and exit 2; Ctrl-C still writes
the summary record and exits 130 (SIGTERM likewise, exit 143).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Sequence

import streampose
from streampose.errors import OutputError, StreamposeError
from streampose.output import Writer, check_writable, make_header, make_summary, open_writer
from streampose.reader import FrameReader, is_live_source, open_source, tune_allocator
from streampose.settings import CHOICES, PipelineConfig

if TYPE_CHECKING:
    from streampose.pipeline import PipelineStats

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM: handled like Ctrl-C (summary written), reported as SIGTERM
SUBCOMMANDS = ("plot", "webcam", "batch")


@dataclass
class RunResult:
    """What ``process`` did: records written, whether Ctrl-C stopped it, and the pipeline's stats
    (frames with a person, latencies, wall time)."""

    frames_written: int
    interrupted: bool
    stats: PipelineStats


# PipelineConfig's defaults: the command line's options default to the library's.
_CONFIG_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(PipelineConfig)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streampose",
        description="3D human pose from ordinary video: writes one JSON record per frame. "
                    "Also: 'streampose plot poses.jsonl -o poses.png', 'streampose webcam [SOURCE]'.",
    )
    parser.add_argument(
        "video",
        help="video file, webcam (webcam:0 or /dev/video0), stream URL (rtsp://, http(s)://), - for "
             "standard input, or still images: an image, a folder of images, or a quoted pattern "
             "such as 'frames/%%05d.png' or 'frames/*.jpg'",
    )
    parser.add_argument("--out", "-o", required=True,
                        help="output file: .jsonl (streamed, one record per line), .npz (arrays) or .bvh "
                             "(animation for Blender & co.: one file per person, NAME_track<ID>.bvh)")
    parser.add_argument("--track", type=_non_negative_int, metavar="ID", default=None,
                        help=".bvh output: write only this track (person id) to exactly --out")
    _config_option(parser, "device", help="where the models run (auto: CUDA when available)")
    _config_option(parser, "max_frames", type=_non_negative_int, metavar="N", help="stop after N frames")
    parser.add_argument("--fps", type=_positive_float, default=None, metavar="RATE",
                        help="frame rate of an image sequence (images carry none; default: frames "
                             "1/30 s apart, fps null in the header)")
    parser.add_argument("--timeout", type=_positive_float, default=10.0, metavar="SECONDS",
                        help="give a network stream up after this long without data (default %(default)g)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bar, no warnings, no closing line")
    parser.add_argument("--version", action="version", version=f"streampose {streampose.__version__}")
    _add_pose_arguments(parser)
    return parser


def _add_pose_arguments(parser: argparse.ArgumentParser, pictures: bool = True) -> None:
    group = parser.add_argument_group("pose models")
    _config_option(group, "causal", action="store_true",
                   help="live lifter: no look-ahead, each frame final at once (default for cameras "
                        "and streams; files use the more accurate symmetric lifter)")
    _config_option(group, "lifter", metavar="NAME|PATH",
                   help="shipped lifter name (see streampose/models/) or a weights file, incl. VideoPose3D .bin")
    _config_option(group, "smoothing", help="temporal smoothing of 2D and 3D (default: %(default)s)")
    _config_option(group, "refine", action=argparse.BooleanOptionalAction,
                   help="patch-based 3D refiner (off by default: see README, Refiner)")
    _config_option(group, "max_people", type=_positive_int, metavar="N",
                   help="people to track at once (default %(default)s)")
    _config_option(group, "readout", help="2D keypoint readout (default: the 2D stage's measured best)")
    _config_option(group, "precision",
                   help="2D networks' arithmetic (default: %(default)s, exact); bf16 is 1.2-1.3x faster 2D on "
                        "CPUs with native bf16, keypoints move ~1%% of the person's size")
    _config_option(group, "world_fusion", type=float, metavar="SHARE",
                   help="average the 3D with BlazePose's own world landmarks, this share (0-1; default %(default)s)")
    _config_option(group, "bone_lengths", action=argparse.BooleanOptionalAction,
                   help="constant bone lengths per person (running median, left = right)")
    _config_option(group, "reproject", type=float, metavar="SHARE",
                   help="make the 3D project onto the 2D, this share (0-1; default %(default)s)")
    _config_option(group, "resample_fps", action=argparse.BooleanOptionalAction,
                   help="lift videos outside the lifter's trained frame rates at a trained rate")
    _config_option(group, "threads", type=_positive_int, metavar="N",
                   help="CPU threads for torch (default: 1 on machines with two cores or fewer, else "
                        "torch's choice)")
    group = parser.add_argument_group("camera and root (see docs/CAMERA_AND_EXPORT.md)")
    _config_option(group, "fov", type=float, metavar="DEG",
                   help="the camera's horizontal field of view in degrees (default: a 65-degree lens across "
                        "the long side is assumed, and the header says so)")
    _config_option(group, "intrinsics", metavar="FX,FY,CX,CY", help="the camera's intrinsics in pixels")
    _config_option(group, "calibration", metavar="FILE",
                   help="OpenCV-style YAML/JSON calibration (camera_matrix + distortion_coefficients); "
                        "2D keypoints are undistorted before lifting")
    _config_option(group, "person_height", flags=("--height",), type=float, metavar="M",
                   help="the person's standing height in metres: fixes the body scale and so the root's depth")
    _config_option(group, "root", help="where the root position comes from (default: %(default)s)")
    if not pictures:  # (streampose batch: no per-video overlay)
        return
    group = parser.add_argument_group("pictures")
    group.add_argument("--overlay", metavar="VIDEO.mp4", default=None,
                       help="also write the input video with the 2D skeleton drawn on it")
    group.add_argument("--view3d", action="store_true",
                       help="add a 3D skeleton panel beside the overlay video")


def _config_option(group: argparse._ActionsContainer, name: str, flags: tuple[str, ...] = (),
                   **options: Any) -> None:
    """An option for the :class:`PipelineConfig` field ``name``: ``--name-with-dashes`` (and any
    further ``flags``), the config's default and, for a choice-valued field, its vocabulary as the
    choices."""
    options.setdefault("default", _CONFIG_DEFAULTS[name])
    if name in CHOICES:
        options["choices"] = CHOICES[name]
    group.add_argument("--" + name.replace("_", "-"), *flags, dest=name, **options)


def pipeline_config(args: argparse.Namespace, live: bool) -> PipelineConfig:
    """The config the options ask for: every option named after a :class:`PipelineConfig` field is
    passed on as that field; a live source always gets the causal lifter and realtime dropping."""
    options = {f.name: getattr(args, f.name) for f in fields(PipelineConfig) if hasattr(args, f.name)}
    options.update(causal=args.causal or live, realtime=live, keep_images=args.overlay is not None)
    return PipelineConfig(**options)


def build_pipeline(args: argparse.Namespace, live: bool):
    """The pipeline the options ask for (a separate function so tests can swap the stages)."""
    from streampose.pipeline import Pipeline

    return Pipeline(pipeline_config(args, live))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status.

    SIGTERM (``kill``, ``docker stop``, a job scheduler) is handled as Ctrl-C: the summary record is
    written and the exit status is 143.
    """
    with _sigterm_as_ctrl_c() as terminated:
        status = _main(argv)
    return EXIT_TERMINATED if terminated and status == EXIT_INTERRUPTED else status


@contextlib.contextmanager
def _sigterm_as_ctrl_c():
    """While active, SIGTERM raises ``KeyboardInterrupt`` in the main thread; yields a list that is
    non-empty once SIGTERM arrived.  Outside the main thread (signals cannot be handled there) a no-op."""
    terminated: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield terminated
        return

    def handler(signum, frame):
        terminated.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield terminated
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        return _subcommand(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.ERROR if args.quiet else logging.WARNING,
        format="streampose: warning: %(message)s",
    )
    tune_allocator()  # faster frame hand-off between threads; safe for a process we own
    # (OpenMP's idle-worker policy is set by `import streampose`, before torch can load.)
    started = time.perf_counter()
    reader = overlay = pipeline = None
    try:
        # Outputs are checked first: a typo must not cost a long decode (or model load) first.
        check_writable(args.out)
        _refuse_overwriting_input(args)
        if args.track is not None and not str(args.out).lower().endswith(".bvh"):
            raise OutputError("--track selects the person of a .bvh output; give --out NAME.bvh")
        if args.overlay is not None:
            from streampose.viz import check_video_path

            check_video_path(args.overlay)
        from streampose.pipeline import resolve_device

        args.device = resolve_device(args.device)
        live = is_live_source(args.video)
        reader = open_source(args.video, realtime=live, max_frames=args.max_frames, fps=args.fps,
                             timeout=args.timeout)
        pipeline = build_pipeline(args, live)
        if args.overlay is not None:
            from streampose.viz import OverlayWriter

            overlay = OverlayWriter(args.overlay, fps=reader.info.fps, view3d=args.view3d)
        with open_writer(args.out, run_header(reader, pipeline), track=args.track) as writer:
            result = process(args, reader, writer, pipeline, overlay)
    except StreamposeError as error:
        print(f"streampose: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        # Ctrl-C before the first frame (e.g. while models load): nothing to summarise.
        print("streampose: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if overlay is not None:
            overlay.close()
        if pipeline is not None:
            pipeline.close()
        if reader is not None:
            reader.close()
    if not args.quiet or result.interrupted:
        stats = result.stats.to_dict()
        latency = _timing_text(stats)
        print(
            f"streampose: {'interrupted; ' if result.interrupted else ''}"
            f"{result.frames_written} frames written to {args.out} "
            f"({stats['frames_with_person']} with a person, {reader.stats.damaged} damaged, "
            f"{reader.stats.dropped} dropped) in {time.perf_counter() - started:.1f} s, "
            f"{stats['fps']:.1f} fps{latency}",
            file=sys.stderr,
        )
    return EXIT_INTERRUPTED if result.interrupted else EXIT_OK


def process(args: argparse.Namespace, reader: FrameReader, writer: Writer, pipeline, overlay=None) -> RunResult:
    """Run ``pipeline`` over ``reader``, write each final frame, and always finish with a summary.

    Ctrl-C (``KeyboardInterrupt``) stops the loop cleanly: the summary is still written (marked
    ``interrupted``) and the result says so.
    """
    interrupted = False
    progress = _progress_bar(args, reader)
    frames = pipeline.run(reader)
    try:
        for pose_frame in frames:
            writer.write_frame(pose_frame)
            if overlay is not None:
                overlay.write(pose_frame.image, pose_frame.time, pose_frame)
                pose_frame.image = None  # written: let the frame's memory go
            if progress is not None:
                progress.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        # Ending the run stops its threads and makes the stats final before they are summarised.
        getattr(frames, "close", lambda: None)()
        if progress is not None:
            progress.close()
        stats = pipeline.stats
        writer.write_summary(make_summary(
            frames_written=writer.frames_written,
            frames_decoded=reader.stats.decoded,
            frames_damaged=reader.stats.damaged,
            frames_dropped=reader.stats.dropped,
            frames_with_person=stats.frames_with_person,
            wall_time=stats.wall_time,
            latencies=stats.latencies,
            interrupted=interrupted,
            processing_latencies=stats.processing_latencies,
            lookahead_frames=stats.lookahead_frames,
            lookahead_seconds=stats.lookahead_seconds,
        ))
    return RunResult(frames_written=writer.frames_written, interrupted=interrupted, stats=stats)


def _refuse_overwriting_input(args: argparse.Namespace) -> None:
    """An output that *is* the input file (same path, a link to it) would be truncated before a
    single frame is read: refuse before any work."""
    if not os.path.isfile(args.video):
        return
    for option, path in (("--out", args.out), ("--overlay", args.overlay)):
        if path is not None and os.path.exists(path) and os.path.samefile(path, args.video):
            raise OutputError(f"{option} {path} is the input file; refusing to overwrite it")


def _timing_text(stats: dict[str, Any]) -> str:
    """The closing line's timing part: processing latency, then look-ahead on its own.

    The symmetric lifter's look-ahead (a frame's 3D waits for later frames) is a property of the
    model, not slowness, so it is not folded into the latency shown (the summary record keeps the
    end-to-end ``latency_p50``/``latency_p95`` as well).
    """
    text = ""
    if stats["processing_latency_p50_ms"] is not None:
        text = (f", latency p50 {stats['processing_latency_p50_ms']:.0f} ms / "
                f"p95 {stats['processing_latency_p95_ms']:.0f} ms")
    if stats["lookahead_frames_p50"]:
        text += (f" + look-ahead {stats['lookahead_frames_p50']} frames "
                 f"({stats['lookahead_p50_ms'] / 1000.0:.2f} s of video)")
    return text


def run_header(reader: FrameReader, pipeline) -> dict[str, Any]:
    """The output's header record for ``pipeline`` on ``reader``'s source (also ``streampose batch``'s)."""
    return make_header(reader.info, models=pipeline.describe_models(),
                       **pipeline.describe_camera(reader.info.width, reader.info.height))


def _subcommand(name: str, argv: list[str]) -> int:
    if name == "plot":
        from streampose.apps.plot import plot_main

        return plot_main(argv)
    if name == "batch":
        from streampose.batch.cli import main as batch_main

        return batch_main(argv)
    from streampose.apps.demo import webcam_main

    tune_allocator()
    return webcam_main(argv)


def _progress_bar(args: argparse.Namespace, reader: FrameReader):
    # A progress bar only helps a person watching a terminal; in logs it is noise.
    if args.quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    info = reader.info
    total = info.frame_count
    if total is None and info.duration and info.fps:
        total = int(round(info.duration * info.fps))
    if args.max_frames is not None:
        total = min(total, args.max_frames) if total is not None else args.max_frames
    return tqdm(total=total, unit="frame", dynamic_ncols=True, file=sys.stderr)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


if __name__ == "__main__":
    sys.exit(main())
