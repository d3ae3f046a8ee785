"""Mocap dataset: archive -> cache -> clips on a synthetic archive, resampling, splits; real data
(shared-marked) for counts and bone lengths."""
from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from streampose_train.filming import VirtualCamera
from streampose.errors import InputError
from streampose_train.mocap import dataset as ds
from streampose_train.mocap.dataset import (
    MocapClip, cmu_action, holdout_names, load_mocap, resample, shared_data_dir, split_clips,
)
from streampose_train.mocap.rigs import bone_lengths

from test_bvh import CC_JOINTS, _cc_frames, _write_rig_bvh  # synthetic CC-rig BVH writer

SHARED = Path(__file__).resolve().parents[2] / "shared"
needs_shared = pytest.mark.skipif(not (SHARED / "data" / "mocap").is_dir(),
                                  reason="../shared/data/mocap not available")


def _clip(name: str, action: str = "walk", frames: int = 10, fps: float = 60.0) -> MocapClip:
    joints = np.zeros((frames, 17, 3), np.float32)
    joints[..., 0] = np.arange(frames, dtype=np.float32)[:, None] / fps  # x = time in seconds
    return MocapClip(name=name, dataset="cmu", action=action, description=action, fps=fps,
                     joints3d=joints, licence="test")


# ---------------------------------------------------------------------------------------------
# resampling


def test_resample_linear_motion_is_exact():
    clip = _clip("a", frames=61, fps=60.0)  # 1 s
    half = resample(clip, 30.0)
    assert half.fps == 30.0 and half.num_frames == 31
    assert half.duration == pytest.approx(1.0)
    np.testing.assert_allclose(half.joints3d[:, 0, 0], np.arange(31) / 30.0, atol=1e-6)
    up = resample(clip, 50.0)
    assert up.num_frames == 51
    np.testing.assert_allclose(up.joints3d[:, 3, 0], np.arange(51) / 50.0, atol=1e-6)
    assert up.joints3d.dtype == np.float32 and clip.num_frames == 61  # input untouched


def test_resample_interpolates_between_frames():
    clip = _clip("a", frames=2, fps=1.0)
    clip.joints3d[1] = 2.0
    out = resample(clip, 4.0)
    np.testing.assert_allclose(out.joints3d[:, 0, 1], [0.0, 0.5, 1.0, 1.5, 2.0])


def test_resample_rejects_bad_fps():
    with pytest.raises(InputError):
        resample(_clip("a"), 0)


# ---------------------------------------------------------------------------------------------
# splits


def _many_clips() -> list[MocapClip]:
    actions = ["walk"] * 40 + ["run"] * 20 + ["dance"] * 14 + ["jump"] * 2 + ["wave"] * 1
    return [_clip(f"cmu/{i:03d}_{a}", a, frames=3) for i, a in enumerate(actions)]


def test_split_holds_out_whole_clips_deterministically():
    clips = _many_clips()
    train, test = split_clips(clips)
    names_train, names_test = {c.name for c in train}, {c.name for c in test}
    assert not names_train & names_test
    assert len(train) + len(test) == len(clips)
    assert 0.1 < len(test) / len(clips) < 0.22
    # stratified: each large action keeps ~15 % held out
    for action, n in (("walk", 40), ("run", 20), ("dance", 14)):
        held = sum(c.action == action for c in test)
        assert held == int(np.floor(n * 0.15 + 0.5)), action
    # stable: same result for a shuffled list, and for a subset that keeps the actions
    shuffled = list(reversed(clips))
    assert {c.name for c in split_clips(shuffled)[1]} == names_test
    assert holdout_names(clips) == names_test
    # another seed gives another split
    assert {c.name for c in split_clips(clips, seed=1)[1]} != names_test


def test_split_keeps_segments_of_one_recording_together():
    clips = _many_clips()
    segments = [_clip(f"cmu/900_dance#{k}", "dance", frames=3) for k in range(3)]
    for seed in range(12):
        _, test = split_clips(clips + segments, seed=seed)
        held = {c.name for c in test} & {c.name for c in segments}
        assert len(held) in (0, 3), seed


