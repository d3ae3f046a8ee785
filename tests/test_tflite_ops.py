"""TFLite op implementations vs tiny numpy references written from the TFLite semantics.

No model weights needed: each op function is called directly, and small graphs are built by hand
as ``TFLiteGraph`` dataclasses to exercise conversion, layout tracking, pruning and pad folding.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from streampose.errors import InputError, ModelError
from streampose.tflite.constants import conv_weight_to_torch, densify, depthwise_weight_to_torch, dequantize
from streampose.tflite.conv import Conv2d
from streampose.tflite.convert import ConvertedGraph, convert_graph
from streampose.tflite.functional import (
    conv2d,
    depth_to_space,
    depthwise_conv2d,
    max_pool2d,
    resize_bilinear,
    tflite_same_padding,
)
from streampose.tflite.graph import (
    DENSE,
    SPARSE_CSR,
    DimensionMetadata,
    OpInfo,
    SparsityInfo,
    TensorInfo,
    TFLiteGraph,
    parse_tflite,
)
from streampose.tflite.module import TFLiteModule
from streampose.tflite.ops import OPS

RNG = np.random.default_rng(1234)


def nhwc_to_torch(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def torch_to_nhwc(x: torch.Tensor) -> np.ndarray:
    return x.detach().numpy().transpose(0, 2, 3, 1)


# ---------------------------------------------------------------- numpy references (NHWC, TF semantics)


def ref_same_pad(size, kernel, stride, dilation):
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def ref_conv_nhwc(x, w_ohwi, bias, stride, dilation, padding, depthwise_multiplier=None, pad_value=0.0):
    """Direct-loop convolution. ``depthwise_multiplier`` set: w is (1, kh, kw, C*M)."""
    batch, height, width, channels = x.shape
    kh, kw = w_ohwi.shape[1:3]
    if padding == "SAME":
        top, bottom = ref_same_pad(height, kh, stride[0], dilation[0])
        left, right = ref_same_pad(width, kw, stride[1], dilation[1])
    else:
        top = bottom = left = right = 0
    xp = np.full((batch, height + top + bottom, width + left + right, channels), pad_value, x.dtype)
    xp[:, top : top + height, left : left + width] = x
    out_h = (xp.shape[1] - ((kh - 1) * dilation[0] + 1)) // stride[0] + 1
    out_w = (xp.shape[2] - ((kw - 1) * dilation[1] + 1)) // stride[1] + 1
    out_c = w_ohwi.shape[3] if depthwise_multiplier else w_ohwi.shape[0]
    y = np.zeros((batch, out_h, out_w, out_c), np.float64)
    for i in range(out_h):
        for j in range(out_w):
            for a in range(kh):
                for b in range(kw):
                    pixel = xp[:, i * stride[0] + a * dilation[0], j * stride[1] + b * dilation[1], :]  # (B, C)
                    if depthwise_multiplier:
                        m = depthwise_multiplier
                        # output channel c*M+k reads input channel c
                        y[:, i, j, :] += np.repeat(pixel, m, axis=1) * w_ohwi[0, a, b, :]
                    else:
                        y[:, i, j, :] += pixel @ w_ohwi[:, a, b, :].T
    if bias is not None:
        y += bias
    return y


def ref_depth_to_space_nhwc(x, block):
    batch, height, width, channels = x.shape
    out_c = channels // (block * block)
    y = np.zeros((batch, height * block, width * block, out_c), x.dtype)
    for h in range(height):
        for w in range(width):
            for i in range(block):
                for j in range(block):
                    for c in range(out_c):
                        y[:, h * block + i, w * block + j, c] = x[:, h, w, (i * block + j) * out_c + c]
    return y


def ref_resize_bilinear_nhwc(x, out_h, out_w, align_corners, half_pixel_centers):
    """Loop port of the TFLite reference kernel's arithmetic."""
    batch, in_h, in_w, channels = x.shape

    def scale(in_size, out_size):
        if align_corners and out_size > 1:
            return (in_size - 1) / (out_size - 1)
        return in_size / out_size

    def interp(value, s, in_size):
        scaled = (value + 0.5) * s - 0.5 if half_pixel_centers else value * s
        lower = max(int(np.floor(scaled)), 0)
        upper = min(int(np.ceil(scaled)), in_size - 1)
        return scaled, lower, upper

    sy, sx = scale(in_h, out_h), scale(in_w, out_w)
    y = np.zeros((batch, out_h, out_w, channels), np.float64)
    for i in range(out_h):
        in_y, y0, y1 = interp(i, sy, in_h)
        for j in range(out_w):
            in_x, x0, x1 = interp(j, sx, in_w)
            y[:, i, j] = (
                x[:, y0, x0] * (1 - (in_y - y0)) * (1 - (in_x - x0))
                + x[:, y1, x0] * (in_y - y0) * (1 - (in_x - x0))
                + x[:, y0, x1] * (1 - (in_y - y0)) * (in_x - x0)
                + x[:, y1, x1] * (in_y - y0) * (in_x - x0)
            )
    return y


