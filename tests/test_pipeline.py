"""Pipeline mechanics with small stand-in stages: ordering, lag, backpressure, failures, shutdown.

The real stages have their own tests; here the 2D stage and lifter are replaced by deterministic
fakes so every assertion is about the plumbing.
"""
import threading
import time

import numpy as np
import pytest

from streampose.errors import StageError
from streampose.pipeline import Pipeline, PipelineConfig
from streampose.tracker import match_tracks
from fakes import FakeLifter, FakePose2D


def frames(n, size=(64, 48), dark=()):
    for i in range(n):
        level = 0 if i in dark else 20 + i
        yield np.full((size[1], size[0], 3), level, np.uint8), i / 30.0


def make_pipeline(**kw):
    pose2d = kw.pop("pose2d", FakePose2D())
    lifter = kw.pop("lifter", FakeLifter())
    kw.setdefault("smoothing", "none")
    config = PipelineConfig(device="cpu", **kw)
    return Pipeline(config, pose2d=pose2d, lifter=lifter)


def test_match_tracks_greedy_iou():
    prev = [np.array([0, 0, 10, 10.0]), np.array([50, 50, 60, 60.0])]
    cur = [np.array([51, 50, 61, 60.0]), np.array([1, 0, 11, 10.0]), np.array([200, 200, 210, 210.0])]
    assert match_tracks(prev, cur) == {0: 1, 1: 0}


def test_iterate_yields_every_frame_in_order_with_lagged_3d_filled():
    pipe = make_pipeline()
    out = list(pipe.run(frames(20, dark={7, 8})))
    assert [f.index for f in out] == list(range(20))
    assert [round(f.time, 6) for f in out] == [round(i / 30.0, 6) for i in range(20)]
    for f in out:
        if f.index in (7, 8):
            assert f.people == []
        else:
            (person,) = f.people
            assert person.keypoints3d is not None  # lag was resolved, also across the gap
            level = 20 + f.index
            assert person.keypoints3d[1, 0] == pytest.approx(1 / 1000.0, abs=1e-6)
            assert person.keypoints2d[0, 0] == pytest.approx(level, abs=1)
    # The dark frames split the person into two tracks.
    assert {f.people[0].id for f in out if f.people} == {0, 1}
    assert pipe.stats.frames == 20 and pipe.stats.frames_with_person == 18


@pytest.mark.parametrize("smoothing, causal", [("none", False), ("kalman", False), ("kalman", True), ("oneeuro", True)])
def test_push_and_iterate_give_identical_results(smoothing, causal):
    data = list(frames(25, dark={10}))
    iterated = [f.to_dict() for f in make_pipeline(smoothing=smoothing, causal=causal).run(iter(data))]
    assert len(iterated) == 25
    assert all(p["keypoints3d"] is not None for f in iterated for p in f["people"])
    pipe = make_pipeline(smoothing=smoothing, causal=causal)
    pushed = []
    for rgb, t in data:
        pushed += [f.to_dict() for f in pipe.push(rgb, t)]
    assert len(pushed) < len(data)  # the lag holds frames back until flush
    pushed += [f.to_dict() for f in pipe.flush()]
    assert pushed == iterated


def test_slow_consumer_never_lets_queues_grow():
    produced = 0

    def counting_source():
        nonlocal produced
        for item in frames(200):
            produced += 1
            yield item

    queue_size = 3
    pipe = make_pipeline(queue_size=queue_size)
    consumed = 0
    worst_backlog = 0
    for _ in pipe.run(counting_source()):
        consumed += 1
        time.sleep(0.01)
        worst_backlog = max(worst_backlog, produced - consumed)
        if consumed == 60:
            break
    # Two queues of queue_size, the lifter's lag, and one item in the hands of each stage.
    bound = 2 * queue_size + FakeLifter().lag + 4
    assert worst_backlog <= bound, (worst_backlog, bound)


@pytest.mark.parametrize(
    "stage, make",
    [
        ("pose2d", lambda: make_pipeline(pose2d=FakePose2D(fail_at=5))),
        ("post", lambda: make_pipeline(lifter=FakeLifter(fail_at=3))),
    ],
)
def test_a_failing_stage_raises_stage_error_naming_it(stage, make):
    pipe = make()
    started = time.monotonic()
    with pytest.raises(StageError) as info:
        for _ in pipe.run(frames(100)):
            pass
    assert info.value.stage == stage
    assert time.monotonic() - started < 10
    assert not any(t.name.startswith("streampose-") for t in threading.enumerate())


def test_a_failing_source_is_reported_as_the_reader_stage():
    def broken_source():
        yield from frames(3)
        raise OSError("camera unplugged")

    with pytest.raises(StageError) as info:
        list(make_pipeline().run(broken_source()))
    assert info.value.stage == "reader"
    assert isinstance(info.value.cause, OSError)


