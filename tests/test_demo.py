"""The live demo without a camera or display: headless runs on PyAV-generated videos, exit codes."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
from videogen import make_video

from streampose.reader import open_source
from streampose.types import Person, Person2D, PoseFrame
from streampose.apps.demo import compose_demo_frame, demo_loop, display_available, run_demo, webcam_main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "demos"))

# A person facing the camera (metres, camera axes, root-relative); see tests/test_viz.py.
POSE3D = np.array([
    (0, 0, 0), (-0.13, 0, 0), (-0.14, 0.45, 0), (-0.15, 0.88, 0.05), (0.13, 0, 0), (0.14, 0.45, 0),
    (0.15, 0.88, 0.05), (0, -0.23, 0), (0, -0.48, 0), (0, -0.58, -0.08), (0, -0.72, -0.02),
    (0.18, -0.45, 0), (0.25, -0.2, 0), (0.28, 0.02, -0.1), (-0.18, -0.45, 0), (-0.3, -0.65, 0),
    (-0.35, -0.9, 0),
], dtype=np.float32)
SIZE = (160, 120)
FRAMES = 12


def keypoints2d(width=SIZE[0], height=SIZE[1]) -> np.ndarray:
    """The pose projected into a ``width x height`` image: ``(17, 3)`` pixels + confidence."""
    cam = POSE3D + np.array([0.0, 0.1, 4.0])
    uv = cam[:, :2] / cam[:, 2:] * (0.9 * width) + np.array([width / 2, height / 2])
    return np.concatenate([uv, np.full((17, 1), 0.9)], axis=1).astype(np.float32)


def synthetic_pose_frame(index: int, t: float) -> PoseFrame:
    person = Person(id=0, score=0.9, bbox=np.array([40, 5, 120, 115], np.float32), keypoints2d=keypoints2d(),
                    keypoints3d=POSE3D)
    return PoseFrame(index=index, time=t, people=[person], latency=0.025)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("demo") / "in.mp4", frames=FRAMES, size=SIZE, fps=30)


def _decode(path: Path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [float(f.time) for f in container.decode(stream)], (stream.width, stream.height)


@pytest.fixture
def no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def test_compose_demo_frame_has_video_panel_and_status_text():
    image = np.full((120, 160, 3), 100, np.uint8)
    out = compose_demo_frame(image, synthetic_pose_frame(0, 0.0), fps=24.5, latency=0.031, azimuth=30.0)
    assert out.shape == (120, 160 + 120, 3)
    assert not np.array_equal(out[:12, :40], image[:12, :40])  # FPS / latency text box
    assert np.all(image == 100)
    empty = compose_demo_frame(image, None, fps=None, latency=None, azimuth=0.0)
    assert empty.shape == out.shape


def test_demo_loop_runs_headless_on_a_video_and_saves_every_frame(video, tmp_path):
    with open_source(video) as reader:
        pairs = ((frame.image, synthetic_pose_frame(frame.index, frame.time)) for frame in reader)
        result = demo_loop(pairs, headless=True, save=tmp_path / "demo.mp4", fps_hint=30)
    assert result.frames == FRAMES and result.frames_saved == FRAMES and not result.quit_by_user
    times, size = _decode(tmp_path / "demo.mp4")
    assert size == (SIZE[0] + SIZE[1], SIZE[1])
    np.testing.assert_allclose(times, np.arange(FRAMES) / 30, atol=1e-3)


def test_demo_loop_png_folder_and_max_frames(video, tmp_path):
    with open_source(video) as reader:
        pairs = ((frame.image, synthetic_pose_frame(frame.index, frame.time)) for frame in reader)
        result = demo_loop(pairs, headless=True, save=tmp_path / "frames", max_frames=5)
    pngs = sorted((tmp_path / "frames").glob("frame_*.png"))
    assert result.frames == 5 and len(pngs) == 5
    assert pngs[0].name == "frame_000000.png"


class FakePipeline:
    """Stands in for ``streampose.pipeline.Pipeline``: ``run(frames)`` -> PoseFrames with ``.image``."""

    def __init__(self):
        self.ran = False

    def run(self, frames):
        self.ran = True
        for frame in frames:
            pose_frame = synthetic_pose_frame(frame.index, frame.time)
            pose_frame.image = frame.image
            yield pose_frame


def test_run_demo_headless_with_a_video_file_instead_of_a_camera(video, tmp_path, no_display, capsys):
    fake = FakePipeline()
    code = run_demo(str(video), headless=None, save=tmp_path / "out.mp4", max_frames=8, pipeline=fake)
    assert code == 0 and fake.ran
    times, size = _decode(tmp_path / "out.mp4")
    assert len(times) == 8 and size == (SIZE[0] + SIZE[1], SIZE[1])
    assert "8 frames" in capsys.readouterr().err


def _missing_camera_index() -> int:
    return next(i for i in range(9, 64) if not Path(f"/dev/video{i}").exists())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="camera probing by /dev/videoN is Linux-only")
def test_no_camera_gives_exit_code_2_and_one_clear_line(capsys, no_display):
    fake = FakePipeline()
    index = _missing_camera_index()
    assert run_demo(index, headless=True, pipeline=fake) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "no camera" in err and "video file" in err
    assert not fake.ran
    assert webcam_main([f"webcam:{index}", "--headless"]) == 2


def test_bad_inputs_fail_before_any_work(video, tmp_path, capsys):
    fake = FakePipeline()
    assert run_demo(str(tmp_path / "missing.mp4"), headless=True, pipeline=fake) == 2
    assert "no such file" in capsys.readouterr().err
    assert run_demo(str(video), headless=True, save=tmp_path / "nodir" / "x.mp4", pipeline=fake) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not fake.ran


def test_display_check_is_false_without_a_display(no_display):
    if sys.platform.startswith("linux"):
        assert display_available() is False


def test_demos_script_reexports_the_demo():
    import webcam

    assert webcam.run_demo is run_demo


# A real Pipeline (threads, tracking, keep_images) with stand-in 2D and lifter stages, so the demo is
# checked against the pipeline's actual run() without model weights.


class _Fixed2D:
    def process(self, frame):
        return [Person2D(bbox=np.array([40, 5, 120, 115], np.float32), score=0.9, keypoints2d=keypoints2d())]

    def reset(self):
        pass


@dataclass
class _Lifted:
    keypoints3d: np.ndarray
    root: np.ndarray | None = None


class _FixedLifterStream:
    def push(self, kp2d):
        return [_Lifted(POSE3D.copy())]

    def flush(self):
        return []


class _FixedLifter:
    receptive_field = 1
    lag = 0

    def stream(self, image_size):
        return _FixedLifterStream()


def test_run_demo_with_the_real_pipeline_and_stand_in_stages(video, tmp_path):
    pipeline_module = pytest.importorskip("streampose.pipeline")
    pipeline = pipeline_module.Pipeline(
        pipeline_module.PipelineConfig(device="cpu", causal=True, keep_images=True, smoothing="none"),
        pose2d=_Fixed2D(), lifter=_FixedLifter(),
    )
    try:
        code = run_demo(str(video), device="cpu", headless=True, save=tmp_path / "real.mp4", pipeline=pipeline)
    finally:
        pipeline.close()
    assert code == 0
    times, size = _decode(tmp_path / "real.mp4")
    assert len(times) == FRAMES and size == (SIZE[0] + SIZE[1], SIZE[1])


class _FakeClock:
    """Stands in for the ``time`` module: ``sleep`` advances the clock instead of waiting, and every
    ``perf_counter`` call costs 1 ms, like a little work between two looks at the clock."""

    def __init__(self, now: float = 100.0):
        self.now, self.sleeps = now, []

    def perf_counter(self) -> float:
        self.now += 0.001
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_files_are_played_like_a_camera_paced_and_restamped(monkeypatch):
    import streampose.apps.demo as demo
    from streampose.types import Frame

    frames = [Frame(index=i, time=5.0 + 0.1 * i, image=np.zeros((2, 2, 3), np.uint8), capture_time=1.0)
              for i in range(4)]
    clock = _FakeClock()
    monkeypatch.setattr(demo, "time", clock)
    start = clock.perf_counter()
    out = list(demo._like_a_camera(frames, pace=True))
    # Held back to presentation times (0.3 s of video): frame k is taken 0.1 s * k after frame 0.
    assert sum(clock.sleeps) > 0.29 and len(clock.sleeps) == 3
    np.testing.assert_allclose(np.diff([f.capture_time for f in out]), 0.1, atol=0.005)
    assert all(f.capture_time > start for f in out)  # latency counts from when the frame is taken
    assert [f.index for f in out] == [0, 1, 2, 3]
    fast = _FakeClock()
    monkeypatch.setattr(demo, "time", fast)
    unpaced = list(demo._like_a_camera(frames, pace=False))
    assert fast.sleeps == [] and [f.index for f in unpaced] == [0, 1, 2, 3]


class _FakeWindow:
    """Replaces OpenCV's highgui calls: records shown frames and presses a key on a chosen frame."""

    def __init__(self, quit_on: int | None = None, broken: bool = False):
        self.shown, self.quit_on, self.broken, self.destroyed = [], quit_on, broken, False

    def install(self, monkeypatch):
        import streampose.apps.demo as demo

        monkeypatch.setattr(demo.cv2, "namedWindow", lambda *a, **k: None)
        monkeypatch.setattr(demo.cv2, "imshow", self.imshow)
        monkeypatch.setattr(demo.cv2, "waitKey", self.wait_key)
        monkeypatch.setattr(demo.cv2, "getWindowProperty", lambda *a: 1.0)
        monkeypatch.setattr(demo.cv2, "destroyWindow", lambda *a: setattr(self, "destroyed", True))

    def imshow(self, name, image):
        if self.broken:
            raise cv2_error("The function is not implemented")
        self.shown.append(image.shape)

    def wait_key(self, delay):
        return ord("q") if self.quit_on is not None and len(self.shown) == self.quit_on else -1


