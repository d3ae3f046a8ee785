"""TFLite op semantics as PyTorch functions on NCHW tensors.

Each function reproduces what the TFLite reference kernel computes where PyTorch's nearest
built-in differs: ``SAME`` padding puts the odd extra sample after (bottom / right), max pooling
never lets a padded position win, the legacy ``RESIZE_BILINEAR`` coordinate mapping has no
PyTorch mode, and ``DEPTH_TO_SPACE`` uses DCR channel order where ``F.pixel_shuffle`` uses CRD.

The runtime ops (:mod:`streampose.tflite.ops`, :mod:`streampose.tflite.conv`) resolve padding and
fused activations once per node and call the torch primitives directly; these functions are the
per-call reference form of the same arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from streampose.errors import ModelError

__all__ = [
    "ACTIVATIONS",
    "tflite_same_padding",
    "same_pads_2d",
    "activation_function",
    "apply_activation",
    "conv2d",
    "depthwise_conv2d",
    "max_pool2d",
    "resize_bilinear",
    "depth_to_space",
    "nhwc_axis_to_nchw",
]

# TFLite ActivationFunctionType codes -> names used in converted graphs.
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


def tflite_same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite/TensorFlow ``SAME`` padding of one spatial axis as ``(before, after)``.

    The output has ``ceil(size / stride)`` samples; when the total padding is odd the extra sample
    goes *after* (bottom / right), unlike PyTorch's symmetric ``padding=``.
    """
    effective_kernel = (kernel - 1) * dilation + 1
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + effective_kernel - size, 0)
    return total // 2, total - total // 2


def same_pads_2d(
    height: int, width: int, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int] = (1, 1)
) -> tuple[int, int, int, int]:
    """``SAME`` padding of an ``(H, W)`` image as ``(top, bottom, left, right)``."""
    top, bottom = tflite_same_padding(height, kernel[0], stride[0], dilation[0])
    left, right = tflite_same_padding(width, kernel[1], stride[1], dilation[1])
    return top, bottom, left, right


def _relu_n1_to_1(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x, -1.0, 1.0)


def _relu_n1_to_1_(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_(-1.0, 1.0)


def _relu6(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x, 0.0, 6.0)


def _relu6_(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_(0.0, 6.0)


def _sign_bit(x: torch.Tensor) -> torch.Tensor:
    return torch.signbit(x).to(x.dtype)


# name -> (out-of-place, in-place); module-level functions rather than lambdas keep modules that
# hold them picklable and deep-copyable.
_Activation = Callable[[torch.Tensor], torch.Tensor]
_ACTIVATION_FUNCTIONS: dict[str, tuple[_Activation, _Activation]] = {
    "RELU": (torch.relu, torch.relu_),
    "RELU6": (_relu6, _relu6_),
    "RELU_N1_TO_1": (_relu_n1_to_1, _relu_n1_to_1_),
    "TANH": (torch.tanh, torch.tanh_),
    "SIGN_BIT": (_sign_bit, _sign_bit),
}


def activation_function(activation: str, inplace: bool = False) -> _Activation | None:
    """The callable of a TFLite fused activation, or ``None`` for ``NONE`` (nothing to apply).

    ``inplace`` picks the variant that overwrites its argument, for fresh op outputs under
    inference mode.

    Raises:
        ModelError: unknown activation name.
    """
    if activation == "NONE":
        return None
    if activation not in _ACTIVATION_FUNCTIONS:
        raise ModelError(f"unsupported fused activation {activation!r}")
    return _ACTIVATION_FUNCTIONS[activation][1 if inplace else 0]


def apply_activation(x: torch.Tensor, activation: str, inplace: bool = False) -> torch.Tensor:
    """Apply a TFLite fused activation (``NONE``, ``RELU``, ``RELU6``, ``RELU_N1_TO_1``, ``TANH``,
    ``SIGN_BIT``) to a tensor of any shape; ``inplace`` overwrites ``x`` (for fresh op outputs)."""
    function = activation_function(activation, inplace)
    return x if function is None else function(x)


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: str = "SAME",
    activation: str = "NONE",
    groups: int = 1,
) -> torch.Tensor:
    """TFLite ``CONV_2D`` on NCHW tensors.

    Args:
        x: input, shape :math:`(B, C_{in}, H, W)`.
        weight: torch-layout kernel, shape :math:`(C_{out}, C_{in} / groups, k_h, k_w)`
            (see :func:`~streampose.tflite.constants.conv_weight_to_torch`).
        bias: shape :math:`(C_{out},)` or ``None``.
        padding: ``"SAME"`` (TFLite asymmetric: extra row/column at bottom/right) or ``"VALID"``.
        activation: fused activation name (see :data:`ACTIVATIONS`).

    Returns:
        shape :math:`(B, C_{out}, H_{out}, W_{out})`.
    """
    if padding == "SAME":
        top, bottom, left, right = same_pads_2d(x.shape[-2], x.shape[-1], tuple(weight.shape[-2:]), stride, dilation)
        if top == bottom and left == right:
            y = F.conv2d(x, weight, bias, stride, (top, left), dilation, groups)
        else:
            y = F.conv2d(F.pad(x, (left, right, top, bottom)), weight, bias, stride, 0, dilation, groups)
    elif padding == "VALID":
        y = F.conv2d(x, weight, bias, stride, 0, dilation, groups)
    else:
        raise ModelError(f"unknown padding {padding!r}")
    return apply_activation(y, activation)


def depthwise_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: str = "SAME",
    activation: str = "NONE",
) -> torch.Tensor:
    """TFLite ``DEPTHWISE_CONV_2D`` on NCHW tensors.

    Args:
        x: shape :math:`(B, C, H, W)`.
        weight: shape :math:`(C \\cdot M, 1, k_h, k_w)` with output channel ``c * M + m`` reading
            input channel ``c`` (see :func:`~streampose.tflite.constants.depthwise_weight_to_torch`).
        bias: shape :math:`(C \\cdot M,)` or ``None``.

    Returns:
        shape :math:`(B, C \\cdot M, H_{out}, W_{out})`.
    """
    return conv2d(x, weight, bias, stride, dilation, padding, activation, groups=x.shape[1])


