"""The tracker alone, synchronously: no threads, no 2D model -- frames and 2D people go in by hand.

``FakeLifter`` answers each frame ``lag`` frames late (like the symmetric lifter) with 3D whose x
encodes the 2D x, so every assertion can trace a 3D pose back to the frame it came from.
"""
import threading

import numpy as np
import pytest

from fakes import FakeLifter, FakeStream
from streampose.lifter import coco_keypoints
from streampose.skeleton import BLAZEPOSE_TO_COCO
from streampose.tracker import Tracker, match_tracks
from streampose.types import Frame, Person2D

W, H = 64, 48


def frame(i, t=None, level=None):
    image = np.full((H, W, 3), 20 + i if level is None else level, np.uint8)
    return Frame(index=i, time=i / 30.0 if t is None else t, image=image, capture_time=1.0)


def person(x, box=(10, 10, 60, 110), score=0.9, landmarks=False):
    keypoints = np.zeros((17, 3), np.float32)
    keypoints[:, 0] = x + np.arange(17)
    keypoints[:, 1] = 2 * x
    keypoints[:, 2] = 1.0
    landmarks33 = None
    if landmarks:
        landmarks33 = np.zeros((33, 5), np.float32)
        landmarks33[:, 0] = 100 + np.arange(33)  # x = 100 + BlazePose landmark index
        landmarks33[:, 3] = 0.8
    return Person2D(bbox=np.array(box, np.float32), score=score, keypoints2d=keypoints, landmarks33=landmarks33)


class RecordingLifter(FakeLifter):
    """A FakeLifter that keeps every 2D array pushed into any of its streams."""

    def __init__(self, lag=0, input_layout="h36m17"):
        super().__init__(lag=lag)
        self.input_layout = input_layout
        self.pushed = []

    def stream(self, image_size):
        lifter = self

        class Stream(FakeStream):
            def push(self, kp2d):
                lifter.pushed.append(np.array(kp2d))
                return super().push(kp2d)

        return Stream(self.lag)


def test_frames_become_final_lag_frames_late_and_flush_returns_the_rest():
    tracker = Tracker(FakeLifter(lag=4), smoothing="none")
    threads = threading.active_count()
    out = [tracker.push(frame(i), [person(20 + i)]) for i in range(10)]
    assert [len(o) for o in out] == [0, 0, 0, 0] + [1] * 6
    assert [o[0].index for o in out[4:]] == [0, 1, 2, 3, 4, 5]
    rest = tracker.flush()
    assert [f.index for f in rest] == [6, 7, 8, 9]
    assert tracker.flush() == []
    assert threading.active_count() == threads  # synchronous: no thread was started
    for f in [o[0] for o in out[4:]] + rest:
        (p,) = f.people
        assert p.keypoints3d[1, 0] == pytest.approx(1 / 1000.0, abs=1e-6)  # root-relative
        assert p.keypoints2d[0, 0] == pytest.approx(20 + f.index)
        assert p.root is not None and f.latency is not None


def test_a_frame_without_people_finishes_the_track_and_a_new_one_starts():
    tracker = Tracker(FakeLifter(lag=4), smoothing="none")
    for i in range(3):
        assert tracker.push(frame(i), [person(20 + i)]) == []
    # Nobody in frame 3: the person's lifter stream is drained, so frames 0-3 are final at once.
    assert [f.index for f in tracker.push(frame(3), [])] == [0, 1, 2, 3]
    tracker.push(frame(4), [person(24)])
    (f4,) = tracker.flush()
    assert f4.people[0].id == 1


