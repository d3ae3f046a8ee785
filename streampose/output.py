"""Output writers: JSONL (streaming, crash-safe) and NPZ (arrays for analysis).

JSONL (schema 1) is one JSON object per line:

1. ``{"type": "header", ...}`` -- source ``VideoInfo``, skeleton, models, units (``make_header``);
2. ``{"type": "frame", ...}`` per frame -- ``PoseFrame.to_dict()``;
3. ``{"type": "summary", ...}`` at the end (also after Ctrl-C) -- ``make_summary``.

Every line is flushed as soon as it is written, so a killed process leaves a valid, readable prefix
(``read_jsonl`` tolerates a half-written last line).  Non-finite numbers are written as ``null``
because JSON has no NaN.

NPZ holds the same content as arrays (NaN-padded over people) plus the header/summary as JSON
strings; it is written once, atomically, on ``close()``.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

import streampose
from streampose.errors import InputError, OutputError
from streampose.skeleton import H36M17, Skeleton
from streampose.types import PoseFrame, VideoInfo

SCHEMA_VERSION = 1
UNITS = {
    "time": "seconds from stream start",
    "keypoints2d": "pixels",
    "keypoints3d": "meters, camera frame, root-relative",
    "root": "meters, camera frame (x right, y down, z forward): the Hip's position; its depth is as "
            "certain as the camera's focal length (header: camera, root)",
}
SUPPORTED_SUFFIXES = (".jsonl", ".npz", ".bvh")


def make_header(
    info: VideoInfo, models: dict[str, Any] | None = None, skeleton: Skeleton = H36M17,
    camera: dict[str, Any] | None = None, root: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSONL/NPZ header record for a run on ``info`` with the given model descriptions.

    Args:
        info: the reader's ``VideoInfo``.
        models: free-form description of the models used, e.g. ``{"pose2d": "blazepose_full"}``.
        skeleton: joint order of ``keypoints2d`` / ``keypoints3d`` (H36M-17 for the pipeline).
        camera: the camera model used (``CameraModel.to_header()``: ``fx``, ``fy``, ``cx``, ``cy``,
            ``source`` = ``"given"`` / ``"assumed"``, ...); added as ``"camera"`` when given.
        root: how ``root`` was obtained (``{"method": "geometry", "scale": ...}``); added as ``"root"``.

    Returns:
        ``{"type": "header", "schema": 1, "streampose": version, "source": ..., "skeleton": ...,
        "models": ..., "units": ...}``.
    """
    return {
        "type": "header",
        "schema": SCHEMA_VERSION,
        "streampose": streampose.__version__,
        "source": info.to_dict(),
        "skeleton": {
            "name": skeleton.name,
            "joints": list(skeleton.joints),
            "parents": list(skeleton.parents),
        },
        "models": dict(models or {}),
        "units": dict(UNITS),
        **({"camera": dict(camera)} if camera is not None else {}),
        **({"root": dict(root)} if root is not None else {}),
    }


def make_summary(
    *,
    frames_written: int,
    frames_decoded: int,
    frames_damaged: int = 0,
    frames_dropped: int = 0,
    frames_with_person: int = 0,
    wall_time: float,
    latencies: Iterable[float] | None = None,
    interrupted: bool = False,
    processing_latencies: Iterable[float] | None = None,
    lookahead_frames: Iterable[int] | None = None,
    lookahead_seconds: Iterable[float] | None = None,
) -> dict[str, Any]:
    """The closing ``summary`` record.

    Timing keys (all in seconds, each present only when measured; see
    :class:`streampose.pipeline.PipelineStats`):

    * ``latency_p50`` / ``latency_p95``: end to end, a frame's capture to its final result.  Their
      meaning is unchanged since schema 1 began: they *include* the wait for future frames, so with
      the symmetric (offline) lifter they mostly measure its look-ahead, not slowness;
    * ``processing_latency_p50`` / ``processing_latency_p95``: from the capture of the newest frame
      a result needed to the result, i.e. the latency without the look-ahead;
    * ``lookahead_frames_p50`` / ``lookahead_frames_max`` (frames) and ``lookahead_p50`` (seconds of
      video): how far ahead results looked (0 for the causal lifter).

    Args:
        frames_written: frame records written.
        frames_decoded / frames_damaged / frames_dropped: the reader's ``ReaderStats``.
        frames_with_person: frame records with at least one person.
        wall_time: seconds from start of processing to the end.
        latencies: per-frame seconds from capture to result (optional); p50/p95 are reported.
        interrupted: the run was stopped (Ctrl-C, SIGTERM) before the source ended.
        processing_latencies: per-frame seconds from the newest needed frame's capture to result.
        lookahead_frames / lookahead_seconds: per-frame look-ahead in frames / seconds of video.
    """
    summary: dict[str, Any] = {
        "type": "summary",
        "frames_written": int(frames_written),
        "frames_decoded": int(frames_decoded),
        "frames_damaged": int(frames_damaged),
        "frames_dropped": int(frames_dropped),
        "frames_with_person": int(frames_with_person),
        "wall_time": round(float(wall_time), 4),
        "fps": round(frames_written / wall_time, 3) if wall_time > 0 else None,
        "interrupted": bool(interrupted),
    }
    for name, series in (("latency", latencies), ("processing_latency", processing_latencies)):
        values = _finite(series)
        if values.size:
            summary[f"{name}_p50"] = round(float(np.percentile(values, 50)), 5)
            summary[f"{name}_p95"] = round(float(np.percentile(values, 95)), 5)
    frames_ahead = _finite(lookahead_frames)
    if frames_ahead.size:
        summary["lookahead_frames_p50"] = int(np.median(frames_ahead))
        summary["lookahead_frames_max"] = int(frames_ahead.max())
    seconds_ahead = _finite(lookahead_seconds)
    if seconds_ahead.size:
        summary["lookahead_p50"] = round(float(np.median(seconds_ahead)), 5)
    return summary