def cv2_error(message):
    import cv2

    return cv2.error(message)


def _synthetic_pairs(count=FRAMES):
    image = np.full((SIZE[1], SIZE[0], 3), 60, np.uint8)
    return ((image, synthetic_pose_frame(i, i / 30)) for i in range(count))


def test_window_mode_shows_bgr_frames_and_q_quits(monkeypatch):
    window = _FakeWindow(quit_on=3)
    window.install(monkeypatch)
    result = demo_loop(_synthetic_pairs(), headless=False)
    assert result.quit_by_user and result.frames == 3
    assert window.shown == [(SIZE[1], SIZE[0] + SIZE[1], 3)] * 3 and window.destroyed


def test_window_failure_falls_back_to_headless(monkeypatch, tmp_path, capsys):
    _FakeWindow(broken=True).install(monkeypatch)
    result = demo_loop(_synthetic_pairs(5), headless=False, save=tmp_path / "f")
    assert result.frames == 5 and result.frames_saved == 5 and not result.quit_by_user
    assert "continuing headless" in capsys.readouterr().err


def test_saved_png_frames_are_the_composed_frames_in_true_colour(tmp_path):
    import cv2

    demo_loop(_synthetic_pairs(2), headless=True, save=tmp_path / "png")
    saved = cv2.cvtColor(cv2.imread(str(tmp_path / "png" / "frame_000000.png")), cv2.COLOR_BGR2RGB)
    image, pose_frame = next(_synthetic_pairs(1))
    expected = compose_demo_frame(image, pose_frame, fps=None, latency=pose_frame.latency, azimuth=0.0)
    assert np.array_equal(saved, expected)
