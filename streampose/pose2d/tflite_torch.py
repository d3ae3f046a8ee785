"""TFLite ops as PyTorch code, and an ``nn.Module`` built from a parsed TFLite graph.

Three layers, each usable on its own:

1. **Functional ops** (``conv2d``, ``depthwise_conv2d``, ``max_pool2d``, ``resize_bilinear``,
   ``depth_to_space``, ...): torch functions with TFLite semantics on NCHW tensors, plus the
   load-time numpy helpers ``densify`` and ``dequantize``.  Unit-tested one by one.
2. **Conversion** (:func:`convert_graph`): a :class:`~streampose.pose2d.tflite_graph.TFLiteGraph`
   becomes a :class:`ConvertedGraph` -- a list of runtime nodes with plain-python attributes and a
   dict of torch tensors (weights already densified, dequantized and in torch layout).  Constant
   sub-graphs (``DENSIFY`` -> ``DEQUANTIZE`` chains on weights) are evaluated here, once.  A
   ``ConvertedGraph`` round-trips through ``to_dict`` / ``from_dict`` so it can be cached with
   ``torch.save`` and reloaded with ``weights_only=True``.
3. **Module** (:class:`TFLiteModule`): runs the nodes needed for a requested subset of outputs
   (pruning everything else), folds zero ``PAD`` ops into the following convolutions, and returns
   the outputs as a tuple.

Layout convention: every rank-4 runtime tensor is stored NCHW (TFLite stores NHWC); tensors of
other ranks keep TFLite's layout.  Ops whose meaning depends on the axis order (``RESHAPE``,
``CONCATENATION``, broadcasting ``ADD`` with a constant) translate between the two explicitly.
The batch dimension is free: reshapes keep the runtime batch size instead of the graph's 1.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streampose.errors import InputError, ModelError
from streampose.pose2d.tflite_graph import DENSE, SparsityInfo, TensorInfo, TFLiteGraph

__all__ = [
    "ACTIVATIONS",
    "tflite_same_padding",
    "apply_activation",
    "conv2d",
    "depthwise_conv2d",
    "max_pool2d",
    "resize_bilinear",
    "depth_to_space",
    "nhwc_axis_to_nchw",
    "densify",
    "dequantize",
    "conv_weight_to_torch",
    "depthwise_weight_to_torch",
    "ConvertedGraph",
    "convert_graph",
    "TFLiteModule",
    "SUPPORTED_OPS",
]

# TFLite ActivationFunctionType codes -> names used in converted graphs.
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_PADDING = {0: "SAME", 1: "VALID"}


# ----------------------------------------------------------------------------------------------
# 1. functional ops
# ----------------------------------------------------------------------------------------------


def tflite_same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite/TensorFlow ``SAME`` padding of one spatial axis as ``(before, after)``.

    The output has ``ceil(size / stride)`` samples; when the total padding is odd the extra sample
    goes *after* (bottom / right), unlike PyTorch's symmetric ``padding=``.
    """
    effective_kernel = (kernel - 1) * dilation + 1
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + effective_kernel - size, 0)
    return total // 2, total - total // 2


def apply_activation(x: torch.Tensor, activation: str, inplace: bool = False) -> torch.Tensor:
    """Apply a TFLite fused activation (``NONE``, ``RELU``, ``RELU6``, ``RELU_N1_TO_1``, ``TANH``,
    ``SIGN_BIT``) to a tensor of any shape; ``inplace`` overwrites ``x`` (for fresh op outputs)."""
    if activation == "NONE":
        return x
    if activation == "RELU":
        return torch.relu_(x) if inplace else torch.relu(x)
    if activation == "RELU6":
        return x.clamp_(0.0, 6.0) if inplace else torch.clamp(x, 0.0, 6.0)
    if activation == "RELU_N1_TO_1":
        return x.clamp_(-1.0, 1.0) if inplace else torch.clamp(x, -1.0, 1.0)
    if activation == "TANH":
        return torch.tanh_(x) if inplace else torch.tanh(x)
    if activation == "SIGN_BIT":
        return torch.signbit(x).to(x.dtype)
    raise ModelError(f"unsupported fused activation {activation!r}")


