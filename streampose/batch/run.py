"""A batch from start to end: expand the inputs, decide what to skip, run an engine, keep the manifest.

:func:`run_batch` is the library entry point (the ``streampose batch`` command is a shell over it)::

    from streampose.batch import BatchOptions, run_batch
    result = run_batch(BatchOptions(inputs=["clips/"], out_dir="poses/", workers=2))
    print(result.counts)      # {"ok": 18, "failed": 1, "skipped": 0, ...}

A video is **skipped** when the manifest says an earlier run finished it with the same settings,
its input has the same size and modification time (URLs: the same URL), and its output is still
complete (recorded size, closing summary record).  A video that **failed** earlier is left alone
under the same conditions unless ``retry_failed``.  Everything else is processed.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from streampose.batch.events import Job
from streampose.batch.inputs import Video, expand_inputs
from streampose.batch.manifest import (
    Manifest, input_fingerprint, new_record, now_utc, output_complete, remove_partials, settings_hash,
)
from streampose.batch.progress import BatchProgress
from streampose.batch.work import DEFAULT_FACTORY, worker_threads
from streampose.errors import OutputError
from streampose.settings import PipelineConfig

FORMATS = ("jsonl", "npz")
# Fields that do not change what an output contains (where and how fast it is computed).
_NOT_SETTINGS = ("device", "threads", "queue_size", "realtime", "keep_images")


@dataclass
class BatchOptions:
    """What to run.  ``workers=None``: one per GPU on CUDA, else :func:`default_cpu_workers`."""

    inputs: list[str]
    out_dir: str
    format: str = "jsonl"
    config: PipelineConfig = field(default_factory=PipelineConfig)
    workers: int | None = None
    retry_failed: bool = False
    ray: bool = False
    ray_address: str | None = None
    factory: str | Callable = DEFAULT_FACTORY
    max_retries: int = 1
    progress: bool = True


@dataclass
class BatchResult:
    """What a batch did.  ``records``: this run's records (ok, failed, skipped), in input order."""

    records: list[dict[str, Any]]
    interrupted: bool
    wall_time: float
    workers: int
    engine: str
    manifest: Path
    failed_earlier: list[dict[str, Any]] = field(default_factory=list)
    start_seconds: float | None = None  # until every worker had its models loaded (Ray: incl. its start)

    @property
    def by_status(self) -> dict[str, list[dict[str, Any]]]:
        groups: dict[str, list[dict[str, Any]]] = {"ok": [], "empty": [], "failed": [], "skipped": [],
                                                   "failed_earlier": list(self.failed_earlier)}
        for record in self.records:
            status = record["status"]
            if status == "ok" and not record.get("people"):
                status = "empty"
            groups[status].append(record)
        return groups

    @property
    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.by_status.items()}

    @property
    def processed(self) -> int:
        return sum(1 for r in self.records if r["status"] != "skipped")

    @property
    def frames(self) -> int:
        return sum(r.get("frames") or 0 for r in self.records if r["status"] == "ok")


def default_cpu_workers(cores: int | None = None) -> int:
    """Pipelines to run at once on CPUs: one per core, at most 8 (each holds its own models, and
    shares the cores out as torch threads).

    One pipeline (decode, 2D and 3D threads, one torch thread on small machines) keeps about 1.3
    of the 2 cores here busy; two workers were 1.6x faster than one on the idle machine, but
    slower than one while other jobs kept the load at 6-9 (docs/BATCH.md).  Give ``--workers 1``
    on a machine you share."""
    cores = cores or os.cpu_count() or 1
    return max(1, min(cores, 8))


def cuda_devices(device: str) -> list[str]:
    """The CUDA devices a batch on ``device`` should use, one worker each (empty: CPU)."""
    if device == "cpu":
        return []
    if device.startswith("cuda:"):
        return [device]
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "cuda" and count == 0:
        from streampose.errors import InputError

        raise InputError("--device cuda: CUDA is not available on this machine")
    return [f"cuda:{i}" for i in range(count)]


def worker_configs(config: PipelineConfig, workers: int | None) -> list[PipelineConfig]:
    """One pipeline config per local worker: its device (GPUs round-robin) and torch threads."""
    gpus = cuda_devices(config.device)
    count = workers or (len(gpus) if gpus else default_cpu_workers())
    threads = worker_threads(config.threads, count)
    if gpus:
        return [replace(config, device=gpus[i % len(gpus)], threads=threads) for i in range(count)]
    return [replace(config, device="cpu", threads=threads) for _ in range(count)]