def _finite(values: Iterable[float] | None) -> np.ndarray:
    """``values`` as a float64 array without NaN/inf (an absent series is empty)."""
    array = np.asarray(list(values) if values is not None else [], dtype=np.float64)
    return array[np.isfinite(array)]


def check_writable(path: str | os.PathLike, suffixes: tuple[str, ...] = SUPPORTED_SUFFIXES) -> Path:
    """Fail fast (before any decoding) if ``path`` cannot become an output file.

    Checks the extension is one of ``suffixes`` (pass ``()`` to skip), the path is not a directory,
    its parent directory exists and is writable, and an existing file there is writable.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        OutputError: with a one-line reason.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory; give a file name")
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputError(
            f"{path}: unsupported output type {path.suffix or '(no extension)'!r}; "
            f"use one of {', '.join(suffixes)}"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"{path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise OutputError(f"{path}: {parent} is not a directory")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{path}: file is not writable")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: directory {parent} is not writable")
    return path


class JsonlWriter:
    """Streams records to a ``.jsonl`` file, one flushed line each.

    A failed write (disk full, file too large, the file or its folder deleted mid-run) raises one
    ``OutputError`` line and ends the writer: nothing more is appended, so what was written stays a
    valid prefix (at worst its last line is incomplete, which ``read_jsonl`` ignores); later writes
    raise the same error and ``close()`` never raises.

    Args:
        path: output file (created or truncated).
        header: the header record (``make_header``); written immediately as line 1.
    """

    def __init__(self, path: str | os.PathLike, header: dict[str, Any]) -> None:
        self.path = check_writable(path, suffixes=())
        try:
            self._file = open(self.path, "w", encoding="utf-8")
        except OSError as error:
            raise OutputError(f"{self.path}: cannot write ({error.strerror or error})") from None
        self.frames_written = 0
        self._failed: OutputError | None = None
        self._write({**header, "type": "header"})

    def write_frame(self, frame: PoseFrame) -> None:
        """Append one ``frame`` record (``PoseFrame.to_dict()``) and flush it."""
        self._write(frame.to_dict())
        self.frames_written += 1

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Append the closing ``summary`` record and flush it."""
        self._write({**summary, "type": "summary"})

    def close(self) -> None:
        if not self._file.closed:
            try:
                self._file.close()
            except OSError:
                pass  # only after a failed write, which was already reported

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _write(self, record: dict[str, Any]) -> None:
        if self._failed is not None:
            raise self._failed
        if self._file.closed:
            raise OutputError(f"{self.path}: writer is closed")
        line = json.dumps(_json_safe(record), separators=(",", ":"), allow_nan=False)
        try:
            # On Linux a deleted file (or one whose folder was removed) takes writes silently and
            # loses them at close: stop at once instead of computing a result nobody can read.
            if os.fstat(self._file.fileno()).st_nlink == 0:
                self._fail("the output file was deleted (or its folder removed) while writing")
            self._file.write(line + "\n")
            # Flushing per line is what makes a killed run leave a readable prefix.
            self._file.flush()
        except OSError as error:
            self._fail(f"write failed ({error.strerror or error})")

    def _fail(self, reason: str) -> None:
        self._failed = OutputError(f"{self.path}: {reason}")
        self.close()
        raise self._failed from None


