"""Frame reader on videos encoded with PyAV inside the tests: codecs, odd sizes, pixel formats,
variable frame rate, rotation metadata, seeking, realtime dropping, prompt close, error propagation."""
from __future__ import annotations

import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from streampose.errors import InputError, StageError
from streampose.reader import FrameReader, _Decoder, is_live_source, open_source
from videogen import frame_index_from_image, index_painter, make_video


def _read_all(reader: FrameReader):
    with reader:
        return list(reader)


@pytest.mark.parametrize(
    "name,codec,pix_fmt,size",
    [
        ("h264.mp4", "libx264", "yuv420p", (160, 120)),
        ("vp9.webm", "libvpx-vp9", "yuv420p", (160, 120)),
        ("odd_h264.mp4", "libx264", "yuv444p", (123, 77)),
        ("odd_ffv1.mkv", "ffv1", "yuv444p", (123, 77)),
        ("h264_10bit.mp4", "libx264", "yuv420p10le", (96, 64)),
        ("gray.mkv", "ffv1", "gray", (97, 65)),
        ("mpeg4.avi", "mpeg4", "yuv420p", (96, 64)),
    ],
)
def test_decodes_every_frame_with_exact_times(tmp_path, name, codec, pix_fmt, size):
    frames, fps = 12, 25.0
    path = make_video(tmp_path / name, frames=frames, size=size, fps=fps, codec=codec, pix_fmt=pix_fmt)
    reader = open_source(path)
    info = reader.info
    got = _read_all(reader)

    assert (info.width, info.height) == size
    assert info.fps == pytest.approx(fps)
    assert info.pixel_format == pix_fmt
    assert info.rotation == 0 and not info.is_live
    assert [f.index for f in got] == list(range(frames))
    np.testing.assert_allclose([f.time for f in got], np.arange(frames) / fps, atol=1e-9)
    for frame in got:
        assert frame.image.dtype == np.uint8
        assert frame.image.shape == (size[1], size[0], 3)
        assert frame_index_from_image(frame.image) == frame.index
    if pix_fmt == "gray":
        assert np.array_equal(got[3].image[..., 0], got[3].image[..., 2])
    assert reader.stats.decoded == frames and reader.stats.damaged == 0 and reader.stats.dropped == 0


def test_frame_count_and_duration_when_container_states_them(tmp_path):
    path = make_video(tmp_path / "v.mp4", frames=15, fps=30.0)
    with open_source(path) as reader:
        assert reader.info.frame_count == 15
        assert reader.info.duration == pytest.approx(0.5, abs=0.04)
        assert reader.info.codec == "h264"


@pytest.mark.parametrize("name,time_base", [("vfr.mkv", Fraction(1, 1000)), ("vfr.mp4", Fraction(1, 90000))])
def test_variable_frame_rate_timestamps_are_exact(tmp_path, name, time_base):
    # Irregular gaps (a stall, a burst) must survive: times come from pts, not index / fps.
    seconds = [0.0, 0.033, 0.07, 0.2, 0.21, 0.5, 0.51, 1.25]
    pts = [round(s / time_base) for s in seconds]
    path = make_video(tmp_path / name, pts=pts, time_base=time_base, size=(64, 48))
    got = _read_all(open_source(path))
    expected = [float(p * time_base) for p in pts]
    assert [f.index for f in got] == list(range(len(pts)))
    np.testing.assert_allclose([f.time for f in got], expected, rtol=0, atol=1e-9)
    assert [frame_index_from_image(f.image) for f in got] == list(range(len(pts)))