# ---------------------------------------------------------------- padding / convolution


@pytest.mark.parametrize(
    "size,kernel,stride,dilation,expected",
    [(224, 3, 2, 1, (0, 1)), (7, 3, 1, 1, (1, 1)), (8, 2, 2, 1, (0, 0)), (9, 2, 2, 1, (0, 1)), (10, 3, 1, 2, (2, 2)), (5, 1, 1, 1, (0, 0))],
)
def test_same_padding_puts_extra_after(size, kernel, stride, dilation, expected):
    assert tflite_same_padding(size, kernel, stride, dilation) == expected
    assert tflite_same_padding(size, kernel, stride, dilation) == ref_same_pad(size, kernel, stride, dilation)


@pytest.mark.parametrize(
    "shape,kernel,stride,dilation,padding,activation",
    [
        ((2, 8, 8, 3), 3, (2, 2), (1, 1), "SAME", "RELU6"),  # asymmetric SAME padding
        ((1, 7, 9, 4), 3, (1, 1), (1, 1), "SAME", "NONE"),
        ((1, 9, 7, 2), 2, (2, 2), (1, 1), "SAME", "RELU"),
        ((1, 10, 10, 3), 3, (1, 1), (2, 2), "SAME", "NONE"),
        ((1, 9, 9, 3), 3, (2, 1), (1, 1), "VALID", "RELU_N1_TO_1"),
        ((1, 6, 6, 5), 1, (1, 1), (1, 1), "VALID", "TANH"),
    ],
)
def test_conv2d_matches_numpy(shape, kernel, stride, dilation, padding, activation):
    x = RNG.normal(size=shape).astype(np.float32)
    w = RNG.normal(size=(6, kernel, kernel, shape[3])).astype(np.float32)
    b = RNG.normal(size=6).astype(np.float32)
    expected = ref_conv_nhwc(x, w, b, stride, dilation, padding)
    expected = {
        "RELU6": np.clip(expected, 0, 6),
        "RELU": np.maximum(expected, 0),
        "RELU_N1_TO_1": np.clip(expected, -1, 1),
        "TANH": np.tanh(expected),
        "NONE": expected,
    }[activation]
    got = conv2d(nhwc_to_torch(x), torch.from_numpy(conv_weight_to_torch(w)), torch.from_numpy(b), stride, dilation, padding, activation)
    np.testing.assert_allclose(torch_to_nhwc(got), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("multiplier,stride,kernel", [(1, (2, 2), 3), (2, (1, 1), 5), (1, (1, 1), 3)])
def test_depthwise_conv2d_matches_numpy(multiplier, stride, kernel):
    x = RNG.normal(size=(2, 8, 8, 4)).astype(np.float32)
    w = RNG.normal(size=(1, kernel, kernel, 4 * multiplier)).astype(np.float32)
    b = RNG.normal(size=4 * multiplier).astype(np.float32)
    expected = ref_conv_nhwc(x, w, b, stride, (1, 1), "SAME", depthwise_multiplier=multiplier)
    got = depthwise_conv2d(nhwc_to_torch(x), torch.from_numpy(depthwise_weight_to_torch(w)), torch.from_numpy(b), stride, (1, 1), "SAME")
    np.testing.assert_allclose(torch_to_nhwc(got), expected, atol=1e-4, rtol=1e-4)


def test_max_pool_same_ignores_padding():
    x = -np.abs(RNG.normal(size=(1, 5, 5, 3))).astype(np.float32) - 1.0  # all negative: zero padding would win
    got = torch_to_nhwc(max_pool2d(nhwc_to_torch(x), (2, 2), (2, 2), "SAME"))
    assert got.shape == (1, 3, 3, 3)
    expected = np.zeros((1, 3, 3, 3), np.float32)
    for i in range(3):
        for j in range(3):
            expected[0, i, j] = x[0, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].max(axis=(0, 1))
    np.testing.assert_array_equal(got, expected)
    assert (got < 0).all()


# ---------------------------------------------------------------- depth to space / resize


def test_depth_to_space_is_dcr_not_pixel_shuffle():
    x = RNG.normal(size=(2, 3, 4, 12)).astype(np.float32)
    expected = ref_depth_to_space_nhwc(x, 2)
    got = depth_to_space(nhwc_to_torch(x), 2)
    np.testing.assert_array_equal(torch_to_nhwc(got), expected)
    crd = torch_to_nhwc(F.pixel_shuffle(nhwc_to_torch(x), 2))
    assert not np.allclose(crd, expected)  # the two channel orders really differ


@pytest.mark.parametrize("align_corners,half_pixel", [(False, True), (True, False), (False, False)])
@pytest.mark.parametrize("in_hw,out_hw", [((4, 5), (8, 10)), ((7, 6), (3, 4)), ((5, 5), (12, 9))])
def test_resize_bilinear_modes_match_numpy(align_corners, half_pixel, in_hw, out_hw):
    x = RNG.normal(size=(2, *in_hw, 3)).astype(np.float32)
    expected = ref_resize_bilinear_nhwc(x, *out_hw, align_corners, half_pixel)
    got = resize_bilinear(nhwc_to_torch(x), out_hw, align_corners, half_pixel)
    np.testing.assert_allclose(torch_to_nhwc(got), expected, atol=1e-5)


def test_resize_bilinear_legacy_differs_from_half_pixel():
    x = nhwc_to_torch(RNG.normal(size=(1, 4, 4, 1)).astype(np.float32))
    assert not torch.allclose(resize_bilinear(x, (8, 8)), resize_bilinear(x, (8, 8), half_pixel_centers=True))


# ---------------------------------------------------------------- densify / dequantize


def test_densify_csr_rows():
    dense = np.zeros((4, 6), np.float32)
    dense[0, [1, 4]] = [1, 2]
    dense[2, [0, 3, 5]] = [3, 4, 5]
    dense[3, 2] = 6
    segments = np.array([0, 2, 2, 5, 6])
    indices = np.array([1, 4, 0, 3, 5, 2])
    values = np.array([1, 2, 3, 4, 5, 6], np.float32)
    sparsity = SparsityInfo((0, 1), (), (DimensionMetadata(DENSE, 4), DimensionMetadata(SPARSE_CSR, 0, segments, indices)))
    np.testing.assert_array_equal(densify(values, (4, 6), sparsity), dense)


def test_densify_column_major_traversal():
    # traversal order (1, 0): columns are the outer (dense) level, rows the CSR level.
    dense = np.zeros((3, 4), np.float16)
    dense[[0, 2], 0] = [1, 2]
    dense[1, 3] = 3
    segments = np.array([0, 2, 2, 2, 3])
    indices = np.array([0, 2, 1])
    values = np.array([1, 2, 3], np.float16)
    sparsity = SparsityInfo((1, 0), (), (DimensionMetadata(DENSE, 4), DimensionMetadata(SPARSE_CSR, 0, segments, indices)))
    result = densify(values, (3, 4), sparsity)
    assert result.dtype == np.float16
    np.testing.assert_array_equal(result, dense)


def test_densify_block_map_with_csr_blocks():
    # 4x6 matrix of 2x3 blocks (2 block rows x 2 block cols); blocks (0,1) and (1,0) are non-zero.
    block_a = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    block_b = -np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    dense = np.zeros((4, 6), np.float32)
    dense[0:2, 3:6] = block_a
    dense[2:4, 0:3] = block_b
    sparsity = SparsityInfo(
        traversal_order=(0, 1, 2, 3),
        block_map=(0, 1),
        dim_metadata=(
            DimensionMetadata(DENSE, 2),  # block rows
            DimensionMetadata(SPARSE_CSR, 0, np.array([0, 1, 2]), np.array([1, 0])),  # block cols
            DimensionMetadata(DENSE, 2),  # rows inside a block
            DimensionMetadata(DENSE, 3),  # cols inside a block
        ),
    )
    values = np.concatenate([block_a.ravel(), block_b.ravel()])
    np.testing.assert_array_equal(densify(values, (4, 6), sparsity), dense)


def test_densify_conv_kernel_shaped_like_blazepose():
    # (O, 1, 1, I) kernel with CSR over the input-channel dim, as in pose_detection.tflite.
    dense = np.zeros((3, 1, 1, 5), np.float16)
    dense[0, 0, 0, [0, 4]] = [1, 2]
    dense[2, 0, 0, [1, 2, 3]] = [3, 4, 5]
    sparsity = SparsityInfo(
        (0, 1, 2, 3),
        (),
        (DimensionMetadata(DENSE, 3), DimensionMetadata(DENSE, 1), DimensionMetadata(DENSE, 1),
         DimensionMetadata(SPARSE_CSR, 0, np.array([0, 2, 2, 5]), np.array([0, 4, 1, 2, 3]))),
    )  # fmt: skip
    np.testing.assert_array_equal(densify(np.array([1, 2, 3, 4, 5], np.float16), dense.shape, sparsity), dense)


def test_dequantize_fp16_and_int8_per_channel():
    half = RNG.normal(size=(3, 4)).astype(np.float16)
    out = dequantize(half)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, half.astype(np.float32))
    q = np.array([[-128, 0, 127], [10, 20, 30]], np.int8)
    scale = np.array([0.5, 0.25], np.float32)
    zero = np.array([0, 10], np.int64)
    np.testing.assert_allclose(dequantize(q, scale, zero, axis=0), [[-64, 0, 63.5], [0, 2.5, 5]])
    with pytest.raises(ModelError):
        dequantize(q)