class _Batch:
    """The engine's :class:`~streampose.batch.events.Events`: records into the manifest, progress."""

    def __init__(self, manifest: Manifest, display: BatchProgress, engine: str, settings: str,
                 fingerprints: dict[str, tuple[int | None, int | None]], fmt: str) -> None:
        self.manifest, self.display, self.engine = manifest, display, engine
        self.settings, self.fingerprints, self.fmt = settings, fingerprints, fmt

    def started(self, worker: str, job: Job) -> None:
        self.display.started_video(worker, job.video.key)

    def progress(self, worker: str, job: Job, frames: int) -> None:
        self.display.progress(worker, frames)

    def finished(self, worker: str, job: Job, result: dict[str, Any]) -> None:
        video = job.video
        size, mtime = self.fingerprints.get(video.key, (None, None))
        ok = result["status"] == "ok"
        record = new_record(
            video=video.key, input=video.source, output=video.output_name(self.fmt) if ok else None,
            status=result["status"], frames=result.get("frames"), frames_with_person=result.get("frames_with_person"),
            people=result.get("people"), frames_damaged=result.get("frames_damaged"),
            wall_time=result.get("wall_time"), error=result.get("error"), warnings=result.get("warnings") or [],
            attempts=result.get("attempts") or job.attempt, worker=result.get("worker") or worker,
            engine=self.engine, input_size=size, input_mtime_ns=mtime, output_size=result.get("output_size"),
            settings=self.settings, finished_at=now_utc(),
        )
        self.manifest.add(record)
        self.display.finished_video(worker, record)


def run_batch(options: BatchOptions) -> BatchResult:
    """Run a batch (see the module docstring).

    Raises:
        InputError / OutputError: bad inputs or output folder, before any video is processed.
        WorkerStartError: the workers could not load the models.
        KeyboardInterrupt: never; Ctrl-C ends the batch cleanly with ``interrupted=True``.
    """
    if options.format not in FORMATS:
        raise OutputError(f"--format {options.format!r}: use one of {', '.join(FORMATS)}")
    out_dir = Path(options.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{out_dir}: cannot create the output folder ({error.strerror or error})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise OutputError(f"{out_dir}: output folder is not writable")
    videos = expand_inputs(options.inputs, exclude=out_dir)
    started = time.perf_counter()
    manifest = Manifest(out_dir)
    try:
        remove_partials(out_dir)
        settings = settings_hash({**{k: v for k, v in asdict(options.config).items() if k not in _NOT_SETTINGS},
                                  "format": options.format})
        plan = _plan(videos, manifest, settings, out_dir, options)
        engine, workers = _engine(options, len(plan.jobs))
        display = BatchProgress(len(plan.jobs), enabled=options.progress, workers=workers)
        batch = _Batch(manifest, display, engine.engine, settings, plan.fingerprints, options.format)
        for record in plan.records:
            manifest.add(record)
        interrupted = False
        try:
            engine.run(plan.jobs, batch)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            display.close()
        done = {**{r["video"]: r for r in plan.records}, **manifest.records}
        records = [done[v.key] for v in videos if v.key in done]
        return BatchResult(records=records, interrupted=interrupted, wall_time=time.perf_counter() - started,
                           workers=workers, engine=engine.engine, manifest=manifest.path,
                           failed_earlier=plan.failed_earlier, start_seconds=getattr(engine, "start_seconds", None))
    finally:
        manifest.close(order=[v.key for v in videos])


@dataclass
class _Plan:
    jobs: list[Job]
    records: list[dict[str, Any]]            # decided without running: skipped, missing inputs
    failed_earlier: list[dict[str, Any]]     # failed before, same input, not retried
    fingerprints: dict[str, tuple[int | None, int | None]]


def _plan(videos: list[Video], manifest: Manifest, settings: str, out_dir: Path, options: BatchOptions) -> _Plan:
    plan = _Plan(jobs=[], records=[], failed_earlier=[], fingerprints={})
    for video in videos:
        size, mtime = input_fingerprint(video.source, video.is_url)
        plan.fingerprints[video.key] = (size, mtime)
        output = out_dir / video.output_name(options.format)
        if not video.is_url and size is None:
            plan.records.append(new_record(
                video=video.key, input=video.source, status="failed", error=f"{video.source}: no such file",
                attempts=0, engine="local" if not (options.ray or options.ray_address) else "ray",
                settings=settings, finished_at=now_utc()))
            continue
        previous = manifest.previous.get(video.key)
        same = (previous is not None and previous.get("input") == video.source
                and previous.get("settings") == settings
                and previous.get("input_size") == size and previous.get("input_mtime_ns") == mtime)
        if same and previous["status"] in ("ok", "skipped") and output_complete(output, previous.get("output_size")):
            plan.records.append({**previous, "status": "skipped", "output": video.output_name(options.format)})
            continue
        if same and previous["status"] == "failed" and not options.retry_failed:
            plan.failed_earlier.append(previous)
            continue
        plan.jobs.append(Job(video=video, output=str(output.absolute()), max_frames=options.config.max_frames))
    return plan


def _engine(options: BatchOptions, jobs: int):
    if options.ray or options.ray_address:
        from streampose.batch.ray_engine import RayEngine

        workers = options.workers
        if workers is None and not options.ray_address:
            # A local runtime gets the local pool's layout, so the two are comparable.
            workers = len(worker_configs(options.config, None))
        engine = RayEngine(options.config, workers=workers, threads=options.config.threads, factory=options.factory,
                           max_retries=options.max_retries, address=options.ray_address)
        return engine, workers or 0
    from streampose.batch.local import LocalPool

    configs = worker_configs(options.config, options.workers)
    return LocalPool(configs, factory=options.factory, max_retries=options.max_retries), min(len(configs), max(1, jobs))
