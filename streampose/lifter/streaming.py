"""Frame-by-frame inference for :class:`~streampose.lifter.model.TemporalModel` in O(1) per frame.

A dilated temporal conv net computes, for each new input frame, exactly one new column of every layer.
:class:`StreamingTemporalModel` keeps, per layer, just the past columns that layer's conv and residual
still need, so a push costs one column per layer instead of recomputing the whole receptive field.

Outputs are identical (to fp32 rounding) to the offline whole-sequence pass with replicate padding
(:meth:`TemporalModel.forward_sequence`):

* **start of stream**: padding with copies of frame 0 makes every layer's input constant before the
  stream starts, so the ring buffers are initialised with that steady state (one column per layer,
  not a receptive field of work);
* **end of stream**: :meth:`StreamingTemporalModel.flush` pushes copies of the last frame, which is the
  offline right-hand replicate padding, and returns the frames still pending.

The symmetric model answers frame ``t - lag`` (``lag`` = half the receptive field) when frame ``t``
arrives; the causal model answers frame ``t`` at once (``lag = 0``).

Cost.  The per-frame work runs in numpy on the CPU with BatchNorm folded into the convolutions, the
bias appended as an extra weight column (each layer input carries a constant 1 row) and every buffer
preallocated: torch's per-op dispatch would dominate these small products.  A frame is a handful of
matrix-vector products, which read each weight once per frame -- bound by cache bandwidth, not FLOPs,
unlike the offline pass, which reuses each weight over many frames (matrix-matrix).  Two things cut
that traffic:

* the older taps of each dilated conv multiply columns that arrived ``d`` or more frames ago, so they
  are applied to ``d`` columns at once every ``d`` frames (:class:`_Block`); per frame only the newest
  tap and the 1x1 conv are read -- about half the weights.  The price: every ``d``-th frame of a block
  costs more than the others (see ``benchmarks/lifter.py``, ``p99``);
* several streams of the same model (people, or a test-time-flipped copy) run together as a
  *batch* (:meth:`StreamingTemporalModel.push_batch`): a ``(C_out, K) @ (K, B)`` product costs
  little more than ``B = 1``.
"""
from __future__ import annotations

import numpy as np
import torch

from streampose.lifter.model import TemporalModel


def _fold(conv: torch.nn.Conv1d, bn: torch.nn.BatchNorm1d | None) -> np.ndarray:
    """``(C_out, W * (C_in + 1))``: the conv with its BatchNorm folded in.

    Laid out for :class:`_Ring` windows; :class:`_Block` splits it by tap.

    Every ring column carries a trailing constant 1 (see :class:`_Ring`); the bias sits at the ones
    slot of the newest tap and the other taps' ones slots get weight 0.
    """
    # Conv weight (C_out, C_in, W) -> (C_out, W, C_in): taps ordered oldest first, like the window.
    # Folded in float64, stored float32.
    w = conv.weight.detach().double().permute(0, 2, 1)
    c_out, width, c_in = w.shape
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(c_out, dtype=torch.float64)
    if bn is not None:
        scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
        b = (b - bn.running_mean.double()) * scale + bn.bias.detach().double()
        w = w * scale[:, None, None]
    folded = torch.zeros(c_out, width, c_in + 1, dtype=torch.float64)
    folded[:, :, :c_in] = w
    folded[:, -1, c_in] = b
    return np.ascontiguousarray(folded.reshape(c_out, -1).float().numpy())


# ReLU as np.maximum(x, _ZERO): a float32 0-d array skips the per-call Python-float conversion
# (measured ~1 us per layer per frame).
_ZERO = np.zeros((), dtype=np.float32)


def _with_ones_row(rows: int, batch: int) -> np.ndarray:
    """``(rows + 1, B)`` float32 buffer whose last row is 1 (it multiplies the bias)."""
    buffer = np.zeros((rows + 1, batch), dtype=np.float32)
    buffer[-1] = 1.0
    return buffer