# ---------------------------------------------------------------- hand-built graphs: conversion, layout, pruning


def _tensor(index, name, shape, data=None, dtype=np.float32, sparsity=None):
    return TensorInfo(
        index=index, name=name, shape=tuple(shape), dtype=np.dtype(dtype),
        type_name="FLOAT32", data=data, sparsity=sparsity,
        scale=np.zeros(0, np.float32), zero_point=np.zeros(0, np.int64), quantized_dimension=0,
    )  # fmt: skip


def _tiny_graph():
    """input (1,6,6,2) -> PAD 1 -> CONV 3x3 VALID RELU6 (fp16 sparse kernel via DENSIFY+DEQUANTIZE)
    -> a: DEPTH_TO_SPACE 2 -> RESHAPE (1, -1, 1)  [output "flat"]
    -> b: RESIZE_BILINEAR (12,12) -> ADD const (C,) -> CONCATENATION axis 3 with itself [output "cat"]"""
    w = RNG.normal(size=(4, 3, 3, 2)).astype(np.float16)
    w[np.abs(w) < 0.5] = 0
    # Store the kernel sparse like the BlazePose detector does: O, kh, kw dense; I as CSR.
    rows = w.reshape(36, 2)
    segments = [0]
    indices, values = [], []
    for row in rows:
        nz = np.flatnonzero(row)
        indices += nz.tolist()
        values += row[nz].tolist()
        segments.append(len(indices))
    sparsity = SparsityInfo(
        (0, 1, 2, 3), (),
        (DimensionMetadata(DENSE, 4), DimensionMetadata(DENSE, 3), DimensionMetadata(DENSE, 3),
         DimensionMetadata(SPARSE_CSR, 0, np.array(segments), np.array(indices))),
    )  # fmt: skip
    bias = RNG.normal(size=4).astype(np.float32)
    const = RNG.normal(size=4).astype(np.float32)
    tensors = [
        _tensor(0, "input", (1, 6, 6, 2)),
        _tensor(1, "paddings", (4, 2), np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32), np.int32),
        _tensor(2, "padded", (1, 8, 8, 2)),
        _tensor(3, "w_sparse", (4, 3, 3, 2), np.array(values, np.float16), np.float16, sparsity),
        _tensor(4, "w_fp16", (4, 3, 3, 2), dtype=np.float16),
        _tensor(5, "w", (4, 3, 3, 2)),
        _tensor(6, "bias", (4,), bias),
        _tensor(7, "conv", (1, 6, 6, 4)),
        _tensor(8, "d2s", (1, 12, 12, 1)),
        _tensor(9, "shape", (3,), np.array([1, 144, 1], np.int32), np.int32),
        _tensor(10, "flat", (1, 144, 1)),
        _tensor(11, "size", (2,), np.array([12, 12], np.int32), np.int32),
        _tensor(12, "resized", (1, 12, 12, 4)),
        _tensor(13, "const", (4,), const),
        _tensor(14, "added", (1, 12, 12, 4)),
        _tensor(15, "cat", (1, 12, 12, 8)),
    ]
    ops = [
        OpInfo(0, "PAD", {}, (0, 1), (2,)),
        OpInfo(1, "DENSIFY", {}, (3,), (4,)),
        OpInfo(2, "DEQUANTIZE", {}, (4,), (5,)),
        OpInfo(3, "CONV_2D", {"Padding": 1, "StrideH": 1, "StrideW": 1, "DilationHFactor": 1, "DilationWFactor": 1, "FusedActivationFunction": 3}, (2, 5, 6), (7,)),
        OpInfo(4, "DEPTH_TO_SPACE", {"BlockSize": 2}, (7,), (8,)),
        OpInfo(5, "RESHAPE", {}, (8, 9), (10,)),
        OpInfo(6, "RESIZE_BILINEAR", {"AlignCorners": False, "HalfPixelCenters": True}, (7, 11), (12,)),
        OpInfo(7, "ADD", {"FusedActivationFunction": 0}, (12, 13), (14,)),
        OpInfo(8, "CONCATENATION", {"Axis": 3, "FusedActivationFunction": 0}, (14, 12), (15,)),
    ]
    graph = TFLiteGraph(tuple(tensors), tuple(ops), (0,), (10, 15))
    return graph, w.astype(np.float32), bias, const


