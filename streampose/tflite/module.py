"""The runnable form of a :class:`~streampose.tflite.convert.ConvertedGraph`: :class:`TFLiteModule`.

At construction every node spec becomes an instance of its op's class from
:data:`~streampose.tflite.ops.OPS` (a module with its buffers and with padding, layout and
activation already decided), so ``forward`` is a loop of module calls over tensor ids with no
op-name dispatch per frame.  Construction also prunes the nodes no requested output needs and
folds zero ``PAD`` ops into the convolutions that consume them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from streampose.errors import InputError, ModelError
from streampose.tflite.conv import COMPUTE_DTYPES, Conv2d
from streampose.tflite.convert import ConvertedGraph
from streampose.tflite.node import OpNode
from streampose.tflite.ops import OPS, Pad

__all__ = ["TFLiteModule"]


def _fold_pads(nodes: list[dict], keep: set[int]) -> list[dict]:
    """Merge zero ``PAD`` ops (spatial only) into the ``VALID`` convolutions that consume them.

    The pad then happens inside ``F.conv2d(padding=...)`` when symmetric (no extra tensor), or as
    an explicit pad owned by the conv otherwise.  A PAD is folded only when *every* consumer can
    absorb it and its output is not a requested graph output.
    """
    consumers: dict[int, list[dict]] = {}
    for node in nodes:
        for index in node["inputs"]:
            consumers.setdefault(index, []).append(node)
    folded: list[dict] = []
    for node in nodes:
        if node["op"] == Pad.op:
            pad = Pad.zero_spatial_pad(node)
            out = node["outputs"][0]
            users = consumers.get(out, [])
            if pad is not None and out not in keep and users and all(_node_class(u).absorbs_zero_pad(u) for u in users):
                for user in users:
                    user["inputs"] = [node["inputs"][0] if i == out else i for i in user["inputs"]]
                    user["attrs"] = dict(user["attrs"], explicit_pad=list(pad))
                continue
        folded.append(node)
    return folded


def _node_class(spec: dict) -> type[OpNode]:
    try:
        return OPS[spec["op"]]
    except KeyError:
        raise ModelError(f"runtime op {spec['op']} not implemented") from None


class TFLiteModule(nn.Module):
    """A converted TFLite graph as a PyTorch module.

    Only the nodes on a path to ``outputs`` are kept (pruning), and zero ``PAD`` ops are folded into
    the following convolutions when ``fold_pads`` is set.

    Args:
        graph: the converted graph.
        outputs: graph output names (e.g. ``"Identity_3"``) or indices to compute, in the order
            ``forward`` returns them; ``None`` = all outputs.
        fold_pads: fold explicit zero pads into convolutions.

    ``forward(x)`` takes the graph input in our layout (rank-4 inputs as NCHW :math:`(B, C, H, W)`,
    any batch size ``B``) and returns a tuple of outputs (rank-4 outputs NCHW, others in TFLite
    layout with batch ``B``).
    """

    def __init__(self, graph: ConvertedGraph, outputs: Sequence[str | int] | None = None, fold_pads: bool = True):
        super().__init__()
        if outputs is None:
            outputs = list(range(len(graph.output_ids)))
        wanted = []
        for item in outputs:
            if isinstance(item, str):
                if item not in graph.output_names:
                    raise ModelError(f"model has no output {item!r}; outputs are {graph.output_names}")
                item = graph.output_names.index(item)
            wanted.append(graph.output_ids[item])
        if len(graph.input_ids) != 1:
            raise ModelError("only single-input graphs are supported")
        self.input_id = graph.input_ids[0]
        self.input_shape = list(graph.shapes.get(self.input_id, []))
        self.output_ids = wanted
        needed = set(wanted)
        kept = []
        for spec in reversed(graph.nodes):  # walk backwards: keep producers of needed tensors
            if any(o in needed for o in spec["outputs"]):
                kept.append(spec)
                needed.update(spec["inputs"])
        kept.reverse()
        specs = [dict(s, attrs=dict(s["attrs"]), inputs=list(s["inputs"])) for s in kept]
        if fold_pads:
            specs = _fold_pads(specs, set(wanted))
        self.nodes = nn.ModuleList(_node_class(s)(s, graph.params, graph.shapes) for s in specs)
        # Free intermediate tensors after their last use to bound peak memory.
        last_use: dict[int, int] = {}
        for step, node in enumerate(self.nodes):
            for index in node.input_ids:
                last_use[index] = step
        self._release_after = [
            [i for i in node.input_ids if last_use[i] == step and i not in wanted] for step, node in enumerate(self.nodes)
        ]
        self.channels_last = False
        self.compute_dtype = torch.float32

    def set_compute_dtype(self, dtype: torch.dtype) -> TFLiteModule:
        """Run the graph in ``dtype`` (``torch.float32`` or ``torch.bfloat16``).

        Weights are cast once, in place: going back to float32 keeps their bf16 rounding, so load a
        fresh module for exact float32.  ``forward`` casts its input to ``dtype`` and every output
        back to float32, so callers see the same interface.  bfloat16 keeps float32's range with an 8-bit
        mantissa: on CPUs with native bf16 units the whole BlazePose 2D stage ran 1.21-1.31x faster
        (``benchmarks/pose2d_precision.py`` measures speed and how far the keypoints move).
        """
        if dtype not in COMPUTE_DTYPES:
            raise ValueError(f"compute dtype must be float32 or bfloat16, got {dtype}")
        for node in self.nodes:
            for name, buffer in node.named_buffers(recurse=False):
                if buffer.is_floating_point():
                    setattr(node, name, buffer.to(dtype))
        self.compute_dtype = dtype
        return self

    def use_channels_last(self, enabled: bool = True) -> TFLiteModule:
        """Store convolution kernels and the input in ``torch.channels_last`` memory format."""
        fmt = torch.channels_last if enabled else torch.contiguous_format
        for node in self.nodes:
            if isinstance(node, Conv2d):
                node.weight = node.weight.contiguous(memory_format=fmt)
        self.channels_last = enabled
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        expected = self.input_shape
        if len(expected) == 4 and (x.dim() != 4 or list(x.shape[1:]) != [expected[3], expected[1], expected[2]]):
            raise InputError(
                f"model input must have shape (B, {expected[3]}, {expected[1]}, {expected[2]}), got {tuple(x.shape)}"
            )
        if self.compute_dtype != torch.float32 and x.is_floating_point():
            x = x.to(self.compute_dtype)  # float32 mode leaves dtypes alone (float64 runs check rounding)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        values = {self.input_id: x}
        for node, release in zip(self.nodes, self._release_after):
            values[node.output_ids[0]] = node(*[values[i] for i in node.input_ids])
            for index in release:
                values.pop(index, None)
        outputs = tuple(values[i] for i in self.output_ids)
        if self.compute_dtype != torch.float32:
            outputs = tuple(o.float() if o.is_floating_point() else o for o in outputs)
        return outputs
