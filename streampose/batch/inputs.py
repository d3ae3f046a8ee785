"""What a batch runs on: the command line's INPUTS expanded into one :class:`Video` per file.

An input is

* a **folder**: every file with a video extension below it (recursive; hidden files and folders,
  and the batch's own output folder, are left out), relative to that folder;
* a **glob** (quoted, so the shell leaves it alone; ``**`` recurses): its matches, relative to the
  glob's fixed leading folder (``clips/**/*.mp4`` -> ``clips/``);
* a **list file** (``.txt``, ``.lst``, ``.list``): one path or URL per line (``#`` comments and blank
  lines ignored), relative paths taken from the list file's folder; entries relative to their
  common folder.  A listed file that is missing becomes a failed record, not an error: a list of
  10,000 paths should not stop for one;
* a **file** (any extension: it was named on purpose): all files named directly are relative to
  their common folder, so a shell-expanded ``clips/*/*.mp4`` keeps its sub-folders.

Each video's *key* is that relative path (``/``-separated); its output is ``OUT_DIR/<key>.<format>``
(``a/b.mp4`` -> ``a/b.mp4.jsonl``: the extension stays, so ``b.mp4`` and ``b.mov`` cannot collide).
Two different files with the same key, a glob or folder that matches nothing, and a missing file
named directly are :class:`~streampose.errors.InputError` before any work starts.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence
from urllib.parse import urlparse

from streampose.errors import InputError

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".wmv", ".flv", ".3gp", ".ogv", ".mxf", ".y4m",
})
LIST_EXTENSIONS = frozenset({".txt", ".lst", ".list"})
_GLOB_MAGIC = re.compile(r"[*?\[]")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class Video:
    """One video of a batch.

    Attributes:
        key: its path relative to its input (``/``-separated); names its output and its manifest record.
        source: what the reader opens: an absolute path, or a URL.
        is_url: ``source`` is a URL (no size/mtime to compare on a re-run).
    """

    key: str
    source: str
    is_url: bool = False

    def output_name(self, fmt: str) -> str:
        """The output's path relative to the output folder, e.g. ``a/b.mp4.jsonl``."""
        return f"{self.key}.{fmt}"


def is_video_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def expand_inputs(inputs: Sequence[str | os.PathLike], exclude: str | os.PathLike | None = None) -> list[Video]:
    """The videos ``inputs`` name, in a stable order (inputs in order, each one's files sorted).

    Args:
        inputs: files, folders, globs and list files (see the module docstring).
        exclude: a folder never to descend into (the batch's output folder).

    Raises:
        InputError: an input that matches nothing, or two different files with the same key.
    """
    if not inputs:
        raise InputError("no inputs given")
    skip = Path(exclude).absolute() if exclude is not None else None
    groups: list[list[Video]] = []
    direct: list[str] = []  # files named directly: one group, relative to their common folder
    direct_slot: int | None = None
    for item in inputs:
        text = os.fspath(item)
        path = Path(text)
        if _URL.match(text):
            groups.append([_url_video(text)])
        elif path.is_dir():
            found = _scan_folder(path, skip)
            if not found:
                raise InputError(f"{text}: folder holds no video files ({_extensions_hint()})")
            groups.append(_relative_to(found, path.absolute()))
        elif path.is_file() and path.suffix.lower() in LIST_EXTENSIONS:
            groups.append(_read_list(path))
        elif path.exists():
            if direct_slot is None:
                direct_slot = len(groups)
                groups.append([])
            direct.append(os.path.abspath(text))
        elif _GLOB_MAGIC.search(text):
            groups.append(_expand_glob(text, skip))
        else:
            raise InputError(f"{text}: no such file or folder")
    if direct_slot is not None:
        groups[direct_slot] = _relative_to(direct, _common_folder(direct))
    return _unique([video for group in groups for video in group])


def _scan_folder(folder: Path, skip: Path | None) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (root_path / d).absolute() != skip)
        found += [os.path.abspath(root_path / f) for f in sorted(files) if not f.startswith(".") and is_video_file(f)]
    return found


def _expand_glob(pattern: str, skip: Path | None) -> list[Video]:
    matches = sorted(glob.glob(pattern, recursive=True))
    files: list[str] = []
    for match in matches:
        if os.path.isdir(match):
            files += _scan_folder(Path(match), skip)
        elif os.path.isfile(match) or _is_special(match):
            files.append(os.path.abspath(match))
    if not files:
        raise InputError(f"{pattern}: matches no files")
    parts = PurePosixPath(pattern.replace(os.sep, "/")).parts
    fixed = []
    for part in parts[:-1]:
        if _GLOB_MAGIC.search(part):
            break
        fixed.append(part)
    base = os.path.abspath(os.path.join(*fixed)) if fixed else os.path.abspath(".")
    return _relative_to(files, base)


def _read_list(list_file: Path) -> list[Video]:
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{list_file}: cannot read the list ({error})") from None
    folder = list_file.absolute().parent
    urls: list[Video] = []
    paths: list[str] = []
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if _URL.match(entry):
            urls.append(_url_video(entry))
        else:
            # A missing entry stays in: it becomes a failed record when its turn comes.
            paths.append(os.path.normpath(os.path.join(folder, os.path.expanduser(entry))))
    if not paths and not urls:
        raise InputError(f"{list_file}: the list names no videos")
    videos = _relative_to(paths, _common_folder(paths)) if paths else []
    return videos + urls


def _common_folder(paths: Iterable[str]) -> str:
    parents = [os.path.dirname(p) for p in paths]
    return os.path.commonpath(parents) if parents else os.path.abspath(".")


def _relative_to(files: Iterable[str], base: str | os.PathLike) -> list[Video]:
    base = os.fspath(base)
    return [Video(key=Path(os.path.relpath(f, base)).as_posix(), source=f) for f in files]


def _url_video(url: str) -> Video:
    parsed = urlparse(url)
    name = (parsed.netloc + parsed.path).strip("/") or "stream"
    name = re.sub(r"[^A-Za-z0-9._/-]+", "_", name)
    name = "/".join(part for part in name.split("/") if part not in ("", ".", ".."))
    return Video(key=name or "stream", source=url, is_url=True)


def _unique(videos: list[Video]) -> list[Video]:
    by_key: dict[str, Video] = {}
    out = []
    for video in videos:
        seen = by_key.get(video.key)
        if seen is None:
            by_key[video.key] = video
            out.append(video)
        elif seen.source != video.source:
            raise InputError(
                f"two inputs have the same relative path {video.key!r} ({seen.source} and {video.source}), "
                "so their outputs would collide; pass their common folder instead"
            )
    return out


def _is_special(path: str) -> bool:
    # A FIFO or device named by a glob is read like a file (tests stream through FIFOs).
    try:
        return not os.path.isdir(path) and os.path.exists(path)
    except OSError:
        return False


def _extensions_hint() -> str:
    return "looked for " + " ".join(sorted(VIDEO_EXTENSIONS))