def _same_pads_2d(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]):
    top, bottom = tflite_same_padding(x.shape[-2], kernel[0], stride[0], dilation[0])
    left, right = tflite_same_padding(x.shape[-1], kernel[1], stride[1], dilation[1])
    return top, bottom, left, right


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
            (see :func:`conv_weight_to_torch`).
        bias: shape :math:`(C_{out},)` or ``None``.
        padding: ``"SAME"`` (TFLite asymmetric: extra row/column at bottom/right) or ``"VALID"``.
        activation: fused activation name (see :data:`ACTIVATIONS`).

    Returns:
        shape :math:`(B, C_{out}, H_{out}, W_{out})`.
    """
    if padding == "SAME":
        top, bottom, left, right = _same_pads_2d(x, tuple(weight.shape[-2:]), stride, dilation)
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
            input channel ``c`` (see :func:`depthwise_weight_to_torch`).
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
        top, bottom, left, right = _same_pads_2d(x, kernel, stride, (1, 1))
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


def densify(values: np.ndarray, shape: Sequence[int], sparsity: SparsityInfo) -> np.ndarray:
    """Expand a TFLite sparse tensor to a dense array (the ``DENSIFY`` op, done once at load).

    Walks the traversal dimensions in order.  A ``DENSE`` level enumerates ``dense_size`` positions;
    a ``SPARSE_CSR`` level enumerates ``indices[segments[p]:segments[p + 1]]`` for parent position
    ``p``.  At the leaf, the running position is the index into ``values``.  Block dimensions
    (``traversal_order`` entries ``>= rank``) subdivide the original dimension named in
    ``block_map``: the dense coordinate is ``block_index * block_size + in_block_index``.

    Args:
        values: the stored non-zero values, shape :math:`(N,)`.
        shape: dense shape of the tensor.
        sparsity: traversal order, block map and per-level dimension metadata.

    Returns:
        dense array of ``shape`` and ``values.dtype``.
    """
    rank = len(shape)
    order = sparsity.traversal_order or tuple(range(rank))
    metadata = sparsity.dim_metadata
    if len(order) != len(metadata):
        raise ModelError("sparse tensor: traversal order and dimension metadata disagree")
    block_size = {}
    for block_index, original_dim in enumerate(sparsity.block_map):
        level = order.index(rank + block_index)
        block_size[original_dim] = metadata[level].dense_size
    dense = np.zeros(tuple(shape), dtype=values.dtype)
    coords = [0] * len(order)  # coordinate per traversal level

    def visit(level: int, position: int) -> None:
        if level == len(order):
            index = []
            for dim in range(rank):
                coordinate = coords[order.index(dim)]
                if dim in block_size:
                    block_index = sparsity.block_map.index(dim)
                    coordinate = coordinate * block_size[dim] + coords[order.index(rank + block_index)]
                index.append(coordinate)
            dense[tuple(index)] = values[position]
            return
        meta = metadata[level]
        if meta.format == DENSE:
            for i in range(meta.dense_size):
                coords[level] = i
                visit(level + 1, position * meta.dense_size + i)
        else:
            for j in range(int(meta.segments[position]), int(meta.segments[position + 1])):
                coords[level] = int(meta.indices[j])
                visit(level + 1, j)

    visit(0, 0)
    return dense


def dequantize(
    data: np.ndarray, scale: np.ndarray | None = None, zero_point: np.ndarray | None = None, axis: int = 0
) -> np.ndarray:
    """TFLite ``DEQUANTIZE`` as float32: fp16 -> fp32 cast, or ``(q - zero_point) * scale`` for
    integer tensors (per-tensor, or per-channel along ``axis``)."""
    if np.issubdtype(data.dtype, np.floating):
        return data.astype(np.float32)
    if scale is None or len(scale) == 0:
        raise ModelError("DEQUANTIZE of an integer tensor without quantization parameters")
    zero_point = np.zeros_like(scale, np.int64) if zero_point is None or len(zero_point) == 0 else zero_point
    if len(scale) > 1:
        shape = [1] * data.ndim
        shape[axis] = len(scale)
        scale = scale.reshape(shape)
        zero_point = zero_point.reshape(shape)
    return ((data.astype(np.int64) - zero_point) * scale.astype(np.float64)).astype(np.float32)


def conv_weight_to_torch(weight_ohwi: np.ndarray) -> np.ndarray:
    """TFLite ``CONV_2D`` kernel :math:`(O, k_h, k_w, I)` -> torch :math:`(O, I, k_h, k_w)`."""
    return np.ascontiguousarray(weight_ohwi.transpose(0, 3, 1, 2))


def depthwise_weight_to_torch(weight_1hwc: np.ndarray) -> np.ndarray:
    """TFLite depthwise kernel :math:`(1, k_h, k_w, C M)` -> torch grouped :math:`(C M, 1, k_h, k_w)`."""
    return np.ascontiguousarray(weight_1hwc.transpose(3, 0, 1, 2))


# ----------------------------------------------------------------------------------------------
# 2. conversion: TFLiteGraph -> ConvertedGraph (plain nodes + torch weights)
# ----------------------------------------------------------------------------------------------

SUPPORTED_OPS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "ADD",
    "PAD",
    "MAX_POOL_2D",
    "RESHAPE",
    "RESIZE_BILINEAR",
    "LOGISTIC",
    "CONCATENATION",
    "DEPTH_TO_SPACE",
    "DEQUANTIZE",
    "DENSIFY",
)


@dataclasses.dataclass
class ConvertedGraph:
    """Runtime graph: nodes in execution order plus torch weights, no flatbuffer left.

    ``nodes`` are dicts ``{"op", "inputs", "outputs", "attrs", "params"}``: ``inputs`` / ``outputs``
    are runtime tensor ids, ``attrs`` plain python values, ``params`` maps a role (``"weight"``,
    ``"bias"``, ``"constant"``) to a key of ``params``.  ``shapes`` holds the TFLite (NHWC) shape
    of every runtime tensor.  ``output_names`` are the graph's output tensor names, in order.
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


