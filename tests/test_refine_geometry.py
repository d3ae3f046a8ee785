"""Refiner geometry: limb orientation round trip, crop boxes (hand-computed), patch sampling, part maps."""
import kornia
import pytest
import torch

from streampose.refine import crops, limbs, segmap
from streampose.skeleton import H36M17


def _random_pose(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 17, 3, generator=gen) * 0.3


def test_limbs_follow_the_h36m_tree():
    assert limbs.NUM_LIMBS == 16
    assert limbs.LIMBS[0] == (1, 0)                        # RHip -> Hip
    assert limbs.LIMBS[-1] == (16, 15)                     # RWrist -> RElbow
    assert limbs.LIMB_NAMES[9] == "Neck/Nose->Head"
    assert list(limbs.LIMBS) == H36M17.bones


def test_orientation_pose_round_trip():
    poses = _random_pose(5)
    poses = poses - poses[:, :1]                           # root-relative
    lengths = limbs.mean_limb_lengths(poses)
    u = limbs.limb_orientations(poses, lengths)
    assert u.shape == (5, 16, 3)
    rebuilt = limbs.pose_from_orientations(u, lengths)
    torch.testing.assert_close(rebuilt, poses, atol=1e-5, rtol=0)
    # normalisation: mean norm of each limb's orientation over the set is exactly 1
    torch.testing.assert_close(u.norm(dim=-1).mean(0), torch.ones(16), atol=1e-5, rtol=0)


def test_residual_refinement_recovers_ground_truth():
    gt = _random_pose(4, seed=1)
    gt = gt - gt[:, :1]
    initial = gt + 0.05 * _random_pose(4, seed=2)
    initial = initial - initial[:, :1]
    lengths = limbs.mean_limb_lengths(gt)
    target = limbs.residual_target(initial, gt, lengths)
    torch.testing.assert_close(limbs.apply_residual(initial, target, lengths), gt, atol=1e-5, rtol=0)
    # a residual on one limb moves exactly that limb's subtree
    du = torch.zeros(1, 16, 3)
    du[0, 11, 0] = 1.0                                      # limb 11: LShoulder -> LElbow
    moved = limbs.apply_residual(torch.zeros(1, 17, 3), du, torch.ones(16))[0]
    assert torch.count_nonzero(moved.abs().sum(-1)).item() == 2    # LElbow and LWrist
    assert moved[12, 0] == 1.0 and moved[13, 0] == 1.0


def test_limb_box_hand_computed():
    kp = torch.zeros(1, 17, 2)
    kp[0, 0] = torch.tensor([10.0, 10.0])   # Hip (parent of RHip)
    kp[0, 1] = torch.tensor([20.0, 30.0])   # RHip: tight box 10 x 20
    kp[0, 2] = torch.tensor([20.0, 100.0])  # RKnee: limb RHip->RKnee is 0 x 70
    boxes = crops.limb_boxes(kp, min_size=28.0, scale=2.3)
    # limb 0: centre (15, 20); both sides padded up to 28, times 2.3 = 64.4
    torch.testing.assert_close(boxes[0, 0], torch.tensor([15.0, 20.0, 64.4, 64.4]))
    # limb 1: centre (20, 65); w = max(28, 0) * 2.3, h = 70 * 2.3
    torch.testing.assert_close(boxes[0, 1], torch.tensor([20.0, 65.0, 64.4, 161.0]))
    # min_size per person
    boxes2 = crops.limb_boxes(torch.cat([kp, kp]), min_size=torch.tensor([28.0, 100.0]))
    torch.testing.assert_close(boxes2[1, 0, 2:], torch.tensor([230.0, 230.0]))


def test_patch_sampling_hand_computed_on_a_ramp():
    # image value = x coordinate in channel 0, y in channel 1
    h, w = 50, 60
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    image = torch.stack([xs, ys])[None]
    boxes = torch.tensor([[[20.0, 25.0, 8.0, 4.0]]])           # centre (20,25), 8 wide, 4 high
    points = crops.patch_sample_points(boxes, 4)
    patch = crops.sample_patches(image, points)[0, 0]          # (2, 4, 4)
    # 4 samples tiling [16, 24] horizontally: centres 17, 19, 21, 23; vertically [23, 27]: 23.5 ...
    torch.testing.assert_close(patch[0, 0], torch.tensor([17.0, 19.0, 21.0, 23.0]))
    torch.testing.assert_close(patch[1, :, 0], torch.tensor([23.5, 24.5, 25.5, 26.5]))
    # identical to kornia's crop_and_resize with our corner points
    ref = kornia.geometry.transform.crop_and_resize(image, crops.box_corners(boxes[0], 4), (4, 4))
    torch.testing.assert_close(patch[None], ref, atol=1e-4, rtol=0)
    # patch frame mapping inverts the sampling
    back = crops.to_patch_coordinates(points.reshape(1, -1, 2), boxes, 4)[0, 0].reshape(4, 4, 2)
    torch.testing.assert_close(back[0, :, 0], torch.arange(4, dtype=torch.float32))


