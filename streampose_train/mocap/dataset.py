"""Mocap training data: unpack the BVH archives, map them to H36M-17, cache, resample and split.

``load_mocap("cmu")`` / ``load_mocap("bandai")`` return :class:`MocapClip` records with
``joints3d`` of shape ``(T, 17, 3)``: Human3.6M joint order, float32 metres, in a **Y-up world
frame**: +y up, the floor at ``y = 0`` (ankles ~0.08 m above it when standing), x and z horizontal
(right-handed; the rigs' own ground-plane axes are kept, so a clip's facing direction is arbitrary).
Rig mapping details are in :mod:`streampose_train.mocap.rigs`.  Recordings with source-data glitches
(a joint jumping faster than 15 m/s between frames -- 9 CMU dance clips and 003_02; none in Bandai)
are cut there into segments ``name#k`` and pieces under 1 s are dropped.

The first load of a dataset unpacks its archive from ``<shared>/data/mocap`` into
``<cache>/mocap/<dataset>/``, parses every BVH (progress bar, 2 worker processes) and writes
``<cache>/mocap/<dataset>_h36m17_v<N>.npz``; later loads read only that file.

Licences: CMU clips may be used in commercial products (the data itself may not be resold);
Bandai Namco clips are CC BY-NC 4.0 -- anything trained on them is non-commercial.

Run ``python -m streampose_train.mocap.dataset --stats`` for clip/frame counts and mean bone lengths.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import os
import re
import sys
import tarfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streampose.cache import cache_dir
from streampose.errors import InputError
from streampose_train.mocap.bvh import read_bvh
from streampose_train.mocap.rigs import bone_lengths, clip_to_h36m

# Bump when parsing or the rig mapping changes: old caches are then rebuilt, never reused.
CACHE_VERSION = 2

CMU_LICENCE = ("CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu): free for research; may "
               "be included in commercially-sold products; the data may not be resold.")
BANDAI_LICENCE = ("Bandai Namco Research Motion Dataset 2: CC BY-NC 4.0 (non-commercial; models "
                  "trained on it inherit the non-commercial licence).")


@dataclass(frozen=True)
class _DatasetInfo:
    archive: str        # file name under <shared>/data/mocap
    top_dir: str        # directory the archive unpacks to
    bvh_glob: str       # BVH files relative to top_dir
    licence: str


DATASETS = {
    "cmu": _DatasetInfo("cmu_subset.tar.xz", "cmu_subset", "subjects/*/*.bvh", CMU_LICENCE),
    "bandai": _DatasetInfo("bandai_namco_2.tar.xz", "Bandai-Namco-Research-Motiondataset-2",
                           "data/*.bvh", BANDAI_LICENCE),
}


@dataclass
class MocapClip:
    """One mocap clip as H36M-17 joints.

    Attributes:
        name: stable clip id, ``"<dataset>/<file stem>"`` (e.g. ``"cmu/002_01"``); a recording
            cut at source-data glitches (see :func:`split_at_glitches`) gives segments
            ``"cmu/005_06#0"``, ``"#1"``, ... which always land in the same split.
        dataset: ``"cmu"`` or ``"bandai"``.
        action: coarse action label used for stratified splits (``"walk"``, ``"dance"``, ...).
        description: the full label (CMU ``index.csv`` description; Bandai ``content/style``).
        fps: frames per second of ``joints3d``.
        joints3d: ``(T, 17, 3)`` float32 metres, Y-up world frame (see module docs).
        licence: licence terms of the source data.
    """

    name: str
    dataset: str
    action: str
    description: str
    fps: float
    joints3d: np.ndarray
    licence: str

    @property
    def num_frames(self) -> int:
        return int(self.joints3d.shape[0])

    @property
    def source_clip(self) -> str:
        """The recorded clip this one comes from: ``name`` without a ``#k`` segment suffix."""
        return self.name.split("#", 1)[0]

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return (self.num_frames - 1) / self.fps


# ----------------------------------------------------------------------------------------------
# locations


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path | None:
    """The shared data folder (holding ``mocap/`` and ``videos/``), or ``None`` if absent.

    ``$STREAMPOSE_SHARED`` wins (either the ``shared`` folder or its ``data`` subfolder); otherwise
    ``../shared/data`` beside the repository checkout.
    """
    env = os.environ.get("STREAMPOSE_SHARED")
    candidates = [Path(env), Path(env) / "data"] if env else []
    candidates.append(_repo_root().parent / "shared" / "data")
    for path in candidates:
        if (path / "mocap").is_dir() or (path / "videos").is_dir():
            return path
    return None


