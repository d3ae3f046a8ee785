"""Refiner configuration (what a checkpoint was trained with) and the network it implies."""
from __future__ import annotations

from dataclasses import dataclass

from streampose.refine import limbs
from streampose.refine.inputs import channels_for
from streampose.refine.model import RefinerNet


@dataclass
class FitConfig:
    modality: str = "rgb+seg"
    backbone: str = "small"
    patch_size: int = 32          # limb patch side; "whole" uses whole_size
    whole_size: int = 128         # same pixel budget as 16 patches of 32 x 32
    use_initial: bool = True
    epochs: int = 8
    batch_size: int = 32
    lr: float = 1e-3
    mask_dropout: float = 0.5     # train with and without a person mask
    plateau_patience: int = 1     # epochs without 1 % training-loss improvement before lr / 10
    seed: int = 0
    render_size: int = 128        # person-square side of the training renders (pixels)

    @property
    def input_size(self) -> int:
        if self.modality == "none":
            return 8
        return self.whole_size if self.modality == "whole" else self.patch_size


def make_net(config: FitConfig) -> RefinerNet:
    return RefinerNet(config.backbone, channels_for(config.modality),
                      num_patches=1 if config.modality in ("whole", "none") else limbs.NUM_LIMBS,
                      use_initial=config.use_initial)
