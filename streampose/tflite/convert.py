"""Conversion: a parsed :class:`~streampose.tflite.graph.TFLiteGraph` -> a :class:`ConvertedGraph`.

A ``ConvertedGraph`` holds no flatbuffer and no code: node specs of plain python values plus float32
torch tensors (weights already densified, dequantized and in torch layout), so it round-trips through
``to_dict`` / ``from_dict`` and can be cached with ``torch.save`` and reloaded with
``weights_only=True``.  Each op is converted by its entry in :data:`~streampose.tflite.ops.OPS`;
constant sub-graphs (``DENSIFY`` -> ``DEQUANTIZE`` chains on weights) are evaluated here, once.
"""

from __future__ import annotations

import dataclasses

import torch

from streampose.errors import ModelError
from streampose.tflite.graph import TFLiteGraph
from streampose.tflite.node import ConversionContext
from streampose.tflite.ops import OPS

__all__ = ["ConvertedGraph", "convert_graph"]


@dataclasses.dataclass
class ConvertedGraph:
    """Runtime graph: node specs in execution order plus torch weights.

    ``nodes`` are dicts ``{"op", "inputs", "outputs", "attrs", "params"}``: ``op`` is the TFLite
    builtin name (a key of :data:`~streampose.tflite.ops.OPS`), ``inputs`` / ``outputs`` are runtime
    tensor ids, ``attrs`` plain python values, ``params`` maps a role (``"weight"``, ``"bias"``,
    ``"constant"``) to a key of ``params``.  ``shapes`` holds the TFLite (NHWC) shape of every
    runtime tensor.  ``output_names`` are the graph's output tensor names, in order.
    """

    nodes: list[dict]
    params: dict[str, torch.Tensor]
    shapes: dict[int, list[int]]
    input_ids: list[int]
    output_ids: list[int]
    output_names: list[str]

    def to_dict(self) -> dict:
        """Plain dict of builtins and tensors, loadable with ``torch.load(weights_only=True)``."""
        return {
            "nodes": self.nodes,
            "params": self.params,
            "shapes": {str(k): v for k, v in self.shapes.items()},
            "input_ids": self.input_ids,
            "output_ids": self.output_ids,
            "output_names": self.output_names,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ConvertedGraph:
        return cls(
            nodes=list(data["nodes"]),
            params=dict(data["params"]),
            shapes={int(k): list(v) for k, v in data["shapes"].items()},
            input_ids=list(data["input_ids"]),
            output_ids=list(data["output_ids"]),
            output_names=list(data["output_names"]),
        )


def convert_graph(graph: TFLiteGraph) -> ConvertedGraph:
    """Convert a parsed TFLite graph into a :class:`ConvertedGraph`.

    Weights are densified, dequantized to float32 and transposed to torch layout here, once.

    Raises:
        ModelError: the graph uses an op (or op variant) this converter does not implement.
    """
    ctx = ConversionContext(graph)
    nodes: list[dict] = []
    shapes: dict[int, list[int]] = {}
    for op in graph.ops:
        entry = OPS.get(op.opcode)
        if entry is None:
            raise ModelError(f"TFLite op {op.opcode} is not supported by the streampose converter")
        source = op.inputs[0] if op.inputs else -1
        if entry.fold is not None and ctx.const(source) is not None:
            ctx.constants[op.outputs[0]] = entry.fold(graph.tensors[source], ctx.const(source))
            continue
        for out in op.outputs:
            shapes[out] = list(graph.tensors[out].shape)
        for index in op.inputs:
            if index >= 0 and index not in ctx.constants:
                shapes.setdefault(index, list(graph.tensors[index].shape))
        nodes.append(entry.convert(op, ctx))

    for index in graph.outputs:
        if index in ctx.constants:
            raise ModelError("graph outputs that are constants are not supported")
    return ConvertedGraph(
        nodes=nodes,
        params=ctx.params,
        shapes=shapes,
        input_ids=list(graph.inputs),
        output_ids=list(graph.outputs),
        output_names=[graph.tensors[i].name for i in graph.outputs],
    )
