"""The 2D a lifter takes, in its own input layout (joint order).

The 2D stage reports H36M-17 keypoints; streampose's lifters take exactly those.  VideoPose3D's COCO
checkpoints were trained on COCO-17 detections instead, so for them the BlazePose landmarks are
mapped to COCO order (the H36M keypoints cannot be: some H36M joints are blends of several
landmarks, and COCO's face and ear points are not among them).
"""
from __future__ import annotations

import numpy as np

from streampose.errors import StreamposeError
from streampose.skeleton import BLAZEPOSE_TO_COCO, map_confidence, map_joints
from streampose.types import Person2D


def coco_keypoints(person2d: Person2D) -> np.ndarray:
    """``(17, 3)`` COCO-order ``[x, y, confidence]`` pixels from the BlazePose landmarks of ``person2d``.

    Raises:
        StreamposeError: ``person2d`` carries no BlazePose landmarks (a 2D stage of another kind).
    """
    if person2d.landmarks33 is None:
        raise StreamposeError("a COCO-input lifter needs BlazePose landmarks from the 2D stage")
    landmarks = np.asarray(person2d.landmarks33, dtype=np.float32)
    xy = map_joints(landmarks[:, :2], BLAZEPOSE_TO_COCO)
    confidence = map_confidence(landmarks[:, 3], BLAZEPOSE_TO_COCO)
    return np.concatenate([xy, confidence[:, None]], axis=1).astype(np.float32)


def lifter_input(person2d: Person2D, keypoints2d: np.ndarray, input_layout: str) -> np.ndarray:
    """The ``(17, 3)`` pixel keypoints to push into a lifter whose input is ``input_layout``.

    Args:
        person2d: the 2D stage's person (its landmarks feed a ``"coco17"`` lifter).
        keypoints2d: ``(17, 3)`` H36M-17 keypoints chosen for an ``"h36m17"`` lifter (raw or
            smoothed: the caller's choice), returned as they are.
        input_layout: the lifter's :attr:`~streampose.lifter.Lifter.input_layout`.
    """
    if input_layout == "coco17":
        return coco_keypoints(person2d)
    return keypoints2d
