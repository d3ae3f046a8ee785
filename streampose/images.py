"""Still images as a source: one image, a folder of images, or an image-sequence pattern.

:func:`streampose.reader.open_source` hands these sources here and returns the same
:class:`~streampose.reader.FrameReader` as for a video, so the pipeline, the CLI and the JSONL
schema do not care where frames came from.  Source forms::

    photo.jpg                 one image: one frame at time 0
    frames/                   every image in the folder (not its subfolders), in natural name order
    frames/%05d.png           printf-style numbered files (as FFmpeg writes them)
    "frames/*.jpg"            a glob (quote it, or the shell expands it into many arguments)

Images have no frame rate.  A folder or pattern is read as the frames of *one* video: frame ``i``
is at ``i / fps`` seconds (for a ``%d`` pattern, ``i`` is the file's number minus the first one,
so a missing file leaves a gap in time).  ``fps`` comes from the caller (the CLI's ``--fps``);
without it frames are 1/30 s apart -- the same nominal rate the pipeline assumes for any source
without one -- and ``VideoInfo.fps`` stays ``None`` so the header says the rate is unknown.  A
folder of unrelated photos is not a video: run each photo on its own.

A lone image gives one frame; the temporal lifter then sees that pose replicated on both sides
(replicate padding), i.e. it lifts a person standing still in that pose, and smoothing has nothing
to smooth.

Decoding uses PyAV (FFmpeg) with strict error detection, one image at a time in the reader thread,
so memory holds at most the reader's queue of frames.  EXIF orientation is applied, as a video's
rotation is.  A single unreadable image is a one-line :class:`~streampose.errors.InputError`; in a
sequence an unreadable image, or one whose size differs from the first, is skipped with a warning
and counted in ``stats.damaged``, like a damaged video frame.
"""
from __future__ import annotations

import glob
import io
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from streampose.errors import InputError
from streampose.reader import _VIDEO_SUFFIXES, ReaderStats, _one_line, _rotation_of
from streampose.runner import Channel
from streampose.types import Frame, VideoInfo

log = logging.getLogger("streampose.reader")

# Image files recognised by name.  (An animated .gif is a video: FFmpeg's gif demuxer reads it.)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".webp", ".tif", ".tiff",
                  ".ppm", ".pgm", ".pbm", ".pnm", ".jp2", ".j2k", ".dpx", ".exr", ".qoi")
# FFmpeg demuxers of single images (image2 for files, *_pipe when probed from bytes).
IMAGE_FORMATS = re.compile(r"^(image2|.*_pipe)$")
NOMINAL_FPS = 30.0  # frame spacing of an image sequence whose rate nobody gave
_PRINTF = re.compile(r"%(0?)(\d*)d")
_GLOB_CHARS = re.compile(r"[*?\[]")
_DAMAGE_WARNINGS = 5


@dataclass(frozen=True)
class ImageSource:
    """The files of an image source, in frame order, with each one's frame number.

    ``numbers[i]`` places file ``i`` in time (``numbers[i] / fps`` after subtracting the first);
    ``single`` is true for one image named directly (its decode errors are fatal).
    """

    display: str
    files: tuple[Path, ...]
    numbers: tuple[int, ...]
    single: bool = False


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether ``path``'s name says it is a still image (by suffix; nothing is opened)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def looks_like_image_source(text: str) -> bool:
    """Whether ``text`` names an image source: an image file, a folder, or a sequence pattern.

    Only the form is looked at (and whether a folder exists); the files are opened later.
    """
    path = Path(text).expanduser()
    if path.is_dir():
        return True
    if path.exists():
        return is_image_file(path)
    if _GLOB_CHARS.search(text):
        # A glob picks its image files itself -- unless it names a video ("clip [1080p].mp4" that
        # does not exist is a missing video, not a pattern).
        return path.suffix.lower() not in _VIDEO_SUFFIXES
    return bool(_PRINTF.search(path.name)) and is_image_file(path.name)


