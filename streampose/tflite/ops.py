"""The TFLite ops the converter supports, one :class:`~streampose.tflite.node.OpNode` class each,
and :data:`OPS`, the registry that maps a TFLite builtin name to its class.

Layout convention: every rank-4 runtime tensor is stored NCHW (TFLite stores NHWC); tensors of
other ranks keep TFLite's layout.  Ops whose meaning depends on the axis order (``RESHAPE``,
``CONCATENATION``, ``PAD``, broadcasting ``ADD`` with a constant) translate between the two, and
decide how once, at load.  The batch dimension is free: reshapes keep the runtime batch size
instead of the graph's 1.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from streampose.errors import ModelError
from streampose.tflite.constants import densify, dequantize
from streampose.tflite.conv import Conv2d, DepthwiseConv2d
from streampose.tflite.functional import (
    activation_function,
    depth_to_space,
    nhwc_axis_to_nchw,
    resize_bilinear,
    same_pads_2d,
)
from streampose.tflite.graph import OpInfo, TensorInfo
from streampose.tflite.node import PADDING, ConversionContext, OpNode

__all__ = [
    "OPS",
    "Add",
    "Pad",
    "MaxPool2d",
    "Reshape",
    "ResizeBilinear",
    "Logistic",
    "Concatenation",
    "DepthToSpace",
    "Dequantize",
    "Densify",
]


class Add(OpNode):
    """TFLite ``ADD`` of two runtime tensors, or of one and a constant (buffer ``constant``, already
    laid out to broadcast against NCHW); same shape in and out."""

    op = "ADD"

    @classmethod
    def convert(cls, op: OpInfo, ctx: ConversionContext) -> dict:
        a, b = op.inputs[0], op.inputs[1]
        attrs = {"activation": ctx.activation(op)}
        constant_operand = [i for i in (a, b) if ctx.const(i) is not None]
        if len(constant_operand) == 2:
            raise ModelError("ADD of two constants is not supported")
        if not constant_operand:
            return ctx.spec(op, inputs=[a, b], attrs=attrs)
        value = ctx.float_const(constant_operand[0])
        other = b if constant_operand[0] == a else a
        if len(ctx.shape(other)) == 4:  # constant broadcasts against NHWC; store it NCHW-broadcastable
            value = value.reshape((1,) * (4 - value.ndim) + value.shape).transpose(0, 3, 1, 2)
        return ctx.spec(op, inputs=[other], attrs=attrs, params={"constant": ctx.param("constant", value)})

    def __init__(self, spec: dict, params: dict[str, torch.Tensor], shapes: dict[int, list[int]]):
        super().__init__(spec, params, shapes)
        self._activation = activation_function(spec["attrs"]["activation"])
        self._activation_inplace = activation_function(spec["attrs"]["activation"], inplace=True)

    def forward(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        y = x + (self.constant if other is None else other)
        activation = self._activation if torch.is_grad_enabled() else self._activation_inplace
        return y if activation is None else activation(y)


class Pad(OpNode):
    """TFLite ``PAD`` with constant paddings (zeros), any rank; attrs ``paddings`` are TFLite-order
    ``(before, after)`` pairs, one per axis."""

    op = "PAD"

    @classmethod
    def convert(cls, op: OpInfo, ctx: ConversionContext) -> dict:
        paddings = ctx.const(op.inputs[1])
        if paddings is None:
            raise ModelError("PAD with non-constant paddings is not supported")
        return ctx.spec(op, attrs={"paddings": paddings.astype(np.int64).tolist()})

    @staticmethod
    def zero_spatial_pad(spec: dict) -> tuple[int, int, int, int] | None:
        """``(top, bottom, left, right)`` of a rank-4 pad that leaves batch and channels alone."""
        pads = spec["attrs"]["paddings"]
        if len(pads) != 4:
            return None
        (n0, n1), (top, bottom), (left, right), (c0, c1) = pads
        return None if (n0 or n1 or c0 or c1) else (top, bottom, left, right)

    def __init__(self, spec: dict, params: dict[str, torch.Tensor], shapes: dict[int, list[int]]):
        super().__init__(spec, params, shapes)
        pads = spec["attrs"]["paddings"]
        if len(self.in_shape) == 4:  # NHWC pad pairs -> F.pad order for NCHW (last dim first)
            (n0, n1), (h0, h1), (w0, w1), (c0, c1) = pads
            self._pads = (w0, w1, h0, h1, c0, c1, n0, n1)
        else:
            self._pads = tuple(v for pair in reversed(pads) for v in pair)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self._pads)


class MaxPool2d(OpNode):
    """TFLite ``MAX_POOL_2D``: :math:`(B, C, H, W) \\to (B, C, H_{out}, W_{out})`; ``SAME`` pads
    with ``-inf`` so padded positions never win."""

    op = "MAX_POOL_2D"

    @classmethod
    def convert(cls, op: OpInfo, ctx: ConversionContext) -> dict:
        options = op.options
        return ctx.spec(op, attrs={
            "kernel": [options["FilterHeight"], options["FilterWidth"]],
            "stride": [options["StrideH"], options["StrideW"]],
            "padding": PADDING[options.get("Padding", 0)],
            "activation": ctx.activation(op),
        })

    def __init__(self, spec: dict, params: dict[str, torch.Tensor], shapes: dict[int, list[int]]):
        super().__init__(spec, params, shapes)
        attrs = spec["attrs"]
        self.kernel, self.stride = tuple(attrs["kernel"]), tuple(attrs["stride"])
        self._pad4 = None
        if attrs["padding"] == "SAME":
            top, bottom, left, right = same_pads_2d(self.in_shape[1], self.in_shape[2], self.kernel, self.stride)
            if top or bottom or left or right:
                self._pad4 = (left, right, top, bottom)
        elif attrs["padding"] != "VALID":
            raise ModelError(f"unknown padding {attrs['padding']!r}")
        self._activation = activation_function(attrs["activation"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._pad4 is not None:
            x = F.pad(x, self._pad4, value=-math.inf)
        y = F.max_pool2d(x, self.kernel, self.stride)
        return y if self._activation is None else self._activation(y)


class Reshape(OpNode):
    """TFLite ``RESHAPE`` in TFLite axis order: rank-4 inputs are viewed NHWC first, rank-4 outputs
    returned NCHW; a leading 1 in the target shape follows the runtime batch size."""

    op = "RESHAPE"

    @classmethod
    def convert(cls, op: OpInfo, ctx: ConversionContext) -> dict:
        new_shape = ctx.const(op.inputs[1]) if len(op.inputs) > 1 else None
        target = new_shape.astype(np.int64).tolist() if new_shape is not None else op.options.get("NewShape")
        if not target:
            target = list(ctx.shape(op.outputs[0]))
        return ctx.spec(op, attrs={"shape": [int(v) for v in target]})

    def __init__(self, spec: dict, params: dict[str, torch.Tensor], shapes: dict[int, list[int]]):
        super().__init__(spec, params, shapes)
        self.shape = list(spec["attrs"]["shape"])
        self._nhwc_input = len(self.in_shape) == 4
        self._free_batch = bool(self.shape) and self.shape[0] == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._nhwc_input:
            x = x.permute(0, 2, 3, 1)
        shape = list(self.shape)
        if self._free_batch:
            shape[0] = x.shape[0]
        y = x.reshape(shape)
        return y.permute(0, 3, 1, 2) if y.dim() == 4 else y


class ResizeBilinear(OpNode):
    """TFLite ``RESIZE_BILINEAR`` to a constant size: :math:`(B, C, H, W) \\to (B, C, H', W')`
    (see :func:`~streampose.tflite.functional.resize_bilinear` for the coordinate modes)."""

    op = "RESIZE_BILINEAR"

    @classmethod
    def convert(cls, op: OpInfo, ctx: ConversionContext) -> dict:
        size = ctx.const(op.inputs[1])
        if size is None:
            raise ModelError("RESIZE_BILINEAR with a non-constant size is not supported")
        return ctx.spec(op, attrs={
            "size": [int(v) for v in size],
            "align_corners": bool(op.options.get("AlignCorners", False)),
            "half_pixel_centers": bool(op.options.get("HalfPixelCenters", False)),
        })

    def __init__(self, spec: dict, params: dict[str, torch.Tensor], shapes: dict[int, list[int]]):
        super().__init__(spec, params, shapes)
        attrs = spec["attrs"]
        self.size = tuple(attrs["size"])
        self.align_corners, self.half_pixel_centers = attrs["align_corners"], attrs["half_pixel_centers"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize_bilinear(x, self.size, self.align_corners, self.half_pixel_centers)


class Logistic(OpNode):
    """TFLite ``LOGISTIC`` (sigmoid), any shape."""

    op = "LOGISTIC"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


class Concatenation(OpNode):
    """TFLite ``CONCATENATION`` of runtime tensors along a TFLite axis (mapped to NCHW for rank 4)."""

    op = "CONCATENATION"

    @classmethod
    def convert(cls, op: OpInfo, ctx: ConversionContext) -> dict:
        if any(ctx.const(i) is not None for i in op.inputs):
            raise ModelError("CONCATENATION with constant inputs is not supported")
        return ctx.spec(op, inputs=list(op.inputs),
                        attrs={"axis": int(op.options.get("Axis", 0)), "activation": ctx.activation(op)})

    def __init__(self, spec: dict, params: dict[str, torch.Tensor], shapes: dict[int, list[int]]):
        super().__init__(spec, params, shapes)
        self.axis = nhwc_axis_to_nchw(spec["attrs"]["axis"], len(self.in_shape))
        self._activation = activation_function(spec["attrs"]["activation"])

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        y = torch.cat(xs, dim=self.axis)
        return y if self._activation is None else self._activation(y)


class DepthToSpace(OpNode):
    """TFLite ``DEPTH_TO_SPACE`` (DCR order): :math:`(B, b^2 C, H, W) \\to (B, C, H b, W b)`."""

    op = "DEPTH_TO_SPACE"

    @classmethod
    def convert(cls, op: OpInfo, ctx: ConversionContext) -> dict:
        return ctx.spec(op, attrs={"block": int(op.options["BlockSize"])})

    def __init__(self, spec: dict, params: dict[str, torch.Tensor], shapes: dict[int, list[int]]):
        super().__init__(spec, params, shapes)
        self.block = int(spec["attrs"]["block"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depth_to_space(x, self.block)


class Dequantize(OpNode):
    """TFLite ``DEQUANTIZE``.  Of a constant (fp16 / quantized weights) it is folded at conversion;
    of an activation (an fp16 graph input) it is a cast to float32 at run time."""

    op = "DEQUANTIZE"

    @staticmethod
    def fold(tensor: TensorInfo, value: np.ndarray) -> np.ndarray:
        return dequantize(value, tensor.scale, tensor.zero_point, tensor.quantized_dimension)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()


class Densify(OpNode):
    """TFLite ``DENSIFY``: sparse constant -> dense, always folded at conversion."""

    op = "DENSIFY"

    @staticmethod
    def fold(tensor: TensorInfo, value: np.ndarray) -> np.ndarray:
        return value if tensor.sparsity is None else densify(value, tensor.shape, tensor.sparsity)

    @classmethod
    def convert(cls, op: OpInfo, ctx: ConversionContext) -> dict:
        raise ModelError("DENSIFY of a non-constant tensor is not supported")


# The registry: TFLite builtin name -> the class that converts and runs it.
OPS: dict[str, type[OpNode]] = {
    cls.op: cls
    for cls in (Conv2d, DepthwiseConv2d, Add, Pad, MaxPool2d, Reshape, ResizeBilinear, Logistic, Concatenation,
                DepthToSpace, Dequantize, Densify)
}
