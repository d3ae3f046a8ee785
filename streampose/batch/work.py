"""One video, in whichever worker holds the models: open, run, write to a temporary file, report.

Both engines call :func:`process_video` with a pipeline they built once (:func:`load_pipeline`), so
a video gives the same bytes whichever engine processed it.  The run itself is the CLI's
:func:`streampose.cli.process` (same header, frame records and summary as ``streampose VIDEO
--out``); a bad video becomes a ``failed`` record instead of an exception.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from streampose.errors import StreamposeError
from streampose.settings import PipelineConfig

log = logging.getLogger(__name__)

DEFAULT_FACTORY = "streampose.batch.work:default_pipeline"
MAX_WARNINGS = 5
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Task:
    """What a worker needs to process one video (picklable, small)."""

    key: str
    source: str
    tmp_path: str  # where to write the output; the caller renames it into place


def default_pipeline(config: PipelineConfig):
    """The pipeline a batch worker uses unless told otherwise: ``Pipeline(config)``."""
    from streampose.pipeline import Pipeline

    return Pipeline(config)


def resolve_factory(factory: str | Callable[[PipelineConfig], Any]) -> Callable[[PipelineConfig], Any]:
    """A pipeline factory from ``"module:function"`` (what crosses process boundaries) or a callable."""
    if callable(factory):
        return factory
    module, _, name = factory.partition(":")
    return getattr(importlib.import_module(module), name)


def load_pipeline(factory: str | Callable, config: PipelineConfig):
    """Build a worker's pipeline (its models load here, once per worker)."""
    return resolve_factory(factory)(config)


class _Recorder:
    """A writer wrapper that counts frames and people and reports progress (the CLI's ``process``
    only needs ``write_frame``, ``write_summary`` and ``frames_written``)."""

    def __init__(self, writer, on_frame: Callable[[int], None] | None, should_stop: Callable[[], bool] | None):
        self._writer = writer
        self._on_frame = on_frame
        self._should_stop = should_stop
        self.ids: set[int] = set()
        self.summary: dict[str, Any] | None = None

    @property
    def frames_written(self) -> int:
        return self._writer.frames_written

    def write_frame(self, frame) -> None:
        self._writer.write_frame(frame)
        self.ids.update(int(person.id) for person in frame.people)
        if self._on_frame is not None:
            self._on_frame(self._writer.frames_written)
        if self._should_stop is not None and self._should_stop():
            raise KeyboardInterrupt  # the CLI's process() turns this into a clean, marked stop

    def write_summary(self, summary: dict[str, Any]) -> None:
        self.summary = summary
        self._writer.write_summary(summary)


class _WarningLog(logging.Handler):
    """Keeps the first few warnings logged while one video is processed, for its record."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.messages) < MAX_WARNINGS:
            self.messages.append(record.getMessage()[:MAX_ERROR_CHARS])


def process_video(pipeline, task: Task, *, max_frames: int | None = None,
                  on_frame: Callable[[int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Run ``pipeline`` over ``task.source`` into ``task.tmp_path``; return the record's numbers.

    Returns:
        ``{"status": "ok"|"failed", "frames", "frames_with_person", "people", "frames_damaged",
        "wall_time", "error", "warnings"}``.  On failure no file is left at ``tmp_path``.

    Raises:
        KeyboardInterrupt: the run was stopped (signal or ``should_stop``); ``tmp_path`` is removed.
    """
    from streampose import cli
    from streampose.output import open_writer
    from streampose.reader import open_source

    started = time.perf_counter()
    tmp = Path(task.tmp_path)
    warnings = _WarningLog()
    logging.getLogger("streampose").addHandler(warnings)
    reader = None
    result: dict[str, Any] = {"status": "failed", "frames": None, "frames_with_person": None, "people": None,
                              "frames_damaged": None, "error": None}
    completed = False
    try:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        reader = open_source(task.source, max_frames=max_frames)
        reset = getattr(pipeline.pose2d, "reset", None)
        if reset is not None:
            reset()  # no 2D track (ROI) may carry over from the previous video
        with open_writer(tmp, cli.run_header(reader, pipeline)) as writer:
            recorder = _Recorder(writer, on_frame, should_stop)
            # The CLI's own loop (quiet: the batch draws its own progress).
            run = cli.process(argparse.Namespace(quiet=True, max_frames=max_frames), reader, recorder, pipeline)
        if run.interrupted:
            raise KeyboardInterrupt
        summary = recorder.summary or {}
        result.update(status="ok", frames=run.frames_written, frames_with_person=summary.get("frames_with_person"),
                      people=len(recorder.ids), frames_damaged=summary.get("frames_damaged"))
        completed = True
    except StreamposeError as error:
        result["error"] = _one_line(str(error))
    except Exception as error:  # a bug or an odd file must not stop the batch; say what happened
        log.debug("video %s failed", task.source, exc_info=True)
        last = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
        where = f" (at {Path(last[0].filename).name}:{last[0].lineno})" if last else ""
        result["error"] = _one_line(f"{type(error).__name__}: {error}{where}")
    finally:
        logging.getLogger("streampose").removeHandler(warnings)
        if reader is not None:
            reader.close()
        if not completed and tmp.exists():
            tmp.unlink()
    result["wall_time"] = round(time.perf_counter() - started, 4)
    result["warnings"] = warnings.messages
    return result


def worker_threads(threads: int | None, workers: int) -> int | None:
    """Torch threads per worker: the user's choice; for a single worker the pipeline's own default
    (``None``: what the CLI uses); else the cores shared out over the workers."""
    if threads or workers <= 1:
        return threads
    return max(1, (os.cpu_count() or 1) // workers)


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."
