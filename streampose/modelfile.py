"""Reading model files without running code from them: one loading path for every model file.

``torch.load`` with full unpickling would execute whatever a downloaded file asks for.  Every
streampose model file (lifter, refiner) and every reference checkpoint we accept is read here:
``weights_only`` loading first; files that also hold non-tensor objects (a VideoPose3D checkpoint's
pickled numpy ``RandomState``) are read by an unpickler that rebuilds tensors and plain containers
only and turns every other object into an inert placeholder.  Unreadable files raise
:class:`~streampose.errors.ModelError` with one line saying why.
"""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from streampose.errors import ModelError


class _Inert:
    """Stands in for any non-tensor object in a checkpoint (optimizer extras, RNG state)."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __call__(self, *args, **kwargs):
        return _Inert()


class _TensorsOnlyUnpickler(pickle.Unpickler):
    # torch.load wraps this class and resolves its own storage/tensor-rebuild names before asking us;
    # everything else that is not a plain container becomes inert instead of being imported and run.
    _ALLOWED = {("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"),
                ("builtins", "slice"), ("builtins", "complex")}
    _DTYPES = {"float32", "float16", "float64", "bfloat16", "int64", "int32", "uint8", "bool", "int8", "int16"}

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        if module.startswith("torch") and name.startswith(("_rebuild", "Size", "device")) or \
                module == "torch._utils" or (module == "torch" and name.endswith("Storage")) or \
                (module == "torch" and name in self._DTYPES):
            return super().find_class(module, name)
        return _Inert


class _TensorsOnlyPickle:
    Unpickler = _TensorsOnlyUnpickler
    load = staticmethod(lambda file, **kw: _TensorsOnlyUnpickler(file, **kw).load())
    __name__ = "streampose_tensors_only_pickle"


def describe_error(exc: BaseException) -> str:
    """``"TypeName: first line of the message"``, for one-line error reports."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__



def load_model_file(path: str | Path, what: str = "model file") -> Any:
    """The object stored in ``path``, on the CPU, without executing code from the file.

    Args:
        path: a ``torch.save`` file.
        what: how error messages name the file (``"lifter weights"``, ``"refiner weights"``).

    Raises:
        ModelError: missing, unreadable, truncated or not a torch file.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"cannot read {what} {path}: is a directory")
    # Read from the open file rather than into memory first: a video passed by mistake must not be
    # loaded whole just to be refused.
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise ModelError(f"cannot read {what} {path}: {describe_error(exc)}") from exc
    # torch warns about unusual pickles on stderr; the file is refused or read either way, and a
    # multi-line library warning is no help to someone who only passed a wrong file.
    with handle, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return torch.load(handle, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            pass  # holds non-tensor objects (reference checkpoints): retry with inert placeholders
        except Exception as exc:  # zip/pickle corruption of any kind
            raise ModelError(f"cannot read {what} {path}: {describe_error(exc)}") from exc
        try:
            handle.seek(0)
            return torch.load(handle, map_location="cpu", weights_only=False,
                              pickle_module=_TensorsOnlyPickle)
        except Exception as exc:
            raise ModelError(f"cannot read {what} {path}: {describe_error(exc)}") from exc
