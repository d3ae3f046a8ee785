"""What a refiner network is: its input modality, backbone and patch geometry, and the net it implies.

Training settings (epochs, learning rate, ...) are not part of it: they live with the trainer
(``streampose_train.refiner.train.FitConfig``, which extends this class).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from streampose.refine import limbs
from streampose.refine.inputs import channels_for
from streampose.refine.model import RefinerNet


@dataclass
class RefinerArch:
    """Architecture and input geometry of a refiner.

    Attributes:
        modality: network input, ``"rgb"``, ``"seg"``, ``"rgb+seg"``, ``"whole"`` or ``"none"``.
        backbone: ``"small"`` or ``"resnet50"``.
        patch_size: limb patch side in pixels (``"whole"`` uses ``whole_size``).
        whole_size: side of the uncropped person square (same pixel budget as 16 patches of 32x32).
        use_initial: the initial limb orientations are an input too.
        render_size: person-square side of the training renders (pixels); frames are resampled so
            the person appears at that size, the resolution the network was trained at.
    """

    modality: str = "rgb+seg"
    backbone: str = "small"
    patch_size: int = 32
    whole_size: int = 128
    use_initial: bool = True
    render_size: int = 128

    @property
    def input_size(self) -> int:
        if self.modality == "none":
            return 8
        return self.whole_size if self.modality == "whole" else self.patch_size

    @classmethod
    def from_dict(cls, values: dict) -> "RefinerArch":
        """The architecture fields of a stored config (a weights file also records training settings)."""
        names = {f.name for f in fields(RefinerArch)}
        return RefinerArch(**{k: v for k, v in values.items() if k in names})


def make_net(arch: RefinerArch) -> RefinerNet:
    return RefinerNet(arch.backbone, channels_for(arch.modality),
                      num_patches=1 if arch.modality in ("whole", "none") else limbs.NUM_LIMBS,
                      use_initial=arch.use_initial)
