"""A 2D keypoint noise model that makes clean projected mocap look like detector output.

Training a lifter on perfect 2D projections makes it brittle on real detections.  :class:`Noise2D`
corrupts ``(T, 17, 2)`` pixel keypoints with the error types a single-person detector such as
BlazePose shows on video, and produces a matching per-joint confidence:

1. **Gaussian jitter scaled by person size** (``max(bbox height, bbox width)`` per frame, so the
   error is resolution independent), per joint: torso joints least, wrists and ankles most.
2. Part of that jitter is **temporally correlated** -- a first-order low-pass (AR(1)) process with
   time constant ``correlation_time`` -- the slow drift a temporal model cannot average away;
   the rest is white frame-to-frame jitter.
3. **Outliers**: rare single-frame jumps of 10-40 % of the person size, with low confidence.
4. **Left/right swaps** of a limb pair (wrists, elbows+wrists, ankles, knees+ankles) for a few
   frames -- the classic failure on side views.
5. **Dropouts**: a joint freezes at its last position for a few frames with confidence near zero
   (what trackers do when a joint is occluded).

Calibration (documented choice, not fitted): BlazePose on 256-px person crops is off by roughly
2-4 % of the person's height on torso joints and more on wrists and ankles.  With the defaults the
per-axis standard deviation on the torso is ``sqrt(0.018^2 + 0.016^2) = 0.024`` of person size,
i.e. a mean 2D error of ``1.25 * 0.024 = 3.0 %`` (Rayleigh mean); wrists get x1.8 (5.4 %), ankles
x1.5 (4.5 %), elbows and knees x1.25, the two head points x1.1.  ``scale`` multiplies all jitter
for curricula or robustness tests.

Confidences fall with the size of the error that was applied (``base * exp(-(e / 0.1 size)^2)``
plus a little noise), so a model that uses them learns that low confidence means large error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streampose.errors import InputError
from streampose.skeleton import H36M17, flip_horizontal

_J = H36M17.index

# Per-joint jitter multiplier over the torso level.
DEFAULT_JOINT_SCALE = np.ones(H36M17.num_joints)
for _name, _factor in {"LWrist": 1.8, "RWrist": 1.8, "LFoot": 1.5, "RFoot": 1.5,
                       "LElbow": 1.25, "RElbow": 1.25, "LKnee": 1.25, "RKnee": 1.25,
                       "Neck/Nose": 1.1, "Head": 1.1}.items():
    DEFAULT_JOINT_SCALE[_J(_name)] = _factor

# Confidence a detector reports for an accurately found joint.
DEFAULT_BASE_CONFIDENCE = np.full(H36M17.num_joints, 0.95)
for _name in ("LWrist", "RWrist", "LFoot", "RFoot"):
    DEFAULT_BASE_CONFIDENCE[_J(_name)] = 0.85

# Limb groups that swap left <-> right together.
SWAP_GROUPS: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = (
    ((_J("LWrist"),), (_J("RWrist"),)),
    ((_J("LElbow"), _J("LWrist")), (_J("RElbow"), _J("RWrist"))),
    ((_J("LFoot"),), (_J("RFoot"),)),
    ((_J("LKnee"), _J("LFoot")), (_J("RKnee"), _J("RFoot"))),
)


@dataclass
class Noise2D:
    """Detector-like corruption of 2D keypoints (see module docs for the model and calibration).

    Attributes:
        correlated_sigma: std (per axis) of the low-pass component, fraction of person size.
        white_sigma: std (per axis) of the white component, fraction of person size.
        correlation_time: seconds; time constant of the low-pass component.
        joint_scale: ``(17,)`` per-joint multiplier of both components.
        scale: global multiplier of both components.
        outlier_rate: probability per joint and frame of a one-frame outlier.
        outlier_size: ``(min, max)`` outlier displacement, fraction of person size.
        swap_rate: probability per frame that a left/right swap of one limb group starts.
        swap_frames: ``(min, max)`` swap duration in frames (inclusive).
        dropout_rate: probability per joint and frame that a dropout starts.
        dropout_frames: ``(min, max)`` dropout duration in frames (inclusive).
        base_confidence: ``(17,)`` confidence of a correct joint.
    """

    correlated_sigma: float = 0.018
    white_sigma: float = 0.016
    correlation_time: float = 0.3
    joint_scale: np.ndarray = field(default_factory=lambda: DEFAULT_JOINT_SCALE.copy())
    scale: float = 1.0
    outlier_rate: float = 0.003
    outlier_size: tuple[float, float] = (0.1, 0.4)
    swap_rate: float = 0.01
    swap_frames: tuple[int, int] = (1, 6)
    dropout_rate: float = 0.002
    dropout_frames: tuple[int, int] = (2, 10)
    base_confidence: np.ndarray = field(default_factory=lambda: DEFAULT_BASE_CONFIDENCE.copy())

    def apply(self, kp2d: np.ndarray, rng: np.random.Generator, fps: float = 30.0
              ) -> tuple[np.ndarray, np.ndarray]:
        """Corrupt a keypoint sequence.

        Args:
            kp2d: ``(T, 17, 2)`` clean pixel keypoints (H36M-17 order).
            rng: numpy random generator (the only source of randomness).
            fps: frame rate, for the correlation time.

        Returns:
            ``(kp2d_noisy (T, 17, 2) float32 pixels, confidence (T, 17) float32 in [0, 1])``.
        """
        kp2d = np.asarray(kp2d, dtype=np.float64)
        if kp2d.ndim != 3 or kp2d.shape[1:] != (H36M17.num_joints, 2):
            raise InputError(f"Noise2D.apply expects (T, 17, 2) keypoints, got {kp2d.shape}")
        num_frames, num_joints = kp2d.shape[:2]
        size = person_size(kp2d)[:, None, None]  # (T,1,1)
        sigma = self.scale * np.asarray(self.joint_scale)[None, :, None]  # (1,J,1)

        noisy = kp2d.copy()
        # Left/right swaps first: the jitter then lands on the swapped positions as it would.
        for start, length, group in self._events(rng, num_frames, self.swap_rate,
                                                 self.swap_frames, len(SWAP_GROUPS)):
            left, right = (list(g) for g in SWAP_GROUPS[group])
            span = slice(start, start + length)
            noisy[span, left + right] = kp2d[span, right + left]

        correlated = _low_pass_noise(rng, (num_frames, num_joints, 2),
                                     np.exp(-1.0 / max(self.correlation_time * fps, 1e-6)))
        jitter = (self.correlated_sigma * correlated
                  + self.white_sigma * rng.standard_normal((num_frames, num_joints, 2)))
        noisy += jitter * sigma * size

        outliers = rng.random((num_frames, num_joints)) < self.outlier_rate
        count = int(outliers.sum())
        if count:
            angle = rng.uniform(0, 2 * np.pi, count)
            sizes = np.broadcast_to(size[:, :, 0], outliers.shape)[outliers]  # (count,)
            radius = rng.uniform(*self.outlier_size, count) * sizes
            noisy[outliers] += np.stack([np.cos(angle), np.sin(angle)], -1) * radius[:, None]

        error = np.linalg.norm(noisy - kp2d, axis=-1) / size[..., 0]  # (T,J) fraction of size
        confidence = np.asarray(self.base_confidence)[None, :] * np.exp(-(error / 0.1) ** 2)
        confidence = confidence + rng.normal(0.0, 0.03, confidence.shape)

        frozen = np.zeros((num_frames, num_joints), dtype=bool)
        for start, length, joint in self._events(rng, num_frames, self.dropout_rate * num_joints,
                                                 self.dropout_frames, num_joints):
            frozen[start:start + length, joint] = True
        for joint in np.flatnonzero(frozen.any(axis=0)):
            for t in np.flatnonzero(frozen[:, joint]):
                if t > 0:
                    noisy[t, joint] = noisy[t - 1, joint]  # hold the last (possibly frozen) value
        confidence[frozen] = rng.uniform(0.0, 0.2, int(frozen.sum()))
        return noisy.astype(np.float32), np.clip(confidence, 0.0, 1.0).astype(np.float32)

    @staticmethod
    def _events(rng: np.random.Generator, num_frames: int, rate: float,
                frames: tuple[int, int], choices: int) -> list[tuple[int, int, int]]:
        """Random ``(start, length, which)`` events: a Bernoulli(rate) start per frame."""
        starts = np.flatnonzero(rng.random(num_frames) < rate)
        lengths = rng.integers(frames[0], frames[1] + 1, len(starts))
        which = rng.integers(0, choices, len(starts))
        return [(int(s), int(n), int(w)) for s, n, w in zip(starts, lengths, which)]


def measured_noise() -> Noise2D:
    """Noise2D with its white component set to what BlazePose shows on real video.

    ``streampose_train.blazepose_real`` measured the frame-to-frame (white) jitter of our 2D stage on
    the shared videos at 0.2-0.34 % of person size for confident joints and 0.8-0.9 % below 0.5
    confidence (upper bounds: motion adds to them), far below the default model's 1.6 %.  The
    slow, correlated error cannot be measured without ground truth; it keeps the default model's total
    torso error (0.024 of person size per axis) with the white share moved into it.
    """
    return Noise2D(white_sigma=0.004, correlated_sigma=float(np.sqrt(0.024 ** 2 - 0.004 ** 2)))


NOISE_MODELS = {"default": Noise2D, "measured": measured_noise}


def person_size(kp2d: np.ndarray) -> np.ndarray:
    """Per-frame person size in pixels: ``(T, J, 2) -> (T,)``, ``max(bbox height, bbox width)``.

    Floored at 1 px so degenerate inputs (all joints on one point) do not divide by zero.
    """
    extent = kp2d.max(axis=-2) - kp2d.min(axis=-2)  # (T,2)
    return np.maximum(extent.max(axis=-1), 1.0)


def _low_pass_noise(rng: np.random.Generator, shape: tuple[int, ...], decay: float) -> np.ndarray:
    """Unit-variance AR(1) noise along axis 0: ``x_t = decay x_{t-1} + sqrt(1-decay^2) e_t``."""
    white = rng.standard_normal(shape)
    out = np.empty(shape)
    out[0] = white[0]
    gain = np.sqrt(1.0 - decay ** 2)
    for t in range(1, shape[0]):
        out[t] = decay * out[t - 1] + gain * white[t]
    return out


def flip_pose_2d(kp2d: np.ndarray, width: float | None) -> np.ndarray:
    """Horizontal flip of 2D poses with left/right joint swap.

    Args:
        kp2d: ``(..., 17, D)`` H36M-17, x in ``[..., 0]`` (D = 2, or 3 with confidence).
        width: image width for pixel coordinates; ``None`` for screen coordinates centred on 0.

    Returns:
        ``(..., 17, D)`` flipped copy.
    """
    return flip_horizontal(np.asarray(kp2d), H36M17, width)


def flip_pose_3d(kp3d: np.ndarray) -> np.ndarray:
    """Horizontal flip of camera-frame 3D poses (x -> -x) with left/right swap: ``(..., 17, 3)``."""
    return flip_horizontal(np.asarray(kp3d), H36M17, None)