def test_crop_zero_pads_outside_and_matches_kornia_for_all_limbs():
    gen = torch.Generator().manual_seed(3)
    image = torch.rand(2, 3, 40, 50, generator=gen) + 0.5      # strictly positive inside
    kp = torch.rand(2, 17, 2, generator=gen) * torch.tensor([50.0, 40.0])
    kp[0, 3] = torch.tensor([-30.0, -30.0])                    # far outside: RKnee->RFoot box
    patches, boxes = crops.crop_limb_patches(image, kp, size=16, min_size=10.0)
    assert patches.shape == (2, 16, 3, 16, 16)
    assert patches[0, 2, :, 0, 0].abs().max() == 0             # top-left of that patch is outside
    ref = kornia.geometry.transform.crop_and_resize(
        image.repeat_interleave(16, 0), crops.box_corners(boxes, 16).reshape(-1, 4, 2), (16, 16))
    torch.testing.assert_close(patches.reshape(32, 3, 16, 16), ref, atol=1e-4, rtol=0)
    with pytest.raises(ValueError):
        crops.crop_limb_patches(image[0], kp)


def test_part_map_depth_order_and_mask_fill():
    kp = torch.zeros(1, 17, 2)
    kp[:] = torch.tensor([0.0, 200.0])      # every other joint far away
    # limb 0 (Hip->RHip) horizontal through (10..30, 20); limb 3 (Hip->LHip) vertical crossing it
    kp[0, 0] = torch.tensor([10.0, 20.0])
    kp[0, 1] = torch.tensor([30.0, 20.0])
    kp[0, 4] = torch.tensor([20.0, 40.0])
    depth = torch.ones(1, 17)
    depth[0, :2] = 0.0
    depth[0, 4] = -1.0                      # LHip nearer than everything
    points = torch.tensor([[[25.0, 20.0], [15.0, 22.0], [50.0, 50.0], [17.0, 26.0]]])
    labels = segmap.part_labels_at(points, kp, depth, width=3.0)
    assert labels[0, 0] == 0                # only limb 0 there
    assert labels[0, 2] == -1 and labels[0, 3] == -1
    # at the crossing of limb 0 and limb 3 the nearer (limb 3, LHip nearer) wins
    cross = segmap.part_labels_at(torch.tensor([[[12.0, 21.0]]]), kp, depth, width=6.0)
    assert cross[0, 0] == 3
    depth[0, 4] = 5.0
    cross = segmap.part_labels_at(torch.tensor([[[12.0, 21.0]]]), kp, depth, width=6.0)
    assert cross[0, 0] == 0
    # mask fills uncovered body pixels with the nearest limb
    filled = segmap.part_labels_at(points, kp, depth, 3.0, mask=torch.tensor([[1.0, 1.0, 0.0, 1.0]]))
    assert filled[0, 2] == -1 and filled[0, 3] in (0, 3)
    full = segmap.skeleton_part_map(kp, depth, (48, 40), 3.0)
    assert full.shape == (1, 3, 48, 40)
    torch.testing.assert_close(full[0, :, 20, 25], segmap.LIMB_COLOURS[0])
    assert full[0, :, 45, 35].abs().max() == 0


def test_part_map_in_patches_matches_cropping_the_full_map():
    gen = torch.Generator().manual_seed(5)
    kp = torch.rand(1, 17, 2, generator=gen) * 60 + 10
    depth = torch.rand(1, 17, generator=gen)
    full = segmap.skeleton_part_map(kp, depth, (80, 80), 4.0)
    boxes = crops.limb_boxes(kp, 8.0)
    points = crops.patch_sample_points(boxes, 12).round()     # sample on pixel centres
    direct = segmap.part_map_patches(points, kp, depth, 4.0)
    cropped = crops.sample_patches(full, points)
    inside = ((points >= 0) & (points <= 79)).all(-1)[:, :, None].expand_as(direct)
    assert inside.sum() > 1000
    torch.testing.assert_close(direct[inside], cropped[inside], atol=1e-5, rtol=0)
