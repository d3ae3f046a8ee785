"""Bad input: every unusable source gives one clear ``InputError`` line (library and CLI); a stream
damaged in the middle keeps going, skipping and counting what cannot be decoded.  All broken files are
generated here."""
from __future__ import annotations

import os

import av
import numpy as np
import pytest

from streampose import cli
from streampose.errors import InputError
from streampose.reader import open_source
from videogen import frame_index_from_image, make_audio_only, make_video


def _write_image(path, fmt: str):
    frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 90, dtype=np.uint8), format="rgb24")
    staging = path.with_suffix(f".{fmt}")
    frame.save(str(staging))
    staging.rename(path)
    return path


def _unknown_codec_avi(tmp_path):
    # An AVI whose video FourCC is unknown to FFmpeg: the container opens, no decoder exists.
    path = make_video(tmp_path / "mpeg4.avi", frames=4, codec="mpeg4", size=(64, 48))
    data = path.read_bytes()
    assert b"FMP4" in data
    broken = tmp_path / "unknown_codec.avi"
    broken.write_bytes(data.replace(b"FMP4", b"QQQQ"))
    return broken


def _bad_sources(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 40)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    return {
        "missing": (tmp_path / "missing.mp4", "no such file"),
        "directory": (tmp_path, "folder has no images"),  # a folder is read as images (images.py)
        "text": (text, "not a readable video"),
        "png": (_write_image(tmp_path / "picture.mp4", "png"), "still image"),
        "jpeg": (_write_image(tmp_path / "photo.mp4", "jpg"), "still image"),
        "empty": (empty, "empty"),
        "audio_only": (make_audio_only(tmp_path / "speech.mp4"), "no video stream"),
        "unknown_codec": (_unknown_codec_avi(tmp_path), "unsupported video codec"),
    }


CASES = ["missing", "directory", "text", "png", "jpeg", "empty", "audio_only", "unknown_codec"]


@pytest.mark.parametrize("case", CASES)
def test_library_raises_one_line_input_error(tmp_path, case):
    path, message = _bad_sources(tmp_path)[case]
    with pytest.raises(InputError, match=message) as caught:
        open_source(path)
    assert "\n" not in str(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("case", CASES)
def test_cli_prints_one_line_and_exits_nonzero(tmp_path, capsys, case):
    path, message = _bad_sources(tmp_path)[case]
    out = tmp_path / "poses.jsonl"
    status = cli.main([str(path), "--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert status == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("streampose: error: ")
    assert message in lines[0]
    assert "Traceback" not in err
    assert not out.exists()  # nothing was written for an input that cannot be used


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_unreadable_file(tmp_path):
    path = make_video(tmp_path / "secret.mp4", frames=2, size=(64, 48))
    path.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        open_source(path)


def test_unreadable_file_simulated(tmp_path, monkeypatch):
    # As root chmod 000 blocks nothing, so simulate the OS refusing the read at both levels.
    path = make_video(tmp_path / "secret.mp4", frames=2, size=(64, 48))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == str(path) else real_access(p, mode, **kw))
    with pytest.raises(InputError, match="permission denied"):
        open_source(path)
    monkeypatch.setattr(os, "access", real_access)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(av, "open", refuse)
    with pytest.raises(InputError, match="permission denied"):
        open_source(path)


def _long_video(tmp_path, ext: str, frames: int = 60):
    # Keyframes every 10 frames so decoding can recover soon after damage.
    return make_video(tmp_path / f"clean.{ext}", frames=frames, size=(160, 120), options={"g": "10"})


@pytest.mark.parametrize("ext", ["mkv", "ts"])
def test_truncated_stream_yields_everything_before_the_cut(tmp_path, ext):
    data = _long_video(tmp_path, ext).read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with open_source(cut) as reader:
        got = list(reader)
    assert 20 <= len(got) < 60
    assert [f.index for f in got] == list(range(len(got)))
    assert [frame_index_from_image(f.image) for f in got] == [i % 30 for i in range(len(got))]


def test_truncated_mp4_without_index_is_an_input_error(tmp_path):
    # MP4 written front-to-back keeps its index (moov) at the end: cut it off and nothing is readable.
    data = _long_video(tmp_path, "mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        open_source(cut)


@pytest.mark.parametrize("ext", ["mkv", "ts", "mp4"])
def test_garbage_in_the_middle_is_skipped_and_counted(tmp_path, ext, caplog):
    data = bytearray(_long_video(tmp_path, ext).read_bytes())
    middle = len(data) // 2
    data[middle: middle + 2000] = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    broken = tmp_path / f"broken.{ext}"
    broken.write_bytes(bytes(data))

    with caplog.at_level("WARNING", logger="streampose.reader"):
        with open_source(broken) as reader:
            got = list(reader)
    assert reader.stats.damaged >= 1
    assert any("skipped" in r.getMessage() for r in caplog.records)
    assert 30 <= len(got) < 60  # the damage cost some frames, not the rest of the stream
    # Decoding resumed after the damage and reached the end of the stream.
    assert frame_index_from_image(got[-1].image) == 59 % 30
    assert got[-1].time == pytest.approx(59 / 30.0, abs=1e-3)  # Matroska stores milliseconds
    times = [f.time for f in got]
    assert times == sorted(times)
