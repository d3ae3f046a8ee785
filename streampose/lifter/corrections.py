"""The optional per-track 3D corrections after lifting, in one object the tracker and benchmarks share.

Order: fusion with BlazePose's world landmarks, then the track's bone lengths, then reprojection
onto the 2D (which uses those bone lengths).  See :mod:`streampose.lifter.fusion` and
:mod:`streampose.lifter.reproject` for what each does and why.

The world landmarks come from one image each, so they jitter far more than the temporal lifter
(on the shared videos, averaging them in per frame raised 3D jitter 1.4-2.5x).  What they add is
mostly slow -- the shape of the body the lifter gets wrong (straight legs, proportions) -- so the
fusion low-passes the *correction* (aligned world landmarks minus the lifter's pose) with a causal
exponential filter of time constant ``fusion_time_constant`` and adds ``world_fusion`` times it:
the lifter's motion stays as it is, without delay, and only the shape correction is smoothed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streampose.lifter.fusion import BoneLengths, fuse_world_landmarks
from streampose.lifter.reproject import reproject_consistent
from streampose.skeleton import BLAZEPOSE_TO_H36M, map_joints


@dataclass
class PoseCorrections:
    """One track's corrections; call it on each lifted frame, in frame order.

    Attributes:
        world_fusion: share of the world landmarks in ``[0, 1]`` (0: off).
        bone_lengths: impose the running-median bone lengths.
        reproject: share of the 2D-consistent rebuild in ``[0, 1]`` (0: off).
        fps: the track's frame rate (for the fusion filter).
        fusion_time_constant: seconds; 0 fuses each frame's landmarks as they are.
    """

    world_fusion: float = 0.0
    bone_lengths: bool = False
    reproject: float = 0.0
    fps: float = 30.0
    fusion_time_constant: float = 0.2
    bones: BoneLengths = field(default_factory=BoneLengths, repr=False)
    _correction: np.ndarray | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.world_fusion > 0 or self.bone_lengths or self.reproject > 0

    def __call__(self, keypoints3d: np.ndarray, keypoints2d: np.ndarray, world33: np.ndarray | None) -> np.ndarray:
        """Correct one frame.

        Args:
            keypoints3d: ``(17, 3)`` lifter pose, root-relative metres, camera axes.
            keypoints2d: ``(17, 3)`` the H36M-17 2D the lifter was given (pixels + confidence).
            world33: ``(33, 3)`` BlazePose world landmarks of the frame, or ``None``.

        Returns:
            ``(17, 3)`` float32 root-relative pose.
        """
        pose = np.asarray(keypoints3d, dtype=np.float64)
        if self.world_fusion > 0 and world33 is not None:
            world = map_joints(np.asarray(world33, dtype=np.float64), BLAZEPOSE_TO_H36M)
            correction = fuse_world_landmarks(pose, world, 1.0).astype(np.float64) - (pose - pose[:1])
            if self._correction is None or self.fusion_time_constant <= 0:
                self._correction = correction
            else:
                alpha = 1.0 - np.exp(-1.0 / max(self.fps * self.fusion_time_constant, 1e-9))
                self._correction = self._correction + alpha * (correction - self._correction)
            pose = pose - pose[:1] + self.world_fusion * self._correction
        if self.bone_lengths or self.reproject > 0:
            with_bones = self.bones(pose)
            if self.bone_lengths:
                pose = with_bones
        if self.reproject > 0:
            pose = reproject_consistent(pose, keypoints2d, self.bones.lengths(), weight=self.reproject)
        return np.asarray(pose, dtype=np.float32)
