"""Stage 1: the frame reader.

``open_source`` turns a file, webcam, network stream, standard input (``-``) or still images (one
image, a folder, a ``%05d``/glob pattern: :mod:`streampose.images`) into an iterator of
``streampose.types.Frame``: RGB uint8 images, already rotated upright, with the container's exact
presentation times (variable frame rate survives).  Decoding runs in its own thread behind a bounded
:class:`~streampose.runner.Channel` so that decoding overlaps with the pose stages:

* offline (``realtime=False``) the decoder blocks when the queue is full -- backpressure, nothing is
  ever dropped;
* live (``realtime=True``) a full queue drops its *oldest* frame, so the consumer always gets the
  freshest picture and latency stays bounded; drops are counted in ``FrameReader.stats.dropped``.

Bad input fails early with a one-line ``InputError``.  Damage in the middle of a stream (truncated
file, garbage bytes) does not: broken packets/frames are skipped with a logged warning, counted in
``stats.damaged``, and everything decodable is still delivered.

Example::

    with open_source("walk.mp4", max_frames=100) as reader:
        print(reader.info.width, reader.info.height, reader.info.fps)
        for frame in reader:
            ...  # frame.image (H, W, 3) uint8, frame.time seconds
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from streampose.errors import InputError, StageError, StreamposeError
from streampose.runner import END, POLL_S, Channel, Failure, StageFailed, start_stage
from streampose.types import Frame, VideoInfo

log = logging.getLogger(__name__)

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp")
# Formats FFmpeg uses for single still images; a PNG renamed to .mp4 must not pass as a 1-frame video.
_IMAGE_FORMATS = re.compile(r"^(image2|.*_pipe)$")
# Consecutive unreadable packets after which we stop instead of scanning megabytes of garbage.
_MAX_CONSECUTIVE_DEMUX_ERRORS = 50
# Warn about the first few damaged packets individually, then only count (long broken streams).
_DAMAGE_WARNINGS = 5
_NETWORK_TIMEOUT_S = 10.0  # default; open_source(timeout=...) / the CLI's --timeout change it
# Names that promise a video: a still image wearing one is a mix-up, not a 1-frame video.
_VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg",
                   ".mpeg", ".flv", ".wmv", ".3gp", ".ogv", ".mxf")
_CLOSE_GRACE_S = 1.0


class _StillImage(InputError):
    """FFmpeg found a still image where a video was expected."""


@dataclass
class ReaderStats:
    """Counters of the decode thread.

    Attributes:
        decoded: frames decoded and accepted (before any realtime drop).
        damaged: packets or frames that could not be decoded (or decoded as corrupt) and were skipped.
        dropped: frames discarded in realtime mode because the consumer was behind.
    """

    decoded: int = 0
    damaged: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class _SourceSpec:
    """How to hand a user's source description to ``av.open``."""

    url: str
    display: str
    format: str | None = None
    options: dict[str, str] | None = None
    is_live: bool = False
    is_file: bool = False
    is_pipe: bool = False  # standard input: a stream, but not live (never drop) and never timed out
    timeout: float = _NETWORK_TIMEOUT_S  # seconds without data before a network source is given up


