"""``CONV_2D`` and ``DEPTHWISE_CONV_2D``: conversion and the runtime convolution.

Both run as one grouped torch convolution (a depthwise conv is ``groups = C_in``), so they share
:class:`Conv2d` and differ only in how the kernel is read from the flatbuffer.

CPU inference (fp32 or bf16, no autograd) runs through oneDNN with the kernel reordered once into
oneDNN's preferred blocked layout and the activation fused (:meth:`Conv2d._prepacked_conv`).  Plain
``F.conv2d`` re-lays out depthwise kernels on every call, sends single-threaded 1x1 convolutions
to a slow kernel that first broadcast-copies the bias, and clamps in a separate pass.  Measured on
the shared 2-core machine, interleaved: landmark model 20.5 / 21.6 -> 18.3 / 18.8 ms with 1 thread,
25.7 -> 19.9 ms with 2; detector 22.6 / 22.4 -> 19.9 / 17.2 and 26.1 -> 20.6 ms.  Outputs agree
with ``F.conv2d`` to fp32 rounding.  Other devices, dtypes, and autograd use ``F.conv2d``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from streampose.errors import ModelError
from streampose.tflite.constants import conv_weight_to_torch, depthwise_weight_to_torch
from streampose.tflite.functional import activation_function, same_pads_2d
from streampose.tflite.graph import OpInfo
from streampose.tflite.node import PADDING, ConversionContext, OpNode

__all__ = ["COMPUTE_DTYPES", "Conv2d", "DepthwiseConv2d"]

# oneDNN post-op names and scalars of the fused activations a prepacked CPU convolution can apply.
_ONEDNN_ACTIVATIONS = {"NONE": ("none", []), "RELU": ("relu", []), "RELU6": ("hardtanh", [0.0, 6.0]),
                       "RELU_N1_TO_1": ("hardtanh", [-1.0, 1.0])}

# Packed kernels kept per conv (one per input shape, i.e. per batch size in practice).
_MAX_PACKED_SHAPES = 4

# bfloat16 goes through the same prepacked path: oneDNN runs it on the CPU's native bf16 units
# (AVX512-BF16 / AMX), see ``TFLiteModule.set_compute_dtype``.
COMPUTE_DTYPES = (torch.float32, torch.bfloat16)


def _onednn_conv_available() -> bool:
    """Whether this torch build has the (private) oneDNN ops for prepacked convolutions."""
    mkldnn_ops = getattr(torch.ops, "mkldnn", None)
    return (torch.backends.mkldnn.is_available() and hasattr(mkldnn_ops, "_convolution_pointwise")
            and hasattr(mkldnn_ops, "_reorder_convolution_weight"))


def _conv_attrs(op: OpInfo, ctx: ConversionContext, groups: int) -> dict:
    options = op.options
    return {
        "stride": [options.get("StrideH", 1), options.get("StrideW", 1)],
        "dilation": [options.get("DilationHFactor", 1), options.get("DilationWFactor", 1)],
        "padding": PADDING[options.get("Padding", 0)],
        "activation": ctx.activation(op),
        "groups": groups,
    }


class Conv2d(OpNode):
    """TFLite ``CONV_2D``: :math:`(B, C_{in}, H, W) \\to (B, C_{out}, H_{out}, W_{out})`.

    Buffers: ``weight`` :math:`(C_{out}, C_{in} / groups, k_h, k_w)`, optional ``bias``
    :math:`(C_{out},)`.  Padding is planned once from the graph's input shape: inside the
    convolution when symmetric, else an explicit ``F.pad`` first (TFLite puts the odd extra row /
    column after).  ``explicit_pad`` in the spec is a zero ``PAD`` folded into this conv.
    """

    op = "CONV_2D"

    @classmethod
    def _kernel(cls, op: OpInfo, ctx: ConversionContext, weight):
        """Torch-layout kernel and group count of the flatbuffer kernel ``weight``."""
        return conv_weight_to_torch(weight), 1

    @classmethod
    def convert(cls, op: OpInfo, ctx: ConversionContext) -> dict:
        inputs = op.inputs
        weight = ctx.float_const(inputs[1])
        if weight is None:
            raise ModelError(f"{op.opcode} with a non-constant kernel is not supported")
        bias = ctx.float_const(inputs[2]) if len(inputs) > 2 else None
        torch_weight, groups = cls._kernel(op, ctx, weight)
        params = {"weight": ctx.param("weight", torch_weight)}
        if bias is not None:
            params["bias"] = ctx.param("bias", bias)
        return ctx.spec(op, attrs=_conv_attrs(op, ctx, groups), params=params)

    @classmethod
    def absorbs_zero_pad(cls, spec: dict) -> bool:
        return spec["attrs"]["padding"] == "VALID" and "explicit_pad" not in spec["attrs"]

    def __init__(self, spec: dict, params: dict[str, torch.Tensor], shapes: dict[int, list[int]]):
        super().__init__(spec, params, shapes)
        attrs = spec["attrs"]
        self.stride = list(attrs["stride"])
        self.dilation = list(attrs["dilation"])
        self.groups = int(attrs["groups"])
        self.activation = attrs["activation"]
        self._activation = activation_function(self.activation)
        self._activation_inplace = activation_function(self.activation, inplace=True)
        self._conv_padding, self._conv_pad4 = self._plan_padding(attrs)
        # Packed kernels by input shape, for the weight tensor ``_packed_for``.  oneDNN picks the layout
        # per input shape and repacking all convs costs ~12 ms, so a batch that alternates between,
        # say, 1 and 2 tracked people keeps one kernel per shape (a few at most).  Not buffers: derived
        # data, dropped whenever the weight tensor is replaced (``.to()``, ``.double()``,
        # ``use_channels_last``); holding the weight itself, not its address, rules out a new weight
        # reusing a freed one's memory.  Weights are never edited in place.
        self._packed_for: torch.Tensor | None = None
        self._packed: dict[tuple, torch.Tensor] = {}
        self._prepack = self.activation in _ONEDNN_ACTIVATIONS and _onednn_conv_available()

    def _plan_padding(self, attrs: dict) -> tuple[tuple[int, int], tuple[int, int, int, int] | None]:
        """``(padding inside F.conv2d, explicit F.pad or None)`` for the graph's input size."""
        if "explicit_pad" in attrs:
            top, bottom, left, right = attrs["explicit_pad"]
        elif attrs["padding"] == "SAME":
            top, bottom, left, right = same_pads_2d(
                self.in_shape[1], self.in_shape[2], tuple(self.weight.shape[-2:]), self.stride, self.dilation)
        else:
            top = bottom = left = right = 0
        if top == bottom and left == right:
            return (top, left), None
        return (0, 0), (left, right, top, bottom)

    def _prepacked_conv(self, x: torch.Tensor) -> torch.Tensor | None:
        """oneDNN convolution with a cached prepacked kernel and fused activation, or ``None`` when it
        does not apply (then the caller uses ``F.conv2d``)."""
        weight = self.weight
        if (x.device.type != "cpu" or x.dtype not in COMPUTE_DTYPES or weight.dtype != x.dtype
                or torch.is_grad_enabled()):
            return None
        if torch.jit.is_tracing() or torch.compiler.is_compiling():  # exporters see the public F.conv2d graph
            return None
        key = tuple(x.shape)
        try:
            if self._packed_for is not weight:
                self._packed_for, self._packed = weight, {}
            packed = self._packed.get(key)
            if packed is None:
                if len(self._packed) >= _MAX_PACKED_SHAPES:
                    self._packed.clear()
                packed = self._packed[key] = torch.ops.mkldnn._reorder_convolution_weight(
                    weight, list(self._conv_padding), self.stride, self.dilation, self.groups, list(x.shape))
            activation, scalars = _ONEDNN_ACTIVATIONS[self.activation]
            return torch.ops.mkldnn._convolution_pointwise(
                x, packed, self._buffers.get("bias"), list(self._conv_padding), self.stride,
                self.dilation, self.groups, activation, scalars, "")
        except RuntimeError:  # private ops: if this build rejects them, stay on the public path for good
            self._prepack = False
            self._packed_for, self._packed = None, {}
            return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._conv_pad4 is not None:
            x = F.pad(x, self._conv_pad4)
        if self._prepack:
            y = self._prepacked_conv(x)
            if y is not None:
                return y
        y = F.conv2d(x, self.weight, self._buffers.get("bias"), self.stride, self._conv_padding, self.dilation,
                     self.groups)
        activation = self._activation if torch.is_grad_enabled() else self._activation_inplace
        return y if activation is None else activation(y)


class DepthwiseConv2d(Conv2d):
    """TFLite ``DEPTHWISE_CONV_2D``: a :class:`Conv2d` with ``groups = C_{in}``; output channel
    ``c * M + m`` reads input channel ``c`` (depth multiplier ``M``)."""

    op = "DEPTHWISE_CONV_2D"

    @classmethod
    def _kernel(cls, op: OpInfo, ctx: ConversionContext, weight):
        torch_weight = depthwise_weight_to_torch(weight)
        in_channels = ctx.shape(op.inputs[0])[3]
        multiplier = torch_weight.shape[0] // in_channels
        if op.options.get("DepthMultiplier", multiplier) not in (multiplier, 0):
            raise ModelError(f"DEPTHWISE_CONV_2D depth multiplier mismatch in op {op.index}")
        return torch_weight, in_channels
