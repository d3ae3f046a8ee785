"""What every op entry of the converter is made of: :class:`OpNode` and :class:`ConversionContext`.

One TFLite builtin op is one :class:`OpNode` subclass, and that class is its whole registry entry
(:data:`streampose.tflite.ops.OPS` maps the op name to it):

* ``op`` -- the TFLite builtin name (``"CONV_2D"``); converted node specs carry it, so a cached
  graph finds its classes again by name.
* ``convert(op, ctx)`` (classmethod, conversion time) -- one flatbuffer operator -> a node *spec*,
  a dict of builtins ``{"op", "inputs", "outputs", "attrs", "params"}`` that can be cached with
  ``torch.save(weights_only=True)``; ``params`` maps a buffer role (``"weight"``, ``"bias"``,
  ``"constant"``) to a key of the graph's tensor dict.
* ``fold(tensor, value)`` (optional staticmethod, conversion time) -- evaluate the op on a constant
  input, so weight-decompression chains never run at inference.
* ``__init__(spec, params, shapes)`` (load time) -- registers the buffers and decides everything
  that does not depend on the data (padding plan, permutations, the activation callable), so
  ``forward`` does no name-based dispatch.
* ``forward(*inputs)`` (run time) -- rank-4 tensors NCHW, other ranks in TFLite layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from streampose.errors import ModelError
from streampose.tflite.functional import ACTIVATIONS
from streampose.tflite.graph import OpInfo, TensorInfo, TFLiteGraph

__all__ = ["PADDING", "ConversionContext", "OpNode"]

# TFLite Padding codes -> names used in node specs.
PADDING = {0: "SAME", 1: "VALID"}


class ConversionContext:
    """The graph being converted, its constants (growing as constant ops are folded) and the float32
    torch tensors collected for the converted graph.

    Args:
        graph: the parsed TFLite graph.
    """

    def __init__(self, graph: TFLiteGraph):
        self.graph = graph
        self.constants: dict[int, np.ndarray] = {t.index: t.data for t in graph.tensors if t.data is not None}
        self._still_sparse = {t.index for t in graph.tensors if t.sparsity is not None}
        self.params: dict[str, torch.Tensor] = {}

    def shape(self, index: int) -> tuple[int, ...]:
        """TFLite (NHWC for rank 4) shape of tensor ``index``."""
        return self.graph.tensors[index].shape

    def const(self, index: int) -> np.ndarray | None:
        """Constant value of tensor ``index`` as stored (or as folded), ``None`` for activations and
        omitted optional inputs (``-1``)."""
        return self.constants.get(index) if index >= 0 else None

    def float_const(self, index: int) -> np.ndarray | None:
        """Like :meth:`const`, for operands that must be dense float32 (kernels, biases, addends).

        Raises:
            ModelError: the tensor is still sparse or of another dtype (no ``DENSIFY`` /
                ``DEQUANTIZE`` before its use).
        """
        value = self.const(index)
        if value is None:
            return None
        if index in self._still_sparse:
            raise ModelError(f"tensor {index} is used while still sparse (no DENSIFY before use)")
        if not np.issubdtype(value.dtype, np.floating) or value.dtype != np.float32:
            raise ModelError(f"tensor {self.graph.tensors[index].name!r} has type {value.dtype}, expected float32")
        return value

    def param(self, name: str, array: np.ndarray) -> str:
        """Store ``array`` as a float32 tensor of the converted graph; returns its key."""
        key = f"p{len(self.params)}_{name}"
        self.params[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        return key

    @staticmethod
    def activation(op: OpInfo) -> str:
        """Name of the op's fused activation (``"NONE"`` when it has none)."""
        return ACTIVATIONS.get(op.options.get("FusedActivationFunction", 0), "NONE")

    @staticmethod
    def spec(op: OpInfo, inputs: list[int] | None = None, attrs: dict | None = None,
             params: dict[str, str] | None = None) -> dict:
        """A node spec for ``op``; by default it reads only the op's first input."""
        return {
            "op": op.opcode,
            "inputs": list(inputs) if inputs is not None else [op.inputs[0]],
            "outputs": list(op.outputs),
            "attrs": attrs or {},
            "params": params or {},
        }


class OpNode(nn.Module):
    """One runtime op of a converted graph, and the entry that converts it (see the module docstring).

    Args:
        spec: the node spec made by :meth:`convert`.
        params: the converted graph's tensors; the node clones the ones its spec names into buffers.
        shapes: TFLite shape of every runtime tensor id.
    """

    op: ClassVar[str]
    fold: ClassVar[Callable[[TensorInfo, np.ndarray], np.ndarray] | None] = None

    @classmethod
    def convert(cls, op: OpInfo, ctx: ConversionContext) -> dict:
        """Flatbuffer operator -> node spec.  Raise :class:`ModelError` for unsupported variants."""
        return ctx.spec(op)

    @classmethod
    def absorbs_zero_pad(cls, spec: dict) -> bool:
        """Whether a node of this spec can take over a preceding zero spatial ``PAD``."""
        return False

    def __init__(self, spec: dict, params: dict[str, torch.Tensor], shapes: dict[int, list[int]]):
        super().__init__()
        self.input_ids = list(spec["inputs"])
        self.output_ids = list(spec["outputs"])
        for role, key in spec["params"].items():
            self.register_buffer(role, params[key].clone())
        self.in_shape = list(shapes.get(self.input_ids[0], []))

    def extra_repr(self) -> str:
        return f"{self.input_ids} -> {self.output_ids}"
