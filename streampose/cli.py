"""The ``streampose`` command: ``streampose VIDEO --out poses.jsonl``.

``main`` parses arguments, validates the output path *before* any decoding, opens the source and
the writer, and hands both to ``process``, which iterates frames and writes one record per frame.
Errors streampose raises on purpose (``StreamposeError``) print as one ``streampose: error: ...``
line and exit 2; Ctrl-C still writes the summary record and exits 130.

For now frame records carry no people (the schema is final); ``_pose_frame`` is the one place where
the pose pipeline plugs in, and ``_add_pose_arguments`` is where its options go.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Sequence

import streampose
from streampose.errors import InputError, StreamposeError
from streampose.output import Writer, check_writable, make_header, make_summary, open_writer
from streampose.reader import FrameReader, is_live_source, open_source, tune_allocator
from streampose.types import Frame, PoseFrame

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


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
        description="3D human pose from ordinary video: writes one JSON record per frame.",
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
    """Options of the pose stages (2D model, lifter, refiner, smoothing) belong here."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.ERROR if args.quiet else logging.WARNING,
        format="streampose: warning: %(message)s",
    )
    started = time.perf_counter()
    tune_allocator()  # this process is ours: keep frame buffers instead of page-faulting them in
    try:
        # The output path is checked first: a typo must not cost a long decode before failing.
        check_writable(args.out)
        args.device = resolve_device(args.device)
        reader = open_source(args.video, realtime=is_live_source(args.video),
                             max_frames=args.max_frames)
        with reader:
            with open_writer(args.out, make_header(reader.info, models={})) as writer:
                result = process(args, reader, writer)
    except StreamposeError as error:
        print(f"streampose: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        # Ctrl-C before the first frame (e.g. while a stream is connecting): nothing to summarise.
        print("streampose: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet or result.interrupted:
        fps = result.frames_written / result.wall_time if result.wall_time > 0 else 0.0
        print(
            f"streampose: {'interrupted; ' if result.interrupted else ''}"
            f"{result.frames_written} frames written to {args.out} "
            f"({reader.stats.damaged} damaged, {reader.stats.dropped} dropped) "
            f"in {time.perf_counter() - started:.1f} s, {fps:.1f} fps",
            file=sys.stderr,
        )
    return EXIT_INTERRUPTED if result.interrupted else EXIT_OK


def process(args: argparse.Namespace, reader: FrameReader, writer: Writer) -> RunResult:
    """Iterate ``reader``'s frames, write one record per frame, and always finish with a summary.

    Ctrl-C (``KeyboardInterrupt``) stops the loop cleanly: the summary is still written (marked
    ``interrupted``) and the result says so.
    """
    result = RunResult()
    progress = _progress_bar(args, reader)
    started = time.perf_counter()
    try:
        for frame in reader:
            record = _pose_frame(frame)
            writer.write_frame(record)
            result.frames_written += 1
            result.frames_with_person += bool(record.people)
            if record.latency is not None:
                result.latencies.append(record.latency)
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


def _pose_frame(frame: Frame) -> PoseFrame:
    """The pose record of one frame.  The pose pipeline replaces this; until then: no people."""
    return PoseFrame(index=frame.index, time=frame.time, people=[])


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; ``cuda`` without CUDA is an error."""
    if device == "cpu":
        return "cpu"
    import torch  # deferred: --help and input errors should not pay for importing torch

    available = torch.cuda.is_available()
    if device == "cuda" and not available:
        raise InputError("--device cuda: CUDA is not available on this machine")
    return "cuda" if available else "cpu"


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


if __name__ == "__main__":
    sys.exit(main())
