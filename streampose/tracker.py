"""People across frames, from the 2D stage's output to final 3D: match, lift, refine, smooth.

:class:`Tracker` is synchronous and holds no threads: ``push(frame, people2d)`` returns the
:class:`~streampose.types.PoseFrame` records that became final, in frame order, and ``flush()``
returns the rest at the end of the stream.  The pipeline calls it from one thread (see
:mod:`streampose.pipeline`); tests call it directly.

Per frame, for each of the ``max_people`` best-scoring people:

1. **match** the person to a track by box overlap (:func:`match_tracks`); a track nobody continues
   is finished (its lifter stream and smoothers drained);
2. **smooth 2D** causally with the track's 2D smoother (the reported 2D);
3. **lift**: push the raw 2D (or the smoothed 2D, ``smooth_2d=True``), in the lifter's input
   layout, into the track's :class:`~streampose.lifter.LifterStream`; a symmetric lifter answers
   ``lag`` frames late;
4. **refine** (optional) each lifted pose with the frame's image;
5. **correct** (each optional, :mod:`streampose.lifter.fusion` and :mod:`streampose.lifter.reproject`):
   average with BlazePose's world landmarks, impose the track's bone lengths, make the pose
   project onto its 2D;
6. **root**: the Hip's camera-space position, solved from the 2D, the pose and the camera's
   intrinsics (:mod:`streampose.lifter.root`; given or assumed camera), or the lifter's trajectory
   model (``root="trajectory"``);
7. **smooth 3D** with the track's 3D smoother (fixed-lag Kalman offline, so it may answer late too);
   the root is smoothed with it, as one more row.

A frame is final once all of its people have their 3D; frames leave in order, so one slow track
holds back the frames after it.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from streampose.camera import CameraModel, CameraOptions, undistort_points
from streampose.lifter.corrections import PoseCorrections
from streampose.lifter.layout import lifter_input
from streampose.lifter.root import RootSolver
from streampose.settings import Smoothing
from streampose.smoothing import make_smoother
from streampose.types import Frame, Person, Person2D, PoseFrame

# The smoothers' settings are relative to the person's size; metric 3D has no box to measure, so
# a typical standing height stands in.
_PERSON_HEIGHT_M = 1.7


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``[x0, y0, x1, y1]`` boxes."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_tracks(previous: list[np.ndarray], current: list[np.ndarray], min_iou: float = 0.2) -> dict[int, int]:
    """Greedy IoU matching of ``(4,)`` boxes; returns ``{current_index: previous_index}``.

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
    """A frame whose people wait for their 3D."""

    pose_frame: PoseFrame
    capture_time: float
    image: np.ndarray | None
    waiting: int  # people still without 3D


class _Track:
    """One person over time: its lifter stream, smoothers and the people awaiting 3D."""

    def __init__(self, track_id: int, lifter_stream: Any, smoother_2d: Any, smoother_3d: Any,
                 corrections: PoseCorrections, root_solver: RootSolver | None = None):
        self.id = track_id
        self.stream = lifter_stream
        self.smoother_2d = smoother_2d
        self.smoother_3d = smoother_3d
        self.bbox: np.ndarray | None = None
        self.last_time: float | None = None
        self.corrections = corrections
        self.root_solver = root_solver
        # People pushed into the lifter, oldest first, waiting for their 3D ...
        self.awaiting: deque[tuple[_PendingFrame, Person]] = deque()
        # ... and people lifted, waiting for the (possibly fixed-lag) 3D smoother.
        self.smoothing: deque[tuple[_PendingFrame, Person]] = deque()


