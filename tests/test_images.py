"""Still images as sources (streampose.images through open_source, Pipeline.run and the CLI): one image,
a folder, %05d and glob patterns; frame times, header fields, damaged images; the single-frame lifter
path for a lone image.  Every image is generated here."""
from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from streampose import cli
from streampose.errors import InputError
from streampose.images import NOMINAL_FPS
from streampose.output import read_jsonl
from streampose.reader import open_source


def _picture(index: int = 0, size=(64, 48)) -> np.ndarray:
    """An RGB test picture whose top-left pixel block encodes ``index`` (lossless formats keep it)."""
    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 1] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    image[: height // 2, : width // 2, 0] = 10 * index + 5
    return image


def _write(path, image: np.ndarray):
    """Write an RGB image with OpenCV (which takes BGR), in the format the suffix names."""
    assert cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1])), path
    return path


def _index_of(image: np.ndarray) -> int:
    return int(round((int(image[2, 2, 0]) - 5) / 10))


def _frames(source, **options):
    with open_source(source, **options) as reader:
        return reader, list(reader)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".ppm", ".webp", ".jpg"])
def test_a_single_image_is_one_frame_at_time_zero(tmp_path, suffix):
    image = _picture(3)
    path = _write(tmp_path / f"photo{suffix}", image)
    reader, frames = _frames(path)
    (frame,) = frames
    assert frame.index == 0 and frame.time == 0.0 and frame.image.shape == (48, 64, 3)
    assert frame.image.dtype == np.uint8 and frame.image.flags["C_CONTIGUOUS"]
    if suffix in (".png", ".bmp", ".tif", ".ppm"):  # lossless
        np.testing.assert_array_equal(frame.image, image)
    else:
        assert np.abs(frame.image.astype(int) - image).mean() < 6
    info = reader.info
    assert (info.width, info.height, info.fps, info.frame_count, info.is_live) == (64, 48, None, 1, False)
    assert info.duration is None and info.source == str(path)