def test_split_at_glitches_cuts_and_drops_short_pieces():
    fps = 30.0
    joints = np.zeros((100, 17, 3))
    joints[:, :, 0] = np.arange(100)[:, None] * 0.05 / fps  # smooth 0.05 m/s drift
    joints[40:, 13, 1] += 1.0                                # wrist pops up 1 m at frame 40
    joints[45:, 13, 1] -= 1.0                                # and back down at frame 45
    pieces = ds.split_at_glitches(joints, fps)
    assert [len(p) for p in pieces] == [40, 55]              # the 5-frame piece is dropped
    np.testing.assert_array_equal(pieces[1], joints[45:])
    assert len(ds.split_at_glitches(joints[:40], fps)) == 1


def test_split_fraction_zero_and_validation():
    assert split_clips(_many_clips(), holdout_fraction=0.0)[1] == []
    with pytest.raises(InputError):
        split_clips(_many_clips(), holdout_fraction=1.0)


def test_cmu_action_labels():
    assert cmu_action("dance - small jetes, pirouette") == "dance"
    assert cmu_action("walk on uneven terrain") == "walk"
    assert cmu_action("run/jog") == "run"
    assert cmu_action("jump, balance") == "jump"
    assert cmu_action("swordplay") == "swordplay"


# ---------------------------------------------------------------------------------------------
# archive -> cache -> clips


def _make_cmu_like_archive(folder: Path) -> Path:
    """A tiny ``cmu_subset.tar.xz`` with three synthetic CC-rig clips and an index.csv."""
    mocap = folder / "data" / "mocap"
    mocap.mkdir(parents=True)
    archive = mocap / "cmu_subset.tar.xz"
    files = {
        "cmu_subset/index.csv": '"Subject","Trial #","Motion Description","framerate"\n'
                                '2,1,"walk",120\n2,2,"dance - spin",120\n',
        "cmu_subset/subjects/002/002_01.bvh": _write_rig_bvh(CC_JOINTS, _cc_frames(6)),
        "cmu_subset/subjects/002/002_02.bvh": _write_rig_bvh(CC_JOINTS, _cc_frames(9)),
        "cmu_subset/subjects/003/003_01.bvh": _write_rig_bvh(CC_JOINTS, _cc_frames(4)),
    }
    with tarfile.open(archive, "w:xz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return folder


def test_load_mocap_from_archive_builds_and_reuses_cache(tmp_path, monkeypatch):
    shared = _make_cmu_like_archive(tmp_path / "shared")
    monkeypatch.setenv("STREAMPOSE_SHARED", str(shared))
    cache = tmp_path / "cache"
    assert shared_data_dir() == shared / "data"
    clips = load_mocap("cmu", cache_dir=cache, workers=1)
    assert [c.name for c in clips] == ["cmu/002_01", "cmu/002_02", "cmu/003_01"]
    assert [c.num_frames for c in clips] == [5, 8, 3]  # prepended T-pose frame dropped
    assert [c.action for c in clips] == ["walk", "dance", "unknown"]
    assert clips[1].description == "dance - spin"
    assert clips[0].fps == 60.0 and "CMU" in clips[0].licence
    assert clips[0].joints3d.shape == (5, 17, 3) and clips[0].joints3d.dtype == np.float32
    assert bone_lengths(clips[0].joints3d)["LKnee-LFoot"] == pytest.approx(0.44, abs=1e-3)
    assert list(cache.glob("cmu_h36m17_v*.npz"))

    # Second load: only the cache is needed (archive and unpacked files gone).
    (shared / "data" / "mocap" / "cmu_subset.tar.xz").unlink()
    for path in sorted((cache / "cmu").rglob("*.bvh")):
        path.unlink()
    again = load_mocap("cmu", cache_dir=cache, fps=30.0)
    assert [c.name for c in again] == [c.name for c in clips]
    assert again[1].fps == 30.0 and again[1].num_frames == 4  # 8 frames at 60 fps -> 4 at 30
    np.testing.assert_allclose(again[1].joints3d[1], clips[1].joints3d[2], atol=1e-6)


def test_missing_archive_raises_clear_input_error(tmp_path, monkeypatch):
    empty = tmp_path / "shared"
    (empty / "data" / "mocap").mkdir(parents=True)
    monkeypatch.setenv("STREAMPOSE_SHARED", str(empty))
    with pytest.raises(InputError, match="bandai_namco_2.tar.xz not found"):
        load_mocap("bandai", cache_dir=tmp_path / "cache")


def test_unknown_dataset_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="unknown mocap dataset"):
        load_mocap("h36m", cache_dir=tmp_path)


