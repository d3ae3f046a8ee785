"""Refiner: renderer determinism, network shapes, a few training steps lower the loss, public API."""
from pathlib import Path

import numpy as np
import pytest
import torch

from streampose.lifter import load_lifter

from streampose.errors import InputError, ModelError
from streampose.refine import limbs, load_refiner
from streampose_train.refiner.dataset import build_samples
from streampose.refine.inputs import build_inputs
from streampose.refine.model import RefinerNet
from streampose_train.refiner.render import person_crop_intrinsics, render_person, sample_appearance
from streampose_train.refiner.train import FitConfig, batch_tensors, fit, orientation_loss, predict, save_refiner


def _standing_pose() -> np.ndarray:
    """A Y-up world pose (metres), hip 1 m above the floor."""
    return np.array([
        [0, 1.0, 0], [-.12, 1.0, 0], [-.12, .55, .02], [-.12, .1, 0], [.12, 1.0, 0], [.12, .55, .02],
        [.12, .1, 0], [0, 1.25, 0], [0, 1.5, 0], [0, 1.6, .05], [0, 1.72, 0], [.18, 1.5, 0],
        [.3, 1.25, 0], [.35, 1.0, .05], [-.18, 1.5, 0], [-.3, 1.25, 0], [-.35, 1.0, .05]], np.float32)


def _clip(frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = _standing_pose()
    t = np.arange(frames)[:, None, None]
    swing = 0.15 * np.sin(t / 5.0 + rng.uniform(0, 6, (1, 17, 1))) * (np.arange(17) > 0)[None, :, None]
    return (base[None] + swing * np.array([1, 0.3, 1])).astype(np.float32)


def _shipped_lift():
    """The shipped lifter as the renders' initial-pose function (a real network on noisy 2D)."""
    lifter = load_lifter("cmu")
    return lambda kp2d, size: lifter.lift_sequence(kp2d, image_size=size)[0]


@pytest.fixture(scope="module")
def tiny_samples():
    torch.manual_seed(0)
    lift = _shipped_lift()
    return build_samples([_clip(40, 0), _clip(40, 1)], [30.0, 30.0], lift, cameras_per_clip=1, stride=5, size=64,
                         seed=0, log=lambda _: None)


def test_renderer_is_deterministic_and_labels_parts():
    joints = torch.from_numpy(_standing_pose() * np.array([1, -1, 1], np.float32)
                              + np.array([0, 1.0, 4.0], np.float32))          # Y down, 4 m away
    intrinsics = person_crop_intrinsics(joints, 64)
    renders = []
    for _ in range(2):
        gen = torch.Generator().manual_seed(7)
        renders.append(render_person(joints, intrinsics, 64, sample_appearance(gen, 64), gen))
    np.testing.assert_array_equal(renders[0].image, renders[1].image)
    np.testing.assert_array_equal(renders[0].parts, renders[1].parts)
    gen = torch.Generator().manual_seed(8)
    other = render_person(joints, intrinsics, 64, sample_appearance(gen, 64), gen)
    assert np.abs(other.image.astype(int) - renders[0].image).mean() > 5
    r = renders[0]
    assert r.image.shape == (64, 64, 3) and r.image.dtype == np.uint8
    # most limbs are visible and the projected hip lies on a body pixel (unless occluded)
    assert len(set(np.unique(r.parts)) - {-1}) >= 12
    hx, hy = np.round(r.kp2d[0]).astype(int)
    assert r.parts[hy, hx] >= 0 or r.parts[hy, hx] == -1 and r.mask.sum() > 200
    assert 0.05 < r.mask.mean() < 0.6


def test_dataset_is_seeded_and_initial_poses_are_not_ground_truth(tiny_samples):
    lift = _shipped_lift()
    again = build_samples([_clip(40, 0), _clip(40, 1)], [30.0, 30.0], lift, cameras_per_clip=1, stride=5, size=64,
                          seed=0, log=lambda _: None)
    np.testing.assert_array_equal(again.images, tiny_samples.images)
    assert len(tiny_samples) == 16
    assert tiny_samples.images.shape == (16, 64, 64, 3)
    np.testing.assert_allclose(tiny_samples.pose_gt[:, 0], 0, atol=1e-6)
    assert np.abs(tiny_samples.pose_init - tiny_samples.pose_gt).mean() > 0.01
    assert np.abs(tiny_samples.kp2d - tiny_samples.kp2d_true).mean() > 0.1       # 2D is noisy


def test_concatenated_datasets_keep_every_sample_and_clip_ids_apart(tiny_samples):
    first = tiny_samples.subset(np.arange(6))
    joined = first.concatenate(tiny_samples)
    assert len(joined) == 6 + len(tiny_samples)
    np.testing.assert_array_equal(joined.images[6:], tiny_samples.images)
    np.testing.assert_array_equal(joined.pose_init[:6], first.pose_init)
    assert set(joined.clip[:6]).isdisjoint(joined.clip[6:])
    with pytest.raises(ValueError):
        first.concatenate(tiny_samples.subset(np.arange(2)).__class__(
            **{**vars(tiny_samples.subset(np.arange(2))), "images": np.zeros((2, 32, 32, 3), np.uint8)}))


@pytest.mark.parametrize("backbone,size", [("small", 32), ("resnet50", 32)])
def test_forward_backward_shapes(backbone, size):
    torch.manual_seed(0)
    net = RefinerNet(backbone, in_channels=6)
    patches = torch.randn(2, 16, 6, size, size, requires_grad=True)
    u0 = torch.randn(2, 16, 3)
    out = net(patches, u0)
    assert out.shape == (2, 16, 3)
    assert torch.count_nonzero(out) == 0                  # zero-initialised head: no correction yet
    loss = orientation_loss(out, torch.ones(2, 16, 3))
    loss.backward()
    assert patches.grad is not None and net.head[-1].weight.grad.abs().sum() > 0
    whole = RefinerNet(backbone, in_channels=3, num_patches=1)
    assert whole(torch.randn(2, 1, 3, size, size), u0).shape == (2, 16, 3)
    with pytest.raises(ValueError):
        net(torch.randn(2, 1, 6, size, size), u0)


@pytest.mark.parametrize("modality", ["rgb+seg", "whole"])
def test_a_few_steps_lower_the_training_loss(tiny_samples, modality):
    config = FitConfig(modality=modality, patch_size=16, whole_size=32, epochs=1, batch_size=16,
                       lr=3e-3, mask_dropout=0.0, plateau_patience=1000)
    lengths = limbs.mean_limb_lengths(torch.from_numpy(tiny_samples.pose_gt))
    index = np.arange(len(tiny_samples))

    def loss_of(net):
        net.eval()
        with torch.no_grad():
            patches, u0, target, _, _ = batch_tensors(tiny_samples, index, config, lengths)
            return orientation_loss(net(patches, u0), target).item()

    from streampose_train.refiner.train import make_net
    torch.manual_seed(config.seed)
    before = loss_of(make_net(config))
    config.epochs = 20
    net, _, history = fit(tiny_samples, config, log=lambda _: None)
    after = loss_of(net)
    assert after < 0.7 * before, (before, after)
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_public_api_round_trip_and_errors(tiny_samples, tmp_path: Path):
    config = FitConfig(modality="rgb+seg", patch_size=16, epochs=1, batch_size=8)
    net, lengths, _ = fit(tiny_samples, config, max_steps=4, log=lambda _: None)
    path = tmp_path / "refiner_test.pt"
    save_refiner(path, net, config, lengths, {})
    refiner = load_refiner(path)
    n = 3
    images = [im for im in tiny_samples.images[:n]]
    kp2d = tiny_samples.kp2d[:n]
    kp3d = tiny_samples.pose_init[:n]
    masks = [(tiny_samples.parts[i] >= 0).astype(np.float32) for i in range(n)]
    batch = refiner.refine_batch(images, kp2d, kp3d, masks)
    single = refiner.refine(images[1], kp2d[1], kp3d[1], masks[1])
    assert batch.shape == (3, 17, 3)
    np.testing.assert_allclose(single, batch[1], atol=1e-5)
    # same numbers as the training-side prediction path
    expected = predict(net, tiny_samples.subset(np.arange(n)), config, lengths, use_mask=True)
    np.testing.assert_allclose(batch, expected, atol=1e-4)
    # a 2x larger frame is resampled to the training resolution: nearly the same correction
    refiner.config.render_size = 64
    big = images[0].repeat(2, axis=0).repeat(2, axis=1)
    big_mask = masks[0].repeat(2, axis=0).repeat(2, axis=1)
    small_out = refiner.refine(images[0], kp2d[0], kp3d[0], masks[0])
    big_out = refiner.refine(big, kp2d[0] * 2 + 0.5, kp3d[0], big_mask)
    correction = np.abs(small_out - (kp3d[0] - kp3d[0, :1])).max()
    assert correction > 1e-3
    assert np.abs(big_out - small_out).max() < 0.3 * correction
    with pytest.raises(InputError):
        refiner.refine(images[0][..., :2], kp2d[0], kp3d[0])
    with pytest.raises(InputError):
        refiner.refine(images[0], kp2d[0, :10], kp3d[0])
    with pytest.raises(InputError):
        refiner.refine(images[0], kp2d[0], kp3d[0], mask=np.zeros((5, 5)))
    with pytest.raises(ModelError):
        load_refiner("no_such_refiner")
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError):
        load_refiner(tmp_path / "broken.pt")


