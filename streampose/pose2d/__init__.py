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

# Detector -> ROI -> landmarks, tracking and readout (engineer C).
from streampose.pose2d.detection import PoseDetection, PoseDetector
from streampose.pose2d.estimator import PoseEstimator2D
from streampose.pose2d.readout import IntegralOptions, integral_readout, soft_argmax_2d

__all__ += [
    "PoseDetection",
    "PoseDetector",
    "PoseEstimator2D",
    "IntegralOptions",
    "integral_readout",
    "soft_argmax_2d",
]
