"""Training pipeline pieces on synthetic mocap (no shared data needed): windows, flips, losses, a
tiny end-to-end run with resume, and the evaluation on the resulting weights file."""
import json

import numpy as np
import pytest
import torch

from streampose_train.mocap import MocapClip
from streampose.skeleton import H36M17
from streampose_train.lifter import (RenderedClip, TrainConfig, WindowSampler, render_clip, train,
                                     weighted_mpjpe_loss)

# A standing H36M-17 skeleton, metres, Y-up (hip 0.95 m above the floor).
_TEMPLATE = np.array([
    [0, .95, 0], [-.12, .95, 0], [-.12, .5, 0], [-.12, .08, 0], [.12, .95, 0], [.12, .5, 0], [.12, .08, 0],
    [0, 1.2, 0], [0, 1.45, 0], [0, 1.55, .08], [0, 1.7, 0], [.18, 1.45, 0], [.2, 1.18, 0], [.22, .92, 0],
    [-.18, 1.45, 0], [-.2, 1.18, 0], [-.22, .92, 0]], dtype=np.float32)


def synthetic_clip(name: str, frames: int = 90, fps: float = 30.0, seed: int = 0) -> MocapClip:
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / fps
    joints = np.repeat(_TEMPLATE[None], frames, axis=0).copy()
    swing = 0.25 * np.sin(2 * np.pi * (0.8 + 0.4 * rng.random()) * t)
    joints[:, [13, 12], 2] += swing  # left arm forward/back
    joints[:, [16, 15], 2] -= swing
    joints[:, [3, 2], 2] += 0.5 * swing
    joints[:, :, 0] += 0.5 * t  # walking sideways
    return MocapClip(name=f"synth/{name}", dataset="synth", action="walk", description="synthetic",
                     fps=fps, joints3d=joints.astype(np.float32), licence="test")


def _rendered(n: int, offset: float = 0.0) -> RenderedClip:
    inputs = (np.arange(n, dtype=np.float32)[:, None, None] + offset) * np.ones((1, 17, 2), np.float32)
    poses = np.arange(n, dtype=np.float32)[:, None, None] * np.ones((1, 17, 3), np.float32)
    return RenderedClip("c", "walk", 30.0, inputs, poses, poses[:, 0] + 5, inputs, (640, 480))


@pytest.mark.parametrize("causal", [False, True])
def test_windows_are_replicate_padded_and_aligned(causal):
    sampler = WindowSampler([_rendered(10), _rendered(6, offset=100)], receptive_field=5, causal=causal)
    assert len(sampler) == 16
    x, pose, root = next(sampler.batches(16, np.random.default_rng(0), flip=False))
    for window, target in zip(x[:, :, 0, 0].numpy(), pose[:, 0, 0, 0].numpy()):
        base = 100 if window.max() >= 100 else 0
        length = 6 if base else 10
        t = int(target)
        offsets = np.arange(-4, 1) if causal else np.arange(-2, 3)
        expected = np.clip(t + offsets, 0, length - 1) + base  # replicate padding at both ends
        np.testing.assert_array_equal(window, expected)
    assert root.shape == (16, 1, 1, 3)


def test_flip_mirrors_inputs_and_targets_consistently():
    clip = _rendered(8)
    rng = np.random.default_rng(0)
    clip.inputs = rng.normal(size=clip.inputs.shape).astype(np.float32)
    clip.poses = rng.normal(size=clip.poses.shape).astype(np.float32)
    sampler = WindowSampler([clip], receptive_field=1, causal=False)
    plain = next(sampler.batches(8, np.random.default_rng(1), flip=False))
    flipped = next(sampler.batches(8, np.random.default_rng(1), flip=True))
    perm = H36M17.flip_permutation
    changed = 0
    for k in range(8):
        if torch.equal(plain[0][k], flipped[0][k]):
            continue
        changed += 1
        mirrored_x = plain[0][k][:, perm] * torch.tensor([-1.0, 1.0])
        torch.testing.assert_close(flipped[0][k], mirrored_x)
        torch.testing.assert_close(flipped[1][k], plain[1][k][:, perm] * torch.tensor([-1.0, 1.0, 1.0]))
        torch.testing.assert_close(flipped[2][k], plain[2][k] * torch.tensor([-1.0, 1.0, 1.0]))
    assert 0 < changed < 8


def test_weighted_trajectory_loss_divides_by_depth():
    target = torch.tensor([[[0.0, 0.0, 2.0]], [[0.0, 0.0, 4.0]]])
    predicted = target + torch.tensor([0.0, 0.4, 0.0])
    assert weighted_mpjpe_loss(predicted, target).item() == pytest.approx((0.4 / 2 + 0.4 / 4) / 2)