def _mocap_cache_dir(folder: str | Path | None) -> Path:
    return Path(folder) if folder is not None else cache_dir("mocap")


def _check_dataset(dataset: str) -> _DatasetInfo:
    if dataset not in DATASETS:
        raise InputError(f"unknown mocap dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[dataset]


def find_archive(dataset: str) -> Path:
    """Path of a dataset's archive; :class:`InputError` saying where it was looked for if missing."""
    info = _check_dataset(dataset)
    data = shared_data_dir()
    if data is None or not (data / "mocap" / info.archive).is_file():
        where = (data / "mocap") if data else _repo_root().parent / "shared" / "data" / "mocap"
        raise InputError(f"mocap archive {info.archive} not found in {where} "
                         f"(set STREAMPOSE_SHARED to the folder holding data/mocap/)")
    return data / "mocap" / info.archive


def unpack_archive(dataset: str, cache_dir: str | Path | None = None) -> Path:
    """Unpack a dataset's archive once; returns the unpacked top folder."""
    info = _check_dataset(dataset)
    dest = _mocap_cache_dir(cache_dir) / dataset
    marker = dest / ".unpacked"
    if marker.is_file():
        return dest / info.top_dir
    archive = find_archive(dataset)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            if sys.version_info >= (3, 12):
                tar.extractall(dest, filter="data")  # refuses absolute paths, links out, etc.
            else:
                for member in tar.getmembers():
                    if member.name.startswith(("/", "..")) or ".." in Path(member.name).parts:
                        raise InputError(f"{archive}: unsafe path {member.name!r} in archive")
                tar.extractall(dest)
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"cannot unpack {archive}: {exc}") from exc
    marker.write_text(f"{archive}\n")
    return dest / info.top_dir


# ----------------------------------------------------------------------------------------------
# labels


def _cmu_descriptions(top: Path) -> dict[str, str]:
    """``"002_01" -> "walk"`` from the archive's ``index.csv``."""
    out = {}
    index = top / "index.csv"
    if not index.is_file():
        return out
    with index.open(newline="", encoding="utf-8", errors="replace") as handle:
        for row in csv.DictReader(handle):
            try:
                key = f"{int(row['Subject']):03d}_{int(row['Trial #']):02d}"
            except (KeyError, ValueError):
                continue
            out[key] = (row.get("Motion Description") or "").strip()
    return out


def cmu_action(description: str) -> str:
    """Coarse action from a CMU description: ``"dance - small jetes"`` -> ``"dance"``."""
    head = description.lower().split(" - ")[0].split(",")[0].strip()
    for keyword in ("walk", "run", "jump"):
        if keyword in head:
            return keyword
    return head or "unknown"


_BANDAI_NAME = re.compile(r"dataset-2_(?P<content>[a-z-]+)_(?P<style>[a-z]+)_(?P<id>\d+)$")


def _labels(dataset: str, stem: str, cmu_index: dict[str, str]) -> tuple[str, str]:
    if dataset == "cmu":
        description = cmu_index.get(stem, "")
        return cmu_action(description), description or stem
    match = _BANDAI_NAME.match(stem)
    if not match:
        return "unknown", stem
    return match["content"], f"{match['content']}/{match['style']}"


# ----------------------------------------------------------------------------------------------
# parsing and cache


def _parse_one(path: str) -> tuple[np.ndarray, float]:
    clip = read_bvh(path)
    fps = 1.0 / clip.frame_time
    if abs(fps - round(fps)) < 0.01:  # "0.016667" means 60 fps, not 59.9988
        fps = float(round(fps))
    return clip_to_h36m(clip), fps


# No joint of a person moves faster than this between two frames; faster jumps are glitches of the
# source data (CMU subject 5's dance clips flip a thigh for a few frames; 003_02 starts with an arm
# frozen in a T-pose that then jumps).  Bandai's fastest joint moves at 8.6 m/s, CMU's 99th
# percentile is 7.1 m/s.
MAX_JOINT_SPEED = 15.0  # m/s
MIN_SEGMENT_SECONDS = 1.0


