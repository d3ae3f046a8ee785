"""Camera math of the runtime: pinhole intrinsics, projection and screen normalisation.

Conventions:

* **Camera** frame: metres, OpenCV axes -- +x right, +y down, +z forward (the viewing direction),
  origin at the optical centre.  The root-relative 3D a lifter predicts is in this frame.
* **Pixels**: x to the right, y down, (0, 0) at the centre of the top-left pixel.
* **Screen (normalised) coordinates** as VideoPose3D: ``x / w * 2 - 1`` in [-1, 1] and y scaled by
  the *same* factor (aspect kept), so y spans ``[-h/w, h/w]``.

Functions take numpy arrays or torch tensors alike (only arithmetic is used), so the lifter can
use them inside a loss.  Posed virtual cameras for filming mocap live with the training code
(``streampose_train.filming``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streampose.errors import InputError


def _like(reference, values):
    """``values`` as an array/tensor matching ``reference`` (numpy or torch) in dtype and device."""
    if isinstance(reference, np.ndarray):
        return np.asarray(values, dtype=reference.dtype if reference.dtype.kind == "f" else None)
    return reference.new_tensor(values)


def normalize_screen_coordinates(xy, w: float, h: float):
    """Pixels -> VideoPose3D screen coordinates: ``(..., 2) -> (..., 2)``, ``x / w * 2 - [1, h/w]``."""
    if xy.shape[-1] != 2:
        raise InputError(f"normalize_screen_coordinates expects (..., 2), got {tuple(xy.shape)}")
    return xy / w * 2 - _like(xy, [1.0, h / w])


def image_coordinates(xy_norm, w: float, h: float):
    """Inverse of :func:`normalize_screen_coordinates`: ``(..., 2) -> (..., 2)`` pixels."""
    if xy_norm.shape[-1] != 2:
        raise InputError(f"image_coordinates expects (..., 2), got {tuple(xy_norm.shape)}")
    return (xy_norm + _like(xy_norm, [1.0, h / w])) * w / 2


@dataclass
class CameraIntrinsics:
    """Pinhole intrinsics with optional radial distortion (Brown model, 2 coefficients).

    Attributes:
        fx, fy: focal lengths in pixels.
        cx, cy: principal point in pixels.
        width, height: image size in pixels (``w``/``h`` are aliases).
        k1, k2: radial distortion, ``r_d = r (1 + k1 r^2 + k2 r^4)`` on normalised coordinates.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    k1: float = 0.0
    k2: float = 0.0

    @property
    def w(self) -> int:
        return self.width

    @property
    def h(self) -> int:
        return self.height

    @property
    def matrix(self) -> np.ndarray:
        """``(3, 3)`` calibration matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def horizontal_fov_deg(self) -> float:
        return float(np.degrees(2 * np.arctan(self.width / (2 * self.fx))))

    @classmethod
    def from_fov(cls, width: int, height: int, horizontal_fov_deg: float) -> "CameraIntrinsics":
        """Square pixels, centred principal point, the given horizontal field of view."""
        f = width / (2 * np.tan(np.radians(horizontal_fov_deg) / 2))
        return cls(fx=f, fy=f, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height)


def project_to_2d(points_cam, intrinsics: CameraIntrinsics, min_depth: float = 1e-3):
    """Project camera-frame points to pixels.

    Args:
        points_cam: ``(..., J, 3)`` metres, camera frame (x right, y down, z forward).
        intrinsics: the camera.
        min_depth: depths are clamped to at least this (points behind the camera do not flip).

    Returns:
        ``(..., J, 2)`` pixel coordinates.
    """
    if points_cam.shape[-1] != 3:
        raise InputError(f"project_to_2d expects (..., 3) points, got {tuple(points_cam.shape)}")
    z = points_cam[..., 2:3]
    z = np.maximum(z, min_depth) if isinstance(z, np.ndarray) else z.clamp(min=min_depth)
    xy = points_cam[..., :2] / z
    if intrinsics.k1 or intrinsics.k2:
        r2 = (xy ** 2).sum(-1, keepdims=True) if isinstance(xy, np.ndarray) else \
            (xy ** 2).sum(-1, keepdim=True)
        xy = xy * (1 + intrinsics.k1 * r2 + intrinsics.k2 * r2 ** 2)
    return xy * _like(xy, [intrinsics.fx, intrinsics.fy]) + _like(xy, [intrinsics.cx, intrinsics.cy])
