"""Stage 2: 2D pose (BlazePose detector + landmark model converted from TFLite to PyTorch)."""

from streampose.pose2d.weights import (
    BlazePoseFiles,
    LandmarkOutputs,
    ensure_blazepose_models,
    load_detector,
    load_landmark_model,
)

__all__ = [
    "BlazePoseFiles",
    "LandmarkOutputs",
    "ensure_blazepose_models",
    "load_detector",
    "load_landmark_model",
]
