"""The Ray engine: one Ray actor call per video, on a local Ray runtime or an existing cluster.

``pip install "streampose[ray]"``; ``streampose batch ... --ray`` starts a local runtime,
``--ray-address ADDR`` (or ``auto``) joins a running cluster.  Ray does the scheduling, placement,
restarts and retries; this module only says what to run:

* a pose **actor** per worker, holding its pipeline (models loaded once, in ``__init__``), with
  resource requests: ``num_cpus`` = its torch threads, ``num_gpus=1`` when it runs on CUDA (Ray then
  gives it one GPU through ``CUDA_VISIBLE_DEVICES``; ``--workers`` above the GPU count shares
  each GPU between actors with fractional requests);
* **one actor call per video**, two queued per actor (the usual ``ray.wait`` loop, as
  :class:`ray.util.ActorPool` does, one call deeper so an actor never waits for the driver), so
  each video's worker is known for the per-worker status;
* **failures**: an exception inside a video is a ``failed`` record (like the local pool); an actor
  that *dies* (crash, OOM kill, lost node) is restarted by Ray (``max_restarts=-1``) and its video
  retried by Ray (``max_task_retries``).  Every execution announces itself to a small ledger actor
  first, so the record's ``attempts`` counts Ray's retries too;
* **outputs** are returned to the driver as bytes and written there atomically, so the output
  folder need not be shared with the cluster; the *inputs* must be readable by every node at the
  same path (a shared file system) or be URLs.

The result for a video is byte-for-byte the local pool's (same :func:`~streampose.batch.work.process_video`),
apart from the timings in its summary record.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from streampose.batch.events import Events, Job
from streampose.batch.local import WorkerStartError, quiet_logging
from streampose.batch.manifest import write_output_bytes
from streampose.batch.work import DEFAULT_FACTORY, Task, load_pipeline, process_video, worker_threads
from streampose.errors import StreamposeError
from streampose.settings import PipelineConfig


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


CALLS_PER_ACTOR = 2


class _PoseActor:
    """A Ray actor holding one pipeline; ``process`` runs one video."""

    def __init__(self, factory, config: PipelineConfig, ledger: str) -> None:
        import ray

        from streampose.reader import tune_allocator

        quiet_logging()
        tune_allocator()  # the actor's process is ours while it lives, as a local worker's is
        # The ledger by name: small inline arguments let Ray restart the actor from them alone.
        self.ledger = ray.get_actor(ledger)
        self.pipeline = load_pipeline(factory, config)

        context = ray.get_runtime_context()
        self.where = f"node {context.get_node_id()[:8]} pid {os.getpid()}"
        # Outputs are written here before they go to the driver: inside Ray's session folder, so
        # what a killed actor leaves goes with the session's other files.
        try:
            base = context.get_temp_dir()
        except Exception:
            base = None
        self.folder = tempfile.mkdtemp(prefix="streampose-batch-", dir=base if base and os.path.isdir(base) else None)

    def ready(self) -> str:
        return self.where

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.pipeline.close()

    def process(self, job: Job) -> tuple[dict[str, Any], bytes | None]:
        import ray

        attempt = ray.get(self.ledger.begin.remote(job.video.key))
        tmp = Path(self.folder) / f"output{Path(job.output).suffix}"
        try:
            task = Task(key=job.video.key, source=job.video.source, tmp_path=str(tmp))
            result = process_video(self.pipeline, task, max_frames=job.max_frames)
            data = tmp.read_bytes() if result["status"] == "ok" else None
        finally:
            tmp.unlink(missing_ok=True)
        result["attempts"] = attempt
        result["worker_where"] = self.where
        return result, data


class _AttemptLedger:
    """Counts executions per video, including the ones Ray retried after an actor died."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def begin(self, key: str) -> int:
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]

    def count(self, key: str) -> int:
        return self.counts.get(key, 0)