def test_unreadable_cache_raises_input_error(tmp_path):
    (tmp_path / f"cmu_h36m17_v{ds.CACHE_VERSION}.npz").write_bytes(b"garbage")
    with pytest.raises(InputError, match="delete it to rebuild"):
        load_mocap("cmu", cache_dir=tmp_path)


# ---------------------------------------------------------------------------------------------
# real data


@pytest.mark.shared
@needs_shared
def test_real_cmu_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMPOSE_SHARED", str(SHARED))
    start = time.perf_counter()
    clips = load_mocap("cmu", cache_dir=tmp_path)  # fresh cache: unpack + parse (~5 s)
    build = time.perf_counter() - start
    start = time.perf_counter()
    cached = load_mocap("cmu", cache_dir=tmp_path)
    assert time.perf_counter() - start < 2.0 < build + 2.0
    assert len(clips) == len(cached)
    assert len({c.source_clip for c in clips}) == 61  # some recordings are cut at glitches
    frames = sum(c.num_frames for c in clips)
    assert 25000 < frames < 26500  # 26,468 minus the T-pose frames minus glitch pieces
    for clip in clips:  # no teleporting joints left
        speed = np.linalg.norm(np.diff(clip.joints3d, axis=0), axis=-1).max() * clip.fps
        assert speed <= ds.MAX_JOINT_SPEED, clip.name
    assert {c.fps for c in clips} == {60.0}
    stats = ds.dataset_stats(clips)
    lengths = stats["bone_lengths_m"]
    assert 0.3 < lengths["LHip-LKnee"] < 0.55 and 0.3 < lengths["RKnee-RFoot"] < 0.55
    for left, right in (("LHip-LKnee", "RHip-RKnee"), ("LShoulder-LElbow", "RShoulder-RElbow"),
                        ("LElbow-LWrist", "RElbow-RWrist")):
        assert lengths[left] == pytest.approx(lengths[right], rel=0.03)
    train, test = split_clips(clips)
    assert 5 <= len(test) <= 15 and {c.name for c in test}.isdisjoint({c.name for c in train})
    # floor at y = 0: the ankles rest ~8 cm above it most of the time
    ankles = np.concatenate([c.joints3d[:, [3, 6], 1].min(1) for c in clips])
    assert 0.0 < np.median(ankles) < 0.25
    # random virtual cameras keep real subjects in view
    rng = np.random.default_rng(0)
    fractions = []
    for clip in clips:
        camera = VirtualCamera.sample(rng, subject=clip.joints3d)
        fractions.append(camera.fraction_in_view(clip.joints3d))
    assert np.mean(np.array(fractions) > 0.95) > 0.95


@pytest.mark.shared
@pytest.mark.slow
@needs_shared
def test_real_bandai_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMPOSE_SHARED", str(SHARED))
    clips = load_mocap("bandai", cache_dir=tmp_path)  # fresh cache: unpack + parse (~25-40 s)
    assert len(clips) == 2902 and sum(c.num_frames for c in clips) == 384931
    assert {c.fps for c in clips} == {30.0}
    assert "NC" in clips[0].licence
    assert len({c.action for c in clips}) == 10
    lengths = ds.dataset_stats(clips)["bone_lengths_m"]
    assert 0.3 < lengths["LHip-LKnee"] < 0.55
    assert lengths["LElbow-LWrist"] == pytest.approx(lengths["RElbow-RWrist"], rel=0.03)
    train, test = split_clips(clips)
    for action in {c.action for c in clips}:
        n = sum(c.action == action for c in clips)
        assert sum(c.action == action for c in test) == int(np.floor(n * 0.15 + 0.5))