def split_at_glitches(joints: np.ndarray, fps: float, max_speed: float = MAX_JOINT_SPEED,
                      min_seconds: float = MIN_SEGMENT_SECONDS) -> list[np.ndarray]:
    """Cut a clip where any joint jumps faster than ``max_speed``; drop pieces under ``min_seconds``.

    ``joints``: ``(T, 17, 3)`` metres -> list of ``(T_k, 17, 3)`` clean segments (the clip itself
    when it has no glitch).
    """
    if joints.shape[0] < 2:
        return [joints]
    speed = np.linalg.norm(np.diff(joints, axis=0), axis=-1).max(axis=-1) * fps  # (T-1,)
    cuts = np.flatnonzero(speed > max_speed) + 1
    if cuts.size == 0:
        return [joints]
    pieces = np.split(joints, cuts)
    return [p for p in pieces if p.shape[0] >= min_seconds * fps]


def _cache_file(dataset: str, cache_dir: str | Path | None) -> Path:
    return _mocap_cache_dir(cache_dir) / f"{dataset}_h36m17_v{CACHE_VERSION}.npz"


def _build_cache(dataset: str, cache_dir: str | Path | None, workers: int) -> Path:
    info = _check_dataset(dataset)
    top = unpack_archive(dataset, cache_dir)
    files = sorted(top.glob(info.bvh_glob))
    if not files:
        raise InputError(f"no BVH files under {top} ({info.bvh_glob})")
    cmu_index = _cmu_descriptions(top) if dataset == "cmu" else {}
    from tqdm import tqdm

    paths = [str(f) for f in files]
    progress = dict(total=len(paths), desc=f"parsing {dataset} BVH", unit="clip")
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(tqdm(pool.map(_parse_one, paths, chunksize=16), **progress))
    else:
        results = [_parse_one(p) for p in tqdm(paths, **progress)]

    names, actions, descriptions, pieces, rates = [], [], [], [], []
    for f, (joints, fps) in zip(files, results):
        action, description = _labels(dataset, f.stem, cmu_index)
        segments = split_at_glitches(joints, fps)
        for k, segment in enumerate(segments):
            suffix = f"#{k}" if len(segments) > 1 else ""
            names.append(f"{dataset}/{f.stem}{suffix}")
            actions.append(action)
            descriptions.append(description)
            pieces.append(segment)
            rates.append(fps)
    target = _cache_file(dataset, cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        joints=np.concatenate(pieces).astype(np.float32),
        lengths=np.array([p.shape[0] for p in pieces], dtype=np.int64),
        fps=np.array(rates, dtype=np.float64),
        names=np.array(names), actions=np.array(actions), descriptions=np.array(descriptions),
        licence=np.array(info.licence),
    )
    os.replace(tmp, target)  # atomic: a crashed build never leaves a half-written cache
    return target


def load_mocap(dataset: str = "cmu", cache_dir: str | Path | None = None, fps: float | None = None,
               workers: int = 2) -> list[MocapClip]:
    """Load a mocap dataset as H36M-17 clips in metres (Y-up world frame).

    Args:
        dataset: ``"cmu"`` (61 clips, 60 fps) or ``"bandai"`` (2,902 clips, 30 fps).
        cache_dir: where unpacked archives and the parsed cache live; default
            ``$STREAMPOSE_CACHE/mocap`` or ``~/.cache/streampose/mocap``.
        fps: resample every clip to this frame rate (linear interpolation); ``None`` keeps the
            native rate.
        workers: processes for the one-off BVH parse.

    Returns:
        clips in file-name order.  Raises :class:`InputError` when the dataset is unknown or its
        archive is missing and no cache exists.
    """
    _check_dataset(dataset)
    path = _cache_file(dataset, cache_dir)
    if not path.is_file():
        _build_cache(dataset, cache_dir, workers)
    try:
        with np.load(path) as data:
            joints, lengths, rates = data["joints"], data["lengths"], data["fps"]
            names, actions = data["names"].tolist(), data["actions"].tolist()
            descriptions, licence = data["descriptions"].tolist(), str(data["licence"])
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"mocap cache {path} is unreadable ({exc}); delete it to rebuild") from exc
    clips = []
    for name, action, description, rate, piece in zip(
            names, actions, descriptions, rates, np.split(joints, np.cumsum(lengths)[:-1])):
        clip = MocapClip(name=name, dataset=dataset, action=action, description=description,
                         fps=float(rate), joints3d=piece, licence=licence)
        clips.append(resample(clip, fps) if fps is not None else clip)
    return clips


# ----------------------------------------------------------------------------------------------
# resampling and splits


