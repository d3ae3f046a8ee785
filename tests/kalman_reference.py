"""The Kalman filter / RTS smoother of ``streampose.smoothing.kalman`` built from filterpy: a test oracle.

filterpy is a dev dependency only; the runtime filter is our own batched implementation.
"""
from __future__ import annotations

import numpy as np

from streampose.smoothing.kalman import KalmanParams


def filterpy_reference(times: np.ndarray, z: np.ndarray, weight: np.ndarray, scale: float,
                       params: KalmanParams, smooth: bool) -> np.ndarray:
    """The same filter for ONE fully observed coordinate, with ``filterpy`` (for tests/benchmarks).

    Args:
        times: ``(T,)`` seconds; z: ``(T,)`` measurements; weight: ``(T,)`` clipped confidences > 0.

    Returns:
        ``(T,)`` filtered or RTS-smoothed positions.  No gaps, no gating.
    """
    from filterpy.kalman import KalmanFilter, rts_smoother

    q = (params.process_noise * scale) ** 2
    r0 = (params.measurement_noise * scale) ** 2

    def transition(dt: float) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([[1.0, dt], [0.0, 1.0]]),
                q * np.array([[dt ** 3 / 3.0, dt ** 2 / 2.0], [dt ** 2 / 2.0, dt]]))

    kf = KalmanFilter(dim_x=2, dim_z=1)
    kf.H = np.array([[1.0, 0.0]])
    kf.x = np.array([[z[0]], [0.0]])
    kf.P = np.diag([r0 / weight[0], (params.initial_velocity * scale) ** 2])
    means, covs, fs, qs = [kf.x.copy()], [kf.P.copy()], [], []
    for k in range(1, len(times)):
        f, qm = transition(float(times[k] - times[k - 1]))
        fs.append(f)
        qs.append(qm)
        kf.predict(F=f, Q=qm)
        kf.update(np.array([[z[k]]]), R=np.array([[r0 / weight[k]]]))
        means.append(kf.x.copy())
        covs.append(kf.P.copy())
    fs.append(np.eye(2))
    qs.append(np.zeros((2, 2)))
    means_arr, covs_arr = np.array(means), np.array(covs)
    if smooth:
        means_arr = rts_smoother(means_arr, covs_arr, fs, qs)[0]
    return means_arr[:, 0, 0]
