"""Output writers: JSONL schema, per-line flushing, NaN handling, truncated-file reading, NPZ arrays,
output-path validation."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import streampose
from streampose.errors import InputError, OutputError
from streampose.output import (
    JsonlWriter, NpzWriter, check_writable, make_header, make_summary, open_writer, read_jsonl,
)
from streampose.skeleton import H36M17
from streampose.types import Person, PoseFrame, VideoInfo

INFO = VideoInfo(source="clip.mp4", width=640, height=360, fps=30.0, duration=2.0, frame_count=60,
                 codec="h264", pixel_format="yuv420p")


def _person(pid: int, offset: float = 0.0, with_3d: bool = True) -> Person:
    kp2d = np.column_stack([np.arange(17) + offset, np.arange(17) * 2.0, np.full(17, 0.9)])
    return Person(
        id=pid, score=0.8, bbox=np.array([1.0, 2.0, 30.0, 40.0]) + offset, keypoints2d=kp2d,
        keypoints3d=np.full((17, 3), 0.25) if with_3d else None,
        root=np.array([0.1, 0.2, 3.0]) if with_3d else None,
    )


def test_header_has_schema_source_skeleton_and_units():
    header = make_header(INFO, models={"pose2d": "blazepose_full"})
    assert header["type"] == "header" and header["schema"] == 1
    assert header["streampose"] == streampose.__version__
    assert header["source"] == INFO.to_dict()
    assert header["skeleton"]["name"] == "h36m17"
    assert header["skeleton"]["joints"] == list(H36M17.joints)
    assert header["skeleton"]["parents"] == list(H36M17.parents)
    assert header["models"] == {"pose2d": "blazepose_full"}
    assert header["units"]["keypoints2d"] == "pixels"
    assert header["units"]["keypoints3d"] == "meters, camera frame, root-relative"
    json.dumps(header)  # serialisable as is


def test_jsonl_roundtrip(tmp_path):
    path = tmp_path / "poses.jsonl"
    frames = [PoseFrame(0, 0.0, [_person(1)]), PoseFrame(1, 1 / 30, []),
              PoseFrame(2, 2 / 30, [_person(1, 1.0), _person(2, 5.0, with_3d=False)])]
    with JsonlWriter(path, make_header(INFO, {})) as writer:
        for frame in frames:
            writer.write_frame(frame)
        writer.write_summary(make_summary(frames_written=3, frames_decoded=3, frames_with_person=2,
                                          wall_time=0.5))
    lines = path.read_text().splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["header", "frame", "frame", "frame", "summary"]

    contents = read_jsonl(path)
    assert not contents.truncated
    assert contents.header["source"]["width"] == 640
    assert [f["index"] for f in contents.frames] == [0, 1, 2]
    assert contents.frames[1]["people"] == []
    second = contents.frames[2]["people"][1]
    assert second["id"] == 2 and second["keypoints3d"] is None
    np.testing.assert_allclose(contents.frames[2]["people"][0]["keypoints2d"],
                               frames[2].people[0].keypoints2d, atol=0.01)
    assert contents.summary["frames_written"] == 3 and contents.summary["fps"] == 6.0


def test_every_line_is_flushed_while_the_writer_is_open(tmp_path):
    path = tmp_path / "poses.jsonl"
    writer = JsonlWriter(path, make_header(INFO, {}))
    assert len(path.read_text().splitlines()) == 1  # header on disk before any frame
    for i in range(3):
        writer.write_frame(PoseFrame(i, i / 30, [_person(0)]))
        # Read through a separate handle: the data must already be in the file, not a buffer.
        assert len(path.read_text().splitlines()) == 2 + i
    writer.close()


def test_non_finite_numbers_become_null(tmp_path):
    path = tmp_path / "poses.jsonl"
    person = _person(0)
    person.keypoints2d[4] = np.nan
    person.keypoints3d[5, 2] = np.inf
    with JsonlWriter(path, make_header(INFO, {})) as writer:
        writer.write_frame(PoseFrame(0, 0.0, [person]))
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    frame = read_jsonl(path).frames[0]["people"][0]
    assert frame["keypoints2d"][4] == [None, None, None]
    assert frame["keypoints3d"][5][2] is None


def test_read_jsonl_tolerates_a_half_written_last_line(tmp_path):
    path = tmp_path / "poses.jsonl"
    with JsonlWriter(path, make_header(INFO, {})) as writer:
        writer.write_frame(PoseFrame(0, 0.0, []))
        writer.write_frame(PoseFrame(1, 0.033, []))
    with open(path, "a") as handle:
        handle.write('{"type":"frame","index":2,"ti')  # what SIGKILL mid-write leaves
    contents = read_jsonl(path)
    assert contents.truncated
    assert [f["index"] for f in contents.frames] == [0, 1]
    assert contents.summary is None


def test_read_jsonl_rejects_corruption_before_the_last_line(tmp_path):
    path = tmp_path / "poses.jsonl"
    path.write_text('{"type":"header","schema":1}\n{"type":"frame",BROKEN\n{"type":"frame","index":1}\n')
    with pytest.raises(InputError, match=":2: not valid JSON"):
        read_jsonl(path)
    with pytest.raises(InputError, match="cannot read"):
        read_jsonl(tmp_path / "absent.jsonl")


def test_npz_arrays_are_padded_per_person(tmp_path):
    path = tmp_path / "poses.npz"
    header = make_header(INFO, {"lifter": "vp3d"})
    with NpzWriter(path, header) as writer:
        writer.write_frame(PoseFrame(0, 0.0, [_person(7)]))
        writer.write_frame(PoseFrame(1, 0.04, []))
        writer.write_frame(PoseFrame(2, 0.08, [_person(7, 1.0), _person(9, 2.0, with_3d=False)]))
        writer.write_summary({"frames_written": 3})
        assert not path.exists()  # written once, on close
    data = np.load(path)
    assert data["times"].tolist() == [0.0, 0.04, 0.08]
    assert data["indices"].tolist() == [0, 1, 2]
    assert data["keypoints2d"].shape == (3, 2, 17, 3)
    assert data["keypoints3d"].shape == (3, 2, 17, 3) and data["root"].shape == (3, 2, 3)
    assert data["ids"].tolist() == [[7, -1], [-1, -1], [7, 9]]
    assert np.isnan(data["keypoints2d"][1]).all() and np.isnan(data["keypoints2d"][0, 1]).all()
    np.testing.assert_allclose(data["keypoints2d"][2, 1], _person(9, 2.0).keypoints2d, atol=1e-5)
    assert np.isnan(data["keypoints3d"][2, 1]).all()  # person without 3D yet
    np.testing.assert_allclose(data["root"][0, 0], [0.1, 0.2, 3.0], atol=1e-6)
    assert json.loads(str(data["header"]))["models"] == {"lifter": "vp3d"}
    assert json.loads(str(data["summary"]))["frames_written"] == 3
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []  # no temp file left


def test_npz_with_no_frames(tmp_path):
    path = tmp_path / "empty.npz"
    with NpzWriter(path, make_header(INFO, {})):
        pass
    data = np.load(path)
    assert data["keypoints2d"].shape == (0, 0, 17, 3) and data["times"].shape == (0,)


def test_open_writer_picks_by_extension(tmp_path):
    header = make_header(INFO, {})
    with open_writer(tmp_path / "a.jsonl", header) as w:
        assert isinstance(w, JsonlWriter)
    with open_writer(tmp_path / "b.NPZ", header) as w:
        assert isinstance(w, NpzWriter)
    with pytest.raises(OutputError, match="unsupported output type '.csv'"):
        open_writer(tmp_path / "c.csv", header)


def test_check_writable_rejects_bad_paths_with_one_line(tmp_path):
    cases = {
        tmp_path / "missing_dir" / "out.jsonl": "does not exist",
        tmp_path: "is a directory",
        tmp_path / "out": "no extension",
        tmp_path / "out.mp4": "unsupported output type",
    }
    (tmp_path / "file.txt").write_text("x")
    cases[tmp_path / "file.txt" / "out.jsonl"] = "not a directory"
    for path, message in cases.items():
        with pytest.raises(OutputError, match=message) as caught:
            check_writable(path)
        assert "\n" not in str(caught.value)
    assert check_writable(tmp_path / "fine.jsonl") == tmp_path / "fine.jsonl"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only directories")
def test_check_writable_read_only_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    with pytest.raises(OutputError, match="not writable"):
        check_writable(locked / "out.jsonl")


def test_writing_after_close_is_an_error(tmp_path):
    writer = JsonlWriter(tmp_path / "a.jsonl", make_header(INFO, {}))
    writer.close()
    with pytest.raises(OutputError, match="closed"):
        writer.write_frame(PoseFrame(0, 0.0, []))


def test_summary_fields_and_latency_percentiles():
    summary = make_summary(frames_written=100, frames_decoded=104, frames_damaged=3, frames_dropped=1,
                           frames_with_person=90, wall_time=4.0,
                           latencies=list(np.linspace(0.01, 0.1, 100)) + [float("nan")])
    assert summary["type"] == "summary" and summary["fps"] == 25.0
    assert summary["latency_p50"] == pytest.approx(0.055, abs=1e-4)
    assert summary["latency_p95"] == pytest.approx(0.0955, abs=1e-4)
    assert summary["frames_damaged"] == 3 and summary["interrupted"] is False
    assert "latency_p50" not in make_summary(frames_written=0, frames_decoded=0, wall_time=0.0)


def test_summary_reports_lookahead_apart_from_processing_latency():
    # Symmetric-lifter shape: every result waited for 4 later frames (the last ones fewer, at the end).
    summary = make_summary(frames_written=10, frames_decoded=10, wall_time=1.0,
                           latencies=[0.5] * 10, processing_latencies=[0.02] * 9 + [0.2],
                           lookahead_frames=[4] * 6 + [3, 2, 1, 0], lookahead_seconds=[4 / 30] * 6 + [0.1, 0.06, 0.03, 0])
    assert summary["latency_p50"] == pytest.approx(0.5)  # end to end, unchanged meaning
    assert summary["processing_latency_p50"] == pytest.approx(0.02)
    assert summary["processing_latency_p95"] > summary["processing_latency_p50"]
    assert summary["lookahead_frames_p50"] == 4 and summary["lookahead_frames_max"] == 4
    assert summary["lookahead_p50"] == pytest.approx(4 / 30, abs=1e-4)
    # Keys are added only when measured: an old-style call gives the old record.
    plain = make_summary(frames_written=1, frames_decoded=1, wall_time=1.0, latencies=[0.1])
    assert not any(key.startswith(("processing", "lookahead")) for key in plain)


def _run_cli_with_fake_stages(tmp_path, capsys, *options, lag=4):
    """The real CLI on a 24-frame clip, with fake 2D and a fake lifter answering ``lag`` frames late."""
    from fakes import FakeLifter, FakePose2D
    from videogen import make_video

    from streampose import cli
    from streampose.pipeline import Pipeline

    video = make_video(tmp_path / "clip.mp4", frames=24, size=(64, 48), fps=24.0)
    out = tmp_path / "poses.jsonl"
    real = cli.build_pipeline
    cli.build_pipeline = lambda args, live: Pipeline(cli.pipeline_config(args, live), device="cpu",
                                                     pose2d=FakePose2D(), lifter=FakeLifter(lag=lag))
    try:
        status = cli.main([str(video), "--out", str(out), "--device", "cpu", *options])
    finally:
        cli.build_pipeline = real
    return status, read_jsonl(out).summary, capsys.readouterr().err


def test_an_offline_run_shows_lookahead_separately_in_summary_and_closing_line(tmp_path, capsys):
    # The fake lifter answers each frame 4 frames late, as the symmetric lifter does with its lag
    # (no smoothing: the fixed-lag 3D smoother would add its own look-ahead).
    status, summary, err = _run_cli_with_fake_stages(tmp_path, capsys, "--smoothing", "none")
    assert status == 0
    assert summary["lookahead_frames_max"] == 4 and summary["lookahead_frames_p50"] == 4
    assert summary["lookahead_p50"] == pytest.approx(4 / 24.0, abs=1e-3)
    assert summary["processing_latency_p50"] <= summary["latency_p50"]
    assert "+ look-ahead 4 frames (0.17 s of video)" in err


def test_a_lifter_without_lookahead_reports_none(tmp_path, capsys):
    status, summary, err = _run_cli_with_fake_stages(tmp_path, capsys, "--causal", lag=0)
    assert status == 0
    assert summary["lookahead_frames_max"] == 0 and summary["lookahead_p50"] == 0
    # Without look-ahead the end-to-end latency is the processing latency.
    assert summary["processing_latency_p50"] == pytest.approx(summary["latency_p50"], rel=0.2, abs=2e-3)
    assert "look-ahead" not in err and "latency p50" in err
