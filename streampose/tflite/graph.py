"""Parse a TFLite flatbuffer into a plain, framework-free op list.

The ``tflite`` package only gives lazy flatbuffer accessors; this module copies what the converter
needs into small dataclasses once, so the rest of the code never touches flatbuffer objects:

* :class:`TensorInfo` -- shape (TFLite layout, i.e. NHWC for images), dtype, constant data (raw,
  still fp16 / still sparse as stored), sparsity metadata, quantization scale / zero point.
* :class:`OpInfo` -- builtin op name, decoded builtin options (a dict of python scalars), input and
  output tensor indices (``-1`` marks an omitted optional input, as in TFLite).
* :class:`TFLiteGraph` -- tensors, ops in execution (topological) order, graph inputs / outputs.

Only the first subgraph is read (the BlazePose models have exactly one).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tflite

from streampose.errors import ModelError

__all__ = [
    "DimensionMetadata",
    "SparsityInfo",
    "TensorInfo",
    "OpInfo",
    "TFLiteGraph",
    "parse_tflite",
]

_BUILTIN_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_OPTIONS_CLASS_NAMES = {v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")}

# TFLite TensorType -> numpy dtype for the types that can hold constant data we understand.
_NUMPY_DTYPES = {
    tflite.TensorType.FLOAT32: np.dtype("<f4"),
    tflite.TensorType.FLOAT16: np.dtype("<f2"),
    tflite.TensorType.FLOAT64: np.dtype("<f8"),
    tflite.TensorType.INT32: np.dtype("<i4"),
    tflite.TensorType.INT64: np.dtype("<i8"),
    tflite.TensorType.INT16: np.dtype("<i2"),
    tflite.TensorType.INT8: np.dtype("i1"),
    tflite.TensorType.UINT8: np.dtype("u1"),
    tflite.TensorType.BOOL: np.dtype("?"),
}

_INDEX_VECTOR_CLASSES = {
    tflite.SparseIndexVector.Int32Vector: tflite.Int32Vector,
    tflite.SparseIndexVector.Uint16Vector: tflite.Uint16Vector,
    tflite.SparseIndexVector.Uint8Vector: tflite.Uint8Vector,
}

DENSE = tflite.DimensionType.DENSE
SPARSE_CSR = tflite.DimensionType.SPARSE_CSR


@dataclasses.dataclass(frozen=True)
class DimensionMetadata:
    """One traversal dimension of a sparse tensor.

    ``format`` is ``DENSE`` (then only ``dense_size`` matters) or ``SPARSE_CSR`` (then ``segments``
    has one more entry than the number of parent positions and ``indices`` lists the stored
    coordinates of this dimension, CSR style).
    """

    format: int
    dense_size: int
    segments: np.ndarray | None = None
    indices: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class SparsityInfo:
    """TFLite ``SparsityParameters``.

    ``traversal_order`` lists the order in which the (original + block) dimensions are traversed;
    its first ``rank`` entries are a permutation of the original dims, the rest are block dims.
    ``block_map[i]`` names the original dim that block dim ``rank + i`` subdivides.
    ``dim_metadata`` has one entry per traversal dimension, in traversal order.
    """

    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...]
    dim_metadata: tuple[DimensionMetadata, ...]


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """A tensor of the graph.

    ``shape`` is the TFLite shape (NHWC for 4D activations).  ``data`` is the constant payload as
    stored in the file (flat when ``sparsity`` is set, else reshaped to ``shape``), or ``None`` for
    activations.  ``scale`` / ``zero_point`` are per-tensor or per-channel quantization parameters
    (empty when the tensor is not quantized).
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype | None
    type_name: str
    data: np.ndarray | None
    sparsity: SparsityInfo | None
    scale: np.ndarray
    zero_point: np.ndarray
    quantized_dimension: int

    @property
    def is_constant(self) -> bool:
        return self.data is not None


