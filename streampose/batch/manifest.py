"""``OUT_DIR/manifest.jsonl``: one JSON record per video, the batch's memory between runs.

While a batch runs, each finished video's record is *appended* (one line, flushed and fsynced), so
a batch killed at any point leaves every finished video recorded; a half-written last line is
ignored when the manifest is read back.  When the batch ends (also after Ctrl-C) the manifest is
rewritten atomically (temporary file + rename) with exactly one record per video, the latest.

Record (``schema`` 1)::

    {"schema": 1, "video": "a/b.mp4",            # key: the path relative to its input
     "input": "/data/a/b.mp4",                   # what was opened (absolute path or URL)
     "output": "a/b.mp4.jsonl",                  # relative to OUT_DIR; null unless ok/skipped
     "status": "ok" | "failed" | "skipped",      # skipped: complete output of an earlier run kept
     "frames": 120, "frames_with_person": 118,   # frame records written / with a person
     "people": 1,                                # distinct track ids (0: nobody found, still ok)
     "frames_damaged": 0,                        # undecodable frames skipped by the reader
     "wall_time": 3.41,                          # seconds spent on the video (models already loaded)
     "error": null | "one line",                 # why it failed
     "warnings": [],                             # the first few warnings logged while processing
     "attempts": 1,                              # executions; > 1 after a worker died (Ray's retries)
     "worker": "local/2 pid 4242",               # who processed it
     "engine": "local" | "ray",
     "input_size": 123456, "input_mtime_ns": 1712345678901234567,   # null for URLs
     "output_size": 45678,                       # bytes of the output, to tell a damaged one
     "settings": "3f2a...",                      # hash of the pipeline options and the format
     "finished_at": "2026-05-01T12:00:00Z"}

A skipped record carries the earlier run's numbers (frames, wall time, ...) and its ``finished_at``.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Iterable

from streampose.errors import OutputError

SCHEMA = 1
MANIFEST_NAME = "manifest.jsonl"
LOCK_NAME = ".manifest.lock"
STATUSES = ("ok", "failed", "skipped")
RECORD_FIELDS = (
    "schema", "video", "input", "output", "status", "frames", "frames_with_person", "people", "frames_damaged",
    "wall_time", "error", "warnings", "attempts", "worker", "engine", "input_size", "input_mtime_ns",
    "output_size", "settings", "finished_at",
)
# Temporary outputs: ".<name>.<pid>.partial.<format>" beside the final file.
PARTIAL_MARK = ".partial."


def new_record(**fields: Any) -> dict[str, Any]:
    """A record with every field present (``None`` where unknown), ``fields`` filled in."""
    unknown = set(fields) - set(RECORD_FIELDS)
    if unknown:
        raise KeyError(f"not manifest fields: {sorted(unknown)}")
    record: dict[str, Any] = dict.fromkeys(RECORD_FIELDS)
    record.update(schema=SCHEMA, warnings=[], attempts=1)
    record.update(fields)
    return record


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def settings_hash(options: dict[str, Any]) -> str:
    """A short stable hash of the options that change what an output contains."""
    text = json.dumps(options, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def input_fingerprint(source: str, is_url: bool) -> tuple[int | None, int | None]:
    """``(size, mtime_ns)`` of a file; ``(None, None)`` for a URL or a file that cannot be stat'ed."""
    if is_url:
        return None, None
    try:
        st = os.stat(source)
    except OSError:
        return None, None
    return st.st_size, st.st_mtime_ns


def output_complete(path: str | os.PathLike, expected_size: int | None) -> bool:
    """Whether ``path`` is a whole output of a finished run: the size the manifest recorded, and
    (JSONL) a closing summary record of a run that was not interrupted / (NPZ) a readable archive
    with its summary."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        return False
    if expected_size is not None and size != expected_size:
        return False
    if path.suffix == ".npz":
        try:
            with zipfile.ZipFile(path) as archive:
                return "summary.npy" in archive.namelist() and archive.testzip() is None
        except (OSError, zipfile.BadZipFile):
            return False
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, size - 65536))
            tail = handle.read()
    except OSError:
        return False
    if not tail.endswith(b"\n"):
        return False
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        record = json.loads(last)
    except ValueError:
        return False
    return isinstance(record, dict) and record.get("type") == "summary" and not record.get("interrupted")


def read_manifest(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The latest record per video key; a missing file is an empty manifest.  Lines that do not
    parse (a killed write, or foreign text) are ignored."""
    records: dict[str, dict[str, Any]] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return records
    except (OSError, UnicodeDecodeError) as error:
        raise OutputError(f"{path}: cannot read the manifest ({error})") from None
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("video"), str) and record.get("status") in STATUSES:
            records[record["video"]] = record
    return records


class Manifest:
    """The manifest of one output folder, held by one batch at a time (a lock file says so)."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / MANIFEST_NAME
        self._lock = _lock(self.out_dir / LOCK_NAME)
        self.previous = read_manifest(self.path)
        self.records: dict[str, dict[str, Any]] = {}
        self._file = open(self.path, "a", encoding="utf-8")
        # A killed earlier run may have left a half line: start ours on a line of its own.
        if self._file.tell() > 0 and not _ends_with_newline(self.path):
            self._file.write("\n")

    def add(self, record: dict[str, Any]) -> None:
        """Record a video's result now (appended, flushed, synced)."""
        self.records[record["video"]] = record
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self, order: Iterable[str] = ()) -> None:
        """Rewrite the manifest with one record per video, this run's first (in ``order``), then
        those of earlier runs for videos this run did not name; release the lock."""
        if self._file.closed:
            return
        self._file.close()
        merged = {**self.previous, **self.records}
        keys = [k for k in order if k in merged]
        keys += [k for k in merged if k not in set(keys)]
        lines = "".join(json.dumps(merged[k], separators=(",", ":")) + "\n" for k in keys)
        _atomic_write_text(self.path, lines)
        _unlock(self._lock)

    def __enter__(self) -> "Manifest":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def remove_partials(out_dir: str | os.PathLike) -> int:
    """Delete temporary outputs a killed batch left behind; returns how many."""
    removed = 0
    for root, _dirs, files in os.walk(out_dir):
        for name in files:
            if name.startswith(".") and PARTIAL_MARK in name:
                try:
                    os.unlink(os.path.join(root, name))
                    removed += 1
                except OSError:
                    pass
    return removed


def partial_path(final: Path) -> Path:
    suffix = final.suffix  # the writers choose the format by extension
    return final.with_name(f".{final.name}.{os.getpid()}{PARTIAL_MARK}{suffix.lstrip('.')}")


def commit_file(tmp: Path, final: Path) -> int:
    """Make ``tmp`` durable and rename it to ``final`` (atomic); returns its size."""
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    size = tmp.stat().st_size
    os.replace(tmp, final)
    return size


def write_output_bytes(final: Path, data: bytes) -> int:
    """Write an output received from elsewhere (a Ray worker) atomically; returns its size."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(final)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        return commit_file(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _lock(path: Path):
    handle = open(path, "a")
    try:
        import fcntl
    except ImportError:  # not POSIX: no protection against two batches on one folder
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise OutputError(f"{path.parent}: another streampose batch is writing to this folder") from None
    return handle


def _unlock(handle) -> None:
    handle.close()  # closing the file releases the lock