def max_pool2d(
    x: torch.Tensor,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: str = "SAME",
    activation: str = "NONE",
) -> torch.Tensor:
    """TFLite ``MAX_POOL_2D`` on :math:`(B, C, H, W)`; padded positions never win (``-inf``)."""
    if padding == "SAME":
        top, bottom, left, right = same_pads_2d(x.shape[-2], x.shape[-1], kernel, stride)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom), value=-math.inf)
    elif padding != "VALID":
        raise ModelError(f"unknown padding {padding!r}")
    return apply_activation(F.max_pool2d(x, kernel, stride), activation)


def _resize_axis(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool, device):
    """Source indices (lower, upper) and lerp weight of one axis, TFLite reference semantics."""
    if align_corners and out_size > 1:
        scale = (in_size - 1) / (out_size - 1)
    else:
        scale = in_size / out_size
    dst = torch.arange(out_size, dtype=torch.float64, device=device)
    src = (dst + 0.5) * scale - 0.5 if half_pixel_centers else dst * scale
    floor = torch.floor(src)
    lower = floor.clamp(min=0).long()
    upper = torch.ceil(src).clamp(max=in_size - 1).long()
    # TFLite lerps with (src - lower) where lower is already clamped, so src<0 collapses to lower.
    weight = (src - lower.to(src.dtype)).clamp(0.0, 1.0)
    weight = torch.where(upper == lower, torch.zeros_like(weight), weight)
    return lower, upper, weight


def resize_bilinear(
    x: torch.Tensor,
    size: tuple[int, int],
    align_corners: bool = False,
    half_pixel_centers: bool = False,
) -> torch.Tensor:
    """TFLite ``RESIZE_BILINEAR`` of :math:`(B, C, H, W)` to :math:`(B, C, size_0, size_1)`.

    Three coordinate conventions: ``align_corners`` (corner pixels map onto each other),
    ``half_pixel_centers`` (identical to ``F.interpolate(align_corners=False)``) and the legacy
    default (``src = dst * in / out``, no half-pixel shift), which PyTorch has no mode for.
    """
    out_h, out_w = int(size[0]), int(size[1])
    if align_corners and half_pixel_centers:
        raise ModelError("RESIZE_BILINEAR with both align_corners and half_pixel_centers is invalid")
    if half_pixel_centers:
        return F.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=False)
    if align_corners and out_h > 1 and out_w > 1:
        return F.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=True)
    y0, y1, wy = _resize_axis(x.shape[-2], out_h, align_corners, half_pixel_centers, x.device)
    x0, x1, wx = _resize_axis(x.shape[-1], out_w, align_corners, half_pixel_centers, x.device)
    wy = wy.to(x.dtype)[:, None]
    wx = wx.to(x.dtype)
    top, bottom = x[..., y0, :], x[..., y1, :]
    rows = top + (bottom - top) * wy
    left, right = rows[..., x0], rows[..., x1]
    return left + (right - left) * wx


def depth_to_space(x: torch.Tensor, block: int) -> torch.Tensor:
    """TensorFlow ``DEPTH_TO_SPACE`` (DCR order) on NCHW tensors.

    Output pixel ``(h * b + i, w * b + j)`` channel ``c`` reads input channel ``(i * b + j) * C_out
    + c`` -- depth-column-row.  ``F.pixel_shuffle`` uses CRD (``c * b * b + i * b + j``) and would
    scramble the channels.

    Args:
        x: shape :math:`(B, b^2 C_{out}, H, W)`.

    Returns:
        shape :math:`(B, C_{out}, H b, W b)`.
    """
    batch, channels, height, width = x.shape
    if channels % (block * block):
        raise ModelError(f"DEPTH_TO_SPACE: {channels} channels not divisible by block {block}^2")
    out_channels = channels // (block * block)
    x = x.reshape(batch, block, block, out_channels, height, width)
    x = x.permute(0, 3, 4, 1, 5, 2)
    return x.reshape(batch, out_channels, height * block, width * block)


def nhwc_axis_to_nchw(axis: int, rank: int) -> int:
    """Map an axis of a TFLite (NHWC) rank-4 tensor to our NCHW storage; other ranks unchanged."""
    axis = axis % rank
    if rank != 4:
        return axis
    return (0, 2, 3, 1)[axis]
