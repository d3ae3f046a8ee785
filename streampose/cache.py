"""Where streampose keeps files it makes or downloads: one rule for every stage and tool.

``$STREAMPOSE_CACHE`` if set, else ``~/.cache/streampose``.  Each user of the cache takes one
subfolder (``blazepose/``, ``lifter/``, ``mocap/``, ``refine/``), so clearing one never touches the
others.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_dir(subfolder: str | None = None) -> Path:
    """The cache root, or ``root / subfolder``.  Nothing is created here: writers ``mkdir`` on use."""
    env = os.environ.get("STREAMPOSE_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "streampose"
    return root / subfolder if subfolder else root


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