def _tiny_reference(x, w, bias, const):
    conv = np.clip(ref_conv_nhwc(x, w, bias, (1, 1), (1, 1), "SAME"), 0, 6)  # PAD 1 + VALID 3x3 == SAME
    flat = ref_depth_to_space_nhwc(conv, 2).reshape(x.shape[0], 144, 1)
    resized = ref_resize_bilinear_nhwc(conv, 12, 12, False, True)
    cat = np.concatenate([resized + const, resized], axis=3)
    return flat, cat


@pytest.mark.parametrize("fold_pads", [True, False])
def test_hand_built_graph_matches_numpy_with_batch(fold_pads):
    graph, w, bias, const = _tiny_graph()
    converted = convert_graph(graph)
    assert [n["op"] for n in converted.nodes] == ["PAD", "CONV_2D", "DEPTH_TO_SPACE", "RESHAPE", "RESIZE_BILINEAR", "ADD", "CONCATENATION"]
    module = TFLiteModule(converted, fold_pads=fold_pads).eval()
    assert any(n.op == "PAD" for n in module.nodes) != fold_pads
    x = RNG.normal(size=(3, 6, 6, 2)).astype(np.float32)  # batch 3 although the graph says 1
    with torch.inference_mode():
        flat, cat = module(nhwc_to_torch(x))
    ref_flat, ref_cat = _tiny_reference(x, w, bias, const)
    assert flat.shape == (3, 144, 1)
    np.testing.assert_allclose(flat.numpy(), ref_flat, atol=1e-4)
    np.testing.assert_allclose(torch_to_nhwc(cat), ref_cat, atol=1e-4)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no oneDNN in this torch build")
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")  # jit.trace is deprecated
def test_prepacked_cpu_convolutions_match_plain_conv2d():
    graph, w, bias, const = _tiny_graph()
    module = TFLiteModule(convert_graph(graph)).eval()
    conv = next(n for n in module.nodes if isinstance(n, Conv2d))
    x = nhwc_to_torch(RNG.normal(size=(2, 6, 6, 2)).astype(np.float32) * 4)  # reaches the RELU6 clamp
    plain_module = TFLiteModule(convert_graph(graph)).eval()
    for node in plain_module.nodes:
        node._prepack = False
    with torch.inference_mode():
        plain = plain_module(x)
    with torch.enable_grad():  # autograd on: F.conv2d (the oneDNN ops have no backward)
        module(x)
    assert not conv._packed
    with torch.inference_mode():
        packed = module(x)
        assert len(conv._packed) == 1  # the oneDNN path really ran
        for ours, ref in zip(packed, plain):
            torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)
        # another batch size and a channels-last input and kernel re-plan the packed kernel
        module.use_channels_last(True)
        again = module(x[:1].contiguous(memory_format=torch.channels_last))
        for ours, ref in zip(again, plain):
            torch.testing.assert_close(ours, ref[:1], rtol=0, atol=1e-5)
        assert len(conv._packed) == 1  # the kernel tensor was replaced: its old packings were dropped
        module(x)  # back to batch 2: a second packed kernel beside the batch-1 one
        assert len(conv._packed) == 2
        # TorchScript tracing records the public F.conv2d graph, not the private oneDNN ops
        traced = torch.jit.trace(module, x, check_trace=False)
        for ours, ref in zip(traced(x), plain):
            torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)
        # float64 (as in the rounding test) falls back to F.conv2d
        double = module.double()(x.double())
        torch.testing.assert_close(double[1].float(), plain[1], rtol=0, atol=1e-4)