def test_inputs_for_every_modality_have_the_documented_shapes(tiny_samples):
    images = torch.from_numpy(tiny_samples.images[:2]).permute(0, 3, 1, 2).float() / 255
    kp = torch.from_numpy(tiny_samples.kp2d[:2])
    depth = torch.from_numpy(tiny_samples.pose_init[:2, :, 2])
    shapes = {m: tuple(build_inputs(images, kp, depth, None, m, 16).shape)
              for m in ("rgb", "seg", "rgb+seg", "whole", "none")}
    assert shapes == {"rgb": (2, 16, 3, 16, 16), "seg": (2, 16, 3, 16, 16),
                      "rgb+seg": (2, 16, 6, 16, 16), "whole": (2, 1, 3, 16, 16),
                      "none": (2, 1, 3, 16, 16)}
    with pytest.raises(ValueError):
        build_inputs(images, kp, depth, None, "depth", 16)


def test_shipped_default_refiner_loads_and_refines():
    refiner = load_refiner("default")
    assert refiner.config.modality == "rgb+seg" and refiner.limb_lengths.shape == (16,)
    pose = _standing_pose() * np.array([1, -1, 1], np.float32)
    pose = pose - pose[:1]
    kp2d = np.concatenate([pose[:, :2] * 300 + [320, 240], np.ones((17, 1))], 1).astype(np.float32)
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    refined = refiner.refine(image, kp2d, pose)
    assert refined.shape == (17, 3) and np.isfinite(refined).all()
    np.testing.assert_allclose(refined[0], 0, atol=1e-6)             # stays root-relative
    assert np.abs(refined - pose).max() < 0.5                          # a correction, not a new pose