def test_render_clip_is_consistent_camera_geometry():
    from streampose.camera import normalize_screen_coordinates

    clip = synthetic_clip("a")
    rendered = render_clip(clip, np.random.default_rng(0), fps=None, noise=None)
    assert rendered.inputs.shape == (90, 17, 2) and rendered.poses.shape == (90, 17, 3)
    np.testing.assert_allclose(rendered.poses[:, 0], 0.0, atol=1e-6)
    assert (rendered.roots[:, 2] > 1.0).all()  # in front of the camera
    # Bone lengths survive the rigid world->camera transform.
    world_len = np.linalg.norm(clip.joints3d[:, 2] - clip.joints3d[:, 1], axis=-1)
    cam_len = np.linalg.norm(rendered.poses[:, 2] - rendered.poses[:, 1], axis=-1)
    np.testing.assert_allclose(world_len, cam_len, rtol=1e-4)
    np.testing.assert_allclose(rendered.inputs, normalize_screen_coordinates(rendered.pixels.astype(np.float64),
                                                                             *rendered.image_size), atol=1e-5)
    resampled = render_clip(clip, np.random.default_rng(0), fps=45.0, noise=None)
    assert len(resampled.inputs) == 134  # 89 / 30 s at 45 fps, +1


def test_tiny_training_run_learns_resumes_and_evaluates(tmp_path):
    from streampose_train.eval.lifter import evaluate, render_heldout
    from streampose.lifter import load_lifter

    train_clips = [synthetic_clip(f"t{i}", seed=i) for i in range(4)]
    held = [synthetic_clip("h", seed=10)]
    out = tmp_path / "lifter_tiny.pt"
    config = TrainConfig(receptive_field=27, causal=True, channels=32, epochs=2, batch_size=64, lr=3e-3,
                         fps_range=(25.0, 35.0), out=str(out), data="cmu")
    history = train(config, progress=False, train_clips=train_clips, held_clips=held)
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    config.epochs = 4
    history = train(config, resume=True, progress=False, train_clips=train_clips, held_clips=held)
    epochs = history["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4]  # resumed, not restarted
    assert epochs[-1]["train_mpjpe_mm"] < epochs[0]["train_mpjpe_mm"]
    assert epochs[-1]["bn_momentum"] == pytest.approx(0.001)

    lifter = load_lifter(str(out), causal=True)
    assert lifter.causal and lifter.has_trajectory and lifter.input_layout == "h36m17"
    assert lifter.metadata["held_out_clips"] == ["synth/h"]
    assert "CMU" in lifter.metadata["license"]
    assert lifter.metadata["bn_recalibration"]["bn_recalibrated_windows"] > 0
    results = evaluate(lifter, render_heldout(held, fps=30.0, cameras=1, seed=0))
    overall = results["overall"]
    assert overall["frames"] == 90 and set(results["per_action"]) == {"walk"}
    assert 0 <= overall["p_mpjpe"] <= overall["mpjpe"] and np.isfinite(overall["root_error"])
    json.dumps(results)  # machine-readable


def test_balanced_sampling_gives_each_dataset_an_equal_share():
    small = _rendered(100)  # inputs 0..99
    small.name = "cmu/a"
    big = _rendered(900, offset=1000)  # inputs 1000..1899
    big.name = "bandai/b"
    sampler = WindowSampler([small, big], receptive_field=1, causal=False)

    def share_of_small(balance):
        batches = sampler.batches(64, np.random.default_rng(0), limit=100, flip=False, balance=balance)
        x = np.concatenate([b[0][:, 0, 0, 0].numpy() for b in batches])
        assert len(x) == 100 and len(np.unique(x)) == 100  # without replacement
        return float((x < 1000).mean())

    assert share_of_small(balance=False) < 0.2  # ~10 % uniformly
    assert 0.35 < share_of_small(balance=True) < 0.65  # ~50 % balanced


def test_render_clip_rejects_cameras_that_do_not_see_the_subject(monkeypatch):
    # A camera turned away from the subject puts every joint behind it (depth < 0), which projects
    # to nonsense pixels; the renderer must draw another camera.
    from streampose_train.filming import VirtualCamera

    original = VirtualCamera.sample.__func__
    calls = []

    def sample(cls, rng, **kwargs):
        camera = original(cls, rng, **kwargs)
        calls.append(camera)
        if len(calls) == 1:
            turn = np.diag([-1.0, 1.0, -1.0])  # 180 degrees about the camera's vertical axis
            return VirtualCamera(camera.intrinsics, turn @ camera.rotation, turn @ camera.translation)
        return camera

    monkeypatch.setattr(VirtualCamera, "sample", classmethod(sample))
    rendered = render_clip(synthetic_clip("a"), np.random.default_rng(0), noise=None)
    assert len(calls) == 2
    assert (rendered.roots[:, 2] > 0.5).all()
    w, h = rendered.image_size
    assert (rendered.pixels >= -0.25 * np.array([w, h])).all()