def test_pruning_and_round_trip_through_dict():
    graph, w, bias, const = _tiny_graph()
    converted = ConvertedGraph.from_dict(convert_graph(graph).to_dict())
    module = TFLiteModule(converted, outputs=["flat"]).eval()
    assert sorted(n.op for n in module.nodes) == ["CONV_2D", "DEPTH_TO_SPACE", "RESHAPE"]
    x = RNG.normal(size=(1, 6, 6, 2)).astype(np.float32)
    (flat,) = module(nhwc_to_torch(x))
    np.testing.assert_allclose(flat.numpy(), _tiny_reference(x, w, bias, const)[0], atol=1e-4)
    with pytest.raises(ModelError):
        TFLiteModule(converted, outputs=["nope"])
    with pytest.raises(InputError):
        module(torch.zeros(1, 2, 5, 6))


def test_registry_names_its_classes_and_rejects_unknown_runtime_ops():
    assert all(cls.op == name for name, cls in OPS.items())
    graph, *_ = _tiny_graph()
    converted = convert_graph(graph)
    module = TFLiteModule(converted)
    assert all(type(node) is OPS[spec["op"]] for node, spec in zip(module.nodes, converted.nodes[1:]))  # PAD folded
    # A graph converted by an older converter names ops the registry does not know.
    stale = dataclasses.replace(converted, nodes=[dict(n, op="CONV") if n["op"] == "CONV_2D" else n for n in converted.nodes])
    with pytest.raises(ModelError, match="CONV"):
        TFLiteModule(stale)


