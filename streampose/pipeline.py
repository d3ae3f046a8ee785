"""The streaming pipeline: reader -> 2D -> tracker (match, lift, refine, smooth) -> PoseFrames.

Two ways in, the same stage objects, so they give identical results:

* **iterate**: ``for pose_frame in pipe.run("video.mp4")``.  Three threads, each handing on through
  a bounded :class:`~streampose.runner.Channel` of ``queue_size`` items::

      reader thread --Frame--> 2D thread --(Frame, list[Person2D])--> post thread --PoseFrame--> caller
      (decode)                 (pose2d.process)                      (Tracker.push)

  The reader thread is the :class:`~streampose.reader.FrameReader`'s for a path, URL or camera; a
  ``realtime`` iterable of frames gets a thread of its own that copies it into a dropping channel;
  any other iterable is read by the 2D thread itself.  A full channel makes the thread before it
  wait, so nothing is lost; only a live source with ``realtime=True`` drops its oldest frames
  instead (counted in ``pipe.stats.dropped``), so latency stays bounded.
* **push**: ``pipe.push(rgb, t)`` runs the 2D stage and the tracker in the caller's thread and
  returns whatever frames became final; ``pipe.flush()`` at the end of the stream.

A symmetric (offline) lifter needs future frames, so its output for frame ``t`` is final ``lag``
frames later; the causal (live) lifter finalises each frame at once.

An exception in any stage stops every thread and is re-raised in the caller as
:class:`~streampose.errors.StageError` naming the stage (``reader``, ``pose2d`` or ``post``).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from streampose.errors import InputError, StageError, StreamposeError
from streampose.runner import Channel, StageFailed, labelled, pump, start_stage
from streampose.settings import PipelineConfig, check_device
from streampose.tracker import Tracker
from streampose.types import Frame, Person2D, PoseFrame, VideoInfo

__all__ = ["Pipeline", "PipelineConfig", "PipelineStats", "resolve_device"]


@dataclass
class PipelineStats:
    """Counters and timings of one run.

    ``frames``, ``frames_with_person``, the per-frame lists and ``wall_time`` count the frames handed
    to the caller (yielded by ``run`` or returned by ``push``/``flush``); ``wall_time`` runs from the
    start of ``run`` (or the first ``push``) to the latest of them.

    Three per-frame timings, because a result can be late for two different reasons:

    * ``latencies``: seconds from the frame's capture (leaving the decoder) to its final result --
      end to end, *including* the wait for future frames;
    * ``lookahead_frames`` / ``lookahead_seconds``: how many later frames, and how many seconds of
      the video, the result had to wait for.  That is the symmetric lifter's (and the fixed-lag 3D
      smoother's) look-ahead -- a property of the model, not slowness; 0 for the causal lifter;
    * ``processing_latencies``: seconds from the capture of the *newest* frame the result needed
      to the result -- what the machine adds on top of the look-ahead.  For a file this includes
      the time decoded frames wait in the bounded queues (the decoder runs ahead of the models).

    So ``latency`` = time the look-ahead frames took to arrive + ``processing_latency``.
    """

    frames: int = 0
    frames_with_person: int = 0
    dropped: int = 0
    damaged: int = 0
    wall_time: float = 0.0
    latencies: list[float] = field(default_factory=list)
    processing_latencies: list[float] = field(default_factory=list)
    lookahead_frames: list[int] = field(default_factory=list)
    lookahead_seconds: list[float] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=lambda: {"pose2d": 0.0, "lift": 0.0, "post": 0.0})
    started: float | None = field(default=None, repr=False)  # perf_counter() when the run began

    def count(self, pose_frame: PoseFrame, wait: "_Wait | None" = None) -> None:
        """Account for one frame handed to the caller (``wait``: what its result waited for)."""
        self.frames += 1
        self.frames_with_person += bool(pose_frame.people)
        if pose_frame.latency is not None:
            self.latencies.append(pose_frame.latency)
        if wait is not None:
            self.lookahead_frames.append(wait.frames)
            self.lookahead_seconds.append(wait.seconds)
            if wait.processing is not None:
                self.processing_latencies.append(wait.processing)
        if self.started is not None:
            self.wall_time = time.perf_counter() - self.started

    def latency_percentile(self, q: float) -> float | None:
        return float(np.percentile(self.latencies, q)) if self.latencies else None

    def processing_latency_percentile(self, q: float) -> float | None:
        return float(np.percentile(self.processing_latencies, q)) if self.processing_latencies else None

    @property
    def fps(self) -> float:
        return self.frames / self.wall_time if self.wall_time > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Counters, with timings in milliseconds.  ``latency_*_ms`` keep their old meaning (end to
        end, look-ahead included); ``processing_latency_*_ms`` and ``lookahead_*`` split it."""
        busy = sum(self.stage_seconds.values()) or 1.0
        ahead = self.lookahead_frames
        return {
            "frames": self.frames,
            "frames_with_person": self.frames_with_person,
            "dropped": self.dropped,
            "damaged": self.damaged,
            "wall_time": round(self.wall_time, 3),
            "fps": round(self.fps, 2),
            "latency_p50_ms": _ms(self.latency_percentile(50)),
            "latency_p95_ms": _ms(self.latency_percentile(95)),
            "processing_latency_p50_ms": _ms(self.processing_latency_percentile(50)),
            "processing_latency_p95_ms": _ms(self.processing_latency_percentile(95)),
            "lookahead_frames_p50": int(np.median(ahead)) if ahead else None,
            "lookahead_frames_max": max(ahead) if ahead else None,
            "lookahead_p50_ms": _ms(float(np.median(self.lookahead_seconds)) if ahead else None),
            "stage_share": {k: round(v / busy, 3) for k, v in self.stage_seconds.items()},
        }


