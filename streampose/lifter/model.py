"""VideoPose3D-style dilated temporal convolution lifter (2D keypoint sequences -> 3D poses).

One network family (Pavllo et al., CVPR 2019, section 3):

* an input layer: temporal conv of width ``W_0`` from ``J_in * 2`` to ``C`` channels,
* ``B`` residual blocks: a conv of width ``W_b`` and dilation ``W_0 * ... * W_{b-1}``, then a 1x1 conv,
  each followed by BatchNorm, ReLU and dropout; the residual is sliced to the valid outputs,
* a 1x1 output layer to ``J_out * 3`` coordinates.

All convolutions are *valid* (unpadded): ``T`` input frames give ``T - receptive_field + 1`` outputs.
Whole sequences are padded by replicating the boundary frames (:func:`replicate_pad`), which the paper
found better than zero padding.  The *causal* variant uses the same weights; only the alignment of the
residual slices moves so every output sees past frames only, and all the padding goes to the left.

The same parameters run in two ways:

* **dilated** (:meth:`TemporalModel.forward`): every output frame of a sequence, reusing the
  intermediate states shared by neighbouring outputs -- inference;
* **strided** (:meth:`TemporalModel.forward_single`): one output per clip of exactly
  ``receptive_field`` frames, with strides instead of dilations so no unused state is computed --
  training (paper section 5.3, appendix A.6).

Parameter names (``expand_conv``, ``expand_bn``, ``layers_conv.N``, ``layers_bn.N``, ``shrink``) are
those of the reference implementation, so its checkpoints load directly (see ``checkpoint.py``).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# Filter widths per receptive field, as in the paper.  Receptive field 1 is the single-frame baseline
# ("the width of all convolution kernels set to W = 1") with the depth of the 243-frame model.
FILTER_WIDTHS: dict[int, tuple[int, ...]] = {
    1: (1, 1, 1, 1, 1),
    27: (3, 3, 3),
    81: (3, 3, 3, 3),
    243: (3, 3, 3, 3, 3),
}


class TemporalModel(nn.Module):
    """Dilated temporal convolution network lifting ``J_in`` 2D joints to ``J_out`` 3D joints.

    Args:
        filter_widths: kernel width of the input layer and of each residual block (odd numbers).
        num_joints_in: joints in the 2D input (17).
        num_joints_out: joints in the 3D output (17 for poses, 1 for the root trajectory).
        in_features: coordinates per input joint (2: x, y).
        channels: hidden width ``C`` (1024 in the paper).
        dropout: dropout probability after every hidden layer (0.25 in the paper).
        causal: use past frames only (the output for frame ``t`` sees frames ``t - R + 1 .. t``).
    """

    def __init__(
        self,
        filter_widths: Sequence[int],
        num_joints_in: int = 17,
        num_joints_out: int = 17,
        in_features: int = 2,
        channels: int = 1024,
        dropout: float = 0.25,
        causal: bool = False,
    ):
        super().__init__()
        widths = tuple(int(w) for w in filter_widths)
        if not widths or any(w < 1 or w % 2 == 0 for w in widths):
            raise ValueError(f"filter widths must be odd and positive, got {widths}")
        self.filter_widths = widths
        self.num_joints_in = num_joints_in
        self.num_joints_out = num_joints_out
        self.in_features = in_features
        self.channels = channels
        self.dropout_p = dropout
        self.causal = causal

        self.expand_conv = nn.Conv1d(num_joints_in * in_features, channels, widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
        self.layers_conv = nn.ModuleList()
        self.layers_bn = nn.ModuleList()
        # Per block: dilation, half-width of its window in input frames (pad), and how far the
        # causal variant shifts the residual slice to the right (so outputs only see the past).
        self.dilations: list[int] = []
        self.block_pads: list[int] = []
        self.block_shifts: list[int] = []
        dilation = widths[0]
        for width in widths[1:]:
            self.layers_conv.append(nn.Conv1d(channels, channels, width, dilation=dilation, bias=False))
            self.layers_bn.append(nn.BatchNorm1d(channels, momentum=0.1))
            self.layers_conv.append(nn.Conv1d(channels, channels, 1, bias=False))
            self.layers_bn.append(nn.BatchNorm1d(channels, momentum=0.1))
            self.dilations.append(dilation)
            self.block_pads.append((width - 1) * dilation // 2)
            self.block_shifts.append((width // 2) * dilation if causal else 0)
            dilation *= width
        self.shrink = nn.Conv1d(channels, num_joints_out * 3, 1)
        self.drop = nn.Dropout(dropout)

    # -- geometry ---------------------------------------------------------------------------------
    @property
    def receptive_field(self) -> int:
        """Input frames that one output frame depends on: ``prod(filter_widths)``."""
        return 1 + 2 * self.pad

    @property
    def pad(self) -> int:
        """Half the receptive field: frames each side of the output frame (symmetric model)."""
        return self.filter_widths[0] // 2 + sum(self.block_pads)

    @property
    def causal_shift(self) -> int:
        """Frames the causal window is moved into the past: ``pad`` if causal, else 0."""
        return (self.filter_widths[0] // 2 if self.causal else 0) + sum(self.block_shifts)

    def config(self) -> dict:
        """Constructor arguments, enough to rebuild this model (stored in weight files)."""
        return {
            "filter_widths": list(self.filter_widths), "num_joints_in": self.num_joints_in,
            "num_joints_out": self.num_joints_out, "in_features": self.in_features,
            "channels": self.channels, "dropout": self.dropout_p, "causal": self.causal,
        }

    def set_bn_momentum(self, momentum: float) -> None:
        """Set the running-statistics momentum of every BatchNorm layer (decayed during training)."""
        for bn in [self.expand_bn, *self.layers_bn]:
            bn.momentum = momentum

    # -- forward passes ---------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor, min_frames: int) -> None:
        expected = (self.num_joints_in, self.in_features)
        if x.ndim != 4 or tuple(x.shape[2:]) != expected:
            raise ValueError(f"expected input (N, T, {expected[0]}, {expected[1]}), got {tuple(x.shape)}")
        if x.shape[1] < min_frames:
            raise ValueError(f"need at least {min_frames} frames, got {x.shape[1]}")

    def _to_channels(self, x: torch.Tensor) -> torch.Tensor:
        # (N, T, J, F) -> (N, J*F, T): joints and coordinates become conv channels.
        return x.flatten(2).transpose(1, 2)

    def _from_channels(self, y: torch.Tensor) -> torch.Tensor:
        # (N, J*3, T) -> (N, T, J, 3)
        return y.transpose(1, 2).reshape(y.shape[0], y.shape[2], self.num_joints_out, 3)

    def _hidden(self, x: torch.Tensor, bn: nn.BatchNorm1d) -> torch.Tensor:
        return self.drop(F.relu(bn(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dilated (sequence) pass with valid convolutions.

        Args:
            x: ``(N, T, J_in, 2)`` normalised 2D keypoints, ``T >= receptive_field``.

        Returns:
            ``(N, T - receptive_field + 1, J_out, 3)``; output ``k`` is the pose of input frame
            ``k + pad`` (symmetric) or ``k + receptive_field - 1`` (causal).
        """
        self._check_input(x, self.receptive_field)
        h = self._hidden(self.expand_conv(self._to_channels(x)), self.expand_bn)
        for b, (pad, shift) in enumerate(zip(self.block_pads, self.block_shifts)):
            residual = h[:, :, pad + shift: h.shape[2] - pad + shift]
            h = self._hidden(self.layers_conv[2 * b](h), self.layers_bn[2 * b])
            h = residual + self._hidden(self.layers_conv[2 * b + 1](h), self.layers_bn[2 * b + 1])
        return self._from_channels(self.shrink(h))

    def forward_single(self, x: torch.Tensor) -> torch.Tensor:
        """Strided (training) pass: one output per clip, same weights as :meth:`forward`.

        Each conv of width ``W`` runs with stride ``W`` instead of dilation, so it only computes the
        states the single output needs (the receptive field is a tree over the input frames).

        Args:
            x: ``(N, receptive_field, J_in, 2)`` clips.

        Returns:
            ``(N, 1, J_out, 3)``: the pose of the clip's centre frame (symmetric) or last frame (causal).
        """
        self._check_input(x, self.receptive_field)
        if x.shape[1] != self.receptive_field:
            raise ValueError(f"strided pass takes clips of exactly {self.receptive_field} frames, "
                             f"got {x.shape[1]}")
        width0 = self.filter_widths[0]
        h = F.conv1d(self._to_channels(x), self.expand_conv.weight, stride=width0)
        h = self._hidden(h, self.expand_bn)
        for b, width in enumerate(self.filter_widths[1:]):
            # Residual = the state at the window's centre (symmetric) or its newest step (causal).
            start = width - 1 if self.causal else width // 2
            residual = h[:, :, start::width]
            h = F.conv1d(h, self.layers_conv[2 * b].weight, stride=width)
            h = self._hidden(h, self.layers_bn[2 * b])
            h = residual + self._hidden(self.layers_conv[2 * b + 1](h), self.layers_bn[2 * b + 1])
        return self._from_channels(self.shrink(h))

    def forward_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Offline inference on whole sequences: replicate-pad, then the dilated pass.

        Args:
            x: ``(N, T, J_in, 2)``, any ``T >= 1``.

        Returns:
            ``(N, T, J_out, 3)``, one output per input frame.
        """
        return self.forward(replicate_pad(x, self.pad, self.causal_shift))


def replicate_pad(x: torch.Tensor, pad: int, causal_shift: int = 0) -> torch.Tensor:
    """Pad a sequence by repeating its first and last frames (not zeros).

    Args:
        x: ``(N, T, ...)``.
        pad: half the receptive field.
        causal_shift: frames moved from the right padding to the left (``pad`` for causal models).

    Returns:
        ``(N, pad + causal_shift + T + pad - causal_shift, ...)``.
    """
    left, right = pad + causal_shift, pad - causal_shift
    parts = [x[:, :1].expand(-1, left, *x.shape[2:]), x, x[:, -1:].expand(-1, right, *x.shape[2:])]
    return torch.cat(parts, dim=1)


def filter_widths_for(receptive_field: int) -> tuple[int, ...]:
    """The paper's filter widths for receptive field 1, 27, 81 or 243."""
    try:
        return FILTER_WIDTHS[receptive_field]
    except KeyError:
        raise ValueError(f"receptive field must be one of {sorted(FILTER_WIDTHS)}, "
                         f"got {receptive_field}") from None


def temporal_model(
    receptive_field: int = 243,
    causal: bool = False,
    channels: int = 1024,
    dropout: float = 0.25,
    num_joints_in: int = 17,
    num_joints_out: int = 17,
) -> TemporalModel:
    """Pose lifter: ``(N, T, 17, 2)`` normalised 2D -> ``(N, T', 17, 3)`` root-relative metres."""
    return TemporalModel(filter_widths_for(receptive_field), num_joints_in=num_joints_in,
                         num_joints_out=num_joints_out, channels=channels, dropout=dropout,
                         causal=causal)


def trajectory_model(
    receptive_field: int = 243,
    causal: bool = False,
    channels: int = 1024,
    dropout: float = 0.25,
    num_joints_in: int = 17,
) -> TemporalModel:
    """Root trajectory regressor (paper section 4): same shape, one output joint (camera-space root)."""
    return temporal_model(receptive_field, causal, channels, dropout, num_joints_in, num_joints_out=1)
