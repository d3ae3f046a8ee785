"""Reading and writing lifter weights: our own self-describing files and VideoPose3D ``.bin`` checkpoints.

**streampose files** (``streampose/models/lifter_*.pt``) are a ``torch.save``-d dict::

    {"format": "streampose.lifter", "format_version": 1,
     "pose": {"config": TemporalModel.config(), "state_dict": ...},
     "trajectory": {"config": ..., "state_dict": ...} or None,
     "metadata": {"input_layout": "h36m17", "fps": ..., "training_data": ..., "license": ..., ...}}

so a model is rebuilt from the file alone.

**Reference checkpoints** (``pretrained_h36m_*.bin`` from facebookresearch/VideoPose3D) hold
``{"model_pos": state_dict, "model_traj": state_dict or absent/None, "epoch", "lr", "optimizer",
"random_state"}``.  The architecture is read off the parameter shapes: ``expand_conv.weight``
``(C, J_in*2, W_0)``, ``layers_conv.{2b}.weight`` ``(C, C, W_b)``, ``shrink.weight`` ``(J_out*3, C, 1)``.
Whether the model was trained causal is not in the file, so the caller says so; the input joint order
neither (``*coco*`` files take COCO-17 input, the others Human3.6M-17).

Files are unpickled without running arbitrary code, by :func:`streampose.modelfile.load_model_file`.
A file that unpickles but is malformed (a ``model_pos`` that is not a state dict, tensors of the wrong
rank, an architecture that does not take/give 17 joints) raises one :class:`~streampose.errors.ModelError`
line naming the file and what is wrong, never a Python traceback.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from streampose.errors import ModelError
from streampose.modelfile import describe_error, load_model_file
from streampose.lifter.model import TemporalModel

FORMAT = "streampose.lifter"
FORMAT_VERSION = 1
INPUT_LAYOUTS = ("h36m17", "coco17")
# What a malformed file's contents raise when used as a model description (wrong types, missing keys,
# bad shapes); turned into one ModelError line.
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError, AssertionError, RuntimeError,
              OverflowError)


@dataclass
class LifterWeights:
    """Everything a weights file holds: eval-mode models and their metadata."""

    pose: TemporalModel
    trajectory: TemporalModel | None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def input_layout(self) -> str:
        return self.metadata.get("input_layout", "h36m17")


# -- our own format ------------------------------------------------------------------------------------
def save_lifter_weights(path: str | Path, pose: TemporalModel, trajectory: TemporalModel | None,
                        metadata: dict[str, Any]) -> None:
    """Write a self-describing weights file (architecture + weights + metadata)."""
    layout = metadata.get("input_layout")
    if layout not in INPUT_LAYOUTS:
        raise ValueError(f"metadata['input_layout'] must be one of {INPUT_LAYOUTS}, got {layout!r}")

    def entry(model: TemporalModel | None):
        if model is None:
            return None
        return {"config": model.config(), "state_dict": {k: v.detach().cpu().clone()
                                                          for k, v in model.state_dict().items()}}

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "pose": entry(pose),
                "trajectory": entry(trajectory), "metadata": dict(metadata)}, path)


def load_lifter_weights(path: str | Path, *, causal: bool | None = None,
                        input_layout: str | None = None) -> LifterWeights:
    """Load a streampose weights file or a VideoPose3D ``.bin`` checkpoint.

    Args:
        path: the file.
        causal: for reference checkpoints, whether the model was trained causal (default False).  For
            streampose files the stored architecture decides; asking ``causal=True`` of a symmetric
            model is an error (its weights expect future frames).
        input_layout: ``"h36m17"`` or ``"coco17"``; only needed for reference checkpoints whose file
            name does not say (``*coco*`` -> COCO-17, otherwise Human3.6M-17).

    Raises:
        ModelError: missing, unreadable or unrecognised file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"lifter weights not found: {path}")
    if input_layout is not None and input_layout not in INPUT_LAYOUTS:
        raise ModelError(f"input_layout must be one of {INPUT_LAYOUTS}, got {input_layout!r}")
    payload = load_model_file(path, "lifter weights")
    if not isinstance(payload, dict):
        raise ModelError(f"{path} is not a lifter weights file (top level is {type(payload).__name__})")
    try:
        if payload.get("format") == FORMAT:
            weights = _from_streampose(path, payload)
            if causal and not weights.pose.causal:
                raise ModelError(f"{path.name} holds a symmetric (offline) lifter; it cannot run causal. "
                                 "Load a causal model for live use.")
        elif "model_pos" in payload:
            layout = input_layout or ("coco17" if "coco" in path.name.lower() else "h36m17")
            weights = reference_checkpoint_to_weights(payload, causal=bool(causal), input_layout=layout,
                                                      source=path.name)
        else:
            raise ModelError(f"{path} is neither a streampose lifter file nor a VideoPose3D checkpoint "
                             f"(keys: {sorted(map(str, payload))[:8]})")
        _check_joints(weights, path.name)
    except ModelError:
        raise
    except _MALFORMED as exc:  # whatever the checks above did not foresee: still one line
        raise ModelError(f"{path.name} is a malformed lifter weights file ({describe_error(exc)})") from exc
    return weights


