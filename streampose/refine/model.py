"""Refiner networks: a patch backbone shared by all limbs + a head predicting 16x3 residual orientations.

Input layout (our choice, versus the paper's single (16*6)xHxW volume): each of the 16 limb patches
(``C`` = 3 RGB, 3 part-map, or 6 both) goes through ONE backbone with shared weights; the 16 feature
vectors are concatenated in limb order (so the head knows which feature belongs to which limb) with
the initial orientations ``U0`` and a small MLP head outputs ``dU`` (16, 3).  Why:

* weight sharing is the paper's own argument (part appearance shared across poses) taken one step
  further -- across limbs -- and gives the backbone 16 training patches per sample, which matters
  with random initialisation and a few thousand synthetic samples;
* a stock backbone (ResNet-50) keeps its 3/6-channel stem instead of a 96-channel one;
* the head sees ``U0``: the residual ``U_gt - U0`` depends on the initial pose, which the patches
  alone cannot reveal (the paper leaves this implicit).  ``use_initial=False`` gives the paper's
  patches-only updater.

``patches`` of shape ``(B, 1, C, S, S)`` (one "patch" = the whole person image) is the paper's
uncropped-input baseline (Table 2) with the same networks.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torchvision

from streampose.refine.limbs import NUM_LIMBS


class SmallBackbone(nn.Module):
    """Four stride-2 conv blocks + global pooling; CPU-friendly at 32-64 px patches.

    ``(N, C, S, S) -> (N, F)``.
    """

    def __init__(self, in_channels: int, width: int = 32, feature_dim: int = 128):
        super().__init__()
        chans = [in_channels, width, width * 2, width * 4, feature_dim]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)


class ResNet50Backbone(nn.Module):
    """torchvision ResNet-50 (random init: no ImageNet weights can be fetched here), stem widened to
    ``C`` channels, classifier removed.  ``(N, C, S, S) -> (N, 2048)``."""

    def __init__(self, in_channels: int):
        super().__init__()
        net = torchvision.models.resnet50(weights=None)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        net.fc = nn.Identity()
        self.net = net
        self.out_dim = 2048

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_backbone(name: str, in_channels: int) -> nn.Module:
    if name == "small":
        return SmallBackbone(in_channels)
    if name == "resnet50":
        return ResNet50Backbone(in_channels)
    raise ValueError(f"unknown refiner backbone {name!r} (expected 'small' or 'resnet50')")


class RefinerNet(nn.Module):
    """Patches (+ initial orientations) -> residual limb orientations.

    Args:
        backbone: ``"small"`` or ``"resnet50"``.
        in_channels: channels per patch (3 or 6).
        num_patches: 16 for limb patches, 1 for the uncropped whole-image baseline.
        use_initial: feed ``U0`` to the head.
        hidden: head width.
    """

    def __init__(self, backbone: str = "small", in_channels: int = 6, num_patches: int = NUM_LIMBS,
                 use_initial: bool = True, hidden: int = 512):
        super().__init__()
        self.backbone = make_backbone(backbone, in_channels)
        self.num_patches = num_patches
        self.use_initial = use_initial
        head_in = num_patches * self.backbone.out_dim + (NUM_LIMBS * 3 if use_initial else 0)
        self.head = nn.Sequential(nn.Linear(head_in, hidden), nn.ReLU(inplace=True),
                                  nn.Dropout(0.1), nn.Linear(hidden, NUM_LIMBS * 3))
        # Start from "no correction": the refiner must earn every millimetre it moves a joint.
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, patches: torch.Tensor, initial_orientations: torch.Tensor) -> torch.Tensor:
        """Predict ``dU``.

        Args:
            patches: ``(B, L, C, S, S)`` float patches, ``L == num_patches``.
            initial_orientations: ``(B, 16, 3)`` ``U0``.

        Returns:
            ``(B, 16, 3)`` residual orientations.
        """
        b, n_patches = patches.shape[:2]
        if n_patches != self.num_patches:
            raise ValueError(f"refiner expects {self.num_patches} patches, got {n_patches}")
        features = self.backbone(patches.flatten(0, 1)).reshape(b, -1)
        if self.use_initial:
            features = torch.cat([features, initial_orientations.reshape(b, -1)], dim=1)
        return self.head(features).reshape(b, NUM_LIMBS, 3)
