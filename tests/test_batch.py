"""``streampose batch``: inputs (folder, glob, list, files), one output per video written atomically,
the manifest (schema, resume, --retry-failed), bad videos and dying workers among good ones, Ctrl-C
(a real subprocess and SIGINT), and the Ray engine on a local runtime (skipped without ray).

The pipelines are the real ``Pipeline`` around the fake stages of ``fakes.py`` (the plumbing is
under test; ``benchmarks/batch.py`` runs the real models).  Worker processes are spawned, so the
factories below are module-level functions they can import.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from streampose import cli
from streampose.batch import BatchOptions, expand_inputs, run_batch
from streampose.batch.manifest import RECORD_FIELDS, STATUSES, output_complete, read_manifest
from streampose.errors import InputError
from streampose.output import read_jsonl
from streampose.settings import PipelineConfig
from videogen import make_video

TESTS = Path(__file__).resolve().parent
CRASH_SIZE = (64, 48)  # a video of this size makes the crashing fake's worker process die


# --------------------------------------------------------------------------- factories (spawned workers)


def fake_factory(config):
    from fakes import FakeLifter, FakePose2D

    from streampose.pipeline import Pipeline

    return Pipeline(config, device="cpu", pose2d=FakePose2D(), lifter=FakeLifter())


def slow_factory(config):
    from fakes import FakeLifter, FakePose2D

    from streampose.pipeline import Pipeline

    return Pipeline(config, device="cpu", pose2d=FakePose2D(delay=0.02), lifter=FakeLifter())


class _CrashingPose2D:
    """FakePose2D, except that a CRASH_SIZE frame kills the process (like a crash in a decoder);
    with STREAMPOSE_TEST_CRASH_ONCE=<file> only the first time (the file marks it)."""

    def __init__(self):
        from fakes import FakePose2D

        self.inner = FakePose2D()

    def process(self, frame):
        if frame.image.shape[:2] == CRASH_SIZE[::-1]:
            marker = os.environ.get("STREAMPOSE_TEST_CRASH_ONCE")
            if marker is None or not os.path.exists(marker):
                if marker is not None:
                    Path(marker).touch()
                os._exit(3)
        return self.inner.process(frame)


def crashing_factory(config):
    from fakes import FakeLifter

    from streampose.pipeline import Pipeline

    return Pipeline(config, device="cpu", pose2d=_CrashingPose2D(), lifter=FakeLifter())


def failing_factory(config):
    raise RuntimeError("no models here")


# --------------------------------------------------------------------------- helpers


def _dark(index, width, height):
    return np.zeros((height, width, 3), np.uint8)  # FakePose2D finds nobody on dark frames


def _clips(root: Path, count: int = 3, frames: int = 12) -> list[Path]:
    """``count`` tiny videos, every other one in a sub-folder."""
    paths = []
    for k in range(count):
        folder = root / ("sub" if k % 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(make_video(folder / f"clip{k}.mp4", frames=frames + k, size=(96, 64)))
    return paths


def _options(inputs, out_dir, **overrides) -> BatchOptions:
    options = dict(inputs=[str(i) for i in inputs], out_dir=str(out_dir), workers=1, factory=fake_factory,
                   progress=False, config=PipelineConfig(device="cpu"))
    options.update(overrides)
    return BatchOptions(**options)


def _records(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "manifest.jsonl").read_text().splitlines()]


def _without_timings(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["type"] == "summary":
            record = {k: v for k, v in record.items()
                      if not any(t in k for t in ("wall_time", "fps", "latency", "lookahead"))}
        out.append(record)
    return out


# --------------------------------------------------------------------------- inputs


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folder_input_is_recursive_videos_only_and_skips_hidden_and_out_dir(tmp_path):
    for name in ("a.mp4", "b/c.MOV", "b/d/e.mkv", "notes.txt", ".hidden.mp4", ".cache/f.mp4", "out/g.mp4"):
        _touch(tmp_path / "clips" / name)
    videos = expand_inputs([tmp_path / "clips"], exclude=tmp_path / "clips" / "out")
    assert [v.key for v in videos] == ["a.mp4", "b/c.MOV", "b/d/e.mkv"]
    assert all(os.path.isabs(v.source) for v in videos)
    assert videos[1].output_name("jsonl") == "b/c.MOV.jsonl"


def test_glob_input_is_relative_to_its_fixed_folder(tmp_path, monkeypatch):
    for name in ("x/1.mp4", "x/y/2.mp4", "x/y/3.avi"):
        _touch(tmp_path / "data" / name)
    monkeypatch.chdir(tmp_path)
    assert [v.key for v in expand_inputs(["data/**/*.mp4"])] == ["x/1.mp4", "x/y/2.mp4"]
    assert [v.key for v in expand_inputs(["data/x/y/*"])] == ["2.mp4", "3.avi"]
    with pytest.raises(InputError, match="matches no files"):
        expand_inputs(["data/**/*.webm"])


def test_list_file_and_direct_files(tmp_path):
    one, two = _touch(tmp_path / "v" / "day1" / "a.mp4"), _touch(tmp_path / "v" / "day2" / "a.mp4")
    listing = tmp_path / "v" / "list.txt"
    listing.write_text(f"# clips\n\nday1/a.mp4\n{two}\nday3/missing.mp4\nhttps://example.com/cams/c1.mp4\n")
    videos = expand_inputs([listing])
    assert [v.key for v in videos] == ["day1/a.mp4", "day2/a.mp4", "day3/missing.mp4", "example.com/cams/c1.mp4"]
    assert videos[-1].is_url and videos[-1].source == "https://example.com/cams/c1.mp4"
    # Files named directly are relative to their common folder (a shell-expanded glob keeps its tree).
    assert [v.key for v in expand_inputs([one, two])] == ["day1/a.mp4", "day2/a.mp4"]
    assert [v.key for v in expand_inputs([one])] == ["a.mp4"]
    # The same file twice is one video; two files with one key cannot share an output.
    assert len(expand_inputs([one, tmp_path / "v" / "day1"])) == 1
    with pytest.raises(InputError, match="same relative path"):
        expand_inputs([tmp_path / "v" / "day1", tmp_path / "v" / "day2"])
    with pytest.raises(InputError, match="no such file"):
        expand_inputs([tmp_path / "nope.mp4"])


# --------------------------------------------------------------------------- a batch


@pytest.fixture
def mixed(tmp_path):
    """Three good clips, one corrupt file, one video where nobody is found."""
    clips = _clips(tmp_path / "in")
    (tmp_path / "in" / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    make_video(tmp_path / "in" / "dark.mp4", frames=8, size=(96, 64), draw=_dark)
    return tmp_path / "in", clips


def test_bad_videos_never_stop_the_batch_and_the_manifest_has_one_record_each(mixed, tmp_path):
    folder, clips = mixed
    out = tmp_path / "out"
    result = run_batch(_options([folder], out, workers=2))
    assert not result.interrupted
    records = {r["video"]: r for r in _records(out)}
    assert set(records) == {"clip0.mp4", "clip2.mp4", "sub/clip1.mp4", "corrupt.mp4", "dark.mp4"}
    assert len(_records(out)) == 5  # one record per video after the batch
    for record in records.values():
        assert list(record) == list(RECORD_FIELDS)
        assert record["status"] in STATUSES and record["schema"] == 1 and record["engine"] == "local"
        assert isinstance(record["wall_time"], float) and isinstance(record["warnings"], list)
        assert record["attempts"] == 1 and record["settings"] and record["finished_at"].endswith("Z")
    bad = records["corrupt.mp4"]
    assert bad["status"] == "failed" and "not a readable video" in bad["error"] and bad["output"] is None
    assert not (out / "corrupt.mp4.jsonl").exists()
    dark = records["dark.mp4"]
    assert dark["status"] == "ok" and dark["people"] == 0 and dark["frames_with_person"] == 0
    for k, clip in enumerate(clips):
        record = records[clip.relative_to(folder).as_posix()]
        assert record["status"] == "ok" and record["frames"] == 12 + k and record["people"] == 1
        assert record["input_size"] == clip.stat().st_size and record["input_mtime_ns"] == clip.stat().st_mtime_ns
        output = out / record["output"]
        assert record["output_size"] == output.stat().st_size
        contents = read_jsonl(output)
        assert contents.header["source"]["path"] == str(clip)
        assert len(contents.frames) == 12 + k and contents.summary["interrupted"] is False
    assert result.counts["ok"] == 3 and result.counts["empty"] == 1 and result.counts["failed"] == 1
    assert not [p for p in out.rglob(".*") if ".partial." in p.name]


def test_output_equals_the_single_video_cli(tmp_path, monkeypatch, capsys):
    from fakes import fake_pipeline

    clip = _clips(tmp_path / "in", count=1)[0]
    run_batch(_options([clip], tmp_path / "out"))
    monkeypatch.setattr(cli, "build_pipeline", fake_pipeline)
    assert cli.main([str(clip), "--out", str(tmp_path / "single.jsonl"), "--device", "cpu", "-q"]) == 0
    assert _without_timings(tmp_path / "out" / "clip0.mp4.jsonl") == _without_timings(tmp_path / "single.jsonl")


def test_resume_skips_complete_outputs_redoes_truncated_changed_and_retries_failed_on_request(mixed, tmp_path):
    folder, clips = mixed
    out = tmp_path / "out"
    run_batch(_options([folder], out))
    first = {r["video"]: r for r in _records(out)}
    outputs = {key: out / r["output"] for key, r in first.items() if r["output"]}
    stamps = {key: path.stat().st_mtime_ns for key, path in outputs.items()}

    # Truncate one output (as a kill during a copy would), change one input.
    truncated = outputs["clip0.mp4"]
    truncated.write_bytes(truncated.read_bytes()[:200])
    make_video(folder / "clip2.mp4", frames=20, size=(96, 64))
    result = run_batch(_options([folder], out))
    second = {r["video"]: r for r in _records(out)}
    assert second["clip0.mp4"]["status"] == "ok" and output_complete(truncated, second["clip0.mp4"]["output_size"])
    assert second["clip2.mp4"]["status"] == "ok" and second["clip2.mp4"]["frames"] == 20
    for key in ("sub/clip1.mp4", "dark.mp4"):
        assert second[key]["status"] == "skipped"
        assert outputs[key].stat().st_mtime_ns == stamps[key]  # not rewritten
        assert second[key]["frames"] == first[key]["frames"]
    # The corrupt file failed before and is unchanged: left alone, still recorded as failed.
    assert second["corrupt.mp4"] == first["corrupt.mp4"]
    assert [r["video"] for r in result.failed_earlier] == ["corrupt.mp4"]
    assert result.processed == 2

    retried = run_batch(_options([folder], out, retry_failed=True))
    assert [r["video"] for r in retried.records if r["status"] != "skipped"] == ["corrupt.mp4"]
    assert _records(out)[[r["video"] for r in _records(out)].index("corrupt.mp4")]["status"] == "failed"


def test_npz_format_and_a_missing_list_entry(tmp_path):
    clips = _clips(tmp_path / "in", count=2)
    listing = tmp_path / "in" / "videos.lst"
    listing.write_text("clip0.mp4\nsub/clip1.mp4\ngone.mp4\n")
    out = tmp_path / "out"
    result = run_batch(_options([listing], out, format="npz"))
    records = {r["video"]: r for r in result.records}
    assert records["gone.mp4"]["status"] == "failed" and "no such file" in records["gone.mp4"]["error"]
    data = np.load(out / "sub" / "clip1.mp4.npz")
    assert data["keypoints3d"].shape[0] == 13 and json.loads(str(data["summary"]))["frames_written"] == 13
    assert output_complete(out / "clip0.mp4.npz", records["clip0.mp4"]["output_size"])
    assert run_batch(_options([listing], out, format="npz")).counts["skipped"] == 2
    # Another format is another setting: nothing is skipped.
    assert run_batch(_options([listing], out, format="jsonl")).counts["skipped"] == 0
    assert len(clips) == 2


def test_a_dying_worker_is_replaced_and_its_video_retried_then_failed(tmp_path):
    clips = _clips(tmp_path / "in", count=2)
    make_video(tmp_path / "in" / "crash.mp4", frames=6, size=CRASH_SIZE)
    out = tmp_path / "out"
    result = run_batch(_options([tmp_path / "in"], out, factory=crashing_factory, max_retries=1))
    records = {r["video"]: r for r in result.records}
    crash = records["crash.mp4"]
    assert crash["status"] == "failed" and crash["attempts"] == 2 and "died (exit code 3)" in crash["error"]
    assert all(records[c.relative_to(tmp_path / "in").as_posix()]["status"] == "ok" for c in clips)


def test_models_that_cannot_load_end_the_batch_with_one_error(tmp_path, capsys):
    from streampose.batch.cli import main

    _clips(tmp_path / "in", count=1)
    status = main([str(tmp_path / "in"), "--out-dir", str(tmp_path / "out"), "-q"], factory=failing_factory)
    err = capsys.readouterr().err
    assert status == 2 and "no models here" in err and "Traceback" not in err


def test_cli_subcommand_exit_status_and_summary(mixed, tmp_path, capsys):
    from streampose.batch.cli import main

    folder, _ = mixed
    status = main([str(folder), "--out-dir", str(tmp_path / "out"), "--workers", "1", "--device", "cpu"],
                  factory=fake_factory)
    err = capsys.readouterr().err
    assert status == 1  # one video failed
    assert "[5/5]" in err and "failed" in err and "manifest:" in err and "ok, nobody found" in err
    # Routed from the main command; input errors are one line.
    assert cli.main(["batch", str(tmp_path / "nothing"), "--out-dir", str(tmp_path / "o2")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


# --------------------------------------------------------------------------- Ctrl-C, as a subprocess

_RUN_BATCH = """
import sys
sys.path.insert(0, {tests!r})
import test_batch
from streampose.batch.cli import main
sys.exit(main(sys.argv[1:], factory=test_batch.{factory}))
"""


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as test_cli.py: background shells ignore SIGINT


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs and signals")
def test_sigint_stops_cleanly_with_the_manifest_intact(tmp_path):
    folder = tmp_path / "in"
    _clips(folder, count=2)
    # The last video is a FIFO fed half a video: its worker decodes that and then waits for more,
    # so the signal lands mid-video, at a known point.
    stream = make_video(tmp_path / "long.ts", frames=200, size=(96, 64), options={"g": "12"}).read_bytes()
    fifo = folder / "sub" / "zz_live.ts"  # last: root files come before sub-folders
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "wb") as handle:
            try:
                handle.write(stream[: len(stream) // 2])
                handle.flush()
                time.sleep(60)
            except BrokenPipeError:
                pass

    threading.Thread(target=feed, daemon=True).start()
    out = tmp_path / "out"
    code = _RUN_BATCH.format(tests=str(TESTS), factory="fake_factory")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder), "--out-dir", str(out), "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_default_sigint,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            partial = [p for p in out.glob("sub/.zz_live*") if ".partial." in p.name] if out.exists() else []
            if partial and '"type":"frame"' in partial[0].read_text():
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        else:
            raise AssertionError("the FIFO video never started")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = err.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "INTERRUPTED" in err
    records = read_manifest(out / "manifest.jsonl")
    assert set(records) == {"clip0.mp4", "sub/clip1.mp4"}
    assert all(r["status"] == "ok" for r in records.values())
    assert len(_records(out)) == 2  # compacted: every line parses, one per video
    assert not (out / "sub" / "zz_live.ts.jsonl").exists()
    assert not [p for p in out.rglob(".*") if ".partial." in p.name]  # the half output is gone


# --------------------------------------------------------------------------- Ray (local runtime)


@pytest.fixture(scope="module")
def ray_runtime(tmp_path_factory):
    ray = pytest.importorskip("ray")
    # Ray's worker processes import the factories from this folder.
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), previous]))
    os.environ["STREAMPOSE_TEST_CRASH_ONCE"] = str(tmp_path_factory.mktemp("ray") / "crashed-once")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()
    os.environ.pop("STREAMPOSE_TEST_CRASH_ONCE")
    if previous is None:
        os.environ.pop("PYTHONPATH")
    else:
        os.environ["PYTHONPATH"] = previous


@pytest.mark.ray
def test_ray_engine_matches_the_local_pool_and_records_rays_retries(ray_runtime, mixed, tmp_path):
    folder, clips = mixed
    make_video(folder / "crash.mp4", frames=6, size=CRASH_SIZE)  # kills its Ray worker once
    local = run_batch(_options([folder], tmp_path / "local", factory=crashing_factory, workers=2))
    os.unlink(os.environ["STREAMPOSE_TEST_CRASH_ONCE"])  # crash once more, now under Ray
    result = run_batch(_options([folder], tmp_path / "ray", factory=crashing_factory, workers=2, ray=True))
    assert result.engine == "ray" and not result.interrupted
    records = {r["video"]: r for r in result.records}
    assert records["corrupt.mp4"]["status"] == "failed" and records["dark.mp4"]["people"] == 0
    # Ray restarted the dead actor and retried the video itself; the ledger counted both attempts.
    assert records["crash.mp4"]["status"] == "ok" and records["crash.mp4"]["attempts"] == 2
    assert all(r["engine"] == "ray" and r["worker"].startswith("ray/") for r in records.values())
    for record in local.records:
        if record["status"] == "ok":
            assert _without_timings(tmp_path / "local" / record["output"]) == \
                _without_timings(tmp_path / "ray" / records[record["video"]]["output"])
    assert len(clips) == 3
