"""Stage 5: temporal smoothing of joint tracks (Kalman / fixed-lag / RTS, One-Euro).

Live::

    smoother = make_smoother("kalman", fps=30)          # one per tracked person
    smoothed = smoother.push(t, kp3d, confidence=None, scale=1.7)

Offline::

    smoothed = smooth_sequence("kalman", times, kp2d_xy, confidence=conf, scale=bbox_heights)

See :mod:`streampose.smoothing.base` for the conventions (NaN = missing joint, ``scale`` = person
size, confidence weighting).
"""
from streampose.smoothing.base import KINDS, PassThrough, Smoother, make_smoother, smooth_sequence
from streampose.smoothing.kalman import FixedLagKalmanSmoother, KalmanParams, KalmanSmoother
from streampose.smoothing.one_euro import OneEuroParams, OneEuroSmoother

__all__ = [
    "KINDS", "Smoother", "make_smoother", "smooth_sequence", "PassThrough",
    "KalmanSmoother", "FixedLagKalmanSmoother", "KalmanParams", "OneEuroSmoother", "OneEuroParams",
]