def find_images(text: str) -> ImageSource:
    """List the files of an image source (see the module docstring for the forms).

    Raises:
        InputError: no such image, a folder without images, or a pattern that matches nothing.
    """
    path = Path(text).expanduser()
    if path.is_dir():
        files = [p for p in path.iterdir()
                 if p.is_file() and is_image_file(p) and not p.name.startswith(".")]
        if not files:
            others = sum(1 for p in path.iterdir() if p.is_file())
            raise InputError(
                f"{text}: folder has no images ({'empty' if not others else f'{others} other files'}; "
                f"looked for {', '.join(IMAGE_SUFFIXES[:9])}, ...); give a video file, an image, "
                f"or a folder of images")
        files.sort(key=_natural_key)
        return ImageSource(text, tuple(files), tuple(range(len(files))))
    if path.exists():
        return ImageSource(text, (path,), (0,), single=True)
    printf = _PRINTF.search(path.name)
    if printf:
        return _numbered_files(text, path, printf)
    if _GLOB_CHARS.search(text):
        files = sorted((Path(p) for p in glob.glob(os.path.expanduser(text))
                        if Path(p).is_file() and is_image_file(p)), key=_natural_key)
        if not files:
            raise InputError(f"{text}: no image files match this pattern")
        return ImageSource(text, tuple(files), tuple(range(len(files))))
    raise InputError(f"{text}: no such file")


def _numbered_files(text: str, path: Path, printf: re.Match) -> ImageSource:
    """Files matching a printf pattern such as ``frame_%05d.png``, ordered by their number."""
    zero, width = printf.group(1), printf.group(2)
    digits = rf"\d{{{int(width)}}}" if zero and width else r"\d+"
    regex = re.compile(re.escape(path.name[: printf.start()]) + f"({digits})"
                       + re.escape(path.name[printf.end():]) + "$")
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"{text}: folder {folder} does not exist")
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := regex.match(p.name)) and p.is_file())
    if not found:
        raise InputError(f"{text}: no files match this numbered pattern in {folder}")
    first = found[0][0]
    return ImageSource(text, tuple(p for _, p in found), tuple(n - first for n, _ in found))


