"""Frame-by-frame inference for :class:`~streampose.lifter.model.TemporalModel` in O(1) per frame.

A dilated temporal conv net computes, for each new input frame, exactly one new column of every layer.
:class:`StreamingTemporalModel` keeps, per layer, a ring buffer of the last ``(W - 1) * dilation + 1``
columns of that layer's input -- all its dilated conv and its residual slice ever look at -- so a push
costs one column per layer instead of recomputing the whole receptive field.

Outputs are identical (to fp32 rounding) to the offline whole-sequence pass with replicate padding
(:meth:`TemporalModel.forward_sequence`):

* **start of stream**: padding with copies of frame 0 makes every layer's input constant before the
  stream starts, so the ring buffers are initialised with that steady state (one column per layer,
  not a receptive field of work);
* **end of stream**: :meth:`StreamingTemporalModel.flush` pushes copies of the last frame, which is the
  offline right-hand replicate padding, and returns the frames still pending.

The symmetric model answers frame ``t - lag`` (``lag`` = half the receptive field) when frame ``t``
arrives; the causal model answers frame ``t`` at once (``lag = 0``).

The per-frame work runs in numpy on the CPU with BatchNorm folded into the convolutions: one frame is
a handful of small matrix-vector products, where torch's per-op dispatch overhead would dominate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from streampose.lifter.model import TemporalModel


@dataclass
class _Affine:
    """A conv with its BatchNorm folded in, as a ``(C_out, W * C_in)`` matrix and a bias."""

    weight: np.ndarray
    bias: np.ndarray


def _fold(conv: torch.nn.Conv1d, bn: torch.nn.BatchNorm1d | None) -> _Affine:
    # Conv weight (C_out, C_in, W) -> (C_out, W, C_in) -> (C_out, W*C_in): taps ordered oldest first,
    # matching the (W, C_in) rows gathered from the ring buffer.
    w = conv.weight.detach().double()
    w = w.permute(0, 2, 1).reshape(w.shape[0], -1)
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    if bn is not None:
        scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
        b = (b - bn.running_mean.double()) * scale + bn.bias.detach().double()
        w = w * scale[:, None]
    return _Affine(np.ascontiguousarray(w.float().numpy()), b.float().numpy())


class _Ring:
    """Ring buffer of the last ``length`` columns of one layer input, with precomputed tap indices."""

    def __init__(self, length: int, channels: int, width: int, dilation: int, residual_offset: int):
        self.length = length
        self.data = np.zeros((length, channels), dtype=np.float32)
        self.head = length - 1  # slot of the newest column
        positions = np.arange(length)[:, None]
        # taps[h] = slots of the conv taps, oldest first, when the newest column is in slot h.
        self.taps = (positions - (width - 1 - np.arange(width))[None, :] * dilation) % length
        self.residual = (np.arange(length) - residual_offset) % length

    def fill(self, column: np.ndarray) -> None:
        self.data[:] = column

    def push(self, column: np.ndarray) -> None:
        self.head = (self.head + 1) % self.length
        self.data[self.head] = column

    def window(self) -> np.ndarray:
        """``(W * C,)`` the conv taps' columns, oldest first, flattened."""
        return self.data[self.taps[self.head]].reshape(-1)

    def residual_column(self) -> np.ndarray:
        return self.data[self.residual[self.head]]


class StreamingTemporalModel:
    """Stateful per-frame runner of a (trained, eval-mode) :class:`TemporalModel`.

    Example:
        >>> runner = StreamingTemporalModel(model)
        >>> for x in frames:                    # x: (J_in, 2) normalised keypoints
        ...     for index, pose in runner.push(x):  # pose: (J_out, 3)
        ...         ...
        >>> for index, pose in runner.flush():  # the last ``lag`` frames (symmetric model)
        ...     ...
    """

    def __init__(self, model: TemporalModel):
        self.receptive_field = model.receptive_field
        self.lag = model.pad - model.causal_shift
        self.num_joints_in = model.num_joints_in
        self.num_joints_out = model.num_joints_out
        self.in_features = model.in_features
        self._expand = _fold(model.expand_conv, model.expand_bn)
        self._blocks = [
            (_fold(model.layers_conv[2 * b], model.layers_bn[2 * b]),
             _fold(model.layers_conv[2 * b + 1], model.layers_bn[2 * b + 1]))
            for b in range(len(model.dilations))
        ]
        self._shrink = _fold(model.shrink, None)
        width0 = model.filter_widths[0]
        self._input_ring = _Ring(width0, model.num_joints_in * model.in_features, width0, 1, 0)
        self._block_rings = [
            _Ring((width - 1) * dilation + 1, model.channels, width, dilation, pad - shift)
            for width, dilation, pad, shift in zip(model.filter_widths[1:], model.dilations,
                                                   model.block_pads, model.block_shifts)
        ]
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next push is frame 0 of a new sequence."""
        self._pushed = 0  # input frames received
        self._last: np.ndarray | None = None

    @property
    def pending(self) -> int:
        """Frames pushed whose output has not been returned yet."""
        return min(self._pushed, self.lag)

    def push(self, x: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Feed one frame.

        Args:
            x: ``(J_in, 2)`` normalised 2D keypoints of the next frame.

        Returns:
            ``[(frame_index, (J_out, 3))]``: the frame that became complete (empty while the symmetric
            model is still filling its look-ahead).
        """
        x = np.asarray(x, dtype=np.float32)
        if x.shape != (self.num_joints_in, self.in_features):
            raise ValueError(f"expected a ({self.num_joints_in}, {self.in_features}) frame, got {x.shape}")
        column = x.reshape(-1)
        if self._pushed == 0:
            self._initialise(column)
        else:
            self._input_ring.push(column)
            self._step(initial=False)
        self._last = column
        self._pushed += 1
        return self._emit(self._pushed - 1)

    def flush(self) -> list[tuple[int, np.ndarray]]:
        """End of stream: replicate the last frame to finish the pending frames, then reset.

        Returns:
            ``[(frame_index, (J_out, 3))]`` for the last ``lag`` frames, in order.
        """
        out: list[tuple[int, np.ndarray]] = []
        total = self._pushed
        if total and self._last is not None:
            for k in range(1, self.lag + 1):
                self._input_ring.push(self._last)
                self._step(initial=False)
                newest = total - 1 + k
                if 0 <= newest - self.lag < total:
                    out.extend(self._emit(newest))
        self.reset()
        return out

    # -- internals --------------------------------------------------------------------------------
    def _initialise(self, column: np.ndarray) -> None:
        # Replicate padding of frame 0 = a constant input for all time before the stream: every
        # layer's input is then constant too, so each ring is filled with its steady-state column.
        self._input_ring.fill(column)
        self._step(initial=True)

    def _step(self, initial: bool) -> None:
        h = np.maximum(self._expand.weight @ self._input_ring.window() + self._expand.bias, 0.0)
        for ring, (dilated, pointwise) in zip(self._block_rings, self._blocks):
            if initial:
                ring.fill(h)
            else:
                ring.push(h)
            u = np.maximum(dilated.weight @ ring.window() + dilated.bias, 0.0)
            h = ring.residual_column() + np.maximum(pointwise.weight @ u + pointwise.bias, 0.0)
        self._output = self._shrink.weight @ h + self._shrink.bias

    def _emit(self, newest: int) -> list[tuple[int, np.ndarray]]:
        frame = newest - self.lag
        if frame < 0:
            return []
        return [(frame, self._output.reshape(self.num_joints_out, 3).astype(np.float32))]