def open_source(
    source: str | os.PathLike | int,
    *,
    realtime: bool = False,
    queue_size: int = 8,
    max_frames: int | None = None,
    start_time: float | None = None,
    fps: float | None = None,
    timeout: float = _NETWORK_TIMEOUT_S,
) -> "FrameReader":
    """Open a video file, webcam, network stream or still images and decode in a background thread.

    Args:
        source: a file path; ``"webcam:N"``, an ``int`` N or a device path like ``/dev/video0``
            for a camera; an ``rtsp://``, ``rtmp://``, ``http(s)://``, ``udp://`` ... URL; ``"-"``
            for a video piped to standard input; or still images: an image file, a folder of
            images, or a pattern like ``frames/%05d.png`` / ``frames/*.jpg`` (see
            :mod:`streampose.images`).
        realtime: drop the oldest queued frame when the consumer falls behind (live use) instead of
            blocking the decoder (offline use, never drops).
        queue_size: frames buffered between the decode thread and the consumer (>= 1).
        max_frames: stop after this many frames (``None``: until the end of the source).
        start_time: seek to this time in seconds (relative to the stream start) before decoding;
            frames before it are decoded but not delivered, so the first frame is exact.
        fps: frame rate of an image sequence (images carry none; ``None``: frames 1/30 s apart and
            ``info.fps`` is ``None``).  Videos carry their own timestamps, so it is refused for them.
        timeout: seconds a network source may send nothing (at open or mid-stream) before it is
            given up with an ``InputError``.

    Returns:
        A started ``FrameReader``; iterate it for ``Frame`` records and close it (or use ``with``).

    Raises:
        InputError: the source is missing, unreadable, not a video, has no video stream, uses a codec
            FFmpeg cannot decode, or has no decodable frame.
    """
    if queue_size < 1:
        raise InputError(f"queue_size must be >= 1, got {queue_size}")
    if max_frames is not None and max_frames < 0:
        raise InputError(f"max_frames must be >= 0, got {max_frames}")
    if start_time is not None and start_time < 0:
        raise InputError(f"start_time must be >= 0 seconds, got {start_time}")
    if not timeout > 0:
        raise InputError(f"timeout must be > 0 seconds, got {timeout}")
    spec = dataclasses.replace(_parse_source(source), timeout=float(timeout))
    if spec.is_file:
        from streampose import images  # imports this module: loaded on first use

        if images.looks_like_image_source(spec.url):
            decoder = images.ImageDecoder(images.find_images(spec.url), fps=fps, queue_size=queue_size,
                                          max_frames=max_frames, start_time=start_time)
            return FrameReader(decoder)
    try:
        container, spec = _open_container(spec)
    except _StillImage:
        if Path(spec.url).suffix.lower() in _VIDEO_SUFFIXES:
            raise  # a picture named like a video is a mix-up; say so rather than give one frame
        from streampose import images  # an image under a name we do not know (no extension, ...)

        decoder = images.ImageDecoder(images.ImageSource(spec.display, (Path(spec.url),), (0,), single=True),
                                      fps=fps, queue_size=queue_size, max_frames=max_frames,
                                      start_time=start_time)
        return FrameReader(decoder)
    if fps is not None:
        container.close()
        raise InputError(f"{spec.display}: fps is for image sequences; a video's frames carry their own times")
    try:
        decoder = _Decoder(
            container, spec, realtime=realtime, queue_size=queue_size, max_frames=max_frames,
            start_time=start_time,
        )
    except BaseException:
        container.close()
        raise
    return FrameReader(decoder)