def _fold_constant(op_name: str, tensor: TensorInfo, value: np.ndarray) -> np.ndarray:
    if op_name == "DENSIFY":
        if tensor.sparsity is None:
            return value
        return densify(value, tensor.shape, tensor.sparsity)
    return dequantize(value, tensor.scale, tensor.zero_point, tensor.quantized_dimension)


def convert_graph(graph: TFLiteGraph) -> ConvertedGraph:
    """Convert a parsed TFLite graph into a :class:`ConvertedGraph`.

    Weights are densified, dequantized to float32 and transposed to torch layout here, once.

    Raises:
        ModelError: the graph uses an op (or op variant) this converter does not implement.
    """
    constants = {t.index: t.data for t in graph.tensors if t.data is not None}
    sparse_source = {t.index: t for t in graph.tensors if t.sparsity is not None}

    nodes: list[dict] = []
    params: dict[str, torch.Tensor] = {}
    shapes: dict[int, list[int]] = {}

    def param(name: str, array: np.ndarray) -> str:
        key = f"p{len(params)}_{name}"
        params[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        return key

    def const(index: int) -> np.ndarray | None:
        return constants.get(index) if index >= 0 else None

    def float_const(index: int) -> np.ndarray | None:
        value = const(index)
        if value is None:
            return None
        if index in sparse_source:
            raise ModelError(f"tensor {index} is used while still sparse (no DENSIFY before use)")
        if not np.issubdtype(value.dtype, np.floating) or value.dtype != np.float32:
            raise ModelError(f"tensor {graph.tensors[index].name!r} has type {value.dtype}, expected float32")
        return value

    for op in graph.ops:
        name = op.opcode
        inputs = op.inputs
        options = op.options
        # Load-time constant folding: the weight decompression chain never runs at inference.
        if name in ("DENSIFY", "DEQUANTIZE") and const(inputs[0]) is not None:
            source = graph.tensors[inputs[0]]
            constants[op.outputs[0]] = _fold_constant(name, source, const(inputs[0]))
            continue
        if name not in SUPPORTED_OPS:
            raise ModelError(f"TFLite op {name} is not supported by the streampose converter")
        for out in op.outputs:
            shapes[out] = list(graph.tensors[out].shape)
        for index in inputs:
            if index >= 0 and index not in constants:
                shapes.setdefault(index, list(graph.tensors[index].shape))
        activation = ACTIVATIONS.get(options.get("FusedActivationFunction", 0), "NONE")
        node = {"op": name, "inputs": [inputs[0]], "outputs": list(op.outputs), "attrs": {}, "params": {}}

        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            weight = float_const(inputs[1])
            if weight is None:
                raise ModelError(f"{name} with a non-constant kernel is not supported")
            bias = float_const(inputs[2]) if len(inputs) > 2 else None
            if name == "CONV_2D":
                torch_weight = conv_weight_to_torch(weight)
                groups = 1
            else:
                torch_weight = depthwise_weight_to_torch(weight)
                in_channels = graph.tensors[inputs[0]].shape[3]
                multiplier = torch_weight.shape[0] // in_channels
                if options.get("DepthMultiplier", multiplier) not in (multiplier, 0):
                    raise ModelError(f"DEPTHWISE_CONV_2D depth multiplier mismatch in op {op.index}")
                groups = in_channels
            node["op"] = "CONV"
            node["attrs"] = {
                "stride": [options.get("StrideH", 1), options.get("StrideW", 1)],
                "dilation": [options.get("DilationHFactor", 1), options.get("DilationWFactor", 1)],
                "padding": _PADDING[options.get("Padding", 0)],
                "activation": activation,
                "groups": groups,
            }
            node["params"]["weight"] = param("weight", torch_weight)
            if bias is not None:
                node["params"]["bias"] = param("bias", bias)
        elif name == "ADD":
            a, b = inputs[0], inputs[1]
            node["attrs"] = {"activation": activation}
            constant_operand = [i for i in (a, b) if const(i) is not None]
            if len(constant_operand) == 2:
                raise ModelError("ADD of two constants is not supported")
            if constant_operand:
                value = float_const(constant_operand[0])
                other = b if constant_operand[0] == a else a
                node["inputs"] = [other]
                other_rank = len(graph.tensors[other].shape)
                if other_rank == 4:  # constant broadcasts against NHWC; store it NCHW-broadcastable
                    value = value.reshape((1,) * (4 - value.ndim) + value.shape).transpose(0, 3, 1, 2)
                node["params"]["constant"] = param("constant", value)
            else:
                node["inputs"] = [a, b]
        elif name == "PAD":
            paddings = const(inputs[1])
            if paddings is None:
                raise ModelError("PAD with non-constant paddings is not supported")
            node["attrs"] = {"paddings": paddings.astype(np.int64).tolist()}
        elif name == "MAX_POOL_2D":
            node["attrs"] = {
                "kernel": [options["FilterHeight"], options["FilterWidth"]],
                "stride": [options["StrideH"], options["StrideW"]],
                "padding": _PADDING[options.get("Padding", 0)],
                "activation": activation,
            }
        elif name == "RESHAPE":
            new_shape = const(inputs[1]) if len(inputs) > 1 else None
            target = new_shape.astype(np.int64).tolist() if new_shape is not None else options.get("NewShape")
            if not target:
                target = list(graph.tensors[op.outputs[0]].shape)
            node["attrs"] = {"shape": [int(v) for v in target]}
        elif name == "RESIZE_BILINEAR":
            size = const(inputs[1])
            if size is None:
                raise ModelError("RESIZE_BILINEAR with a non-constant size is not supported")
            node["attrs"] = {
                "size": [int(v) for v in size],
                "align_corners": bool(options.get("AlignCorners", False)),
                "half_pixel_centers": bool(options.get("HalfPixelCenters", False)),
            }
        elif name == "LOGISTIC":
            pass
        elif name == "CONCATENATION":
            if any(const(i) is not None for i in inputs):
                raise ModelError("CONCATENATION with constant inputs is not supported")
            node["inputs"] = list(inputs)
            node["attrs"] = {"axis": int(options.get("Axis", 0)), "activation": activation}
        elif name == "DEPTH_TO_SPACE":
            node["attrs"] = {"block": int(options["BlockSize"])}
        elif name == "DEQUANTIZE":  # of an activation: fp16 runtime inputs become float32
            node["op"] = "CAST_FLOAT"
        elif name == "DENSIFY":
            raise ModelError("DENSIFY of a non-constant tensor is not supported")
        nodes.append(node)

    for index in graph.outputs:
        if index in constants:
            raise ModelError("graph outputs that are constants are not supported")
    return ConvertedGraph(
        nodes=nodes,
        params=params,
        shapes=shapes,
        input_ids=list(graph.inputs),
        output_ids=list(graph.outputs),
        output_names=[graph.tensors[i].name for i in graph.outputs],
    )


# ----------------------------------------------------------------------------------------------
# 3. the nn.Module
# ----------------------------------------------------------------------------------------------


def _fold_pads(nodes: list[dict], keep: set[int]) -> list[dict]:
    """Merge zero ``PAD`` ops (spatial only) into the ``VALID`` convolutions that consume them.

    The pad then happens inside ``F.conv2d(padding=...)`` when symmetric (no extra tensor), or as
    an explicit pad owned by the conv otherwise.  A PAD is folded only when *every* consumer is
    such a conv and its output is not a requested graph output.
    """
    consumers: dict[int, list[dict]] = {}
    for node in nodes:
        for index in node["inputs"]:
            consumers.setdefault(index, []).append(node)
    folded: list[dict] = []
    for node in nodes:
        if node["op"] == "PAD":
            (pn, pn2), (top, bottom), (left, right), (pc, pc2) = node["attrs"]["paddings"]
            out = node["outputs"][0]
            users = consumers.get(out, [])
            foldable = (
                not (pn or pn2 or pc or pc2)
                and out not in keep
                and users
                and all(u["op"] == "CONV" and u["attrs"]["padding"] == "VALID" and "explicit_pad" not in u["attrs"] for u in users)
            )
            if foldable:
                for user in users:
                    user["inputs"] = [node["inputs"][0] if i == out else i for i in user["inputs"]]
                    user["attrs"] = dict(user["attrs"], explicit_pad=[top, bottom, left, right])
                continue
        folded.append(node)
    return folded


# oneDNN post-op names and scalars of the fused activations a prepacked CPU convolution can apply.
_ONEDNN_ACTIVATIONS = {"NONE": ("none", []), "RELU": ("relu", []), "RELU6": ("hardtanh", [0.0, 6.0]),
                       "RELU_N1_TO_1": ("hardtanh", [-1.0, 1.0])}


# Packed kernels kept per conv (one per input shape, i.e. per batch size in practice).
_MAX_PACKED_SHAPES = 4


# bfloat16 goes through the same prepacked path: oneDNN runs it on the CPU's native bf16 units
# (AVX512-BF16 / AMX), see ``TFLiteModule.set_compute_dtype``.
_ONEDNN_DTYPES = (torch.float32, torch.bfloat16)


def _onednn_conv_available() -> bool:
    """Whether this torch build has the (private) oneDNN ops for prepacked convolutions."""
    mkldnn_ops = getattr(torch.ops, "mkldnn", None)
    return (torch.backends.mkldnn.is_available() and hasattr(mkldnn_ops, "_convolution_pointwise")
            and hasattr(mkldnn_ops, "_reorder_convolution_weight"))


class _Node(nn.Module):
    """One runtime op; ``forward`` takes and returns NCHW (rank-4) / TFLite-layout tensors.

    CPU inference (fp32, no autograd) runs convolutions through oneDNN with the kernel reordered once
    into oneDNN's preferred blocked layout and the activation fused (``_prepacked_conv``).  Plain
    ``F.conv2d`` re-lays out depthwise kernels on every call, sends single-threaded 1x1 convolutions
    to a slow kernel that first broadcast-copies the bias, and clamps in a separate pass.  Measured
    on the shared 2-core machine, interleaved: landmark model 20.5 / 21.6 -> 18.3 / 18.8 ms with 1
    thread, 25.7 -> 19.9 ms with 2; detector 22.6 / 22.4 -> 19.9 / 17.2 and 26.1 -> 20.6 ms.
    Outputs agree with ``F.conv2d`` to fp32 rounding.  Other devices, dtypes, and autograd use
    ``F.conv2d``.
    """

    def __init__(self, spec: dict, params: dict[str, torch.Tensor], shapes: dict[int, list[int]]):
        super().__init__()
        self.op = spec["op"]
        self.attrs = spec["attrs"]
        self.input_ids = list(spec["inputs"])
        self.output_ids = list(spec["outputs"])
        for role, key in spec["params"].items():
            self.register_buffer(role, params[key].clone())
        in_shape = shapes.get(self.input_ids[0], [])
        self.in_rank = len(in_shape)
        self.out_rank = len(shapes.get(self.output_ids[0], []))
        self._conv_padding: tuple[int, int] | None = None
        self._conv_pad4: tuple[int, int, int, int] | None = None
        # Packed kernels by input shape, for the weight tensor ``_packed_for``.  oneDNN picks the layout
        # per input shape and repacking all convs costs ~12 ms, so a batch that alternates between,
        # say, 1 and 2 tracked people keeps one kernel per shape (a few at most).  Not buffers: derived
        # data, dropped whenever the weight tensor is replaced (``.to()``, ``.double()``,
        # ``use_channels_last``); holding the weight itself, not its address, rules out a new weight
        # reusing a freed one's memory.  Weights are never edited in place.
        self._packed_for: torch.Tensor | None = None
        self._packed: dict[tuple, torch.Tensor] = {}
        self._prepack = False
        if self.op == "CONV":
            self._plan_conv_padding(in_shape)
            self._prepack = self.attrs["activation"] in _ONEDNN_ACTIVATIONS and _onednn_conv_available()

    def _plan_conv_padding(self, in_shape: list[int]) -> None:
        """Decide once how the conv pads: inside ``F.conv2d`` when symmetric, else ``F.pad``."""
        kh, kw = self.weight.shape[-2:]
        stride, dilation = self.attrs["stride"], self.attrs["dilation"]
        if "explicit_pad" in self.attrs:
            top, bottom, left, right = self.attrs["explicit_pad"]
        elif self.attrs["padding"] == "SAME":
            top, bottom = tflite_same_padding(in_shape[1], kh, stride[0], dilation[0])
            left, right = tflite_same_padding(in_shape[2], kw, stride[1], dilation[1])
        else:
            top = bottom = left = right = 0
        if top == bottom and left == right:
            self._conv_padding = (top, left)
        else:
            self._conv_padding = (0, 0)
            self._conv_pad4 = (left, right, top, bottom)

    def _prepacked_conv(self, x: torch.Tensor) -> torch.Tensor | None:
        """oneDNN convolution with a cached prepacked kernel and fused activation, or ``None`` when it
        does not apply (then the caller uses ``F.conv2d``)."""
        weight = self.weight
        if (x.device.type != "cpu" or x.dtype not in _ONEDNN_DTYPES or weight.dtype != x.dtype
                or torch.is_grad_enabled()):
            return None
        if torch.jit.is_tracing() or torch.compiler.is_compiling():  # exporters see the public F.conv2d graph
            return None
        attrs = self.attrs
        key = tuple(x.shape)
        try:
            if self._packed_for is not weight:
                self._packed_for, self._packed = weight, {}
            packed = self._packed.get(key)
            if packed is None:
                if len(self._packed) >= _MAX_PACKED_SHAPES:
                    self._packed.clear()
                packed = self._packed[key] = torch.ops.mkldnn._reorder_convolution_weight(
                    weight, list(self._conv_padding), list(attrs["stride"]), list(attrs["dilation"]), attrs["groups"],
                    list(x.shape))
            activation, scalars = _ONEDNN_ACTIVATIONS[attrs["activation"]]
            return torch.ops.mkldnn._convolution_pointwise(
                x, packed, self._buffers.get("bias"), list(self._conv_padding), list(attrs["stride"]),
                list(attrs["dilation"]), attrs["groups"], activation, scalars, "")
        except RuntimeError:  # private ops: if this build rejects them, stay on the public path for good
            self._prepack = False
            self._packed_for, self._packed = None, {}
            return None

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        op, attrs = self.op, self.attrs
        x = xs[0]
        if op == "CONV":
            if self._conv_pad4 is not None:
                x = F.pad(x, self._conv_pad4)
            if self._prepack:
                y = self._prepacked_conv(x)
                if y is not None:
                    return y
            y = F.conv2d(x, self.weight, getattr(self, "bias", None), attrs["stride"], self._conv_padding, attrs["dilation"], attrs["groups"])
            return apply_activation(y, attrs["activation"], inplace=not torch.is_grad_enabled())
        if op == "ADD":
            other = xs[1] if len(xs) > 1 else self.constant
            return apply_activation(x + other, attrs["activation"], inplace=not torch.is_grad_enabled())
        if op == "PAD":
            pads = attrs["paddings"]
            if self.in_rank == 4:  # NHWC pad pairs -> F.pad order for NCHW (last dim first)
                (n0, n1), (h0, h1), (w0, w1), (c0, c1) = pads
                return F.pad(x, (w0, w1, h0, h1, c0, c1, n0, n1))
            flat = [v for pair in reversed(pads) for v in pair]
            return F.pad(x, flat)
        if op == "MAX_POOL_2D":
            return max_pool2d(x, tuple(attrs["kernel"]), tuple(attrs["stride"]), attrs["padding"], attrs["activation"])
        if op == "RESHAPE":
            if self.in_rank == 4:
                x = x.permute(0, 2, 3, 1)
            shape = list(attrs["shape"])
            if shape and shape[0] == 1:  # batch dimension is free
                shape[0] = x.shape[0]
            y = x.reshape(shape)
            return y.permute(0, 3, 1, 2) if y.dim() == 4 else y
        if op == "RESIZE_BILINEAR":
            return resize_bilinear(x, tuple(attrs["size"]), attrs["align_corners"], attrs["half_pixel_centers"])
        if op == "LOGISTIC":
            return torch.sigmoid(x)
        if op == "CONCATENATION":
            axis = nhwc_axis_to_nchw(attrs["axis"], self.in_rank)
            return apply_activation(torch.cat(xs, dim=axis), attrs["activation"])
        if op == "DEPTH_TO_SPACE":
            return depth_to_space(x, attrs["block"])
        if op == "CAST_FLOAT":
            return x.float()
        raise ModelError(f"runtime op {op} not implemented")


class TFLiteModule(nn.Module):
    """A converted TFLite graph as a PyTorch module.

    Only the nodes on a path to ``outputs`` are kept (pruning), and zero ``PAD`` ops are folded into
    the following convolutions when ``fold_pads`` is set.

    Args:
        graph: the converted graph.
        outputs: graph output names (e.g. ``"Identity_3"``) or indices to compute, in the order
            ``forward`` returns them; ``None`` = all outputs.
        fold_pads: fold explicit zero pads into convolutions.

    ``forward(x)`` takes the graph input in our layout (rank-4 inputs as NCHW, any batch size) and
    returns a tuple of outputs (rank-4 outputs NCHW, others in TFLite layout with batch ``B``).
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
        self.nodes = nn.ModuleList(_Node(s, graph.params, graph.shapes) for s in specs)
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
        if dtype not in _ONEDNN_DTYPES:
            raise ValueError(f"compute dtype must be float32 or bfloat16, got {dtype}")
        for node in self.nodes:
            for name, buffer in node.named_buffers(recurse=False):
                if buffer.is_floating_point():
                    setattr(node, name, buffer.to(dtype))
        self.compute_dtype = dtype
        return self

    def use_channels_last(self, enabled: bool = True) -> TFLiteModule:
        """Store rank-4 weights and the input in ``torch.channels_last`` memory format."""
        fmt = torch.channels_last if enabled else torch.contiguous_format
        for node in self.nodes:
            if node.op == "CONV":
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
            result = node(*[values[i] for i in node.input_ids])
            values[node.output_ids[0]] = result
            for index in release:
                values.pop(index, None)
        outputs = tuple(values[i] for i in self.output_ids)
        if self.compute_dtype != torch.float32:
            outputs = tuple(o.float() if o.is_floating_point() else o for o in outputs)
        return outputs
