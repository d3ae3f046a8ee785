"""The ``streampose`` command, a thin shell over :class:`streampose.pipeline.Pipeline`.

    streampose VIDEO --out poses.jsonl [--overlay overlay.mp4 --view3d] [--causal] ...
    streampose plot poses.jsonl -o poses.png
    streampose webcam [SOURCE]

``main`` validates every output path *before* any decoding or model loading, opens the source (so
a bad input is reported at once), builds the pipeline, and hands everything to ``process``, which
writes one record per frame as frames become final.  Errors streampose raises on purpose
(``StreamposeError``) print as one ``streampose: error: ...`` line and exit 2; Ctrl-C still writes
the summary record and exits 130.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Sequence

import streampose
from streampose.errors import StreamposeError
from streampose.output import Writer, check_writable, make_header, make_summary, open_writer
from streampose.reader import FrameReader, is_live_source, open_source, tune_allocator

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
SUBCOMMANDS = ("plot", "webcam")


@dataclass
class RunResult:
    """What ``process`` did, for the summary record and the closing line."""

    frames_written: int = 0
    frames_with_person: int = 0
    wall_time: float = 0.0
    interrupted: bool = False
    latencies: list[float] = field(default_factory=list)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streampose",
        description="3D human pose from ordinary video: writes one JSON record per frame. "
                    "Also: 'streampose plot poses.jsonl -o poses.png', 'streampose webcam [SOURCE]'.",
    )
    parser.add_argument(
        "video",
        help="video file, webcam (webcam:0 or /dev/video0) or stream URL (rtsp://, http(s)://)",
    )
    parser.add_argument("--out", "-o", required=True,
                        help="output file: .jsonl (streamed, one record per line) or .npz (arrays)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where the models run (auto: CUDA when available)")
    parser.add_argument("--max-frames", type=_non_negative_int, default=None, metavar="N",
                        help="stop after N frames")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bar, no warnings, no closing line")
    parser.add_argument("--version", action="version", version=f"streampose {streampose.__version__}")
    _add_pose_arguments(parser)
    return parser


def _add_pose_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pose models")
    group.add_argument("--causal", action="store_true",
                       help="live lifter: no look-ahead, each frame final at once (default for cameras "
                            "and streams; files use the more accurate symmetric lifter)")
    group.add_argument("--lifter", default="default", metavar="NAME|PATH",
                       help="shipped lifter name (see models/) or a weights file, incl. VideoPose3D .bin")
    group.add_argument("--smoothing", choices=("kalman", "oneeuro", "none"), default="kalman",
                       help="temporal smoothing of 2D and 3D (default: kalman)")
    group.add_argument("--refine", action=argparse.BooleanOptionalAction, default=False,
                       help="patch-based 3D refiner (off by default: see README, Refiner)")
    group.add_argument("--max-people", type=_positive_int, default=1, metavar="N",
                       help="people to track at once (default 1)")
    group.add_argument("--readout", choices=("integral", "regression"), default=None,
                       help="2D keypoint readout (default: the 2D stage's measured best)")
    group.add_argument("--precision", choices=("fp32", "bf16", "mixed", "auto"), default="fp32",
                       help="2D networks' arithmetic: fp32 (default, exact) or bf16 (1.2-1.3x faster "
                            "2D on CPUs with native bf16; keypoints move ~1%% of the person's size)")
    group.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                       help="CPU threads for torch (default: torch's choice)")
    group = parser.add_argument_group("pictures")
    group.add_argument("--overlay", metavar="VIDEO.mp4", default=None,
                       help="also write the input video with the 2D skeleton drawn on it")
    group.add_argument("--view3d", action="store_true",
                       help="add a 3D skeleton panel beside the overlay video")


def build_pipeline(args: argparse.Namespace, live: bool):
    """The pipeline the options ask for (a separate function so tests can swap the stages)."""
    from streampose.pipeline import Pipeline, PipelineConfig

    return Pipeline(PipelineConfig(
        device=args.device, causal=args.causal or live, realtime=live, lifter=args.lifter,
        smoothing=args.smoothing, refine=args.refine, max_people=args.max_people, readout=args.readout,
        precision=args.precision,
        keep_images=args.overlay is not None, max_frames=args.max_frames, threads=args.threads,
    ))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        return _subcommand(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.ERROR if args.quiet else logging.WARNING,
        format="streampose: warning: %(message)s",
    )
    tune_allocator()  # faster frame hand-off between threads; safe for a process we own
    # Idle torch/OpenMP workers sleep instead of spinning, so they do not starve the decode and
    # post-processing threads on small CPUs (measured: 2-thread landmark step 900 -> 108 ms on a
    # loaded 2-core machine).  Must be set before torch is first imported; a user's value wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    started = time.perf_counter()
    reader = overlay = pipeline = None
    try:
        # Outputs are checked first: a typo must not cost a long decode (or model load) first.
        check_writable(args.out)
        if args.overlay is not None:
            from streampose.viz import check_video_path

            check_video_path(args.overlay)
        from streampose.pipeline import resolve_device

        args.device = resolve_device(args.device)
        live = is_live_source(args.video)
        reader = open_source(args.video, realtime=live, max_frames=args.max_frames)
        pipeline = build_pipeline(args, live)
        if args.overlay is not None:
            from streampose.viz import OverlayWriter

            overlay = OverlayWriter(args.overlay, fps=reader.info.fps, view3d=args.view3d)
        with open_writer(args.out, make_header(reader.info, models=pipeline.describe_models())) as writer:
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
        stats = pipeline.stats.to_dict()
        latency = (f", latency p50 {stats['latency_p50_ms']:.0f} ms / p95 {stats['latency_p95_ms']:.0f} ms"
                   if stats["latency_p50_ms"] is not None else "")
        fps = result.frames_written / result.wall_time if result.wall_time > 0 else 0.0
        print(
            f"streampose: {'interrupted; ' if result.interrupted else ''}"
            f"{result.frames_written} frames written to {args.out} "
            f"({result.frames_with_person} with a person, {reader.stats.damaged} damaged, "
            f"{reader.stats.dropped} dropped) in {time.perf_counter() - started:.1f} s, {fps:.1f} fps{latency}",
            file=sys.stderr,
        )
    return EXIT_INTERRUPTED if result.interrupted else EXIT_OK


def process(args: argparse.Namespace, reader: FrameReader, writer: Writer, pipeline, overlay=None) -> RunResult:
    """Run ``pipeline`` over ``reader``, write each final frame, and always finish with a summary.

    Ctrl-C (``KeyboardInterrupt``) stops the loop cleanly: the summary is still written (marked
    ``interrupted``) and the result says so.
    """
    result = RunResult()
    progress = _progress_bar(args, reader)
    started = time.perf_counter()
    try:
        for pose_frame in pipeline.run(reader):
            writer.write_frame(pose_frame)
            if overlay is not None:
                overlay.write(pose_frame.image, pose_frame.time, pose_frame)
                pose_frame.image = None  # written: let the frame's memory go
            result.frames_written += 1
            result.frames_with_person += bool(pose_frame.people)
            if pose_frame.latency is not None:
                result.latencies.append(pose_frame.latency)
            if progress is not None:
                progress.update(1)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        result.wall_time = time.perf_counter() - started
        if progress is not None:
            progress.close()
        writer.write_summary(make_summary(
            frames_written=result.frames_written,
            frames_decoded=reader.stats.decoded,
            frames_damaged=reader.stats.damaged,
            frames_dropped=reader.stats.dropped,
            frames_with_person=result.frames_with_person,
            wall_time=result.wall_time,
            latencies=result.latencies,
            interrupted=result.interrupted,
        ))
    return result


def _subcommand(name: str, argv: list[str]) -> int:
    if name == "plot":
        from streampose.apps.plot import plot_main

        return plot_main(argv)
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


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


if __name__ == "__main__":
    sys.exit(main())