def test_grey_alpha_and_16_bit_images_become_rgb_uint8(tmp_path):
    grey = np.tile(np.arange(64, dtype=np.uint8)[None, :] * 4, (48, 1))
    assert cv2.imwrite(str(tmp_path / "grey.png"), grey)
    rgba = np.dstack([_picture(1)[..., ::-1], np.full((48, 64), 128, np.uint8)])
    assert cv2.imwrite(str(tmp_path / "alpha.png"), rgba)
    deep = (_picture(2).astype(np.uint16) * 257)[..., ::-1]
    assert cv2.imwrite(str(tmp_path / "deep.png"), np.ascontiguousarray(deep))
    for name, expected in (("grey.png", np.repeat(grey[..., None], 3, axis=2)), ("alpha.png", _picture(1)),
                           ("deep.png", _picture(2))):
        (frame,) = _frames(tmp_path / name)[1]
        assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8, name
        assert np.abs(frame.image.astype(int) - expected).max() <= 1, name


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an EXIF APP1 segment holding only the Orientation tag (as phones write it)."""
    tiff = (b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1)
            + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0))
    app1 = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def test_exif_orientation_is_applied_like_a_video_rotation(tmp_path):
    image = np.zeros((48, 64, 3), np.uint8)
    image[:24, :32] = 255  # top-left block
    ok, encoded = cv2.imencode(".jpg", image)
    path = tmp_path / "phone.jpg"
    path.write_bytes(_with_exif_orientation(encoded.tobytes(), 6))  # 6: rotate 90 degrees clockwise
    reader, (frame,) = _frames(path)
    assert frame.image.shape == (64, 48, 3) and (reader.info.width, reader.info.height) == (48, 64)
    assert frame.image[5, -5].mean() > 200 and frame.image[5, 5].mean() < 50  # block now top-right


def _folder(tmp_path, count=12, name="frame{}.png", size=(64, 48)):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(count):
        _write(folder / name.format(i + 1), _picture(i, size))
    return folder


def test_a_folder_is_a_sequence_in_natural_name_order(tmp_path):
    folder = _folder(tmp_path)  # frame1.png ... frame12.png: a plain sort would put frame10 second
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"")  # editors' and OSes' hidden files are not frames
    reader, frames = _frames(folder)
    assert [_index_of(f.image) for f in frames] == list(range(12))
    assert [f.index for f in frames] == list(range(12))
    assert [f.time for f in frames] == pytest.approx([i / NOMINAL_FPS for i in range(12)])
    assert reader.info.fps is None and reader.info.frame_count == 12 and reader.stats.damaged == 0
    assert reader.info.codec == "png"


def test_fps_sets_the_frame_times_and_the_reported_rate(tmp_path):
    folder = _folder(tmp_path, count=5)
    reader, frames = _frames(folder, fps=12.5)
    assert [f.time for f in frames] == pytest.approx([i / 12.5 for i in range(5)])
    assert reader.info.fps == 12.5 and reader.info.duration == pytest.approx(5 / 12.5)
    with pytest.raises(InputError, match="fps"):
        open_source(folder, fps=0)


def test_a_printf_pattern_orders_by_number_and_keeps_gaps_in_time(tmp_path):
    for number in (7, 8, 10, 100):  # 9 missing; 100 sorts last by number, not by text
        _write(tmp_path / f"shot_{number:05d}.png", _picture(number % 20))
    _write(tmp_path / "shot_1.png", _picture(0))  # not 5 digits: not part of the pattern
    reader, frames = _frames(str(tmp_path / "shot_%05d.png"), fps=10)
    assert [_index_of(f.image) for f in frames] == [7, 8, 10, 0]
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert [f.time for f in frames] == pytest.approx([0.0, 0.1, 0.3, 9.3])
    loose = _frames(str(tmp_path / "shot_%d.png"))[1]  # %d: any number of digits
    assert len(loose) == 5


def test_a_glob_pattern(tmp_path):
    folder = _folder(tmp_path, count=4, name="img_{}.jpg")
    _write(folder / "other.png", _picture(9))
    frames = _frames(str(folder / "img_*.jpg"))[1]
    assert len(frames) == 4 and [f.index for f in frames] == [0, 1, 2, 3]


def test_max_frames_and_start_time_on_a_sequence(tmp_path):
    folder = _folder(tmp_path, count=10)
    assert len(_frames(folder, max_frames=3)[1]) == 3
    frames = _frames(folder, fps=10, start_time=0.5)[1]
    assert [_index_of(f.image) for f in frames] == [5, 6, 7, 8, 9]
    assert frames[0].index == 0 and frames[0].time == pytest.approx(0.5)


def test_damaged_or_odd_sized_images_in_a_sequence_are_skipped_and_counted(tmp_path, caplog):
    folder = _folder(tmp_path, count=8)
    data = (folder / "frame4.png").read_bytes()
    (folder / "frame4.png").write_bytes(data[: len(data) // 2])  # truncated
    (folder / "frame6.png").write_text("not really a png")
    _write(folder / "frame7.png", _picture(6, size=(32, 32)))  # another size: not this video
    with caplog.at_level("WARNING", logger="streampose.reader"):
        reader, frames = _frames(folder)
    assert [_index_of(f.image) for f in frames] == [0, 1, 2, 4, 7]
    # Times stay those of the files' places in the sequence; indices count delivered frames.
    assert [f.time for f in frames] == pytest.approx([i / NOMINAL_FPS for i in (0, 1, 2, 4, 7)])
    assert reader.stats.damaged == 3 and reader.stats.decoded == 5
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3 and all("skipped" in m and "\n" not in m for m in messages)
    assert any("differs from the first" in m for m in messages)


def test_a_truncated_jpeg_is_refused_not_half_grey(tmp_path):
    ok, encoded = cv2.imencode(".jpg", _picture(1, size=(160, 120)))
    path = tmp_path / "cut.jpg"
    path.write_bytes(encoded.tobytes()[: len(encoded) * 9 // 10])
    with pytest.raises(InputError, match="damaged or truncated image") as caught:
        open_source(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


@pytest.mark.parametrize("case", ["empty", "text", "truncated_png", "video_named_png"])
def test_a_bad_single_image_is_one_line_on_the_command_line(tmp_path, capsys, case):
    from videogen import make_video

    path = tmp_path / "bad.png"
    if case == "empty":
        path.touch()
    elif case == "text":
        path.write_text("hello\n" * 50)
    elif case == "truncated_png":
        data = _write(tmp_path / "good.png", _picture(1)).read_bytes()
        path.write_bytes(data[:100])
    else:
        path.write_bytes(make_video(tmp_path / "clip.mp4", frames=3, size=(64, 48)).read_bytes())
    out = tmp_path / "poses.jsonl"
    status = cli.main([str(path), "--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("streampose: error: ") and str(path) in lines[0]
    assert not out.exists()


def test_a_folder_where_nothing_decodes_and_patterns_that_match_nothing(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.jpg").write_text("no")
    (folder / "b.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="none of the 2 images could be decoded"):
        open_source(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="folder has no images"):
        open_source(empty)
    with pytest.raises(InputError, match="no files match"):
        open_source(str(tmp_path / "f_%04d.png"))
    with pytest.raises(InputError, match="no image files match"):
        open_source(str(tmp_path / "*.jpg"))
    with pytest.raises(InputError, match="does not exist"):
        open_source(str(tmp_path / "nowhere" / "%04d.png"))
    # Brackets in a missing video's name are not a glob: the video is missing.
    with pytest.raises(InputError, match="no such file"):
        open_source(str(tmp_path / "clip [1080p].mp4"))


def test_an_image_without_a_known_extension_is_read_as_an_image(tmp_path):
    png = _write(tmp_path / "x.png", _picture(2)).read_bytes()
    (tmp_path / "snapshot").write_bytes(png)
    (frame,) = _frames(tmp_path / "snapshot")[1]
    np.testing.assert_array_equal(frame.image, _picture(2))


def test_fps_is_refused_for_a_video(tmp_path):
    from videogen import make_video

    video = make_video(tmp_path / "clip.mp4", frames=3, size=(64, 48))
    with pytest.raises(InputError, match="fps is for image sequences"):
        open_source(video, fps=25)


# --------------------------------------------------------------------------- through the CLI / Pipeline


@pytest.fixture
def fake_stages(monkeypatch):
    from fakes import fake_pipeline

    monkeypatch.setattr(cli, "build_pipeline", fake_pipeline)


@pytest.mark.parametrize("fps", [None, 12.0])
def test_cli_on_an_image_sequence_writes_the_video_schema(tmp_path, capsys, fake_stages, fps):
    from videogen import make_video

    folder = _folder(tmp_path, count=6)
    out = tmp_path / "poses.jsonl"
    argv = [str(folder), "--out", str(out), "--device", "cpu"] + (["--fps", str(fps)] if fps else [])
    assert cli.main(argv) == 0, capsys.readouterr().err
    contents = read_jsonl(out)
    source = contents.header["source"]
    assert source["fps"] == fps and source["frame_count"] == 6 and source["live"] is False
    assert (source["width"], source["height"]) == (64, 48) and source["path"] == str(folder)
    step = 1 / (fps or NOMINAL_FPS)
    assert [f["time"] for f in contents.frames] == pytest.approx([i * step for i in range(6)], abs=1e-6)
    assert contents.summary["frames_written"] == 6 and contents.summary["frames_damaged"] == 0
    # The same record layout as for a video.
    video_out = tmp_path / "video.jsonl"
    assert cli.main([str(make_video(tmp_path / "c.mp4", frames=6, size=(64, 48))), "--out", str(video_out),
                     "--device", "cpu"]) == 0
    video = read_jsonl(video_out)
    assert set(contents.header) == set(video.header) and set(source) == set(video.header["source"])
    assert set(contents.frames[0]) == set(video.frames[0]) and set(contents.summary) == set(video.summary)


def test_pipeline_run_on_a_lone_image_gives_one_final_frame(tmp_path):
    from fakes import FakeLifter, FakePose2D

    from streampose.pipeline import Pipeline, PipelineConfig

    path = _write(tmp_path / "person.png", _picture(4))
    pipe = Pipeline(PipelineConfig(device="cpu"), pose2d=FakePose2D(), lifter=FakeLifter())
    (frame,) = list(pipe.run(path))
    assert frame.index == 0 and frame.time == 0.0
    (person,) = frame.people
    assert person.keypoints3d is not None  # the lag was resolved by the end-of-stream flush
    assert pipe.source_info.fps is None and pipe.stats.frames == 1


# A standing H36M-17 skeleton (metres, camera axes: y down, z forward).
_STANDING = np.array([
    [0, 0, 0], [-.12, 0, 0], [-.12, .45, 0], [-.12, .87, 0], [.12, 0, 0], [.12, .45, 0], [.12, .87, 0],
    [0, -.25, 0], [0, -.5, 0], [0, -.6, -.08], [0, -.75, 0], [.18, -.5, 0], [.2, -.23, 0], [.22, .03, 0],
    [-.18, -.5, 0], [-.2, -.23, 0], [-.22, .03, 0]])


class _StandingPerson2D:
    """2D stage that 'finds' the standing skeleton, projected through an 800-px pinhole camera 3 m away."""

    def process(self, frame):
        from streampose.types import Person2D

        points = _STANDING + [0.0, 0.0, 3.0]
        pixels = points[:, :2] / points[:, 2:] * 800.0 + [320.0, 240.0]
        keypoints = np.column_stack([pixels, np.ones(17)]).astype(np.float32)
        box = np.array([*pixels.min(0) - 10, *pixels.max(0) + 10], np.float32)
        return [Person2D(bbox=box, score=0.95, keypoints2d=keypoints)]


@pytest.mark.parametrize("causal", [False, True])
def test_the_real_lifter_on_a_lone_image_lifts_the_pose_it_sees(tmp_path, causal):
    """One frame: the temporal lifter sees it replicated on both sides (a person standing still)."""
    from streampose.lifter import load_lifter
    from streampose.metrics import p_mpjpe
    from streampose.pipeline import Pipeline, PipelineConfig

    path = _write(tmp_path / "person.png", np.zeros((480, 640, 3), np.uint8))
    pipe = Pipeline(PipelineConfig(device="cpu", causal=causal), pose2d=_StandingPerson2D())
    (frame,) = list(pipe.run(path))
    (person,) = frame.people
    assert person.keypoints3d.shape == (17, 3) and np.isfinite(person.keypoints3d).all()
    assert p_mpjpe(person.keypoints3d[None], _STANDING[None]) < 0.08
    assert person.root is not None and 1.0 < person.root[2] < 10.0
    # The single-frame result is the lifter's answer for that pose held still (replicate padding).
    # (Offline runs average with the mirrored input, as the pipeline's default lifter does.)
    lifter = load_lifter("default", causal=causal, test_time_flip=not causal)
    pixels = _StandingPerson2D().process(None)[0].keypoints2d[:, :2]
    held, _ = lifter.lift_sequence(np.repeat(pixels[None], lifter.receptive_field, axis=0), (640, 480))
    middle = held[lifter.receptive_field // 2]
    np.testing.assert_allclose(person.keypoints3d, middle - middle[:1], atol=2e-3)
