"""``streampose batch INPUTS... --out-dir DIR``: many videos, one output each, resumable.

Exit status: 0 every video ok or skipped; 1 some videos failed (see the manifest); 2 nothing could
run (bad inputs, output folder, options, models); 130 interrupted (Ctrl-C; re-run to finish).
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from streampose import cli as single
from streampose.batch.run import FORMATS, BatchOptions, run_batch
from streampose.batch.progress import summary_table
from streampose.batch.work import DEFAULT_FACTORY
from streampose.errors import StreamposeError

EXIT_SOME_FAILED = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streampose batch",
        description="3D pose for many videos: one output per video under --out-dir, a manifest.jsonl with one "
                    "record per video; a re-run skips the videos already done.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="video files, folders (searched recursively), quoted globs ('clips/**/*.mp4') or "
                             "list files (.txt/.lst: one path or URL per line)")
    parser.add_argument("--out-dir", "-o", required=True, metavar="DIR",
                        help="output folder: DIR/<relative path>.<format> per video, DIR/manifest.jsonl")
    parser.add_argument("--format", choices=FORMATS, default="jsonl",
                        help="output per video: jsonl (records per frame) or npz (arrays); default %(default)s")
    parser.add_argument("--workers", "-j", type=single._positive_int, metavar="N", default=None,
                        help="pipelines at once (default: one per GPU, else one per CPU core, at most 8); each "
                             "loads its models once (on CUDA, more workers than GPUs share them)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="also process again the videos that failed in an earlier run (by default they are "
                             "left as failed unless their input changed)")
    parser.add_argument("--max-retries", type=single._non_negative_int, default=1, metavar="N",
                        help="times a video is tried again after its worker process died (default %(default)s); "
                             "ordinary errors are recorded at once")
    ray = parser.add_argument_group("Ray (pip install \"streampose[ray]\")")
    ray.add_argument("--ray", action="store_true", help="run the videos as Ray tasks on a local Ray runtime")
    ray.add_argument("--ray-address", metavar="ADDR", default=None,
                     help="run on an existing Ray cluster (e.g. auto, or ray://head:10001); inputs must be "
                          "readable from every node")
    single._config_option(parser, "device", help="where the models run (auto: every CUDA GPU, else the CPU)")
    single._config_option(parser, "max_frames", type=single._non_negative_int, metavar="N",
                          help="at most N frames per video")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress, no summary table")
    single._add_pose_arguments(parser, pictures=False)
    return parser


def main(argv: Sequence[str] | None = None, *, factory: str | Callable = DEFAULT_FACTORY) -> int:
    """Run ``streampose batch``; returns the exit status.  ``factory`` builds each worker's pipeline
    from its :class:`~streampose.settings.PipelineConfig` (tests pass fake stages)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING,
                        format="streampose batch: warning: %(message)s")
    args.overlay = None  # the single-video options' pictures do not apply to a batch
    try:
        options = BatchOptions(
            inputs=args.inputs, out_dir=args.out_dir, format=args.format,
            config=single.pipeline_config(args, live=False), workers=args.workers,
            retry_failed=args.retry_failed, ray=args.ray, ray_address=args.ray_address, factory=factory,
            max_retries=args.max_retries, progress=not args.quiet,
        )
        result = run_batch(options)
    except StreamposeError as error:
        print(f"streampose batch: error: {error}", file=sys.stderr)
        return single.EXIT_ERROR
    except KeyboardInterrupt:  # before any video started (expanding inputs, starting workers)
        print("streampose batch: interrupted", file=sys.stderr)
        return single.EXIT_INTERRUPTED
    if not args.quiet or result.interrupted:
        print(summary_table(result), file=sys.stderr)
    if result.interrupted:
        return single.EXIT_INTERRUPTED
    # Failed also counts videos that failed before and were not retried: not every video has its output.
    return EXIT_SOME_FAILED if result.counts.get("failed") or result.counts.get("failed_earlier") else single.EXIT_OK
