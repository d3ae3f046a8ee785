"""Semi-supervised lifting on real video: back-project the lifted pose onto the 2D it came from.

VideoPose3D's back-projection (paper Sec. 4): unlabeled video is lifted, the 3D is projected back to
2D and compared with the input keypoints, and a bone-length term keeps the unlabeled predictions'
mean bone lengths close to the labeled ones' so the network cannot simply flatten the pose.

The paper projects with the camera's intrinsics and a regressed trajectory.  Our unlabeled videos
come without intrinsics, so each predicted pose is projected *weak-perspective*: the image-plane
scale and offset that best map its ``x, y`` onto the 2D keypoints are solved in closed form (a
function of the prediction, so the loss stays differentiable) and the remaining residual, weighted by
the detector's confidence, is the loss.  It is invariant to focal length and distance, and leaves
depth to the supervised loss and the bone-length term.

Real 2D comes from :mod:`streampose_train.blazepose_real` (our own 2D stage on the shared videos,
never the calibrated evaluation clip).
"""
from __future__ import annotations

import numpy as np
import torch

from streampose.skeleton import H36M17

_BONES = torch.as_tensor(np.array(H36M17.bones))


def weak_perspective_residual(pose: torch.Tensor, kp2d: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
    """Confidence-weighted mean 2D distance after the best image-plane scale + offset.

    Args:
        pose: ``(B, J, 3)`` predicted poses (camera axes; only ``x, y`` are projected).
        kp2d: ``(B, J, 2)`` the input 2D (normalised screen coordinates).
        confidence: ``(B, J)`` non-negative weights.

    Returns:
        scalar: ``sum_bj w_bj |s_b * pose_bj,xy + t_b - kp_bj| / sum w``.
    """
    w = confidence.clamp(min=0.0)
    wn = w / w.sum(dim=1, keepdim=True).clamp(min=1e-9)
    xy = pose[..., :2]
    mean_p = (wn[..., None] * xy).sum(1, keepdim=True)
    mean_q = (wn[..., None] * kp2d).sum(1, keepdim=True)
    p, q = xy - mean_p, kp2d - mean_q
    scale = (wn[..., None] * p * q).sum((1, 2)) / (wn[..., None] * p * p).sum((1, 2)).clamp(min=1e-9)
    projected = scale[:, None, None] * p + mean_q
    distance = torch.linalg.vector_norm(projected - kp2d, dim=-1)
    return (w * distance).sum() / w.sum().clamp(min=1e-9)


def bone_lengths(pose: torch.Tensor) -> torch.Tensor:
    """``(..., 17, 3) -> (..., B)`` bone lengths in ``H36M17.bones`` order."""
    return torch.linalg.vector_norm(pose[..., _BONES[:, 0], :] - pose[..., _BONES[:, 1], :], dim=-1)


def bone_length_loss(unlabeled: torch.Tensor, labeled: torch.Tensor) -> torch.Tensor:
    """Paper's bone-length L2 term: batch-mean bone lengths of unlabeled vs labeled poses.

    Args:
        unlabeled: ``(B, 17, 3)`` predictions on real video.
        labeled: ``(B', 17, 3)`` poses of the labeled batch (ground truth or predictions).
    """
    return ((bone_lengths(unlabeled).mean(0) - bone_lengths(labeled).mean(0)) ** 2).mean()


class RealWindows:
    """Input windows of real 2D tracks for the strided training pass.

    Args:
        tracks: list of ``(T, 17, 3)`` arrays of normalised screen coordinates + confidence.
        receptive_field, causal: as the model's.
    """

    def __init__(self, tracks: list[np.ndarray], receptive_field: int, causal: bool):
        if not tracks:
            raise ValueError("RealWindows: no real 2D tracks")
        pad = receptive_field // 2
        left, right = (2 * pad, 0) if causal else (pad, pad)
        self.receptive_field = receptive_field
        self.target = 2 * pad if causal else pad
        padded, starts, offset = [], [], 0
        for track in tracks:
            track = np.asarray(track, dtype=np.float32)
            padded.append(np.concatenate([np.repeat(track[:1], left, 0), track, np.repeat(track[-1:], right, 0)]))
            starts.append(offset + np.arange(len(track)))
            offset += len(padded[-1])
        self.frames = np.concatenate(padded)
        self.starts = np.concatenate(starts)

    def __len__(self) -> int:
        return len(self.starts)

    def batch(self, size: int, rng: np.random.Generator, flip: bool = True
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x (B, R, 17, 2), kp (B, 17, 2) the target frame's 2D, confidence (B, 17))``."""
        idx = rng.integers(0, len(self.starts), size)
        windows = self.frames[self.starts[idx][:, None] + np.arange(self.receptive_field)]   # (B, R, 17, 3)
        if flip:
            mirrored = rng.random(size) < 0.5
            perm = H36M17.flip_permutation
            windows[mirrored] = windows[mirrored][..., perm, :] * np.array([-1.0, 1.0, 1.0], np.float32)
        x = torch.from_numpy(np.ascontiguousarray(windows[..., :2]))
        centre = torch.from_numpy(np.ascontiguousarray(windows[:, self.target]))
        return x, centre[..., :2], centre[..., 2]


def load_real_tracks(videos_dir=None, min_frames: int = 27) -> tuple[list[np.ndarray], list[str]]:
    """The cached real 2D tracks (normalised + confidence) and the video each came from.

    Runs the 2D stage on the shared videos the first time (see :mod:`streampose_train.blazepose_real`).
    """
    from streampose.camera import normalize_screen_coordinates
    from streampose_train import blazepose_real
    from streampose_train.mocap import shared_data_dir

    folder = videos_dir or (shared_data_dir() / "videos" if shared_data_dir() else None)
    if folder is None:
        raise SystemExit("no shared videos folder for real 2D tracks")
    tracks, sources = [], []
    for video in blazepose_real.training_videos(folder):
        record = blazepose_real.extract(video)
        width, height = (int(v) for v in record["size"])
        for index in blazepose_real.tracks(record, min_frames):
            kp = record["kp2d"][index]
            xy = np.asarray(normalize_screen_coordinates(kp[..., :2].astype(np.float64), width, height))
            tracks.append(np.concatenate([xy, kp[..., 2:3]], axis=-1).astype(np.float32))
            sources.append(video.name)
    return tracks, sources