@dataclass(frozen=True)
class _Wait:
    """What one result waited for: ``frames`` later frames spanning ``seconds`` of video, then
    ``processing`` seconds from the newest of them leaving the decoder (``None``: no capture time)."""

    frames: int
    seconds: float
    processing: float | None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 2)


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; other devices are checked and returned."""
    import torch

    check_device(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: CUDA is not available on this machine")
    return device


class Pipeline:
    """Video in, :class:`~streampose.types.PoseFrame` out.  See the module docstring."""

    def __init__(self, config: PipelineConfig | None = None, *, pose2d=None, lifter=None, refiner=None,
                 **overrides):
        """Build the stages named by ``config`` (keyword ``overrides`` replace single fields).

        ``pose2d``, ``lifter`` and ``refiner`` accept ready-made stage objects instead (any object
        with the same methods), e.g. to plug in your own 2D detector.
        """
        known = {f.name for f in fields(PipelineConfig)}
        for key in overrides:
            if key not in known:
                raise TypeError(f"unknown Pipeline option {key!r}")
        # replace() builds a new config, so the overrides are validated like any config.
        self.config = cfg = replace(config or PipelineConfig(), **overrides)
        _set_torch_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        self.pose2d = pose2d if pose2d is not None else _default_pose2d(cfg, self.device)
        self.lifter = lifter if lifter is not None else _default_lifter(cfg, self.device)
        if refiner is None and cfg.refine:
            from streampose.refine import load_refiner

            refiner = load_refiner("default", device=self.device)
        self.refiner = refiner
        from streampose.camera import CameraOptions

        self.camera_options = CameraOptions.from_config(cfg)
        self.stats = PipelineStats()
        self._source_info: VideoInfo | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._reader = None
        self._source_channel: Channel | None = None
        self._closed = False
        self._reset(fps=30.0)

    def describe_models(self) -> dict[str, Any]:
        """The models in use, for the JSONL header."""
        return {
            "pose2d": getattr(self.pose2d, "description", "blazepose_full"),
            "lifter": getattr(self.lifter, "description", self.config.lifter),
            "lifter_causal": self.config.causal,
            "lifter_receptive_field": getattr(self.lifter, "receptive_field", None),
            "refiner": None if self.refiner is None else getattr(self.refiner, "description", "default"),
            "smoothing": self.config.smoothing,
            "device": self.device,
        }

    def describe_camera(self, width: int, height: int) -> dict[str, Any]:
        """The camera model used for ``width x height`` frames and how the root is obtained, for the
        JSONL header (``{"camera": ..., "root": ...}``)."""
        camera = self.camera_options.resolve(width, height)
        root: dict[str, Any] = {"method": self.config.root}
        if self.config.root == "geometry":
            root["scale"] = "lifter" if self.config.person_height is None else "height"
            if self.config.person_height is not None:
                root["person_height_m"] = self.config.person_height
        if not camera.given:  # the depth scales with the assumed focal length
            root["depth_relative_uncertainty"] = round(camera.relative_uncertainty, 3)
        return {"camera": camera.to_header(), "root": root}

    @property
    def source_info(self) -> VideoInfo | None:
        """What the reader knew about the source of the current/last :meth:`run`."""
        return self._source_info

    # ---------------------------------------------------------------- push API

    def push(self, rgb: np.ndarray, t: float) -> list[PoseFrame]:
        """Process one RGB frame ``(H, W, 3)`` uint8 taken at time ``t`` seconds.

        Returns the frames that became final (none yet, one, or several), in order.
        """
        rgb = np.ascontiguousarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise StreamposeError(f"push() needs an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        if self.stats.started is None:
            self.stats.started = time.perf_counter()
        frame = Frame(index=self._index, time=float(t), image=rgb, capture_time=time.perf_counter())
        self._index += 1
        return self._handed_over(self._waited(self._track(frame, self._detect(frame))))

    def flush(self) -> list[PoseFrame]:
        """End of stream: finish every track (end-of-sequence padding) and return the rest."""
        return self._handed_over(self._waited(self._finish()))

    # ---------------------------------------------------------------- iterate API

    def run(self, source: Any, *, start_time: float | None = None) -> Iterator[PoseFrame]:
        """Process a whole source and yield :class:`PoseFrame` in order.

        ``source`` is a path, URL, webcam (``0`` / ``"webcam:0"``), an open
        :class:`~streampose.reader.FrameReader`, or any iterable of ``(rgb, t)`` pairs or
        :class:`~streampose.types.Frame` objects.
        """
        self.stats = PipelineStats()
        self._stop.clear()
        frames = self._open(source, start_time)
        people: Channel[tuple[Frame, list[Person2D]]] = Channel(self.config.queue_size, stop=self._stop)
        out: Channel[tuple[PoseFrame, _Wait]] = Channel(self.config.queue_size, stop=self._stop)
        self.stats.started = time.perf_counter()

        def pose2d_stage() -> None:
            for frame in frames:
                if not people.put((frame, self._detect(frame))):
                    return
            people.put_end()

        def post_stage() -> None:
            for frame, found in people.receive():
                for item in self._waited(self._track(frame, found)):
                    if not out.put(item):
                        return
            if self._stop.is_set():
                return
            for item in self._waited(self._finish()):
                if not out.put(item):
                    return
            out.put_end()

        self._threads += [start_stage("pose2d", pose2d_stage, people), start_stage("post", post_stage, out)]
        try:
            for pose_frame, wait in out.receive(producer_alive=lambda: any(t.is_alive() for t in self._threads)):
                self.stats.count(pose_frame, wait)
                yield pose_frame
        except StageFailed as failed:
            raise StageError(failed.failure.stage, failed.failure.error) from failed.failure.error
        finally:
            self.stats.wall_time = time.perf_counter() - self.stats.started
            self._shutdown()

    # ---------------------------------------------------------------- stages

    def _reset(self, fps: float) -> None:
        self._tracker = Tracker(
            self.lifter, refiner=self.refiner, smoothing=self.config.smoothing, causal=self.config.causal,
            max_people=self.config.max_people, smooth_2d=self.config.smooth_2d,
            keep_images=self.config.keep_images, fps=fps, world_fusion=self.config.world_fusion,
            bone_lengths=self.config.bone_lengths, reproject=self.config.reproject,
            resample_fps=self.config.resample_fps, camera=self.camera_options,
            person_height=self.config.person_height, root=self.config.root,
        )
        self._index = 0
        self._newest: Frame | None = None  # the latest frame given to the tracker

    def _detect(self, frame: Frame) -> list[Person2D]:
        started = time.perf_counter()
        people = self.pose2d.process(frame)
        self.stats.stage_seconds["pose2d"] += time.perf_counter() - started
        return people

    def _track(self, frame: Frame, people: list[Person2D]) -> list[PoseFrame]:
        self._newest = frame
        final = self._tracker.push(frame, people)
        self.stats.stage_seconds.update(self._tracker.seconds)
        return final

    def _finish(self) -> list[PoseFrame]:
        final = self._tracker.flush()
        self.stats.stage_seconds.update(self._tracker.seconds)
        return final

    def _waited(self, pose_frames: list[PoseFrame]) -> list[tuple[PoseFrame, _Wait]]:
        """Pair each frame that just became final with what it waited for.

        Whatever made it final arrived with the newest frame given to the tracker (or with the end
        of the stream, after that frame), so the look-ahead is measured up to that frame.
        """
        newest, now = self._newest, time.perf_counter()
        if newest is None:
            return [(f, _Wait(0, 0.0, None)) for f in pose_frames]
        processing = now - newest.capture_time if newest.capture_time else None
        return [(f, _Wait(max(newest.index - f.index, 0), max(newest.time - f.time, 0.0), processing))
                for f in pose_frames]

    def _handed_over(self, waited: list[tuple[PoseFrame, _Wait]]) -> list[PoseFrame]:
        for pose_frame, wait in waited:
            self.stats.count(pose_frame, wait)
        return [pose_frame for pose_frame, _ in waited]

    def _open(self, source: Any, start_time: float | None) -> Iterator[Frame]:
        """The frames of ``source``, as the 2D thread will read them; starts any thread they need."""
        from streampose.reader import FrameReader, is_live_source, open_source

        if isinstance(source, (str, Path, int, FrameReader)):
            # An already-open reader is accepted so that callers (the CLI) can report input
            # errors before paying for model loading.  A file can always wait for the stages, so
            # only a live source is opened to drop frames.
            self._reader = source if isinstance(source, FrameReader) else open_source(
                source, realtime=self.config.realtime and is_live_source(source),
                queue_size=self.config.queue_size, max_frames=self.config.max_frames, start_time=start_time,
            )
            self._source_info = self._reader.info
            self._reset(fps=float(self._reader.info.fps or 30.0))
            return labelled("reader", self._reader)
        self._reset(fps=30.0)
        frames = _frames_of(source, self.config.max_frames)
        if not self.config.realtime:
            return labelled("reader", frames)
        # A live iterable (a user's camera loop) must never wait for the models: its own thread
        # copies it into a channel that drops the oldest frame when full.
        self._source_channel = Channel(self.config.queue_size, drop_oldest=True, stop=self._stop)
        self._threads.append(pump(frames, self._source_channel, "reader"))
        return self._source_channel.receive()

    # ---------------------------------------------------------------- shutdown

    def _shutdown(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self.stats.dropped, self.stats.damaged = self._reader.stats.dropped, self._reader.stats.damaged
            self._reader.close()
            self._reader = None
        if self._source_channel is not None:
            self.stats.dropped = self._source_channel.dropped
            self._source_channel = None
        for thread in self._threads:
            thread.join(timeout=5.0)
        self._threads = []

    def close(self) -> None:
        """Stop all threads and release the source (camera, file)."""
        if not self._closed:
            self._shutdown()
            self._closed = True

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _set_torch_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    elif (os.cpu_count() or 1) <= 2:
        # On two cores the decode thread needs one: a single torch thread was faster than two
        # in every interleaved measurement (benchmarks/pose2d.py).
        torch.set_num_threads(1)


def _default_pose2d(cfg: PipelineConfig, device: str):
    # Imported here: a pipeline given its own 2D stage never loads BlazePose's.
    from streampose.pose2d import PoseEstimator2D

    options: dict[str, Any] = {"device": device, "max_people": cfg.max_people,
                               "want_mask": cfg.want_mask, "precision": cfg.precision}
    if cfg.readout is not None:
        options["readout"] = cfg.readout
    return PoseEstimator2D(**options)


def _default_lifter(cfg: PipelineConfig, device: str):
    from streampose.lifter import load_lifter

    # Offline runs also lift the mirrored input and average (test-time flip): the lifter is ~2% of
    # the pipeline's time, and it lowered held-out MPJPE by 1-6 mm (models/*.md).
    return load_lifter(cfg.lifter, causal=cfg.causal, device=device, test_time_flip=not cfg.causal)


def _frames_of(source: Iterable, max_frames: int | None) -> Iterator[Frame]:
    """``Frame`` records from an iterable of ``Frame`` or ``(rgb, t)`` pairs."""
    for index, item in enumerate(source):
        if max_frames is not None and index >= max_frames:
            return
        if isinstance(item, Frame):
            yield item
        else:
            rgb, t = item
            yield Frame(index=index, time=float(t), image=np.ascontiguousarray(rgb),
                        capture_time=time.perf_counter())