def _upright_pattern(width: int, height: int) -> np.ndarray:
    """An asymmetric picture: a red block top-left, a blue bar along the bottom, grey elsewhere."""
    image = np.full((height, width, 3), 128, dtype=np.uint8)
    image[: height // 3, : width // 3] = (230, 20, 20)
    image[-height // 5:, :] = (20, 20, 230)
    return image


@pytest.mark.parametrize("rotation_ccw", [-90, 90, 180])
def test_rotation_metadata_gives_upright_frames(tmp_path, rotation_ccw):
    upright_w, upright_h = 64, 96
    upright = _upright_pattern(upright_w, upright_h)
    # The camera stores the picture so that rotating it by ``rotation_ccw`` (CCW) shows it upright,
    # i.e. the stored picture is the upright one rotated the other way.
    stored = np.ascontiguousarray(np.rot90(upright, k=-(rotation_ccw // 90)))
    stored_h, stored_w = stored.shape[:2]
    path = make_video(tmp_path / "rot.mp4", frames=3, size=(stored_w, stored_h), pix_fmt="yuv444p",
                      draw=lambda i, w, h: stored, rotation=rotation_ccw)
    reader = open_source(path)
    got = _read_all(reader)

    assert (reader.info.width, reader.info.height) == (upright_w, upright_h)
    assert reader.info.rotation == (-rotation_ccw) % 360
    for frame in got:
        assert frame.image.shape == upright.shape
        error = np.abs(frame.image.astype(np.int16) - upright.astype(np.int16)).mean()
        assert error < 6.0, f"frame not upright (mean abs error {error:.1f})"


def test_max_frames_and_seek(tmp_path):
    fps = 20.0
    path = make_video(tmp_path / "v.mp4", frames=30, fps=fps, options={"g": "10"})
    assert [f.index for f in _read_all(open_source(path, max_frames=5))] == [0, 1, 2, 3, 4]
    assert _read_all(open_source(path, max_frames=0)) == []

    got = _read_all(open_source(path, start_time=0.8, max_frames=4))
    # Seeking lands on a keyframe before 0.8 s; frames before the requested time are not delivered.
    np.testing.assert_allclose([f.time for f in got], [0.8, 0.85, 0.9, 0.95], atol=1e-9)
    assert [f.index for f in got] == [0, 1, 2, 3]
    assert [frame_index_from_image(f.image) for f in got] == [16, 17, 18, 19]
    assert _read_all(open_source(path, start_time=10.0)) == []


def test_capture_time_is_when_the_frame_was_decoded(tmp_path):
    path = make_video(tmp_path / "v.mp4", frames=6)
    before = time.perf_counter()
    got = _read_all(open_source(path))
    stamps = [f.capture_time for f in got]
    assert all(before <= s <= time.perf_counter() for s in stamps)
    assert stamps == sorted(stamps)


def _wait_until(condition, guard_s: float = 30.0) -> None:
    """Wait for ``condition()``; the guard only stops a hang, it is not a measurement."""
    deadline = time.monotonic() + guard_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached (hung?)"
        time.sleep(0.01)


def test_realtime_drops_oldest_frames_for_a_slow_consumer(tmp_path):
    frames = 60
    path = make_video(tmp_path / "v.mp4", frames=frames, size=(64, 48))
    reader = open_source(path, realtime=True, queue_size=2)
    received = []
    with reader:
        # The slowest consumer there is: it reads nothing until the decoder has finished, so the
        # result does not depend on how fast this machine decodes.
        _wait_until(lambda: reader.stats.decoded == frames)
        for frame in reader:
            received.append(frame.index)
    assert reader.stats.dropped > 0
    assert reader.stats.decoded == frames
    assert len(received) + reader.stats.dropped == frames
    assert received == sorted(received) and len(set(received)) == len(received)
    # Dropping the *oldest* keeps the newest: the last frame of the stream is always delivered.
    assert received[-1] == frames - 1


def test_offline_never_drops_for_a_slow_consumer(tmp_path):
    frames = 25
    path = make_video(tmp_path / "v.mp4", frames=frames, size=(64, 48))
    reader = open_source(path, realtime=False, queue_size=2)
    received = []
    with reader:
        for frame in reader:
            received.append(frame.index)
            time.sleep(0.005)
    assert received == list(range(frames))
    assert reader.stats.dropped == 0


def test_close_is_prompt_when_consumer_stops_reading(tmp_path):
    path = make_video(tmp_path / "v.mp4", frames=90, size=(64, 48))
    reader = open_source(path, queue_size=2)
    next(reader)
    _wait_until(lambda: reader.stats.decoded >= 3)  # the decoder has filled the queue and waits on it
    reader.close()
    # close() waits for a file's decode thread only for a short grace period; it has ended.
    assert not reader._thread.is_alive()
    assert list(reader) == []  # a closed reader is exhausted, it does not hang
    reader.close()  # idempotent


def test_close_without_reading(tmp_path):
    path = make_video(tmp_path / "v.mp4", frames=30, size=(64, 48))
    threads_before = threading.active_count()
    for _ in range(3):
        open_source(path, queue_size=1).close()
    time.sleep(0.05)
    assert threading.active_count() <= threads_before


def test_dropped_reader_stops_its_thread(tmp_path):
    import gc

    path = make_video(tmp_path / "v.mp4", frames=60, size=(64, 48))
    reader = open_source(path, queue_size=1)
    next(reader)
    thread = reader._thread
    del reader  # abandoned mid-stream without close(): the blocked decode thread must not leak
    gc.collect()
    thread.join(timeout=2.0)
    assert not thread.is_alive()


def test_decode_thread_errors_reach_the_consumer(tmp_path, monkeypatch):
    path = make_video(tmp_path / "v.mp4", frames=10, size=(64, 48))
    original = _Decoder._to_frame

    def failing(self, av_frame, index):
        if index == 3:
            raise RuntimeError("simulated converter failure")
        return original(self, av_frame, index)

    monkeypatch.setattr(_Decoder, "_to_frame", failing)
    reader = open_source(path)
    received = []
    with pytest.raises(StageError, match="reader stage failed: RuntimeError: simulated"):
        for frame in reader:
            received.append(frame.index)
    reader.close()
    assert received == [0, 1, 2]


def test_invalid_arguments_and_source_kinds(tmp_path):
    path = make_video(tmp_path / "v.mp4", frames=2, size=(64, 48))
    with pytest.raises(InputError, match="queue_size"):
        open_source(path, queue_size=0)
    with pytest.raises(InputError, match="start_time"):
        open_source(path, start_time=-1.0)
    assert is_live_source("webcam:0") and is_live_source(0) and is_live_source("/dev/video3")
    assert is_live_source("rtsp://camera.local/stream")
    assert not is_live_source(str(path)) and not is_live_source("https://example.com/clip.mp4")


def test_missing_webcam_is_an_input_error():
    import pathlib

    if pathlib.Path("/dev/video7").exists():
        pytest.skip("this machine has a /dev/video7")
    with pytest.raises(InputError, match="webcam:7"):
        open_source("webcam:7")
    with pytest.raises(InputError, match="webcam:7"):
        open_source(7)


def test_painter_roundtrip_is_unambiguous():
    # The test helper itself: indices 0..29 map to distinct grey levels.
    levels = [frame_index_from_image(index_painter(i, 40, 30)) for i in range(30)]
    assert levels == list(range(30))