def _check_joints(weights: LifterWeights, source: str) -> None:
    """The pipeline feeds 17 2D joints and reads 17 3D joints (+ a 1-joint trajectory): a model with
    other counts would load and then fail on the first frame, deep in a stage."""
    if weights.input_layout not in INPUT_LAYOUTS:
        raise ModelError(f"{source}: metadata input_layout must be one of {INPUT_LAYOUTS}, "
                         f"got {weights.input_layout!r}")
    pose = weights.pose
    got = (pose.num_joints_in, pose.in_features, pose.num_joints_out)
    if got != (17, 2, 17):
        raise ModelError(f"{source}: the pose model takes {got[0]} joints x {got[1]} values and gives "
                         f"{got[2]} joints; streampose needs 17 x 2 in and 17 out")
    traj = weights.trajectory
    if traj is not None and (traj.num_joints_in, traj.in_features, traj.num_joints_out) != (17, 2, 1):
        raise ModelError(f"{source}: the trajectory model must take 17 x 2 values and give 1 joint, "
                         f"got {traj.num_joints_in} x {traj.in_features} -> {traj.num_joints_out}")


def _from_streampose(path: Path, payload: dict) -> LifterWeights:
    version = payload.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelError(f"{path.name} is a corrupt lifter weights file: format_version is {version!r}")
    if version > FORMAT_VERSION:
        raise ModelError(f"{path.name} needs a newer streampose (file format "
                         f"{version}, this version reads {FORMAT_VERSION})")

    def build(key):
        entry = payload.get(key)
        if entry is None and key == "trajectory":
            return None
        if not isinstance(entry, Mapping) or not isinstance(entry.get("config"), Mapping):
            what = _kind(entry) if not isinstance(entry, Mapping) else f"its config is {_kind(entry.get('config'))}"
            raise ModelError(f"{path.name} is a corrupt lifter weights file: '{key}' must be "
                             f"{{'config': {{...}}, 'state_dict': {{...}}}} ({what})")
        model = TemporalModel(**entry["config"])
        _load_state(model, _state_dict(entry.get("state_dict"), f"{key}.state_dict", path.name), path.name)
        return model.eval()

    metadata = payload.get("metadata", {})
    if not isinstance(metadata, Mapping):
        raise ModelError(f"{path.name} is a corrupt lifter weights file: metadata is {_kind(metadata)}")
    try:
        return LifterWeights(build("pose"), build("trajectory"), dict(metadata))
    except _MALFORMED as exc:
        raise ModelError(f"{path.name} is a corrupt lifter weights file: {describe_error(exc)}") from exc


def _kind(value: Any) -> str:
    """How an error message names an unexpected value: its type (pickled objects show as inert)."""
    return "missing" if value is None else f"a {type(value).__name__}"


