"""The ``streampose`` command: records per frame, options, output validated before work, and a valid
JSONL prefix after SIGKILL / a summary after SIGINT (the CLI runs as a real subprocess for those)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

import streampose
from streampose import cli
from streampose.output import read_jsonl
from videogen import make_video

REAL_BUILD_PIPELINE = cli.build_pipeline  # before the autouse fixture swaps in the fake stages


@pytest.fixture(autouse=True)
def fake_stages(monkeypatch):
    """The CLI's own behaviour is under test here, so the model stages are stand-ins
    (``test_end_to_end.py`` runs the real ones)."""
    from fakes import fake_pipeline

    monkeypatch.setattr(cli, "build_pipeline", fake_pipeline)


def _run(argv, capsys):
    status = cli.main([str(a) for a in argv])
    return status, capsys.readouterr()


def test_writes_header_one_record_per_frame_and_summary(tmp_path, capsys):
    fps, frames = 25.0, 20
    video = make_video(tmp_path / "clip.mp4", frames=frames, size=(96, 64), fps=fps)
    out = tmp_path / "poses.jsonl"
    status, captured = _run([video, "--out", out, "--device", "cpu"], capsys)
    assert status == 0
    contents = read_jsonl(out)
    assert contents.header["source"]["width"] == 96 and contents.header["source"]["fps"] == fps
    assert [f["index"] for f in contents.frames] == list(range(frames))
    np.testing.assert_allclose([f["time"] for f in contents.frames], np.arange(frames) / fps, atol=1e-6)
    # make_video draws bright frames: the fake 2D stage finds one person in each, lifted to 3D.
    assert all(len(f["people"]) == 1 and f["people"][0]["keypoints3d"] is not None for f in contents.frames)
    assert contents.header["models"]["lifter_causal"] is False
    assert contents.summary["frames_written"] == frames
    assert contents.summary["frames_decoded"] == frames and contents.summary["interrupted"] is False
    # Closing line on stderr: frames written, damaged, fps.
    assert f"{frames} frames written" in captured.err and "0 damaged" in captured.err
    assert "fps" in captured.err and "Traceback" not in captured.err


def test_max_frames_npz_and_quiet(tmp_path, capsys):
    video = make_video(tmp_path / "clip.mp4", frames=20, size=(64, 48))
    out = tmp_path / "poses.npz"
    status, captured = _run([video, "--out", out, "--max-frames", "7", "--quiet", "--device", "cpu"], capsys)
    assert status == 0 and captured.err == ""
    data = np.load(out)
    assert data["indices"].tolist() == list(range(7))
    assert json.loads(str(data["summary"]))["frames_written"] == 7


def test_unwritable_output_fails_before_any_decoding(tmp_path, capsys, monkeypatch):
    video = make_video(tmp_path / "clip.mp4", frames=3, size=(64, 48))

    def must_not_open(*args, **kwargs):
        raise AssertionError("the source was opened before the output path was checked")

    monkeypatch.setattr(cli, "open_source", must_not_open)
    for bad in (tmp_path / "no_such_dir" / "p.jsonl", tmp_path, tmp_path / "poses.txt"):
        status, captured = _run([video, "--out", bad, "--device", "cpu"], capsys)
        assert status == 2
        assert captured.err.startswith("streampose: error: ") and captured.err.count("\n") == 1


def test_version_help_and_argument_errors(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0 and streampose.__version__ in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        cli.main(["--help"])
    help_text = capsys.readouterr().out
    assert stop.value.code == 0 and "--out" in help_text and "--device" in help_text
    with pytest.raises(SystemExit) as stop:
        cli.main(["clip.mp4", "--out", "p.jsonl", "--max-frames", "-3"])
    assert stop.value.code == 2


def test_cuda_requested_without_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    from streampose.pipeline import resolve_device

    assert resolve_device("auto") == "cpu"
    with pytest.raises(streampose.errors.InputError, match="CUDA is not available"):
        resolve_device("cuda")


# --------------------------------------------------------------------------- signals, as a subprocess
# The video is fed through a FIFO: the CLI decodes what has arrived and then waits for more, so the
# test can signal it at a known point mid-run instead of racing a fast decoder.


@pytest.fixture(scope="module")
def stream_bytes(tmp_path_factory) -> bytes:
    path = make_video(tmp_path_factory.mktemp("cli") / "long.ts", frames=240, size=(96, 64),
                      options={"g": "12"})
    return path.read_bytes()


class _FifoFeeder:
    """Writes the first part of a video into a FIFO, keeps the write end open until ``close()``."""

    def __init__(self, fifo: Path, data: bytes):
        self._fifo, self._data = fifo, data
        self._handle = None
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _feed(self):
        self._handle = open(self._fifo, "wb")  # blocks until the CLI opens the read end
        try:
            self._handle.write(self._data)
            self._handle.flush()
        except BrokenPipeError:
            pass

    def close(self):
        self._thread.join(timeout=5)
        if self._handle is not None:
            try:
                self._handle.close()
            except BrokenPipeError:
                pass


def _start_cli_on_fifo(tmp_path, stream_bytes, out):
    fifo = tmp_path / "live.ts"
    os.mkfifo(fifo)
    feeder = _FifoFeeder(fifo, stream_bytes[: len(stream_bytes) // 2])
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("cli_with_fake_stages.py")), str(fifo), "--out", str(out),
         "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, preexec_fn=_default_sigint,
    )
    return proc, feeder


def _default_sigint():
    # A shell starts background jobs with SIGINT ignored, children inherit that, and Python then
    # installs no KeyboardInterrupt handler (correctly: `nohup`/`&` mean "do not stop on Ctrl-C").
    # The test is about what Ctrl-C does, so the CLI must start with the default disposition
    # whoever runs pytest.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_frames(out: Path, proc, minimum: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.exists():
            count = out.read_text().count('"type":"frame"')
            if count >= minimum:
                return count
        if proc.poll() is not None:
            raise AssertionError(f"CLI ended early: {proc.returncode} {proc.stderr.read().decode()}")
        time.sleep(0.05)
    raise AssertionError(f"fewer than {minimum} frames written within {timeout} s")


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs and signals")


@needs_fifo
def test_sigkill_mid_run_leaves_a_valid_prefix(tmp_path, stream_bytes):
    out = tmp_path / "poses.jsonl"
    proc, feeder = _start_cli_on_fifo(tmp_path, stream_bytes, out)
    try:
        _wait_for_frames(out, proc, minimum=20)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        feeder.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    lines = out.read_text().split("\n")
    complete = lines[:-1]  # every newline-terminated line must parse
    records = [json.loads(line) for line in complete]
    assert records[0]["type"] == "header"
    frames = [r for r in records[1:]]
    assert all(r["type"] == "frame" for r in frames) and len(frames) >= 20
    assert [r["index"] for r in frames] == list(range(len(frames)))
    assert read_jsonl(out).summary is None


@needs_fifo
def test_sigint_writes_summary_and_exits_130(tmp_path, stream_bytes):
    out = tmp_path / "poses.jsonl"
    proc, feeder = _start_cli_on_fifo(tmp_path, stream_bytes, out)
    try:
        written = _wait_for_frames(out, proc, minimum=20)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        feeder.close()
        if proc.poll() is None:
            proc.kill()
    err = err.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    contents = read_jsonl(out)
    assert not contents.truncated
    assert contents.summary is not None and contents.summary["interrupted"] is True
    assert contents.summary["frames_written"] == len(contents.frames) >= written
    assert [f["index"] for f in contents.frames] == list(range(len(contents.frames)))


@pytest.mark.shared
def test_shared_video_one_record_per_decoded_frame(shared_dir, tmp_path, capsys):
    video = shared_dir / "data" / "videos" / "sports2d_walk_jump.mp4"
    out = tmp_path / "poses.jsonl"
    status, _ = _run([video, "--out", out, "--device", "cpu", "--quiet"], capsys)
    assert status == 0

    # Independent bare-PyAV pass: presentation times relative to the stream start.
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        expected = [float((f.pts - start) * stream.time_base) for f in container.decode(stream)]
    contents = read_jsonl(out)
    assert len(contents.frames) == len(expected) > 100
    assert [f["index"] for f in contents.frames] == list(range(len(expected)))
    np.testing.assert_allclose([f["time"] for f in contents.frames], expected, atol=1e-6)
    assert contents.header["source"]["width"] == 1768 and contents.header["source"]["height"] == 994
    assert contents.summary["frames_written"] == len(expected)


def test_overlay_video_has_one_frame_per_record(tmp_path, capsys):
    video = make_video(tmp_path / "clip.mp4", frames=12, size=(96, 64), fps=24.0)
    out, overlay = tmp_path / "poses.jsonl", tmp_path / "overlay.mp4"
    status, captured = _run([video, "--out", out, "--overlay", overlay, "--view3d", "--device", "cpu"], capsys)
    assert status == 0, captured.err
    with av.open(str(overlay)) as container:
        decoded = [f for f in container.decode(video=0)]
    assert len(decoded) == 12
    assert decoded[0].width > 96  # the 3D panel sits beside the 96-px-wide video


def test_overlay_path_is_checked_before_decoding(tmp_path, capsys, monkeypatch):
    video = make_video(tmp_path / "clip.mp4", frames=3, size=(64, 48))
    monkeypatch.setattr(cli, "open_source", lambda *a, **k: pytest.fail("source opened before overlay check"))
    status, captured = _run([video, "--out", tmp_path / "p.jsonl", "--overlay", tmp_path / "nodir" / "o.mp4"],
                            capsys)
    assert status == 2 and captured.err.startswith("streampose: error: ")


def test_python_dash_m_streampose_is_the_cli():
    done = subprocess.run([sys.executable, "-m", "streampose", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and streampose.__version__ in done.stdout


def test_plot_subcommand_is_routed(tmp_path, capsys):
    status, captured = _run(["plot", tmp_path / "missing.jsonl", "-o", tmp_path / "x.png"], capsys)
    assert status != 0 and "Traceback" not in captured.err


def test_precision_option_reaches_the_2d_stage(monkeypatch):
    seen = {}

    class Recorder:
        def __init__(self, config):
            seen["config"] = config

    monkeypatch.setattr("streampose.pipeline.Pipeline", Recorder)
    args = cli.build_parser().parse_args(["clip.mp4", "--out", "p.jsonl", "--precision", "bf16"])
    REAL_BUILD_PIPELINE(args, live=False)
    assert seen["config"].precision == "bf16"
    args = cli.build_parser().parse_args(["clip.mp4", "--out", "p.jsonl"])
    REAL_BUILD_PIPELINE(args, live=False)
    assert seen["config"].precision == "fp32"  # exact by default
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["clip.mp4", "--out", "p.jsonl", "--precision", "fp8"])


def test_config_options_come_from_the_config_and_reach_it(monkeypatch):
    from streampose.settings import CHOICES, PipelineConfig

    seen = {}
    monkeypatch.setattr("streampose.pipeline.Pipeline", lambda config: seen.setdefault("config", config))
    parser = cli.build_parser()
    choices = {a.dest: tuple(a.choices) for a in parser._actions if a.choices is not None}
    assert choices == CHOICES  # one vocabulary per setting
    REAL_BUILD_PIPELINE(parser.parse_args(["clip.mp4", "--out", "p.jsonl"]), live=False)
    assert seen.pop("config") == PipelineConfig()  # the command line's defaults are the library's
    args = parser.parse_args(["clip.mp4", "--out", "p.jsonl", "--smoothing", "oneeuro", "--readout", "regression",
                              "--max-people", "2", "--threads", "1", "--refine", "--lifter", "x.pt",
                              "--device", "cpu", "--max-frames", "5", "--overlay", "o.mp4"])
    REAL_BUILD_PIPELINE(args, live=True)
    assert seen["config"] == PipelineConfig(
        device="cpu", causal=True, realtime=True, lifter="x.pt", smoothing="oneeuro", refine=True, max_people=2,
        readout="regression", keep_images=True, max_frames=5, threads=1)
