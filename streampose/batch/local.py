"""The local engine: a pool of worker processes on this machine, each holding its models once.

The parent hands one video at a time to each idle worker over the worker's own pipe and waits on
all pipes and process sentinels together (:func:`multiprocessing.connection.wait`), so it always
knows which video each worker holds:

* a worker that dies mid-video (a crash in a decoder, the OOM killer) is replaced, and its video is
  tried again up to ``max_retries`` times, then recorded as failed -- the batch goes on;
* Ctrl-C: the workers start with SIGINT ignored (a terminal sends it to the whole process group),
  the parent sends each busy worker SIGTERM, which stops its video the way Ctrl-C stops the CLI;
  its temporary output is deleted, finished videos stay recorded, and the parent re-raises
  ``KeyboardInterrupt`` once every worker is gone.

Workers are started with ``spawn`` (a fresh interpreter: no threads or CUDA state inherited from
the parent), so the pipeline factory is passed as an importable ``"module:function"``.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable

from streampose.batch.events import Events, Job
from streampose.batch.manifest import commit_file, partial_path
from streampose.batch.work import Task, load_pipeline, process_video
from streampose.errors import StreamposeError
from streampose.settings import PipelineConfig

PROGRESS_EVERY_S = 0.3
STOP_GRACE_S = 15.0


class WorkerStartError(StreamposeError):
    """A worker could not build its pipeline (models missing, bad option): no video can run."""


@dataclass
class _Slot:
    index: int
    config: PipelineConfig
    process: Any = None
    conn: Connection | None = None
    ready: bool = False
    job: Job | None = None
    starts: int = 0

    @property
    def name(self) -> str:
        return f"local/{self.index}" + (f" pid {self.process.pid}" if self.process is not None else "")


class LocalPool:
    """``workers`` processes; worker ``i`` runs ``configs[i]`` (its device and thread count)."""

    engine = "local"

    def __init__(self, configs: list[PipelineConfig], factory: str | Callable = "streampose.batch.work:default_pipeline",
                 max_retries: int = 1) -> None:
        if not configs:
            raise ValueError("a pool needs at least one worker")
        self.configs = configs
        self.factory = factory
        self.max_retries = max_retries
        self._ctx = multiprocessing.get_context("spawn")
        self.start_seconds: float | None = None  # until every worker had its models loaded

    def run(self, jobs: list[Job], events: Events) -> None:
        """Process ``jobs``, reporting to ``events``; returns when all are recorded.

        Raises:
            KeyboardInterrupt: after a clean stop (see the module docstring).
            WorkerStartError: a worker could not load its models.
        """
        if not jobs:
            return
        pending = deque(jobs)
        slots = [_Slot(index=i, config=c) for i, c in enumerate(self.configs[: len(jobs)])]
        self._began = time.perf_counter()
        self._slots = slots
        try:
            for slot in slots:
                self._start(slot)
            while pending or any(s.job is not None for s in slots):
                for slot in slots:
                    if slot.ready and slot.job is None and pending:
                        self._assign(slot, pending.popleft(), events)
                self._pump(slots, pending, events, timeout=1.0)
        except KeyboardInterrupt:
            self._stop(slots, events)
            raise
        finally:
            self._shutdown(slots)

    # ------------------------------------------------------------------ parent side

    def _start(self, slot: _Slot) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main, args=(slot.index, self.factory, slot.config, child, os.getpid()),
            name=f"streampose-batch-{slot.index}", daemon=True,
        )
        # Started with SIGINT ignored (inherited through spawn's exec): the parent alone decides
        # what Ctrl-C does.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            process.start()
        finally:
            signal.signal(signal.SIGINT, previous)
        child.close()
        slot.process, slot.conn, slot.ready = process, parent, False
        slot.starts += 1

    def _assign(self, slot: _Slot, job: Job, events: Events) -> None:
        final = Path(job.output)
        # The temporary name carries the parent's pid: unique per batch, removed by the next batch
        # if a killed one leaves it.
        task = Task(key=job.video.key, source=job.video.source, tmp_path=str(partial_path(final)))
        slot.conn.send(("video", job, task))
        slot.job = job
        events.started(slot.name, job)

    def _pump(self, slots: list[_Slot], pending: deque, events: Events, timeout: float) -> None:
        by_conn = {s.conn: s for s in slots if s.conn is not None}
        by_sentinel = {s.process.sentinel: s for s in slots if s.process is not None}
        ready = wait(list(by_conn) + list(by_sentinel), timeout=timeout)
        dead = []
        for item in ready:
            if item in by_conn:
                slot = by_conn[item]
                try:
                    while slot.conn.poll():
                        self._handle(slot, slot.conn.recv(), events)
                except (EOFError, OSError, pickle.UnpicklingError):
                    dead.append(slot)
            else:
                dead.append(by_sentinel[item])
        handled: list[_Slot] = []
        for slot in dead:
            if not any(slot is seen for seen in handled):
                handled.append(slot)
                self._on_death(slot, pending, events)

    def _handle(self, slot: _Slot, message: tuple, events: Events) -> None:
        kind = message[0]
        if kind == "ready":
            slot.ready = True
            if self.start_seconds is None and all(s.ready for s in self._slots):
                self.start_seconds = time.perf_counter() - self._began
        elif kind == "init_failed":
            raise WorkerStartError(f"worker could not load the pipeline: {message[1]}")
        elif kind == "progress" and slot.job is not None:
            events.progress(slot.name, slot.job, message[1])
        elif kind == "done" and slot.job is not None:
            job, slot.job = slot.job, None
            events.finished(slot.name, job, message[1])

    def _on_death(self, slot: _Slot, pending: deque, events: Events) -> None:
        name, process = slot.name, slot.process
        process.join(timeout=5)
        code = process.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        if slot.conn is not None:
            slot.conn.close()
        slot.process, slot.conn = None, None
        if not slot.ready and slot.job is None:
            if slot.starts >= 2:
                raise WorkerStartError(f"worker {slot.index} died while loading the pipeline ({how})")
        job, slot.job = slot.job, None
        if job is not None:
            if job.attempt <= self.max_retries:
                pending.appendleft(replace(job, attempt=job.attempt + 1))  # the next free worker tries again
            else:
                events.finished(name, job, _died_result(how, job.attempt))
        self._start(slot)

    def _stop(self, slots: list[_Slot], events: Events) -> None:
        """Ctrl-C: stop every worker's video, keep the records of videos that finish meanwhile."""
        for slot in slots:
            if slot.process is not None and slot.process.is_alive():
                try:
                    os.kill(slot.process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE_S
        try:
            while any(s.process is not None and s.process.is_alive() for s in slots) and time.monotonic() < deadline:
                conns = [s.conn for s in slots if s.conn is not None and s.process is not None]
                sentinels = [s.process.sentinel for s in slots if s.process is not None and s.process.is_alive()]
                for item in wait(conns + sentinels, timeout=0.5):
                    slot = next((s for s in slots if s.conn is item), None)
                    if slot is None:
                        continue
                    try:
                        while slot.conn.poll():
                            message = slot.conn.recv()
                            if message[0] == "done":  # finished just before the stop reached it
                                self._handle(slot, message, events)
                    except (EOFError, OSError, pickle.UnpicklingError):
                        slot.conn.close()
                        slot.conn = None
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: stop waiting, the workers are killed below

    def _shutdown(self, slots: list[_Slot]) -> None:
        for slot in slots:
            if slot.conn is not None and slot.process is not None and slot.process.is_alive():
                try:
                    slot.conn.send(("quit",))
                except (OSError, ValueError):
                    pass
        deadline = time.monotonic() + 10.0
        for slot in slots:
            if slot.process is None:
                continue
            slot.process.join(timeout=max(0.1, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(timeout=5)
            if slot.conn is not None:
                slot.conn.close()
            slot.process, slot.conn = None, None


def _died_result(how: str, attempts: int) -> dict[str, Any]:
    return {"status": "failed", "frames": None, "frames_with_person": None, "people": None, "frames_damaged": None,
            "wall_time": None, "warnings": [], "attempts": attempts,
            "error": f"the worker process died ({how}) while processing this video, {attempts} time(s)"}


# ---------------------------------------------------------------------- worker side


def _worker_main(index: int, factory, config: PipelineConfig, conn: Connection, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _interrupt)
    quiet_logging()
    from streampose.reader import tune_allocator

    tune_allocator()  # this process is ours: keep freed frame buffers for reuse, as the CLI does
    pipeline = None
    try:
        try:
            pipeline = load_pipeline(factory, config)
        except Exception as error:
            conn.send(("init_failed", f"{type(error).__name__}: {error}"))
            return
        conn.send(("ready",))
        while True:
            if not conn.poll(1.0):
                if os.getppid() != parent_pid:
                    return  # the batch is gone (killed): do not go on alone
                continue
            message = conn.recv()
            if message[0] != "video":
                return
            _, job, task = message
            _run_one(pipeline, job, task, conn, parent_pid)
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass
    finally:
        if pipeline is not None:
            try:
                pipeline.close()
            except Exception:
                pass


def _run_one(pipeline, job: Job, task: Task, conn: Connection, parent_pid: int) -> None:
    last = [0.0]

    def on_frame(frames: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            conn.send(("progress", frames))

    result = process_video(pipeline, task, max_frames=job.max_frames, on_frame=on_frame,
                           should_stop=lambda: os.getppid() != parent_pid)
    if result["status"] == "ok":
        final = Path(job.output)
        final.parent.mkdir(parents=True, exist_ok=True)
        result["output_size"] = commit_file(Path(task.tmp_path), final)
    result["attempts"] = job.attempt
    conn.send(("done", result))


def _interrupt(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the clean-up must not be interrupted again
    raise KeyboardInterrupt


def quiet_logging() -> None:
    """Workers log errors only to stderr; their warnings go into the video's record instead."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.ERROR)
    handler.setFormatter(logging.Formatter("streampose batch: worker: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    logging.getLogger("streampose").setLevel(logging.WARNING)