class RayEngine:
    """See the module docstring.  ``workers=None``: one actor per GPU of the cluster when the
    pipeline runs on CUDA, else the cluster's CPUs shared out ``threads`` per actor."""

    engine = "ray"

    def __init__(self, config: PipelineConfig, *, workers: int | None, threads: int | None = None,
                 factory: str | Callable = DEFAULT_FACTORY, max_retries: int = 1, address: str | None = None,
                 num_cpus: int | None = None) -> None:
        if not ray_available():
            raise StreamposeError('--ray needs Ray: pip install "streampose[ray]"')
        self.config = config
        self.workers = workers
        self.threads = threads
        self.factory = factory
        self.max_retries = max_retries
        self.address = address
        self.num_cpus = num_cpus
        self.start_seconds: float | None = None  # Ray start + every actor's models loaded

    def run(self, jobs: list[Job], events: Events) -> None:
        import ray

        if not jobs:
            return
        began = time.perf_counter()
        self._began = began
        started_here = not ray.is_initialized()
        if started_here:
            import logging

            options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR}
            if self.address:
                options["address"] = self.address
            else:
                options["num_cpus"] = self.num_cpus or os.cpu_count() or 1
            if self.address:
                _check_reachable(self.address)
            try:
                ray.init(**options)
            except (ConnectionError, RuntimeError, ValueError) as error:
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray runtime"
                raise StreamposeError(f"cannot start or reach {where}: {_short(error)}") from None
        actors: list = []
        finished = False
        try:
            self._run(ray, jobs, events, actors)
            finished = True
        except KeyboardInterrupt:
            for actor in actors:
                ray.kill(actor, no_restart=True)
            raise
        finally:
            if finished:  # let the pose actors remove their temporary folders
                try:
                    ray.get([a.close.remote() for a in actors if hasattr(a, "close")], timeout=10)
                except Exception:
                    pass
            for actor in actors:
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:
                    pass
            if started_here:
                ray.shutdown()

    def _plan(self, ray) -> tuple[int, float, float, PipelineConfig]:
        """(actors, CPUs and GPUs each requests, their pipeline config) for this cluster."""
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
        on_gpu = self.config.device.startswith("cuda") or (self.config.device == "auto" and gpus > 0)
        if on_gpu and gpus == 0:
            raise StreamposeError("--device cuda: the Ray cluster has no GPUs")
        workers = self.workers or (gpus if on_gpu else max(1, cpus // (self.threads or 1)))
        share = max(1, cpus // workers)
        # A local runtime's actors get the local pool's thread counts (same numbers, same bytes);
        # a cluster's get their share of its CPUs.
        threads = worker_threads(self.threads, workers) if not self.address else (self.threads or share)
        # On CUDA, Ray hands each actor one GPU as its only visible device: "cuda" is that one.
        config = replace(self.config, device="cuda" if on_gpu else "cpu", threads=threads)
        # More actors than GPUs share them (fractional GPU requests): one decoder per actor is
        # what keeps a GPU fed.
        gpu_share = min(1.0, gpus / workers) if on_gpu else 0.0
        return workers, float(min(threads or share, cpus)), gpu_share, config

    def _run(self, ray, jobs: list[Job], events: Events, actors: list) -> None:
        from ray.exceptions import RayActorError, RayTaskError

        workers, num_cpus, num_gpus, config = self._plan(ray)
        workers = min(workers, len(jobs))
        Actor = ray.remote(_PoseActor).options(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=-1,
                                               max_task_retries=self.max_retries)
        ledger_name = f"streampose-batch-attempts-{uuid.uuid4().hex[:12]}"
        ledger = ray.remote(num_cpus=0)(_AttemptLedger).options(name=ledger_name).remote()
        actors.append(ledger)  # killed with the pose actors at the end

        pose_actors = [Actor.remote(self.factory, config, ledger_name) for _ in range(workers)]
        actors += pose_actors
        try:
            ray.get([a.ready.remote() for a in pose_actors])
        except (RayActorError, RayTaskError) as error:
            raise WorkerStartError(f"Ray worker could not load the pipeline: {_short(error)}") from None
        self.start_seconds = time.perf_counter() - self._began
        names = [f"ray/{i}" for i in range(len(pose_actors))]
        queues: list[deque] = [deque() for _ in pose_actors]  # (ref, job) per actor, in call order
        owner: dict[Any, int] = {}
        pending = deque(jobs)
        while pending or owner:
            for i, actor in enumerate(pose_actors):
                # Two calls per actor: the next video is already waiting in the actor when one
                # ends, so it never idles while the driver writes an output.
                while len(queues[i]) < CALLS_PER_ACTOR and pending:
                    job = pending.popleft()
                    ref = actor.process.remote(job)
                    queues[i].append((ref, job))
                    owner[ref] = i
                    if len(queues[i]) == 1:
                        events.started(names[i], job)
            done, _ = ray.wait(list(owner), num_returns=1, timeout=1.0)
            for ref in done:
                i = owner.pop(ref)
                job = next(j for r, j in queues[i] if r == ref)
                queues[i] = deque((r, j) for r, j in queues[i] if r != ref)
                try:
                    result, data = ray.get(ref)
                    if result["status"] == "ok":
                        result["output_size"] = write_output_bytes(Path(job.output), data)
                    result["worker"] = f"{names[i]} {result.pop('worker_where', '')}".strip()
                except RayActorError as error:
                    # The actor died; Ray restarted it (max_restarts=-1) and retried this call
                    # max_task_retries times, and it died every time.
                    attempts = ray.get(ledger.count.remote(job.video.key))
                    result = {"status": "failed", "attempts": attempts, "warnings": [],
                              "error": f"the Ray worker died while processing this video ({attempts} attempt(s)): "
                                       f"{_short(error)}"}
                except RayTaskError as error:  # not expected: process_video records its own errors
                    result = {"status": "failed", "warnings": [], "error": _short(error),
                              "attempts": ray.get(ledger.count.remote(job.video.key))}
                events.finished(names[i], job, result)
                if queues[i]:
                    events.started(names[i], queues[i][0][1])


def _check_reachable(address: str) -> None:
    """Fail in seconds on an address nobody answers at: ``ray.init`` would wait there for minutes,
    deaf to Ctrl-C.  (``auto``/``local`` and anything without a port are left to Ray.)"""
    import socket

    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5.0).close()
    except OSError as error:
        raise StreamposeError(f"--ray-address {address}: nothing answers there ({error.strerror or error})") from None


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:297] + "..."

