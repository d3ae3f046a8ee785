"""Load-time numpy work on constant tensors: decompression and layout.

TFLite files store weights compressed (sparse, fp16 or integer-quantized) and in TensorFlow
layout; these helpers undo both once, at conversion, so nothing of it runs per frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streampose.errors import ModelError
from streampose.tflite.graph import DENSE, SparsityInfo

__all__ = ["densify", "dequantize", "conv_weight_to_torch", "depthwise_weight_to_torch"]


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