def _natural_key(path: Path) -> list:
    # frame2.png before frame10.png, as a person numbering files by hand expects.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def decode_image(path: Path) -> np.ndarray:
    """One image file as ``(H, W, 3)`` uint8 RGB, upright (EXIF orientation applied).

    Raises:
        InputError: empty, unreadable, not an image, or damaged/truncated image data.
    """
    try:
        data = path.read_bytes()
    except PermissionError:
        raise InputError(f"{path}: permission denied (not readable)") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from None
    if not data:
        raise InputError(f"{path}: file is empty (0 bytes)")
    try:
        # From memory, so FFmpeg probes the content (a '%' in a file name is not a pattern here).
        with av.open(io.BytesIO(data), mode="r") as container:
            kind = container.format.name or ""
            if not IMAGE_FORMATS.match(kind) or not container.streams.video:
                raise InputError(f"{path}: not an image (FFmpeg reads it as {kind or 'unknown'}); "
                                 f"videos are read by their own name, e.g. .mp4")
            stream = container.streams.video[0]
            if stream.codec_context.name == "mjpeg":
                # Strict: a truncated JPEG otherwise decodes "fine" with its lower part grey (other
                # formats fail on truncation by themselves; strict TIFF refuses valid files).
                stream.codec_context.options = {"err_detect": "explode"}
            frame = next(container.decode(stream), None)
            if frame is None:
                raise InputError(f"{path}: no decodable image data")
            image = frame.to_ndarray(format="rgb24")
            k = (_rotation_of(frame, stream) // 90) % 4
    except InputError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as error:
        raise InputError(f"{path}: damaged or truncated image, or not an image ({_one_line(error)})") from None
    if k:
        image = np.ascontiguousarray(np.rot90(image, k))
    return image


class _ClosedContainer:
    """What ``FrameReader.close`` closes: nothing stays open between images."""

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class _Spec:
    display: str


class ImageDecoder:
    """The decode-thread side of a ``FrameReader`` over images (same interface as a video's).

    Construction decodes the first readable image (it proves the source and gives the size);
    ``run`` delivers it and the rest.
    """

    def __init__(self, source: ImageSource, *, fps: float | None, queue_size: int,
                 max_frames: int | None, start_time: float | None) -> None:
        if fps is not None and not (fps > 0 and np.isfinite(fps)):
            raise InputError(f"fps must be a positive number, got {fps}")
        self.source = source
        self.spec = _Spec(source.display)
        self.stats = ReaderStats()
        self.realtime = False  # files never drop frames
        self.channel: Channel[Frame] = Channel(queue_size, drop_oldest=False)
        self.stop = self.channel.stop
        self.container = _ClosedContainer()
        self._period = 1.0 / (fps or NOMINAL_FPS)
        self._max_frames = max_frames
        self._start_time = start_time or 0.0
        self._damage_warned = 0
        self._size: tuple[int, int] | None = None
        self._images = self._decoded()
        self._pending_first = next(self._images, None)
        if self._pending_first is None and not self._start_time:
            raise InputError(f"{source.display}: none of the {len(source.files)} images could be decoded")
        first = self._pending_first
        width, height = (first[1].shape[1], first[1].shape[0]) if first is not None else (0, 0)
        suffixes = sorted({p.suffix.lower().lstrip(".") for p in source.files})
        self.info = VideoInfo(
            source=source.display, width=int(width), height=int(height), fps=fps,
            duration=(source.numbers[-1] + 1) * self._period if fps and not source.single else None,
            frame_count=len(source.files), codec="+".join(suffixes) or None, pixel_format="rgb24",
            rotation=0, is_live=False,
        )

    def _decoded(self) -> Iterator[tuple[float, np.ndarray]]:
        """``(time, image)`` of each usable image, skipping (and counting) damaged ones in a sequence."""
        for path, number in zip(self.source.files, self.source.numbers):
            if self.stop.is_set():
                return
            t = number * self._period
            if t < self._start_time - 5e-7:
                continue  # before the requested start: not even decoded
            try:
                image = decode_image(path)
            except InputError as error:
                if self.source.single:
                    raise
                self._damaged(str(error))
                continue
            size = (image.shape[1], image.shape[0])
            if self._size is None:
                self._size = size
            elif size != self._size:
                # The lifter normalises by one image size per track; a frame of another size is
                # not a frame of the same video.
                self._damaged(f"{path}: size {size[0]}x{size[1]} differs from the first image's "
                              f"{self._size[0]}x{self._size[1]}")
                continue
            yield t, image

    def _damaged(self, message: str) -> None:
        self.stats.damaged += 1
        if self._damage_warned < _DAMAGE_WARNINGS:
            log.warning("%s (skipped)", message)
        elif self._damage_warned == _DAMAGE_WARNINGS:
            log.warning("%s: more unreadable images; counting them silently", self.source.display)
        self._damage_warned += 1

    def run(self) -> None:
        """Thread body: deliver frames until the end, ``max_frames`` or ``stop``, then the end marker."""
        index = 0
        images = self._images
        if self._pending_first is not None:
            first, self._pending_first = self._pending_first, None
            images = _chain(first, images)
        for t, image in images:
            if self.stop.is_set():
                return
            if self._max_frames is not None and index >= self._max_frames:
                break
            frame = Frame(index=index, time=t, image=image, capture_time=time.perf_counter())
            self.stats.decoded += 1
            index += 1
            if not self.channel.put(frame):
                return
        self.channel.put_end()


def _chain(first, rest):
    yield first
    yield from rest
