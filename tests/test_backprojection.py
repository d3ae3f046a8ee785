"""Back-projection loss (semi-supervised lifting) on hand-made cases."""
from __future__ import annotations

import numpy as np
import torch

from streampose_train.backprojection import RealWindows, bone_length_loss, weak_perspective_residual


def _pose(seed=0, n=4):
    g = torch.Generator().manual_seed(seed)
    pose = torch.randn(n, 17, 3, generator=g) * 0.3
    return pose - pose[:, :1]


def test_projection_of_the_true_pose_costs_nothing_at_any_scale_and_offset():
    pose = _pose()
    kp = 0.37 * pose[..., :2] + torch.tensor([0.2, -0.1])
    assert float(weak_perspective_residual(pose, kp, torch.ones(4, 17))) < 1e-6
    # depth is free: changing z does not change the loss
    moved = pose.clone()
    moved[..., 2] += torch.randn(4, 17)
    assert float(weak_perspective_residual(moved, kp, torch.ones(4, 17))) < 1e-6


def test_projection_residual_grows_with_a_wrong_pose_and_ignores_zero_confidence():
    pose = _pose()
    kp = 0.5 * pose[..., :2]
    wrong = pose.clone()
    wrong[:, 3, :2] += 0.2                                   # one ankle in the wrong place
    conf = torch.ones(4, 17)
    # the fitted scale absorbs part of the error; what remains is a clear, positive residual
    assert float(weak_perspective_residual(wrong, kp, conf)) > 0.002
    conf[:, 3] = 0.0
    assert float(weak_perspective_residual(wrong, kp, conf)) < 1e-6
    wrong.requires_grad_(True)
    weak_perspective_residual(wrong, kp, torch.ones(4, 17)).backward()
    assert wrong.grad[:, 3, :2].abs().sum() > 0 and wrong.grad[..., 2].abs().sum() == 0


def test_bone_length_loss_compares_mean_lengths():
    pose = _pose(1, 8)
    assert float(bone_length_loss(pose, pose)) < 1e-12
    assert float(bone_length_loss(0.5 * pose, pose)) > 1e-4
    # the same bodies in another order: equal batch means
    assert float(bone_length_loss(pose.flip(0), pose)) < 1e-10


def test_real_windows_pad_like_inference_and_return_the_target_frame():
    track = np.zeros((5, 17, 3), np.float32)
    track[..., 0] = np.arange(5)[:, None]
    track[..., 2] = 1.0
    windows = RealWindows([track], receptive_field=3, causal=False)
    x, kp, conf = windows.batch(64, np.random.default_rng(0), flip=False)
    assert x.shape == (64, 3, 17, 2) and kp.shape == (64, 17, 2) and conf.shape == (64, 17)
    torch.testing.assert_close(kp, x[:, 1])                  # symmetric: the centre frame
    assert float(x[..., 0].min()) == 0 and float(x[..., 0].max()) == 4   # replicate padding
    causal = RealWindows([track], receptive_field=3, causal=True)
    x, kp, _ = causal.batch(16, np.random.default_rng(1), flip=False)
    torch.testing.assert_close(kp, x[:, -1])                 # causal: the last frame
