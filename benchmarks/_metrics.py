"""Ground-truth-free temporal metrics shared by the benchmarks on real video."""
from __future__ import annotations

import numpy as np


def jitter_2d(keypoints2d: np.ndarray) -> float:
    """Mean |x[t+1] - 2x[t] + x[t-1]| over joints and frames, divided by the person's height.

    ``keypoints2d`` is ``(T, J, >=2)`` pixels with NaN where nobody was found.
    """
    xy = keypoints2d[..., :2]
    height = np.nanmax(xy[..., 1], axis=1) - np.nanmin(xy[..., 1], axis=1)  # (T,)
    second = np.linalg.norm(xy[2:] - 2 * xy[1:-1] + xy[:-2], axis=-1)  # (T-2, J)
    return float(np.nanmean(second / np.maximum(height[1:-1, None], 1.0)))


def jitter_3d_mm(keypoints3d: np.ndarray) -> float:
    """Mean |second difference| of root-relative joints ``(T, J, 3)`` metres, in mm/frame^2."""
    rel = keypoints3d - keypoints3d[:, :1]
    second = np.linalg.norm(rel[2:] - 2 * rel[1:-1] + rel[:-2], axis=-1)
    return float(np.nanmean(second) * 1000.0)


def lag_frames(reference: np.ndarray, delayed: np.ndarray, max_lag: int = 15) -> float:
    """How many frames ``delayed`` trails ``reference`` (both ``(T, J, D)``): the median, over joint
    coordinates, of the lag maximising the cross-correlation of their frame-to-frame velocities."""
    ref = np.diff(reference, axis=0).reshape(len(reference) - 1, -1)
    late = np.diff(delayed, axis=0).reshape(len(delayed) - 1, -1)
    lags = []
    for k in range(ref.shape[1]):
        a, b = ref[:, k], late[:, k]
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 4 * max_lag:
            continue
        a, b = a - a[ok].mean(), b - b[ok].mean()
        a, b = np.where(ok, a, 0.0), np.where(ok, b, 0.0)
        scores = [np.dot(a[: len(a) - s], b[s:]) if s >= 0 else np.dot(a[-s:], b[: len(b) + s])
                  for s in range(-max_lag, max_lag + 1)]
        lags.append(int(np.argmax(scores)) - max_lag)
    return float(np.median(lags)) if lags else float("nan")
