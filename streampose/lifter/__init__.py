"""Stage 3: VideoPose3D-style 2D->3D lifter (dilated temporal convolutions), offline and streaming."""
from streampose.lifter.api import Lifter, LiftResult, LifterStream, load_lifter
from streampose.lifter.layout import coco_keypoints, lifter_input  # noqa: F401 -- the input-layout adaptation
from streampose.lifter.model import TemporalModel, temporal_model, trajectory_model

__all__ = ["Lifter", "LiftResult", "LifterStream", "load_lifter", "TemporalModel", "temporal_model",
           "trajectory_model"]