def _state_dict(value: Any, what: str, source: str) -> dict[str, torch.Tensor]:
    """``value`` if it is a non-empty ``{name: tensor}`` mapping, else one clear ModelError."""
    if not isinstance(value, Mapping) or not value:
        empty = isinstance(value, Mapping)
        raise ModelError(f"{source}: '{what}' is not a model state dict "
                         f"({'empty' if empty else _kind(value)})")
    bad = [str(k) for k, v in value.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelError(f"{source}: '{what}' holds entries that are not tensors: {', '.join(bad[:3])}"
                         + (f" and {len(bad) - 3} more" if len(bad) > 3 else ""))
    return dict(value)


# -- reference checkpoints -----------------------------------------------------------------------------
def infer_architecture(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Read ``filter_widths``, ``channels``, joint counts off a reference state dict's shapes."""
    try:
        expand = state_dict["expand_conv.weight"]  # (C, J_in * 2, W_0)
        shrink = state_dict["shrink.weight"]  # (J_out * 3, C, 1)
    except KeyError as exc:
        raise ModelError(f"not a VideoPose3D temporal model state dict (missing {exc})") from None
    if not (isinstance(expand, torch.Tensor) and isinstance(shrink, torch.Tensor)
            and expand.ndim == 3 and shrink.ndim == 3):
        raise ModelError("not a VideoPose3D temporal model state dict (expand_conv.weight and "
                         "shrink.weight must be 3-D conv weights)")
    # Dilated conv of block b is layers_conv.{2b}; layers_conv.{2b+1} is its 1x1 partner.
    indices = sorted(int(m.group(1)) for key in state_dict
                     if (m := re.fullmatch(r"layers_conv\.(\d+)\.weight", key)))
    widths = [int(expand.shape[2])] + [int(state_dict[f"layers_conv.{i}.weight"].shape[2])
                                       for i in indices if i % 2 == 0]
    if expand.shape[1] % 2 or shrink.shape[0] % 3:
        raise ModelError(f"unexpected shapes: expand_conv {tuple(expand.shape)}, shrink {tuple(shrink.shape)}")
    return {"filter_widths": widths, "channels": int(expand.shape[0]),
            "num_joints_in": int(expand.shape[1]) // 2, "num_joints_out": int(shrink.shape[0]) // 3}


def model_from_reference_state(state_dict: dict[str, torch.Tensor], causal: bool = False,
                               source: str = "checkpoint") -> TemporalModel:
    """Build an eval-mode :class:`TemporalModel` from a reference ``model_pos``/``model_traj`` dict."""
    state_dict = _state_dict(state_dict, "model_pos/model_traj", source)
    # Checkpoints saved from nn.DataParallel prefix every key with "module.".
    state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
    try:
        architecture = infer_architecture(state_dict)
    except ModelError as exc:
        raise ModelError(f"{source}: {exc}") from None
    model = TemporalModel(causal=causal, dropout=0.0, **architecture)
    _load_state(model, state_dict, source)
    return model.eval()


def reference_checkpoint_to_weights(payload: dict, causal: bool, input_layout: str,
                                    source: str = "checkpoint") -> LifterWeights:
    pose = model_from_reference_state(_state_dict(payload["model_pos"], "model_pos", source), causal, source)
    traj_state = payload.get("model_traj")
    # Absent, None or empty: the reference script saves no trajectory model for some runs.
    has_traj = traj_state is not None and not (isinstance(traj_state, Mapping) and not traj_state)
    trajectory = (model_from_reference_state(_state_dict(traj_state, "model_traj", source), causal, source)
                  if has_traj else None)
    if trajectory is not None and trajectory.receptive_field != pose.receptive_field:
        raise ModelError(f"{source}: pose and trajectory receptive fields differ "
                         f"({pose.receptive_field} vs {trajectory.receptive_field})")
    metadata = {"input_layout": input_layout, "source": source, "origin": "VideoPose3D reference checkpoint",
                "license": "see the checkpoint's origin (VideoPose3D weights are CC BY-NC 4.0)",
                "epoch": payload.get("epoch") if isinstance(payload.get("epoch"), int) else None}
    return LifterWeights(pose, trajectory, metadata)


def _load_state(model: TemporalModel, state_dict: dict, source: str) -> None:
    try:
        model.load_state_dict(state_dict, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"{source}: weights do not fit the architecture: {first}") from exc
