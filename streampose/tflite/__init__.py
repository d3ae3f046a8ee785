"""TFLite -> PyTorch converter: read a ``.tflite`` flatbuffer, convert it once, run it as a module.

Pipeline and modules:

* :mod:`~streampose.tflite.graph` -- :func:`parse_tflite`: flatbuffer -> :class:`TFLiteGraph`
  (plain dataclasses, constant data as stored).
* :mod:`~streampose.tflite.convert` -- :func:`convert_graph`: -> :class:`ConvertedGraph` (node specs
  of builtins + float32 torch weights; cacheable with ``torch.save(weights_only=True)``).
* :mod:`~streampose.tflite.module` -- :class:`TFLiteModule`: the runnable, pruned ``nn.Module``.
* :mod:`~streampose.tflite.ops` / :mod:`~streampose.tflite.conv` -- one class per supported TFLite
  op, holding both its converter and its runtime implementation; :data:`OPS` is the registry.
* :mod:`~streampose.tflite.functional` / :mod:`~streampose.tflite.constants` -- TFLite semantics as
  torch functions, and the load-time numpy work on weights (densify, dequantize, layout).

Example::

    graph = convert_graph(parse_tflite("pose_landmark_full.tflite"))
    net = TFLiteModule(graph, outputs=["Identity", "Identity_4"]).eval()
    with torch.inference_mode():
        landmarks, world = net(image_nchw)
"""

from streampose.tflite.convert import ConvertedGraph, convert_graph
from streampose.tflite.graph import TFLiteGraph, parse_tflite
from streampose.tflite.module import TFLiteModule
from streampose.tflite.ops import OPS

__all__ = ["OPS", "ConvertedGraph", "TFLiteGraph", "TFLiteModule", "convert_graph", "parse_tflite"]