class NpzWriter:
    """Collects frames in memory and writes one ``.npz`` on ``close()``.

    Arrays (``T`` frames, ``P`` = most people in any frame, ``J`` = 17, NaN / -1 padded):

    * ``times (T,)`` float64 seconds, ``indices (T,)`` int64,
    * ``keypoints2d (T, P, J, 3)``, ``keypoints3d (T, P, J, 3)``, ``root (T, P, 3)``,
      ``bbox (T, P, 4)``, ``scores (T, P)`` float32, ``ids (T, P)`` int64 (-1 = no person),
    * ``header`` and ``summary``: JSON strings (0-d unicode arrays).

    The file is written to a temporary name and renamed, so readers never see a partial file.
    """

    def __init__(self, path: str | os.PathLike, header: dict[str, Any]) -> None:
        self.path = check_writable(path, suffixes=())
        self.header = {**header, "type": "header"}
        self.summary: dict[str, Any] | None = None
        self.frames_written = 0
        self._frames: list[PoseFrame] = []
        self._closed = False
        self._num_joints = len(header.get("skeleton", {}).get("joints", H36M17.joints))

    def write_frame(self, frame: PoseFrame) -> None:
        if self._closed:
            raise OutputError(f"{self.path}: writer is closed")
        self._frames.append(frame)
        self.frames_written += 1

    def write_summary(self, summary: dict[str, Any]) -> None:
        self.summary = {**summary, "type": "summary"}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        arrays = self._arrays()
        arrays["header"] = np.array(json.dumps(_json_safe(self.header)))
        arrays["summary"] = np.array(json.dumps(_json_safe(self.summary or {})))
        tmp_name = None
        try:
            with tempfile.NamedTemporaryFile(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".npz", delete=False
            ) as tmp:
                tmp_name = tmp.name
                np.savez_compressed(tmp, **arrays)
            os.replace(tmp_name, self.path)
        except OSError as error:
            if tmp_name and os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise OutputError(f"{self.path}: write failed ({error.strerror or error})") from None

    def __enter__(self) -> "NpzWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _arrays(self) -> dict[str, np.ndarray]:
        t, j = len(self._frames), self._num_joints
        p = max((len(f.people) for f in self._frames), default=0)
        out = {
            "times": np.array([f.time for f in self._frames], dtype=np.float64),
            "indices": np.array([f.index for f in self._frames], dtype=np.int64),
            "keypoints2d": np.full((t, p, j, 3), np.nan, dtype=np.float32),
            "keypoints3d": np.full((t, p, j, 3), np.nan, dtype=np.float32),
            "root": np.full((t, p, 3), np.nan, dtype=np.float32),
            "bbox": np.full((t, p, 4), np.nan, dtype=np.float32),
            "scores": np.full((t, p), np.nan, dtype=np.float32),
            "ids": np.full((t, p), -1, dtype=np.int64),
        }
        for ti, frame in enumerate(self._frames):
            for pi, person in enumerate(frame.people):
                out["ids"][ti, pi] = person.id
                out["scores"][ti, pi] = person.score
                out["bbox"][ti, pi] = np.asarray(person.bbox, dtype=np.float32).reshape(4)
                out["keypoints2d"][ti, pi] = np.asarray(person.keypoints2d, dtype=np.float32)
                if person.keypoints3d is not None:
                    out["keypoints3d"][ti, pi] = np.asarray(person.keypoints3d, dtype=np.float32)
                if person.root is not None:
                    out["root"][ti, pi] = np.asarray(person.root, dtype=np.float32).reshape(3)
        return out


Writer = JsonlWriter | NpzWriter


def open_writer(path: str | os.PathLike, header: dict[str, Any], *, track: int | None = None) -> Writer:
    """A ``JsonlWriter`` for ``.jsonl``, an ``NpzWriter`` for ``.npz`` or a
    :class:`~streampose.export.bvh.BvhWriter` for ``.bvh`` (one file per track, or only ``track``);
    else ``OutputError``."""
    path = check_writable(path)
    if path.suffix.lower() == ".npz":
        return NpzWriter(path, header)
    if path.suffix.lower() == ".bvh":
        from streampose.export.bvh import BvhWriter

        return BvhWriter(path, header, track=track)
    return JsonlWriter(path, header)


@dataclass
class JsonlContents:
    """A parsed JSONL result file.

    Attributes:
        header: the header record, or ``None`` if the file lacks one.
        frames: the ``frame`` records, in file order.
        summary: the ``summary`` record, or ``None`` (run killed before the end).
        truncated: the last line was incomplete (a killed run) and was ignored.
    """

    header: dict[str, Any] | None
    frames: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    truncated: bool = False


def read_jsonl(path: str | os.PathLike) -> JsonlContents:
    """Parse a streampose JSONL file, tolerating a half-written last line.

    Raises:
        InputError: missing file, or a malformed line that is not the last one.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from None
    lines = text.split("\n")
    # A complete file ends with "\n", leaving an empty last element; anything else there is a
    # line the writer did not finish.
    tail = lines.pop()
    contents = JsonlContents(header=None, truncated=bool(tail.strip()))
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{path}:{number}: not valid JSON ({error.msg})") from None
        kind = record.get("type") if isinstance(record, dict) else None
        if kind == "header":
            contents.header = record
        elif kind == "frame":
            contents.frames.append(record)
        elif kind == "summary":
            contents.summary = record
        else:
            raise InputError(f"{path}:{number}: unknown record type {kind!r}")
    return contents


def _json_safe(value: Any) -> Any:
    """Replace NaN/inf by None and numpy scalars/arrays by Python values (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value
