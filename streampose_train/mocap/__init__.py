"""Mocap training data: BVH reading, forward kinematics, rig -> H36M-17 mapping, datasets,
virtual cameras and a 2D detector noise model (see docs/ARCHITECTURE.md)."""
from streampose_train.mocap.bvh import BvhClip, euler_to_matrix, forward_kinematics, parse_bvh, read_bvh
from streampose_train.mocap.dataset import (
    MocapClip, holdout_names, load_mocap, resample, shared_data_dir, split_clips,
)
from streampose.camera import CameraIntrinsics
from streampose_train.filming import FilmedClip, VirtualCamera, film, world_to_camera
from streampose_train.mocap.noise import Noise2D, flip_pose_2d, flip_pose_3d
from streampose_train.mocap.rigs import RIGS, RigSpec, bone_lengths, clip_to_h36m, detect_rig

__all__ = [
    "BvhClip", "CameraIntrinsics", "FilmedClip", "film", "MocapClip", "Noise2D", "VirtualCamera", "flip_pose_2d",
    "flip_pose_3d", "world_to_camera", "RIGS", "RigSpec", "bone_lengths", "clip_to_h36m", "detect_rig",
    "euler_to_matrix", "forward_kinematics", "holdout_names", "load_mocap", "parse_bvh",
    "read_bvh", "resample", "shared_data_dir", "split_clips",
]