def test_people_keep_their_ids_by_box_overlap_and_max_people_keeps_the_best():
    left, right = (0, 0, 20, 40), (40, 0, 60, 40)
    tracker = Tracker(FakeLifter(lag=0), smoothing="none", max_people=2)
    (f0,) = tracker.push(frame(0), [person(10, left, 0.9), person(50, right, 0.8)])
    ids = {round(p.bbox[0]): p.id for p in f0.people}
    # The list order changes (scores swap); the boxes decide who is who.
    (f1,) = tracker.push(frame(1), [person(51, (41, 0, 61, 40), 0.95), person(11, (1, 0, 21, 40), 0.7)])
    assert {round(p.bbox[0]): p.id for p in f1.people} == {41: ids[40], 1: ids[0]}
    single = Tracker(FakeLifter(lag=0), smoothing="none", max_people=1)
    (only,) = single.push(frame(0), [person(10, left, 0.5), person(50, right, 0.8)])
    assert len(only.people) == 1 and only.people[0].score == pytest.approx(0.8)


def test_the_lifter_gets_raw_2d_unless_smooth_2d_while_the_reported_2d_is_smoothed():
    rng = np.random.default_rng(0)
    noisy = [person(30 + rng.normal(0, 3)) for _ in range(12)]
    for smooth_2d in (False, True):
        lifter = RecordingLifter()
        tracker = Tracker(lifter, smoothing="kalman", causal=True, smooth_2d=smooth_2d)
        reported = [f.people[0].keypoints2d for i, p in enumerate(noisy) for f in tracker.push(frame(i), [p])]
        raw = [p.keypoints2d for p in noisy]
        assert not np.allclose(reported[5:], raw[5:])  # the reported 2D is smoothed either way
        assert np.allclose(lifter.pushed, reported if smooth_2d else raw)


def test_a_coco_input_lifter_gets_blazepose_landmarks_in_coco_order():
    lifter = RecordingLifter(input_layout="coco17")
    tracker = Tracker(lifter, smoothing="none")
    found = person(30, landmarks=True)
    tracker.push(frame(0), [found])
    (pushed,) = lifter.pushed
    np.testing.assert_allclose(pushed, coco_keypoints(found))
    np.testing.assert_allclose(pushed[:, 0], 100 + BLAZEPOSE_TO_COCO.argmax(axis=1))
    assert np.allclose(pushed[:, 2], 0.8)


def test_refiner_sees_the_frame_image_and_keep_images_attaches_it():
    calls = []

    class Refiner:
        def refine(self, image, kp2d, kp3d, mask):
            calls.append(int(image[0, 0, 0]))
            return kp3d * 2

    tracker = Tracker(FakeLifter(lag=2), refiner=Refiner(), smoothing="none", keep_images=True)
    out = [f for i in range(5) for f in tracker.push(frame(i), [person(20 + i)])] + tracker.flush()
    assert calls == [20, 21, 22, 23, 24]
    assert [int(f.image[0, 0, 0]) for f in out] == calls
    assert out[0].people[0].keypoints3d[1, 0] == pytest.approx(2 / 1000.0, abs=1e-6)
    plain = Tracker(FakeLifter(lag=0), smoothing="none")
    assert plain.push(frame(0), [person(20)])[0].image is None


def test_a_timestamp_that_does_not_increase_restarts_the_track():
    tracker = Tracker(FakeLifter(lag=0), smoothing="kalman", causal=True)
    (a,) = tracker.push(frame(0, t=0.5), [person(20)])
    (b,) = tracker.push(frame(1, t=0.5), [person(21)])
    assert a.people[0].id != b.people[0].id
    assert b.people[0].keypoints3d is not None


def test_offline_kalman_holds_3d_back_and_flush_releases_everything():
    tracker = Tracker(FakeLifter(lag=0), smoothing="kalman", causal=False)
    out = [f for i in range(30) for f in tracker.push(frame(i), [person(20 + i)])]
    assert len(out) < 30  # the fixed-lag 3D smoother answers late
    out += tracker.flush()
    assert [f.index for f in out] == list(range(30))
    assert all(f.people[0].keypoints3d is not None for f in out)
    assert tracker.seconds["post"] > 0 and tracker.seconds["lift"] > 0


def test_match_tracks_leaves_far_boxes_unmatched():
    assert match_tracks([np.array([0, 0, 10, 10.0])], [np.array([30, 30, 40, 40.0])]) == {}
    assert match_tracks([], [np.array([0, 0, 10, 10.0])]) == {}