class Tracker:
    """Per-person matching, lifting, refining and smoothing over one stream; see the module docstring.

    Args:
        lifter: a :class:`~streampose.lifter.Lifter` (or any object with ``stream(image_size)`` and,
            optionally, ``input_layout``).
        refiner: a refiner (``refine(image, kp2d, kp3d, mask)``), or ``None``.
        smoothing: the smoother kind for 2D and 3D.
        causal: the stream is live: the 3D smoother must answer at once.  Otherwise a ``"kalman"``
            3D smoother is the fixed-lag one.
        max_people: the best-scoring people kept per frame.
        smooth_2d: lift the smoothed 2D instead of the raw 2D.
        keep_images: attach each frame's image to its ``PoseFrame``.
        fps: nominal frame rate, for the smoothers' time-based settings.
        world_fusion, bone_lengths, reproject: the 3D corrections (see ``PipelineConfig``).
        resample_fps: give the lifter streams the frame rate, so slow video is lifted at a trained rate.
        camera: what is known about the camera (``None``: nothing; a camera is then assumed).  Its
            distortion is removed from the lifter's 2D input.
        person_height: the subject's standing height (metres) for the body scale, or ``None``.
        root: ``"geometry"`` (default) or ``"trajectory"``: where ``Person.root`` comes from.

    Attributes:
        camera_model: the resolved :class:`~streampose.camera.CameraModel`, once the first frame
            gave the image size.

    Attributes:
        seconds: time spent, ``{"lift": ..., "post": ...}`` (``post``: everything but the lifter).
    """

    def __init__(self, lifter: Any, *, refiner: Any = None, smoothing: Smoothing = "kalman", causal: bool = False,
                 max_people: int = 1, smooth_2d: bool = False, keep_images: bool = False, fps: float = 30.0,
                 world_fusion: float = 0.0, bone_lengths: bool = False, reproject: float = 0.0,
                 resample_fps: bool = False, camera: CameraOptions | None = None,
                 person_height: float | None = None, root: str = "geometry"):
        self.lifter = lifter
        self.refiner = refiner
        self.smoothing = smoothing
        self.causal = causal
        self.max_people = max_people
        self.smooth_2d = smooth_2d
        self.keep_images = keep_images
        self.fps = fps
        self.world_fusion = world_fusion
        self.bone_lengths = bone_lengths
        self.reproject = reproject
        self.resample_fps = resample_fps
        self.seconds = {"lift": 0.0, "post": 0.0}
        self.camera = camera if camera is not None else CameraOptions()
        self.person_height = person_height
        self.root = root
        self.camera_model: CameraModel | None = None
        self._input_layout = getattr(lifter, "input_layout", "h36m17")
        self._tracks: dict[int, _Track] = {}
        self._next_track_id = 0
        self._pending: deque[_PendingFrame] = deque()
        self._image_size: tuple[int, int] | None = None

    def push(self, frame: Frame, people2d: list[Person2D]) -> list[PoseFrame]:
        """Add one frame and its 2D people; returns the frames that became final, in order."""
        started = time.perf_counter()
        if self._image_size is None:
            self._image_size = (frame.image.shape[1], frame.image.shape[0])
        if self.camera_model is None:
            self.camera_model = self.camera.resolve(*self._image_size)
        keep_image = self.keep_images or self.refiner is not None
        pending = _PendingFrame(
            PoseFrame(index=frame.index, time=frame.time), frame.capture_time,
            frame.image if keep_image else None, waiting=0,
        )
        self._pending.append(pending)

        track_list = list(self._tracks.values())
        people2d = sorted(people2d, key=lambda p: -p.score)[: self.max_people]
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
            # causal 2D filter in front of it only adds lag (measured, README: Smoothing).
            chosen2d = keypoints2d if self.smooth_2d else raw2d
            person = Person(
                id=track.id, score=float(person2d.score), bbox=np.asarray(person2d.bbox, dtype=np.float32),
                keypoints2d=keypoints2d, landmarks33=person2d.landmarks33, world33=person2d.world33,
                mask=person2d.mask,
            )
            pending.pose_frame.people.append(person)
            pending.waiting += 1
            track.awaiting.append((pending, person, chosen2d))
            lift2d = chosen2d
            if self.camera_model.intrinsics.has_distortion:  # lift what a pinhole camera would see
                lift2d = chosen2d.copy()
                lift2d[:, :2] = undistort_points(chosen2d[:, :2], self.camera_model.intrinsics)
            lift_started = time.perf_counter()
            results = track.stream.push(lifter_input(person2d, lift2d, self._input_layout))
            lift_seconds += time.perf_counter() - lift_started
            self._deliver(track, results)
        self.seconds["lift"] += lift_seconds
        self.seconds["post"] += time.perf_counter() - started - lift_seconds
        return self._pop_final()

    def flush(self) -> list[PoseFrame]:
        """End of stream: finish every track (end-of-sequence padding) and return the rest."""
        started = time.perf_counter()
        for track in list(self._tracks.values()):
            self._finish_track(track)
        done = self._pop_final()
        self.seconds["post"] += time.perf_counter() - started
        return done

    def _new_track(self) -> _Track:
        # 2D is always smoothed causally: the lifter needs each frame's keypoints at once.  The 3D
        # output of an offline stream may wait (the symmetric lifter already waits), so it gets
        # the fixed-lag Kalman, which measured far better than the live filter (README, Smoothing).
        offline_3d = not self.causal and self.smoothing == "kalman"
        stream = (self.lifter.stream(self._image_size, fps=self.fps) if self.resample_fps
                  else self.lifter.stream(self._image_size))
        track = _Track(
            self._next_track_id,
            stream,
            make_smoother(self.smoothing, fps=self.fps, causal=True),
            make_smoother(self.smoothing, fps=self.fps, causal=not offline_3d),
            PoseCorrections(self.world_fusion, self.bone_lengths, self.reproject, fps=self.fps),
            RootSolver(self.camera_model, self.person_height) if self.root == "geometry" else None,
        )
        self._next_track_id += 1
        self._tracks[track.id] = track
        return track

    def _deliver(self, track: _Track, results: list) -> None:
        """Hand lifter results (in frame order) on through refiner and 3D smoother."""
        for result in results:
            pending, person, lifted2d = track.awaiting.popleft()
            keypoints3d = np.asarray(result.keypoints3d, dtype=np.float32)
            if self.refiner is not None and pending.image is not None:
                keypoints3d = np.asarray(
                    self.refiner.refine(pending.image, person.keypoints2d, keypoints3d, person.mask), dtype=np.float32
                )
            if track.corrections.active:
                keypoints3d = track.corrections(keypoints3d, lifted2d, person.world33)
            root = np.full(3, np.nan, dtype=np.float32)
            if track.root_solver is not None:
                solved = track.root_solver(keypoints3d, lifted2d)
                keypoints3d, root = solved.keypoints3d, solved.root
            elif result.root is not None:
                root = np.asarray(result.root, dtype=np.float32)
            track.smoothing.append((pending, person))
            # The root rides along as an 18th row, so it is smoothed (and delayed) like the joints.
            smoothed = track.smoother_3d.push(pending.pose_frame.time, np.vstack([keypoints3d, root[None]]),
                                              None, _PERSON_HEIGHT_M)
            if smoothed is not None:
                self._finish_person(track, smoothed)

    def _finish_person(self, track: _Track, keypoints3d: np.ndarray) -> None:
        pending, person = track.smoothing.popleft()
        keypoints3d, root = keypoints3d[:-1], keypoints3d[-1]
        person.root = root.astype(np.float32) if np.isfinite(root).all() else None
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
        """The frames at the head of the queue whose people all have their 3D, in order."""
        done = []
        now = time.perf_counter()
        while self._pending and self._pending[0].waiting == 0:
            pending = self._pending.popleft()
            pose_frame = pending.pose_frame
            if pending.capture_time:
                pose_frame.latency = now - pending.capture_time
            if self.keep_images:
                pose_frame.image = pending.image
            done.append(pose_frame)
        return done
