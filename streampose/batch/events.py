"""What an engine is given (:class:`Job`) and whom it tells what happens (:class:`Events`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from streampose.batch.inputs import Video


@dataclass(frozen=True)
class Job:
    """One video to process: where its output goes (absolute path) and which attempt this is."""

    video: Video
    output: str
    max_frames: int | None = None
    attempt: int = 1


class Events(Protocol):
    """The batch's side of an engine: every call comes from the engine's (main) thread."""

    def started(self, worker: str, job: Job) -> None:
        """``worker`` began ``job``."""

    def progress(self, worker: str, job: Job, frames: int) -> None:
        """``worker`` has written ``frames`` frames of ``job`` so far."""

    def finished(self, worker: str, job: Job, result: dict[str, Any]) -> None:
        """``job`` is done: ``result`` has ``status`` (ok/failed), the counts, ``error``, ``attempts``,
        and, when ok, ``output_size`` (the output is in place)."""