@dataclasses.dataclass(frozen=True)
class OpInfo:
    """One operator: builtin name, decoded options, input / output tensor indices (-1 = omitted)."""

    index: int
    opcode: str
    options: dict
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class TFLiteGraph:
    """The first subgraph of a model: tensors, ops (topological order), inputs and outputs."""

    tensors: tuple[TensorInfo, ...]
    ops: tuple[OpInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def output_names(self) -> list[str]:
        return [self.tensors[i].name for i in self.outputs]


def _decode_options(op) -> dict:
    """Builtin options table -> dict of python scalars, read through the generated accessors."""
    options = op.BuiltinOptions()
    if options is None:
        return {}
    class_name = _OPTIONS_CLASS_NAMES.get(op.BuiltinOptionsType())
    if class_name is None or not hasattr(tflite, class_name):
        return {}
    table = getattr(tflite, class_name)()
    table.Init(options.Bytes, options.Pos)
    decoded = {}
    for attr in dir(table):
        # Generated accessors are CamelCase methods; skip helpers and vector-length variants.
        if not attr[:1].isupper() or attr == "Init" or attr.startswith("GetRootAs"):
            continue
        if attr.endswith(("Length", "IsNone", "AsNumpy", "BufferHasIdentifier")):
            continue
        as_numpy = getattr(table, attr + "AsNumpy", None)
        if as_numpy is not None:  # vector field (e.g. ReshapeOptions.NewShape)
            values = as_numpy()
            value = [] if isinstance(values, int) else values.tolist()
        else:
            value = getattr(table, attr)()
        if isinstance(value, (bool, int, float, list)) or value is None:
            decoded[attr] = value
    return decoded


def _index_vector(dim, kind: str) -> np.ndarray | None:
    vector_type = getattr(dim, f"Array{kind}Type")()
    table = getattr(dim, f"Array{kind}")()
    if table is None or vector_type not in _INDEX_VECTOR_CLASSES:
        return None
    vector = _INDEX_VECTOR_CLASSES[vector_type]()
    vector.Init(table.Bytes, table.Pos)
    values = vector.ValuesAsNumpy()
    return np.asarray(values if not isinstance(values, int) else [], dtype=np.int64)


def _read_sparsity(tensor) -> SparsityInfo | None:
    sparsity = tensor.Sparsity()
    if sparsity is None:
        return None
    dims = []
    for k in range(sparsity.DimMetadataLength()):
        dim = sparsity.DimMetadata(k)
        if dim.Format() == SPARSE_CSR:
            dims.append(DimensionMetadata(SPARSE_CSR, 0, _index_vector(dim, "Segments"), _index_vector(dim, "Indices")))
        else:
            dims.append(DimensionMetadata(DENSE, int(dim.DenseSize())))
    traversal = sparsity.TraversalOrderAsNumpy()
    block_map = sparsity.BlockMapAsNumpy()
    return SparsityInfo(
        traversal_order=tuple(int(v) for v in (traversal if not isinstance(traversal, int) else [])),
        block_map=tuple(int(v) for v in (block_map if not isinstance(block_map, int) else [])),
        dim_metadata=tuple(dims),
    )


def _buffer_bytes(model, buffer_index: int, raw: bytes) -> bytes | None:
    if buffer_index <= 0 or buffer_index >= model.BuffersLength():
        return None
    buffer = model.Buffers(buffer_index)
    # Models over 2 GB keep payloads after the flatbuffer, addressed by offset / size.
    if buffer.Offset() > 1:
        return raw[buffer.Offset() : buffer.Offset() + buffer.Size()]
    if buffer.DataLength() == 0:
        return None
    return buffer.DataAsNumpy().tobytes()


def _read_tensor(model, subgraph, index: int, raw: bytes) -> TensorInfo:
    tensor = subgraph.Tensors(index)
    shape = tuple(int(v) for v in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    type_code = tensor.Type()
    type_name = next((k for k, v in vars(tflite.TensorType).items() if v == type_code), str(type_code))
    dtype = _NUMPY_DTYPES.get(type_code)
    sparsity = _read_sparsity(tensor)
    payload = _buffer_bytes(model, tensor.Buffer(), raw)
    data = None
    if payload is not None:
        if dtype is None:
            raise ModelError(f"tensor {index} has unsupported constant type {type_name}")
        data = np.frombuffer(payload, dtype=dtype).copy()
        if sparsity is None:
            data = data.reshape(shape)
    scale = np.zeros(0, np.float32)
    zero_point = np.zeros(0, np.int64)
    quantized_dimension = 0
    quant = tensor.Quantization()
    if quant is not None and quant.ScaleLength() > 0:
        scale = quant.ScaleAsNumpy().astype(np.float32)
        zero_point = quant.ZeroPointAsNumpy().astype(np.int64) if quant.ZeroPointLength() else np.zeros_like(scale, np.int64)
        quantized_dimension = int(quant.QuantizedDimension())
    return TensorInfo(
        index=index,
        name=(tensor.Name() or b"").decode("utf-8", "replace"),
        shape=shape,
        dtype=dtype,
        type_name=type_name,
        data=data,
        sparsity=sparsity,
        scale=scale,
        zero_point=zero_point,
        quantized_dimension=quantized_dimension,
    )


def parse_tflite(source: str | Path | bytes) -> TFLiteGraph:
    """Read a ``.tflite`` file (path or bytes) into a :class:`TFLiteGraph`.

    Raises:
        ModelError: the file is missing, not a TFLite flatbuffer, or uses custom ops.
    """
    if isinstance(source, (str, Path)):
        try:
            raw = Path(source).read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read TFLite model {source}: {exc.strerror}") from exc
    else:
        raw = bytes(source)
    if len(raw) < 8 or raw[4:8] != b"TFL3":
        raise ModelError("not a TFLite flatbuffer (missing 'TFL3' identifier)")
    model = tflite.Model.GetRootAsModel(raw, 0)
    if model.SubgraphsLength() < 1:
        raise ModelError("TFLite model has no subgraph")
    subgraph = model.Subgraphs(0)
    tensors = tuple(_read_tensor(model, subgraph, i, raw) for i in range(subgraph.TensorsLength()))
    ops = []
    for i in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        # Newer files store codes > 127 only in BuiltinCode; old ones only in DeprecatedBuiltinCode.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = _BUILTIN_OP_NAMES.get(builtin, f"UNKNOWN_{builtin}")
        if name == "CUSTOM":
            custom = (code.CustomCode() or b"?").decode()
            raise ModelError(f"TFLite model uses custom op {custom!r}, which the converter does not support")
        ops.append(
            OpInfo(
                index=i,
                opcode=name,
                options=_decode_options(op),
                inputs=tuple(int(v) for v in op.InputsAsNumpy()) if op.InputsLength() else (),
                outputs=tuple(int(v) for v in op.OutputsAsNumpy()) if op.OutputsLength() else (),
            )
        )
    return TFLiteGraph(
        tensors=tensors,
        ops=tuple(ops),
        inputs=tuple(int(v) for v in subgraph.InputsAsNumpy()),
        outputs=tuple(int(v) for v in subgraph.OutputsAsNumpy()),
    )
