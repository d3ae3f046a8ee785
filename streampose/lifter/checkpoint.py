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
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from streampose.errors import ModelError
from streampose.modelfile import load_model_file
from streampose.lifter.model import TemporalModel

FORMAT = "streampose.lifter"
FORMAT_VERSION = 1
INPUT_LAYOUTS = ("h36m17", "coco17")


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
    if payload.get("format") == FORMAT:
        weights = _from_streampose(path, payload)
        if causal and not weights.pose.causal:
            raise ModelError(f"{path.name} holds a symmetric (offline) lifter; it cannot run causal. "
                             "Load a causal model for live use.")
        return weights
    if "model_pos" in payload:
        layout = input_layout or ("coco17" if "coco" in path.name.lower() else "h36m17")
        return reference_checkpoint_to_weights(payload, causal=bool(causal), input_layout=layout,
                                               source=path.name)
    raise ModelError(f"{path} is neither a streampose lifter file nor a VideoPose3D checkpoint "
                     f"(keys: {sorted(map(str, payload))[:8]})")


def _from_streampose(path: Path, payload: dict) -> LifterWeights:
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise ModelError(f"{path.name} needs a newer streampose (file format "
                         f"{payload['format_version']}, this version reads {FORMAT_VERSION})")

    def build(entry):
        if entry is None:
            return None
        model = TemporalModel(**entry["config"])
        _load_state(model, entry["state_dict"], path.name)
        return model.eval()

    try:
        return LifterWeights(build(payload["pose"]), build(payload.get("trajectory")),
                             dict(payload.get("metadata", {})))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path.name} is a corrupt lifter weights file: {exc}") from exc


# -- reference checkpoints -----------------------------------------------------------------------------
def infer_architecture(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Read ``filter_widths``, ``channels``, joint counts off a reference state dict's shapes."""
    try:
        expand = state_dict["expand_conv.weight"]  # (C, J_in * 2, W_0)
        shrink = state_dict["shrink.weight"]  # (J_out * 3, C, 1)
    except KeyError as exc:
        raise ModelError(f"not a VideoPose3D temporal model state dict (missing {exc})") from None
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
    # Checkpoints saved from nn.DataParallel prefix every key with "module.".
    state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
    model = TemporalModel(causal=causal, dropout=0.0, **infer_architecture(state_dict))
    _load_state(model, state_dict, source)
    return model.eval()


def reference_checkpoint_to_weights(payload: dict, causal: bool, input_layout: str,
                                    source: str = "checkpoint") -> LifterWeights:
    pose = model_from_reference_state(payload["model_pos"], causal, source)
    traj_state = payload.get("model_traj")
    trajectory = model_from_reference_state(traj_state, causal, source) if traj_state else None
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
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelError(f"{source}: weights do not fit the architecture: {first}") from exc
