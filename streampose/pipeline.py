"""The streaming pipeline: reader -> 2D -> tracking + 3D lifter (+ refiner) -> smoothing -> PoseFrames.

Two ways in, one set of stage functions, so they give identical results:

* **iterate**: ``for pose_frame in pipe.run("video.mp4")`` -- decode, 2D and post-processing run in
  their own threads, connected by bounded queues.  Offline mode never drops a frame (a full queue
  blocks the stage before it).  ``realtime=True`` lets the reader drop the oldest undecoded frames
  when the consumer falls behind, so latency stays bounded; drops are counted in ``pipe.stats``.
* **push**: ``pipe.push(rgb, t)`` runs the same stages in the caller's thread and returns whatever
  frames became final; ``pipe.flush()`` at the end of the stream.

A symmetric (offline) lifter needs future frames, so its output for frame ``t`` is final ``lag``
frames later; the causal (live) lifter finalises each frame at once.

An exception in any stage stops every thread and is re-raised in the caller as
:class:`~streampose.errors.StageError` naming the stage.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from streampose.errors import InputError, StageError, StreamposeError
from streampose.types import Frame, Person, Person2D, PoseFrame, VideoInfo

log = logging.getLogger(__name__)

_POLL_S = 0.05  # how often blocked stages re-check the stop flag: bounds shutdown time
_PERSON_HEIGHT_M = 1.7  # the smoothers' scale for metric 3D (their settings are relative to size)


@dataclass
class PipelineConfig:
    """What to run and how.

    Attributes:
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        causal: use the causal (live) lifter: no look-ahead, each frame final at once.  The
            symmetric (offline) lifter is more accurate and outputs each frame ``lag`` frames late.
        realtime: live sources: drop the oldest frames instead of blocking when behind.
        lifter: shipped model name or path of a lifter weights file.
        smoothing: ``"kalman"``, ``"oneeuro"`` or ``"none"``; applied to each track's 2D keypoints
            before lifting and to its 3D output.
        refine: run the patch-based refiner on the lifter's output.
        max_people: people to track at once.
        readout: 2D readout, ``"integral"`` (soft-argmax) or ``"regression"``; ``None`` = default.
        precision: 2D networks' arithmetic: ``"fp32"`` (default, exact), ``"bf16"`` (faster on CPUs
            with native bf16 units; keypoints move by ~1% of the crop), ``"mixed"``, ``"auto"``.
        keep_images: attach each frame's RGB image to its ``PoseFrame`` (``.image``), for drawing.
        want_mask: ask the 2D stage for person segmentation masks (``Person.mask``).
        queue_size: capacity of each inter-stage queue.
        max_frames: stop after this many frames.
        threads: torch CPU threads (``None``: 1 on machines with two cores or fewer, else torch's
            default).  Note that torch's thread count is process-wide.
        smooth_2d: feed the lifter the smoothed 2D keypoints instead of the raw ones.  Off by
            default: on the shared videos it added 1-2 frames of 3D lag, and offline it did not
            lower 3D jitter (README, Smoothing).  The reported 2D is smoothed either way.
    """

    device: str = "auto"
    causal: bool = False
    realtime: bool = False
    lifter: str = "default"
    smoothing: str = "kalman"
    refine: bool = False
    max_people: int = 1
    readout: str | None = None
    precision: str = "fp32"
    keep_images: bool = False
    want_mask: bool = False
    queue_size: int = 8
    max_frames: int | None = None
    threads: int | None = None
    smooth_2d: bool = False


@dataclass
class PipelineStats:
    """Counters and timings of one run; ``latency`` is capture -> final result, per frame."""

    frames: int = 0
    frames_with_person: int = 0
    dropped: int = 0
    damaged: int = 0
    wall_time: float = 0.0
    latencies: list[float] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=lambda: {"pose2d": 0.0, "lift": 0.0, "post": 0.0})

    def latency_percentile(self, q: float) -> float | None:
        return float(np.percentile(self.latencies, q)) if self.latencies else None

    @property
    def fps(self) -> float:
        return self.frames / self.wall_time if self.wall_time > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        busy = sum(self.stage_seconds.values()) or 1.0
        return {
            "frames": self.frames,
            "frames_with_person": self.frames_with_person,
            "dropped": self.dropped,
            "damaged": self.damaged,
            "wall_time": round(self.wall_time, 3),
            "fps": round(self.fps, 2),
            "latency_p50_ms": _ms(self.latency_percentile(50)),
            "latency_p95_ms": _ms(self.latency_percentile(95)),
            "stage_share": {k: round(v / busy, 3) for k, v in self.stage_seconds.items()},
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 2)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: CUDA is not available on this machine")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise StreamposeError(f"unknown device {device!r}: use auto, cpu or cuda")
    return device


# --------------------------------------------------------------------------------------------
# Tracking: which 2D detection continues which person.


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_tracks(previous: list[np.ndarray], current: list[np.ndarray], min_iou: float = 0.2) -> dict[int, int]:
    """Greedy IoU matching of boxes; returns ``{current_index: previous_index}``.

    Greedy by descending IoU is enough for the few people BlazePose tracks; a person who jumps
    farther than their own box between frames starts a new track.
    """
    pairs = sorted(
        ((_iou(p, c), pi, ci) for pi, p in enumerate(previous) for ci, c in enumerate(current)),
        reverse=True,
    )
    matched: dict[int, int] = {}
    used_prev: set[int] = set()
    for iou, pi, ci in pairs:
        if iou < min_iou:
            break
        if pi not in used_prev and ci not in matched:
            matched[ci] = pi
            used_prev.add(pi)
    return matched


@dataclass
class _PendingFrame:
    """A frame whose people wait for their 3D (the symmetric lifter answers ``lag`` frames late)."""

    pose_frame: PoseFrame
    capture_time: float
    image: np.ndarray | None
    waiting: int  # people still without 3D


class _Track:
    """One person over time: its lifter stream, smoothers and the people awaiting 3D."""

    def __init__(self, track_id: int, lifter_stream, smoother_2d, smoother_3d):
        self.id = track_id
        self.stream = lifter_stream
        self.smoother_2d = smoother_2d
        self.smoother_3d = smoother_3d
        self.bbox: np.ndarray | None = None
        self.last_time: float | None = None
        # People pushed into the lifter, oldest first, waiting for their 3D ...
        self.awaiting: deque[tuple[_PendingFrame, Person]] = deque()
        # ... and people lifted, waiting for the (possibly fixed-lag) 3D smoother.
        self.smoothing: deque[tuple[_PendingFrame, Person]] = deque()


# --------------------------------------------------------------------------------------------


class Pipeline:
    """Video in, :class:`~streampose.types.PoseFrame` out.  See the module docstring."""

    def __init__(self, config: PipelineConfig | None = None, *, pose2d=None, lifter=None, refiner=None,
                 **overrides):
        """Build the stages named by ``config`` (keyword ``overrides`` patch single fields).

        ``pose2d``, ``lifter`` and ``refiner`` accept ready-made stage objects instead (any object
        with the same methods), e.g. to plug in your own 2D detector.
        """
        self.config = config or PipelineConfig()
        for key, value in overrides.items():
            if not hasattr(self.config, key):
                raise TypeError(f"unknown Pipeline option {key!r}")
            setattr(self.config, key, value)
        cfg = self.config
        import torch

        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        elif (os.cpu_count() or 1) <= 2:
            # On two cores the decode thread needs one: a single torch thread was faster than two
            # in every interleaved measurement (benchmarks/pose2d.py).
            torch.set_num_threads(1)
        self.device = resolve_device(cfg.device)

        # Stage imports are local so that `import streampose` stays light and each stage is only
        # loaded when a pipeline needs it.
        if pose2d is None:
            from streampose.pose2d import PoseEstimator2D

            options: dict[str, Any] = {"device": self.device, "max_people": cfg.max_people,
                                       "want_mask": cfg.want_mask, "precision": cfg.precision}
            if cfg.readout is not None:
                options["readout"] = cfg.readout
            pose2d = PoseEstimator2D(**options)
        if lifter is None:
            from streampose.lifter import load_lifter

            # Offline runs also lift the mirrored input and average (test-time flip): the lifter is
            # ~2% of the pipeline's time, and it lowered held-out MPJPE by 1-6 mm (models/*.md).
            lifter = load_lifter(cfg.lifter, causal=cfg.causal, device=self.device, test_time_flip=not cfg.causal)
        if refiner is None and cfg.refine:
            from streampose.refine import load_refiner

            refiner = load_refiner("default", device=self.device)
        self.pose2d = pose2d
        self.lifter = lifter
        self.refiner = refiner

        self._smooth_2d = bool(cfg.smooth_2d)
        self.stats = PipelineStats()
        self._source_info: VideoInfo | None = None
        self._reset_stream_state()
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._reader = None

    # ---------------------------------------------------------------- description for headers

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

    @property
    def source_info(self) -> VideoInfo | None:
        """What the reader knew about the source of the current/last :meth:`run`."""
        return self._source_info

    # ---------------------------------------------------------------- stage functions

    def _reset_stream_state(self) -> None:
        self._tracks: dict[int, _Track] = {}
        self._next_track_id = 0
        self._pending: deque[_PendingFrame] = deque()
        self._image_size: tuple[int, int] | None = None
        self._fps: float = 30.0
        self._index = 0

    def _stage_pose2d(self, frame: Frame) -> list[Person2D]:
        started = time.perf_counter()
        people = self.pose2d.process(frame)
        self.stats.stage_seconds["pose2d"] += time.perf_counter() - started
        return people

    def _new_track(self) -> _Track:
        from streampose.smoothing import make_smoother

        kind = self.config.smoothing
        # 2D is always smoothed causally: the lifter needs each frame's keypoints at once.  The 3D
        # output of the offline pipeline may wait (the symmetric lifter already waits), so it gets
        # the fixed-lag Kalman, which measured far better than the live filter (README, Smoothing).
        offline_3d = not self.config.causal and kind == "kalman"
        track = _Track(
            self._next_track_id,
            self.lifter.stream(self._image_size),
            make_smoother(kind, fps=self._fps, causal=True),
            make_smoother(kind, fps=self._fps, causal=not offline_3d),
        )
        self._next_track_id += 1
        self._tracks[track.id] = track
        return track

    def _stage_post(self, frame: Frame, people2d: list[Person2D]) -> list[PoseFrame]:
        """Tracking, smoothing and lifting for one frame; returns frames that became final."""
        started = time.perf_counter()
        if self._image_size is None:
            self._image_size = (frame.image.shape[1], frame.image.shape[0])
        keep_image = self.config.keep_images or self.refiner is not None
        pending = _PendingFrame(
            PoseFrame(index=frame.index, time=frame.time), frame.capture_time,
            frame.image if keep_image else None, waiting=0,
        )
        self._pending.append(pending)

        track_list = list(self._tracks.values())
        people2d = sorted(people2d, key=lambda p: -p.score)[: self.config.max_people]
        matches = match_tracks([t.bbox for t in track_list], [p.bbox for p in people2d])
        continuing = {track_list[pi].id for pi in matches.values()}
        for track in track_list:
            if track.id not in continuing:  # person lost: finish their lifter stream
                self._finish_track(track)

        lift_seconds = 0.0
        for ci, person2d in enumerate(people2d):
            track = track_list[matches[ci]] if ci in matches else None
            if track is not None and track.last_time is not None and frame.time <= track.last_time:
                # Timestamps that do not increase (broken stream, a user's push clock) would break
                # the smoothers' dt; such a frame starts the person's track afresh.
                self._finish_track(track)
                track = None
            if track is None:
                track = self._new_track()
            track.bbox = np.asarray(person2d.bbox, dtype=np.float32)
            track.last_time = frame.time
            raw2d = np.asarray(person2d.keypoints2d, dtype=np.float32)
            keypoints2d = raw2d.copy()  # reported 2D: smoothed (causally) like the 3D
            size = max(float(person2d.bbox[3] - person2d.bbox[1]), 1.0)
            keypoints2d[:, :2] = track.smoother_2d.push(frame.time, raw2d[:, :2], raw2d[:, 2], size)
            # The lifter sees raw 2D by default: its temporal convolutions smooth on their own, and a
            # causal 2D filter in front of it only added lag (measured, README: Smoothing).
            lifter_input = keypoints2d if self._smooth_2d else raw2d
            if getattr(self.lifter, "input_layout", "h36m17") == "coco17":
                # VideoPose3D's COCO checkpoints: feed the BlazePose landmarks in COCO order.
                lifter_input = _coco_keypoints(person2d)
            person = Person(
                id=track.id, score=float(person2d.score), bbox=np.asarray(person2d.bbox, dtype=np.float32),
                keypoints2d=keypoints2d, landmarks33=person2d.landmarks33, world33=person2d.world33,
                mask=person2d.mask,
            )
            pending.pose_frame.people.append(person)
            pending.waiting += 1
            track.awaiting.append((pending, person))
            lift_started = time.perf_counter()
            results = track.stream.push(lifter_input)
            lift_seconds += time.perf_counter() - lift_started
            self._deliver(track, results)
        self.stats.stage_seconds["lift"] += lift_seconds
        self.stats.stage_seconds["post"] += time.perf_counter() - started - lift_seconds
        return self._pop_final()

    def _deliver(self, track: _Track, results) -> None:
        """Hand lifter results (in frame order) on through refiner and 3D smoother."""
        for result in results:
            pending, person = track.awaiting.popleft()
            keypoints3d = np.asarray(result.keypoints3d, dtype=np.float32)
            if self.refiner is not None and pending.image is not None:
                keypoints3d = np.asarray(
                    self.refiner.refine(pending.image, person.keypoints2d, keypoints3d, person.mask), dtype=np.float32
                )
            person.root = None if result.root is None else np.asarray(result.root, dtype=np.float32)
            track.smoothing.append((pending, person))
            smoothed = track.smoother_3d.push(pending.pose_frame.time, keypoints3d, None, _PERSON_HEIGHT_M)
            if smoothed is not None:
                self._finish_person(track, smoothed)

    def _finish_person(self, track: _Track, keypoints3d: np.ndarray) -> None:
        pending, person = track.smoothing.popleft()
        # Smoothing each joint independently may nudge the root; the output is root-relative.
        person.keypoints3d = (keypoints3d - keypoints3d[:1]).astype(np.float32)
        pending.waiting -= 1

    def _finish_track(self, track: _Track) -> None:
        """The person is gone: drain the lifter (end padding) and the smoother."""
        self._deliver(track, track.stream.flush())
        for keypoints3d in track.smoother_3d.flush():
            self._finish_person(track, keypoints3d)
        del self._tracks[track.id]

    def _pop_final(self) -> list[PoseFrame]:
        done = []
        now = time.perf_counter()
        while self._pending and self._pending[0].waiting == 0:
            pending = self._pending.popleft()
            pose_frame = pending.pose_frame
            if pending.capture_time:
                pose_frame.latency = now - pending.capture_time
                self.stats.latencies.append(pose_frame.latency)
            if self.config.keep_images:
                pose_frame.image = pending.image
            self.stats.frames += 1
            self.stats.frames_with_person += bool(pose_frame.people)
            done.append(pose_frame)
        return done

    def _flush_all(self) -> list[PoseFrame]:
        for track in list(self._tracks.values()):
            self._finish_track(track)
        return self._pop_final()

    # ---------------------------------------------------------------- push API

    def push(self, rgb: np.ndarray, t: float) -> list[PoseFrame]:
        """Process one RGB frame ``(H, W, 3)`` uint8 taken at time ``t`` seconds.

        Returns the frames that became final (none yet, one, or several), in order.
        """
        rgb = np.ascontiguousarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise StreamposeError(f"push() needs an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        frame = Frame(index=self._index, time=float(t), image=rgb, capture_time=time.perf_counter())
        self._index += 1
        return self._stage_post(frame, self._stage_pose2d(frame))

    def flush(self) -> list[PoseFrame]:
        """End of stream: finish every track (end-of-sequence padding) and return the rest."""
        return self._flush_all()

    # ---------------------------------------------------------------- iterate API

    def run(self, source: Any, *, start_time: float | None = None) -> Iterator[PoseFrame]:
        """Process a whole source and yield :class:`PoseFrame` in order.

        ``source`` is a path, URL, webcam (``0`` / ``"webcam:0"``), or any iterable of
        ``(rgb, t)`` pairs or :class:`~streampose.types.Frame` objects.
        """
        self._reset_stream_state()
        self._stop.clear()
        self.stats = PipelineStats()
        frames = self._open(source, start_time)
        people_q: queue.Queue = queue.Queue(self.config.queue_size)
        out_q: queue.Queue = queue.Queue(self.config.queue_size)
        started = time.perf_counter()

        def pose2d_stage() -> None:
            source_frames = iter(frames)
            while True:
                try:
                    frame = next(source_frames)
                except StopIteration:
                    break
                except BaseException as error:  # noqa: BLE001 -- name the stage that failed
                    raise _StageFailure("reader", error) from error
                if not self._put(people_q, (frame, self._stage_pose2d(frame))):
                    return
            self._put(people_q, _END)

        def post_stage() -> None:
            while True:
                item = self._get(people_q)
                if item is _END or item is None:
                    break
                if isinstance(item, _Failure):
                    self._put(out_q, item)
                    return
                frame, people = item
                for pose_frame in self._stage_post(frame, people):
                    if not self._put(out_q, pose_frame):
                        return
            if item is _END:
                for pose_frame in self._flush_all():
                    if not self._put(out_q, pose_frame):
                        return
                self._put(out_q, _END)

        self._threads = [
            self._spawn("pose2d", pose2d_stage, people_q),
            self._spawn("post", post_stage, out_q),
        ]
        try:
            while True:
                item = self._get(out_q, wait_forever=True)
                if item is _END:
                    break
                if isinstance(item, _Failure):
                    raise StageError(item.stage, item.error) from item.error
                yield item
        finally:
            self.stats.wall_time = time.perf_counter() - started
            self._shutdown()

    def _open(self, source: Any, start_time: float | None) -> Iterable[Frame]:
        from streampose.reader import FrameReader, open_source

        if isinstance(source, (str, Path, int, FrameReader)):
            # An already-open reader is accepted so that callers (the CLI) can report input
            # errors before paying for model loading.
            self._reader = source if isinstance(source, FrameReader) else open_source(
                source, realtime=self.config.realtime, queue_size=self.config.queue_size,
                max_frames=self.config.max_frames, start_time=start_time,
            )
            self._source_info = self._reader.info
            if self._reader.info.fps:
                self._fps = float(self._reader.info.fps)
            return self._reader_frames(self._reader)
        frames = self._iterable_frames(source)
        return self._newest_first(frames) if self.config.realtime else frames

    def _newest_first(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        """Live sources we do not decode ourselves (a user's camera iterator): pull them in a thread
        into a bounded buffer that drops its oldest frame when full, so a slow model never makes
        the camera wait and latency stays bounded.  Drops are counted in ``stats.dropped``."""
        buffer: deque = deque()
        ready = threading.Condition()
        finished: list[BaseException | None] = []

        def pull() -> None:
            error = None
            try:
                for frame in frames:
                    with ready:
                        if len(buffer) >= self.config.queue_size:
                            buffer.popleft()
                            self.stats.dropped += 1
                        buffer.append(frame)
                        ready.notify()
                    if self._stop.is_set():
                        return
            except BaseException as exc:  # noqa: BLE001 -- handed to the consumer below
                error = exc
            with ready:
                finished.append(error)
                ready.notify()

        puller = threading.Thread(target=pull, name="streampose-source", daemon=True)
        puller.start()
        self._threads.append(puller)
        while True:
            with ready:
                while not buffer and not finished:
                    ready.wait(_POLL_S)
                    if self._stop.is_set():
                        return
                if buffer:
                    frame = buffer.popleft()
                elif finished[0] is not None:
                    raise finished[0]
                else:
                    return
            yield frame

    def _reader_frames(self, reader) -> Iterator[Frame]:
        try:
            for frame in reader:
                yield frame
        finally:
            self.stats.dropped = reader.stats.dropped
            self.stats.damaged = reader.stats.damaged

    def _iterable_frames(self, source: Iterable) -> Iterator[Frame]:
        for index, item in enumerate(source):
            if self.config.max_frames is not None and index >= self.config.max_frames:
                return
            if isinstance(item, Frame):
                yield item
            else:
                rgb, t = item
                yield Frame(index=index, time=float(t), image=np.ascontiguousarray(rgb),
                            capture_time=time.perf_counter())

    # ---------------------------------------------------------------- thread plumbing

    def _spawn(self, stage: str, body: Callable[[], None], downstream: queue.Queue) -> threading.Thread:
        def guarded() -> None:
            try:
                body()
            except _StageFailure as failure:
                self._put(downstream, _Failure(failure.stage, failure.error), force=True)
            except BaseException as error:  # noqa: BLE001 -- every failure must reach the caller
                self._put(downstream, _Failure(stage, error), force=True)

        thread = threading.Thread(target=guarded, name=f"streampose-{stage}", daemon=True)
        thread.start()
        return thread

    def _put(self, q: queue.Queue, item: Any, force: bool = False) -> bool:
        """Blocking put that gives up when the pipeline stops (so no stage hangs on a full queue)."""
        while not self._stop.is_set() or force:
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                if force:  # a failure must get through: make room by dropping the oldest item
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        pass
        return False

    def _get(self, q: queue.Queue, wait_forever: bool = False) -> Any:
        while wait_forever or not self._stop.is_set():
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                if not wait_forever and self._stop.is_set():
                    return None
                if wait_forever and not any(t.is_alive() for t in self._threads) and q.empty():
                    return _END  # every producer is gone (after a failure was already delivered)
        return None

    def _shutdown(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
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


def _coco_keypoints(person2d: Person2D) -> np.ndarray:
    """``(17, 3)`` COCO-order pixels + confidence from the BlazePose landmarks of ``person2d``."""
    from streampose.skeleton import BLAZEPOSE_TO_COCO, map_confidence, map_joints

    if person2d.landmarks33 is None:
        raise StreamposeError("a COCO-input lifter needs BlazePose landmarks from the 2D stage")
    landmarks = np.asarray(person2d.landmarks33, dtype=np.float32)
    xy = map_joints(landmarks[:, :2], BLAZEPOSE_TO_COCO)
    confidence = map_confidence(landmarks[:, 3], BLAZEPOSE_TO_COCO)
    return np.concatenate([xy, confidence[:, None]], axis=1).astype(np.float32)


class _EndOfStream:
    def __repr__(self) -> str:
        return "<end of stream>"


_END = _EndOfStream()


@dataclass
class _Failure:
    stage: str
    error: BaseException


class _StageFailure(Exception):
    """Carries the name of an upstream stage (the reader) out of the thread that drove it."""

    def __init__(self, stage: str, error: BaseException):
        super().__init__(stage)
        self.stage = stage
        self.error = error