def test_breaking_out_early_and_close_release_all_threads():
    pipe = make_pipeline(pose2d=FakePose2D(delay=0.002))
    for i, _ in enumerate(pipe.run(frames(1000))):
        if i == 5:
            break
    pipe.close()
    deadline = time.monotonic() + 5
    while any(t.name.startswith("streampose-") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name.startswith("streampose-") for t in threading.enumerate())


def test_latency_is_measured_per_frame():
    pipe = make_pipeline()
    out = list(pipe.run(frames(12)))
    assert all(f.latency is not None and f.latency >= 0 for f in out)
    stats = pipe.stats.to_dict()
    assert stats["latency_p50_ms"] is not None and stats["latency_p95_ms"] >= stats["latency_p50_ms"]


def test_push_rejects_wrong_images():
    from streampose.errors import StreamposeError

    with pytest.raises(StreamposeError):
        make_pipeline().push(np.zeros((10, 10), np.uint8), 0.0)


def test_keep_images_attaches_the_frame():
    out = list(make_pipeline(keep_images=True).run(frames(6)))
    assert all(f.image is not None and f.image.shape == (48, 64, 3) for f in out)
    assert int(out[3].image[0, 0, 0]) == 23


def test_repeated_timestamps_restart_the_track_instead_of_failing():
    data = list(frames(10))
    data[5] = (data[5][0], data[4][1])  # a stalled clock
    out = list(make_pipeline(smoothing="kalman").run(iter(data)))
    assert len(out) == 10
    assert out[4].people[0].id != out[5].people[0].id
    assert all(f.people[0].keypoints3d is not None for f in out)


def test_realtime_mode_drops_oldest_frames_of_a_fast_source_and_counts_them():
    def camera():  # a camera that never waits: 200 frames as fast as they can be made
        yield from frames(200)

    pipe = make_pipeline(realtime=True, causal=True, queue_size=2, pose2d=FakePose2D(delay=0.01))
    out = list(pipe.run(camera()))
    assert pipe.stats.dropped > 0
    assert len(out) + pipe.stats.dropped == 200
    indices = [f.index for f in out]
    assert indices == sorted(indices) and indices[-1] == 199  # the newest frame always gets through


def test_offline_mode_never_drops():
    pipe = make_pipeline(pose2d=FakePose2D(delay=0.002), queue_size=2)
    out = list(pipe.run(frames(60)))
    assert len(out) == 60 and pipe.stats.dropped == 0


@pytest.mark.parametrize("field, bad", [("precision", "fp8"), ("smoothing", "gaussian"), ("readout", "argmax"),
                                        ("device", "tpu"), ("max_people", 0), ("queue_size", 0)])
def test_an_invalid_setting_raises_one_error_naming_it_and_what_is_allowed(field, bad):
    from streampose.errors import StreamposeError
    from streampose.settings import PRECISIONS, READOUTS, SMOOTHINGS, SettingError

    with pytest.raises(SettingError) as caught:
        PipelineConfig(**{field: bad})
    message = str(caught.value)
    assert message.startswith(f"{field} must be") or message.startswith("unknown device")
    assert repr(bad) in message and "\n" not in message
    allowed = {"precision": PRECISIONS, "smoothing": SMOOTHINGS, "readout": READOUTS}.get(field, ())
    assert all(value in message for value in allowed)
    assert isinstance(caught.value, StreamposeError) and isinstance(caught.value, ValueError)
    # Keyword overrides of a Pipeline are checked the same way, before any stage is built.
    with pytest.raises(SettingError):
        Pipeline(PipelineConfig(device="cpu"), pose2d=FakePose2D(), lifter=FakeLifter(), **{field: bad})
    with pytest.raises(TypeError, match="unknown Pipeline option"):
        Pipeline(PipelineConfig(device="cpu"), pose2d=FakePose2D(), lifter=FakeLifter(), colour="red")


def test_push_and_flush_fill_in_the_stats():
    pipe = make_pipeline()
    handed = [f for rgb, t in frames(12) for f in pipe.push(rgb, t)] + pipe.flush()
    stats = pipe.stats.to_dict()
    assert stats["frames"] == len(handed) == 12 and stats["frames_with_person"] == 12
    assert stats["wall_time"] > 0 and stats["fps"] > 0 and len(pipe.stats.latencies) == 12


def test_a_video_file_is_never_dropped_from_even_in_realtime_mode(tmp_path):
    from videogen import make_video

    path = make_video(tmp_path / "clip.mp4", frames=30, size=(64, 48))
    pipe = make_pipeline(realtime=True, causal=True, queue_size=2, pose2d=FakePose2D(delay=0.005))
    out = list(pipe.run(path))
    assert [f.index for f in out] == list(range(30)) and pipe.stats.dropped == 0