class _Ring:
    """The last ``(W - 1) * dilation + 1`` columns of one layer input, laid out so that the conv
    window is a contiguous view (no per-frame gather).

    A column is ``(C + 1, B)``: ``C`` channels of ``B`` streams and a constant 1 row (which multiplies
    the bias).  Columns are split by phase ``t mod dilation``: the dilated taps of frame ``t`` are the
    last ``W`` columns of phase ``t mod dilation``.  Each phase is a ring of ``W`` slots stored twice
    (``2W`` slots, every column written at ``j`` and ``j + W``), so the ``W`` newest columns are always
    the contiguous slots ``j + 1 .. j + W``.
    """

    def __init__(self, width: int, dilation: int, channels: int, residual_offset: int, batch: int):
        if residual_offset % dilation:
            raise ValueError("the residual must be one of the conv taps")
        self.width, self.dilation = width, dilation
        self.data = np.zeros((dilation, 2 * width, channels + 1, batch), dtype=np.float32)
        self.data[:, :, -1] = 1.0
        # residual tap, counted back from the newest one
        self._residual_tap = width - 1 - residual_offset // dilation
        self._time = -1  # frame of the newest column

    def fill(self, column: np.ndarray) -> None:
        """Steady state: every slot holds ``column`` ``(C + 1, B)``; the next push is frame 1."""
        self.data[:] = column
        self._time = 0
        self._phase, self._slot = 0, 0

    def push(self, column: np.ndarray) -> None:
        """Append ``column`` ``(C + 1, B)`` (its last row must be the ones row)."""
        self._time += 1
        self._phase = self._time % self.dilation
        self._slot = (self._time // self.dilation) % self.width
        phase = self.data[self._phase]
        phase[self._slot] = column
        phase[self._slot + self.width] = column

    def window(self) -> np.ndarray:
        """``(W * (C + 1), B)`` the conv taps, oldest first, each with its ones row (a view)."""
        start = self._slot + 1
        taps = self.data[self._phase, start: start + self.width]
        return taps.reshape(-1, taps.shape[-1])

    def residual_column(self) -> np.ndarray:
        """``(C, B)`` the column the residual connection adds (a view)."""
        return self.data[self._phase, self._slot + 1 + self._residual_tap, :-1]


class _Block:
    """One residual block, streamed with its older dilated taps deferred and batched.

    Frame ``t`` of a block with width ``W`` and dilation ``d`` needs ``sum_k W_k h[t - (W-1-k) d]``.
    Only the newest tap (``k = W-1``) multiplies a column that just arrived; the older taps multiply
    columns known ``d`` or more frames ago.  So every ``d`` frames the last ``d`` columns go through
    all older taps at once -- one matrix-matrix product that reads those weights once for ``d``
    frames -- and the results wait in per-frame accumulators.  Per frame, only the newest tap and the
    1x1 conv are read, which halves the weight traffic that bounds a single stream.

    Columns are ``(C, B)`` (``B`` streams); ``hidden`` inputs carry a trailing ones row for the bias.
    """

    def __init__(self, dilated: np.ndarray, pointwise: np.ndarray, width: int, dilation: int,
                 residual_offset: int, channels: int, batch: int):
        c = channels
        taps = dilated.reshape(c, width, c + 1)
        self.newest = np.ascontiguousarray(taps[:, -1, :])  # (C, C + 1), bias in the last column
        # Older taps, oldest first, transposed and side by side: (C, (W - 1) * C), no bias.  Rows are
        # the batch's columns, so the deferred product is history (d * B, C) @ older_t.
        self.older_t = np.ascontiguousarray(taps[:, :-1, :c].transpose(2, 1, 0).reshape(c, -1))
        self.pointwise = pointwise
        self.width, self.dilation, self.channels = width, dilation, c
        self.batch = batch
        self.residual_offset = residual_offset
        # history[j] = column (as a row, (B, C)) of time r with r % d == j, for the current batch.
        self.history = np.zeros((dilation, batch, c), dtype=np.float32)
        self.products = np.zeros((dilation, batch, width - 1, c), dtype=np.float32)
        # The deferred products go through torch (MKL): for these skinny matrix-matrix products it
        # measured ~2x faster than numpy's OpenBLAS.  The tensors share memory with the arrays.
        self._history_t = torch.from_numpy(self.history.reshape(dilation * batch, c))
        self._older_t = torch.from_numpy(self.older_t)
        self._products_t = torch.from_numpy(self.products.reshape(dilation * batch, -1))
        # accumulated older-tap products: acc[(r // d) % W, r % d] is (B, C) for pending frame r.
        self.acc = np.zeros((width, dilation, batch, c), dtype=np.float32)
        self.residual_ring = np.zeros((residual_offset + 1, c, batch), dtype=np.float32)

    def _older_taps(self, column: np.ndarray) -> np.ndarray:
        """``(W - 1, B, C)``: every older tap applied to ``column`` ``(C, B)``."""
        return (column.T @ self.older_t).reshape(self.batch, self.width - 1, self.channels).transpose(1, 0, 2)

    def fill(self, column: np.ndarray) -> None:
        """Steady state before the stream: every past column is ``column`` ``(C, B)``."""
        self.residual_ring[:] = column
        self.acc[:] = 0.0
        if self.width > 1:
            partial = self._older_taps(column)
            # Frames r in block b = r // d (b < W - 1) see pre-stream columns through taps k < W-1-b.
            for b in range(self.width - 1):
                self.acc[b] = partial[: self.width - 1 - b].sum(axis=0)
        self.time = -1  # r of the newest column; the first real push is r = 0

    def step(self, hidden: np.ndarray, inner: np.ndarray, initial: bool) -> None:
        """In place: ``hidden`` ``(C + 1, B)`` = block input -> block output; ``inner`` is scratch."""
        h, u = hidden[:-1], inner[:-1]
        np.dot(self.newest, hidden, out=u)
        if initial:
            # Frame 0 = the steady state: all older taps see the same column.
            if self.width > 1:
                u += self._older_taps(h).sum(axis=0).T
            residual = h.copy()
        else:
            self.time = r = self.time + 1
            d, width = self.dilation, self.width
            j, block = r % d, (r // d) % width
            self.history[j] = h.T
            slot = r % len(self.residual_ring)
            self.residual_ring[slot] = h
            pending = self.acc[block, j]
            u += pending.T
            pending[...] = 0.0
            residual = self.residual_ring[(r - self.residual_offset) % len(self.residual_ring)]
            if j == d - 1 and width > 1:
                # The batch of d columns is complete: push it through all older taps at once.
                torch.mm(self._history_t, self._older_t, out=self._products_t)
                for k in range(width - 1):
                    self.acc[(r // d + width - 1 - k) % width] += self.products[:, :, k]
        np.maximum(u, _ZERO, out=u)
        np.dot(self.pointwise, inner, out=h)
        np.maximum(h, _ZERO, out=h)
        h += residual


class StreamingTemporalModel:
    """Stateful per-frame runner of a (trained, eval-mode) :class:`TemporalModel`.

    Args:
        model: the network; its weights are copied (BatchNorm folded) at construction.
        batch: number of independent streams advanced together by :meth:`push_batch` (e.g. several
            people, or a frame and its mirror image); :meth:`push` / :meth:`flush` need ``batch=1``.

    Example:
        >>> runner = StreamingTemporalModel(model)
        >>> for x in frames:                    # x: (J_in, 2) normalised keypoints
        ...     for index, pose in runner.push(x):  # pose: (J_out, 3)
        ...         ...
        >>> for index, pose in runner.flush():  # the last ``lag`` frames (symmetric model)
        ...     ...
    """

    def __init__(self, model: TemporalModel, batch: int = 1):
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self.batch = batch
        self.receptive_field = model.receptive_field
        self.lag = model.pad - model.causal_shift
        self.num_joints_in = model.num_joints_in
        self.num_joints_out = model.num_joints_out
        self.in_features = model.in_features
        self._expand = _fold(model.expand_conv, model.expand_bn)
        self._blocks = [
            _Block(_fold(model.layers_conv[2 * b], model.layers_bn[2 * b]),
                   _fold(model.layers_conv[2 * b + 1], model.layers_bn[2 * b + 1]),
                   width, dilation, pad - shift, model.channels, batch)
            for b, (width, dilation, pad, shift) in enumerate(zip(
                model.filter_widths[1:], model.dilations, model.block_pads, model.block_shifts))
        ]
        self._shrink = _fold(model.shrink, None)
        width0 = model.filter_widths[0]
        self._input_ring = _Ring(width0, 1, model.num_joints_in * model.in_features, 0, batch)
        # Per-frame scratch, each with a ones row: the input column, the hidden state h and the
        # dilated conv's output u.
        self._column = _with_ones_row(model.num_joints_in * model.in_features, batch)
        self._hidden = _with_ones_row(model.channels, batch)
        self._inner = _with_ones_row(model.channels, batch)
        self._output = np.zeros((model.num_joints_out * 3, batch), dtype=np.float32)
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
        """Feed one frame (single stream, ``batch=1``).

        Args:
            x: ``(J_in, 2)`` normalised 2D keypoints of the next frame.

        Returns:
            ``[(frame_index, (J_out, 3))]``: the frame that became complete (empty while the symmetric
            model is still filling its look-ahead).
        """
        expected = (self.num_joints_in, self.in_features)
        x = np.asarray(x, dtype=np.float32)
        if x.shape != expected:
            raise ValueError(f"expected a {expected} frame, got {x.shape}")
        self._require_single()
        return [(index, pose[0]) for index, pose in self.push_batch(x[None])]

    def push_batch(self, x: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Feed one frame of each of the ``batch`` streams.

        Args:
            x: ``(B, J_in, 2)`` normalised 2D keypoints of the next frame, one row per stream.

        Returns:
            ``[(frame_index, (B, J_out, 3))]``: the frame that became complete, if any.
        """
        expected = (self.batch, self.num_joints_in, self.in_features)
        x = np.asarray(x, dtype=np.float32)
        if x.shape != expected:
            raise ValueError(f"expected a {expected} batch of frames, got {x.shape}")
        column = self._column
        column[:-1] = x.reshape(self.batch, -1).T  # (J_in * 2 + 1, B)
        if self._pushed == 0:
            self._initialise(column)
        else:
            self._input_ring.push(column)
            self._step(initial=False)
        self._last = column.copy()
        self._pushed += 1
        return self._emit(self._pushed - 1)

    def flush(self) -> list[tuple[int, np.ndarray]]:
        """End of stream: replicate the last frame to finish the pending frames, then reset.

        Returns:
            ``[(frame_index, (J_out, 3))]`` for the last ``lag`` frames, in order.
        """
        self._require_single()
        return [(index, pose[0]) for index, pose in self.flush_batch()]

    def flush_batch(self) -> list[tuple[int, np.ndarray]]:
        """:meth:`flush` for all ``batch`` streams: ``[(frame_index, (B, J_out, 3))]``."""
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
    def _require_single(self) -> None:
        if self.batch != 1:
            raise ValueError(f"this runner advances {self.batch} streams: use push_batch/flush_batch")

    def _initialise(self, column: np.ndarray) -> None:
        # Replicate padding of frame 0 = a constant input for all time before the stream: every
        # layer's input is then constant too, so each ring is filled with its steady-state column.
        self._input_ring.fill(column)
        self._step(initial=True)

    def _step(self, initial: bool) -> None:
        # Hot loop, all in place; the matrix products dominate (weights read from cache).
        dot, relu, zero = np.dot, np.maximum, _ZERO
        hidden, inner = self._hidden, self._inner
        h, u = hidden[:-1], inner[:-1]  # contiguous views without the ones row
        dot(self._expand, self._input_ring.window(), out=h)
        relu(h, zero, out=h)
        for block in self._blocks:
            if initial:
                block.fill(h)
            block.step(hidden, inner, initial)
        dot(self._shrink, hidden, out=self._output)

    def _emit(self, newest: int) -> list[tuple[int, np.ndarray]]:
        frame = newest - self.lag
        if frame < 0:
            return []
        return [(frame, self._output.T.reshape(self.batch, self.num_joints_out, 3).copy())]