class FrameReader:
    """Iterator of upright RGB ``Frame`` records decoded in a background thread.

    Built by ``open_source``; not meant to be constructed directly.  ``info`` describes the source
    (size after rotation), ``stats`` counts decoded / damaged / dropped frames.  Iterating re-raises
    any error of the decode thread; ``close()`` stops the thread promptly even if the consumer never
    reads again.  A reader dropped without ``close()`` stops its thread when garbage-collected (the
    thread holds only the decoder, never the reader).
    """

    def __init__(self, decoder: "_Decoder") -> None:
        self._decoder = decoder
        self.info: VideoInfo = decoder.info
        self.stats: ReaderStats = decoder.stats
        self._channel = decoder.channel
        self._finished = False
        self._thread = start_stage("reader", decoder.run, decoder.channel,
                                   thread_name=f"streampose-reader[{decoder.spec.display}]")

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        if self._finished:
            raise StopIteration
        try:
            # The thread always leaves a marker; a dead thread without one only happens after
            # close(), and then the reader is finished rather than waiting forever.
            item = self._channel.get(producer_alive=self._thread.is_alive)
        except StageFailed as failed:
            item = failed.failure
        if isinstance(item, Failure):
            self._finished = True
            if isinstance(item.error, StreamposeError):
                raise item.error  # already one clear line (e.g. a stalled stream)
            raise StageError("reader", item.error) from item.error
        if item is END:
            self._finished = True
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the decode thread, free the decoder and the file/stream.  Idempotent."""
        self._finished = True
        decoder = self._decoder
        decoder.stop.set()
        thread = self._thread
        if thread.is_alive():
            # A file's decode thread only ever waits on the queue (polled every POLL_S); only a
            # stalled live read can take longer, and that thread is abandoned rather than awaited.
            deadline = time.monotonic() + _CLOSE_GRACE_S
            while thread.is_alive() and time.monotonic() < deadline:
                decoder.channel.drain()  # unblocks a producer waiting on a full queue
                thread.join(timeout=POLL_S)
        if not thread.is_alive():
            # Never close the container under a thread still inside FFmpeg (a stalled network
            # read); that daemon thread then dies with the process.
            decoder.container.close()
        decoder.channel.drain()

    def __enter__(self) -> "FrameReader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_thread", None) is not None and not self._decoder.stop.is_set():
            self.close()

    @property
    def realtime(self) -> bool:
        return self._decoder.realtime


class _Decoder:
    """The decode-thread side of a ``FrameReader``: demux, decode, convert, enqueue.

    Construction (in the caller's thread) decodes the first frame, which proves the source is
    decodable and carries the rotation that ``info`` needs; ``run`` (in the reader thread) delivers
    it and everything after it.
    """

    def __init__(
        self,
        container: av.container.InputContainer,
        spec: _SourceSpec,
        *,
        realtime: bool,
        queue_size: int,
        max_frames: int | None,
        start_time: float | None,
    ) -> None:
        self.stats = ReaderStats()
        self.container = container
        self.spec = spec
        self.realtime = realtime
        # Live sources drop their oldest frame rather than wait for a slow consumer.
        self.channel: Channel[Frame] = Channel(queue_size, drop_oldest=realtime)
        self.stop = self.channel.stop
        self._max_frames = max_frames
        self._damage_warned = 0
        self._last_time: float | None = None

        self._stream = _pick_video_stream(container, spec.display)
        # Frame threading decodes several frames at once: best throughput for files, but it delays
        # every frame by the thread count, which a live source cannot afford.
        self._stream.thread_type = "SLICE" if spec.is_live else "AUTO"
        self._time_base = self._stream.time_base or Fraction(1, 1_000_000)
        self._start_offset = _stream_start_seconds(container, self._stream)
        self._start_time = start_time
        if start_time:
            if self._start_offset is None:
                # Containers that do not state a start (Matroska) start at 0 in practice; a seek
                # needs a reference before the first frame is seen.
                self._start_offset = 0.0
            self._seek(start_time)

        self._frames = self._decoded_frames()
        first = self._peek_first_frame()
        self._rotation_ccw = _rotation_of(first, self._stream) if first is not None else 0
        self.info = self._describe(first)
        self._pending_first = first

    def run(self) -> None:
        """Thread body: deliver frames until the end, ``max_frames`` or ``stop``, then the end marker.

        Run through :func:`streampose.runner.start_stage`, which turns an exception into the
        failure marker the consumer re-raises.
        """
        index = 0
        frames = self._frames
        if self._pending_first is not None:
            frames = _chain_first(self._pending_first, frames)
            self._pending_first = None
        for av_frame in frames:
            if self.stop.is_set():
                return
            if self._max_frames is not None and index >= self._max_frames:
                break
            frame = self._to_frame(av_frame, index)
            self.stats.decoded += 1
            index += 1
            delivered = self.channel.put(frame)
            self.stats.dropped = self.channel.dropped
            if not delivered:  # stopped
                return
        self.channel.put_end()

    def _to_frame(self, av_frame: av.VideoFrame, index: int) -> Frame:
        image = av_frame.to_ndarray(format="rgb24")
        k = (self._rotation_ccw // 90) % 4
        if k:
            image = np.ascontiguousarray(np.rot90(image, k))
        return Frame(
            index=index, time=self._frame_time(av_frame), image=image,
            capture_time=time.perf_counter(),
        )

    def _frame_time(self, av_frame: av.VideoFrame) -> float:
        pts = av_frame.pts
        if pts is None:
            pts = av_frame.dts
        if pts is None:
            # No timestamp at all (some raw live streams): extrapolate at the nominal rate.
            period = 1.0 / self.info.fps if self.info.fps else 1.0 / 30.0
            self._last_time = 0.0 if self._last_time is None else self._last_time + period
            return self._last_time
        if self._start_offset is None:
            self._start_offset = float(pts * self._time_base)
        self._last_time = float(pts * self._time_base) - self._start_offset
        return self._last_time

    def _decoded_frames(self) -> Iterator[av.VideoFrame]:
        """Demux and decode packet by packet so one broken packet costs one packet, not the stream."""
        stream = self._stream
        consecutive_errors = 0
        demuxer = self.container.demux(stream)
        while not self.stop.is_set():
            try:
                packet = next(demuxer)
                consecutive_errors = 0
            except StopIteration:
                return
            except av.error.ExitError:
                # FFmpeg's interrupt callback fired: the network read timeout expired.
                raise InputError(
                    f"{self.spec.display}: stream stalled (no data for {self.spec.timeout:g} s)"
                ) from None
            except av.error.FFmpegError as error:
                if not self.spec.is_file and isinstance(error, OSError):
                    # The connection dropped (the server stopped, the network went): the stream
                    # ends here; everything decoded so far has been delivered.
                    log.warning("%s: connection lost after %d frames (%s); ending the stream there",
                                self.spec.display, self.stats.decoded, _one_line(error))
                    yield from self._drain_decoder()
                    return
                consecutive_errors += 1
                self._damaged(f"unreadable data in container: {error}")
                if consecutive_errors >= _MAX_CONSECUTIVE_DEMUX_ERRORS:
                    log.warning("%s: giving up after %d unreadable packets in a row",
                                self.spec.display, consecutive_errors)
                    return
                demuxer = self.container.demux(stream)
                continue
            try:
                # A null packet at the end of the demuxer flushes frames held by the decoder.
                decoded = packet.decode()
            except av.error.FFmpegError as error:
                if packet.size == 0:
                    return
                self._damaged(f"damaged packet at pts={packet.pts}: {_one_line(error)}")
                continue
            if packet.is_corrupt:
                # The demuxer flagged it (e.g. MPEG-TS continuity errors).  It was still fed to the
                # decoder to keep reference frames in sync; the pictures this call returns are not
                # trusted (with frame threading they may be a few packets older -- conservative).
                self._damaged(f"corrupt packet at pts={packet.pts}")
                continue
            for av_frame in decoded:
                if av_frame.is_corrupt:
                    self._damaged(f"corrupt frame at pts={av_frame.pts}")
                    continue
                if self._start_time and self._before_start(av_frame):
                    continue
                yield av_frame

    def _drain_decoder(self) -> Iterator[av.VideoFrame]:
        """The frames the decoder still holds (frame threading, reordering) when input ends early."""
        try:
            held = self._stream.codec_context.decode(None)
        except av.error.FFmpegError:
            return
        for av_frame in held:
            if not av_frame.is_corrupt and not (self._start_time and self._before_start(av_frame)):
                yield av_frame

    def _before_start(self, av_frame: av.VideoFrame) -> bool:
        if av_frame.pts is None or self._start_offset is None:
            return False
        t = float(av_frame.pts * self._time_base) - self._start_offset
        # Half a microsecond of slack absorbs rounding of the requested time to the time base.
        return t < self._start_time - 5e-7

    def _damaged(self, message: str) -> None:
        self.stats.damaged += 1
        if self._damage_warned < _DAMAGE_WARNINGS:
            log.warning("%s: %s (skipped)", self.spec.display, message)
        elif self._damage_warned == _DAMAGE_WARNINGS:
            log.warning("%s: more damaged packets; counting them silently", self.spec.display)
        self._damage_warned += 1

    # ------------------------------------------------------------------ opening

    def _seek(self, seconds: float) -> None:
        if self.spec.is_live or self.spec.is_pipe:
            raise InputError(f"{self.spec.display}: cannot seek in a live source or a pipe")
        target = (self._start_offset or 0.0) + seconds
        try:
            self.container.seek(
                int(target / self._time_base), stream=self._stream, backward=True, any_frame=False
            )
        except av.error.FFmpegError as error:
            raise InputError(f"{self.spec.display}: cannot seek to {seconds:.3f} s ({error})") from None

    def _peek_first_frame(self) -> av.VideoFrame | None:
        """Decode the first frame now: it proves the file is decodable and carries the rotation."""
        try:
            return next(self._frames)
        except StopIteration:
            if self._start_time:
                return None  # seeking past the end is not an error: the reader is just empty
            raise InputError(f"{self.spec.display}: no decodable video frame") from None
        except av.error.FFmpegError as error:
            raise InputError(f"{self.spec.display}: cannot decode video ({error})") from None

    def _describe(self, first: av.VideoFrame | None) -> VideoInfo:
        stream, ctx = self._stream, self._stream.codec_context
        width = first.width if first is not None else ctx.width
        height = first.height if first is not None else ctx.height
        if (self._rotation_ccw // 90) % 2:
            width, height = height, width
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else None
        duration = None
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif self.container.duration and self.container.duration > 0:
            duration = self.container.duration / av.time_base
        if self.spec.is_live:
            duration = None
        frame_count = stream.frames if stream.frames and stream.frames > 0 else None
        pixel_format = first.format.name if first is not None else (ctx.format.name if ctx.format else None)
        return VideoInfo(
            source=self.spec.display, width=int(width), height=int(height), fps=fps,
            duration=duration, frame_count=frame_count, codec=ctx.name, pixel_format=pixel_format,
            rotation=(-self._rotation_ccw) % 360, is_live=self.spec.is_live,
        )


def _chain_first(first: av.VideoFrame, rest: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
    yield first
    yield from rest


def tune_allocator() -> bool:
    """Make glibc keep freed frame buffers instead of unmapping them; for applications, not libraries.

    The decode thread hands a fresh multi-megabyte RGB array to another thread for every frame
    (6 MB at 1080p).  With glibc's default thresholds those buffers are trimmed or unmapped when
    freed, and every new frame page-faults its memory back in: ~60-100 page faults and several
    percent of decode CPU per 1080p frame (benchmarks/reader.py).  Raising the trim and mmap
    thresholds keeps up to 256 MB of freed heap for reuse, so the peak RSS stays allocated.

    This changes process-wide allocator behaviour, so only the owner of the process should call it
    (the ``streampose`` CLI does, once at start).  A no-op returning ``False`` off glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's <malloc.h>
    ok = mallopt(m_trim_threshold, 256 << 20) == 1
    # 32 MB is glibc's ceiling for the mmap threshold on 64-bit; it covers an 8K RGB frame.
    ok = mallopt(m_mmap_threshold, 32 << 20) == 1 and ok
    return ok


def is_live_source(source: str | os.PathLike | int) -> bool:
    """Whether ``source`` names a camera or a live network stream (by its form; nothing is opened).

    Plain ``http(s)://`` URLs count as files: they usually serve one.
    """
    try:
        return _parse_source(source).is_live
    except InputError:
        return False


def _parse_source(source: str | os.PathLike | int) -> _SourceSpec:
    """Classify a user's source description (file / camera / network URL) without touching it."""
    if isinstance(source, bool):
        raise InputError(f"not a video source: {source!r}")
    if isinstance(source, int):
        return _webcam_spec(source)
    text = os.fspath(source) if isinstance(source, os.PathLike) else source
    if not isinstance(text, str) or not text:
        raise InputError(f"not a video source: {source!r}")
    if text == "-":
        # FFmpeg reads file descriptor 0 itself.  A pipe is a stream of a file: never dropped from,
        # not seekable (an MP4 whose index is at the end cannot be read this way).
        return _SourceSpec(url="pipe:0", display="stdin", is_pipe=True)
    webcam = re.fullmatch(r"webcam(?::(\d+))?", text.strip())
    if webcam:
        return _webcam_spec(int(webcam.group(1) or 0))
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in NETWORK_SCHEMES:
        options = {"rtsp_transport": "tcp"} if scheme.startswith("rtsp") else {}
        # Plain HTTP may serve an ordinary file; treat it as live only if it turns out to have no
        # duration (decided after opening).
        live = scheme not in ("http", "https")
        return _SourceSpec(url=text, display=text, options=options, is_live=live)
    if scheme == "file":
        text = text[len("file://"):]
    if text.startswith("/dev/video"):
        return _SourceSpec(url=text, display=text, format="v4l2", is_live=True)
    return _SourceSpec(url=text, display=text, is_file=True)


def _webcam_spec(index: int) -> _SourceSpec:
    if index < 0:
        raise InputError(f"webcam index must be >= 0, got {index}")
    display = f"webcam:{index}"
    if sys.platform == "darwin":
        return _SourceSpec(url=str(index), display=display, format="avfoundation",
                           options={"framerate": "30"}, is_live=True)
    if sys.platform.startswith("win"):
        return _SourceSpec(url=f"video={index}", display=display, format="dshow", is_live=True)
    return _SourceSpec(url=f"/dev/video{index}", display=display, format="v4l2", is_live=True)


def _check_file(spec: _SourceSpec) -> None:
    path = Path(spec.url)
    if not path.exists():
        raise InputError(f"{spec.display}: no such file")
    if path.is_dir():
        raise InputError(f"{spec.display}: is a directory, not a video file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{spec.display}: permission denied (not readable)")
    # Only regular files have a meaningful size: a FIFO or device reads 0 here and still streams.
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{spec.display}: file is empty (0 bytes)")


def _open_container(spec: _SourceSpec) -> tuple[av.container.InputContainer, _SourceSpec]:
    if spec.is_file:
        _check_file(spec)
    if spec.format == "v4l2" and not Path(spec.url).exists():
        raise InputError(f"{spec.display}: no camera at {spec.url}")
    kwargs: dict = {}
    if spec.format:
        kwargs["format"] = spec.format
    if spec.options:
        kwargs["options"] = dict(spec.options)
    if not spec.is_file and not spec.is_pipe:
        kwargs["timeout"] = spec.timeout
    opened = time.monotonic()
    try:
        container = av.open(spec.url, mode="r", **kwargs)
    except av.error.ExitError:
        # FFmpeg's interrupt callback fired while opening: connected, but nothing came back.
        raise InputError(f"{spec.display}: no answer within {spec.timeout:g} s") from None
    except (FileNotFoundError, av.error.FileNotFoundError):
        raise InputError(f"{spec.display}: no such file or device") from None
    except (PermissionError, av.error.PermissionError):
        raise InputError(f"{spec.display}: permission denied (not readable)") from None
    except (IsADirectoryError, av.error.IsADirectoryError):
        raise InputError(f"{spec.display}: is a directory, not a video file") from None
    except av.error.InvalidDataError:
        if "timeout" in kwargs and time.monotonic() - opened >= 0.9 * spec.timeout:
            # Some protocols (RTSP) report the interrupted read as invalid data.
            raise InputError(f"{spec.display}: no answer within {spec.timeout:g} s") from None
        raise InputError(f"{spec.display}: not a readable video (unrecognised format, or a truncated/corrupt container)") from None
    except av.error.EOFError:
        raise InputError(f"{spec.display}: no video frames (the data ends right after the header)") from None
    except (av.error.FFmpegError, OSError) as error:
        raise InputError(f"{spec.display}: cannot open ({_one_line(error)})") from None
    if _IMAGE_FORMATS.match(container.format.name or ""):
        kind = container.format.name.replace("_pipe", "")
        container.close()
        hint = (f"; name it .{'jpg' if kind == 'jpeg' else kind} to read it as an image"
                if spec.is_file else "; save it to a file to read it as an image")
        raise _StillImage(f"{spec.display}: is a still image ({kind}), not a video{hint}")
    if not spec.is_live and not spec.is_file and not spec.is_pipe and not container.duration:
        # An HTTP URL without a duration is a live stream, not a file served over HTTP.
        spec = dataclasses.replace(spec, is_live=True)
    return container, spec


def _pick_video_stream(container: av.container.InputContainer, display: str):
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        what = f"only {', '.join(kinds)} streams" if kinds else "no streams"
        raise InputError(f"{display}: no video stream ({what})")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise InputError(f"{display}: unsupported video codec (FFmpeg has no decoder for it)")
    return stream


def _stream_start_seconds(container, stream) -> float | None:
    if stream.start_time is not None and stream.time_base:
        return float(stream.start_time * stream.time_base)
    if container.start_time is not None:
        return container.start_time / av.time_base
    return None


def _rotation_of(first: av.VideoFrame, stream) -> int:
    """Counter-clockwise rotation (multiple of 90) that makes decoded frames upright."""
    angle = float(first.rotation or 0)
    if not angle:
        tag = stream.metadata.get("rotate")  # legacy tag: clockwise degrees
        if tag:
            try:
                angle = -float(tag)
            except ValueError:
                angle = 0.0
    quarter = int(round(angle / 90.0)) * 90
    if abs(angle - quarter) > 1:
        log.warning("rotation %.1f deg is not a multiple of 90; using %d", angle, quarter)
    return quarter % 360


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