def resample(clip: MocapClip, fps: float) -> MocapClip:
    """Resample a clip to ``fps`` by linear interpolation in time.

    The first frame is kept; the new clip covers ``[0, duration]`` with ``floor(duration * fps) + 1``
    frames, so ``joints3d`` goes from ``(T, 17, 3)`` to ``(T', 17, 3)``.
    """
    if not fps or fps <= 0:
        raise InputError(f"resample: fps must be positive, got {fps}")
    if abs(fps - clip.fps) < 1e-9 or clip.num_frames < 2:
        return dataclasses.replace(clip, fps=float(fps))
    t_new = np.arange(int(np.floor(clip.duration * fps + 1e-6)) + 1) / fps
    position = np.clip(t_new * clip.fps, 0, clip.num_frames - 1)
    lower = np.minimum(np.floor(position).astype(np.int64), clip.num_frames - 2)
    weight = (position - lower)[:, None, None]
    joints = (1.0 - weight) * clip.joints3d[lower] + weight * clip.joints3d[lower + 1]
    return dataclasses.replace(clip, fps=float(fps), joints3d=joints.astype(np.float32))


def _unit_hash(name: str, seed: int) -> float:
    """A number in [0, 1) fixed by the clip name and seed (stable across runs and machines)."""
    digest = hashlib.sha1(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def split_clips(clips: list[MocapClip], holdout_fraction: float = 0.15, seed: int = 0
                ) -> tuple[list[MocapClip], list[MocapClip]]:
    """Split whole clips into ``(train, test)``, stratified by action and stable by name.

    Segments of one recording (``name#k``) are held out together.  Within each action the
    recordings are ordered by a hash of ``(seed, name)`` and the first
    ``round(n * holdout_fraction)`` are held out.  Actions too small for that to hold out anything
    (``n * holdout_fraction < 0.5``) hold out each clip whose hash is below the fraction.  The
    result depends only on the clip names, their actions and the seed -- never on list order -- so
    every training and evaluation run uses the same held-out clips (the default split,
    ``seed=0, holdout_fraction=0.15``, is *the* named split; see :func:`holdout_names`).
    """
    if not 0.0 <= holdout_fraction < 1.0:
        raise InputError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
    held = holdout_names(clips, holdout_fraction, seed)
    train = [c for c in clips if c.name not in held]
    test = [c for c in clips if c.name in held]
    return train, test


def holdout_names(clips: list[MocapClip], holdout_fraction: float = 0.15, seed: int = 0
                  ) -> set[str]:
    """Names of the clips :func:`split_clips` holds out."""
    by_action: dict[str, set[str]] = defaultdict(set)
    for clip in clips:
        by_action[clip.action].add(clip.source_clip)
    held_sources: set[str] = set()
    for sources in by_action.values():
        ranked = sorted(sources, key=lambda n: (_unit_hash(n, seed), n))
        count = int(np.floor(len(ranked) * holdout_fraction + 0.5))
        if count > 0:
            held_sources.update(ranked[:count])
        else:
            held_sources.update(n for n in ranked if _unit_hash(n, seed) < holdout_fraction)
    return {c.name for c in clips if c.source_clip in held_sources}


# ----------------------------------------------------------------------------------------------
# statistics (python -m streampose_train.mocap.dataset --stats)


def dataset_stats(clips: list[MocapClip]) -> dict:
    """Clip/frame counts, hours and frame-weighted mean bone lengths of a list of clips."""
    frames = sum(c.num_frames for c in clips)
    sums: dict[str, float] = defaultdict(float)
    for clip in clips:
        for bone, length in bone_lengths(clip.joints3d).items():
            sums[bone] += length * clip.num_frames
    actions: dict[str, int] = defaultdict(int)
    for clip in clips:
        actions[clip.action] += 1
    return {
        "clips": len(clips), "frames": frames,
        "hours": sum(c.duration for c in clips) / 3600.0,
        "fps": sorted({c.fps for c in clips}),
        "actions": dict(sorted(actions.items())),
        "bone_lengths_m": {k: round(v / max(frames, 1), 4) for k, v in sums.items()},
    }


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build/inspect the mocap caches.")
    parser.add_argument("datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--stats", action="store_true", help="print counts and bone lengths")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    for name in args.datasets:
        start = time.perf_counter()
        try:
            clips = load_mocap(name, workers=args.workers)
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        elapsed = time.perf_counter() - start
        print(f"{name}: {len(clips)} clips loaded in {elapsed:.1f} s")
        if args.stats:
            import json

            print(json.dumps(dataset_stats(clips), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