def test_unsupported_op_and_bad_file_raise_model_error():
    graph, *_ = _tiny_graph()
    bad = TFLiteGraph(graph.tensors, graph.ops + (OpInfo(9, "GATHER_ND", {}, (15,), (15,)),), graph.inputs, graph.outputs)
    with pytest.raises(ModelError, match="GATHER_ND"):
        convert_graph(bad)
    with pytest.raises(ModelError):
        parse_tflite(b"\x00" * 64)


def test_bfloat16_compute_keeps_float32_interface_and_stays_close():
    graph, w, bias, const = _tiny_graph()
    module = TFLiteModule(convert_graph(graph)).eval()
    x = nhwc_to_torch(RNG.normal(size=(2, 6, 6, 2)).astype(np.float32))
    with torch.inference_mode():
        reference = module(x)
        module.set_compute_dtype(torch.bfloat16)
        assert all(n.weight.dtype == torch.bfloat16 for n in module.nodes if isinstance(n, Conv2d))
        low = module(x)  # a float32 input is cast inside
        module.set_compute_dtype(torch.float32)
        back = module(x)
    for ours, ref, restored in zip(low, reference, back):
        assert ours.dtype == torch.float32
        # bf16 has an 8-bit mantissa: ~0.4% relative error per rounding, never more than a few %
        scale = ref.abs().max().item()
        assert 0 < (ours - ref).abs().max().item() <= 0.05 * scale
        torch.testing.assert_close(restored, ref, rtol=0, atol=1e-2 * scale)
    with pytest.raises(ValueError):
        module.set_compute_dtype(torch.float16)
