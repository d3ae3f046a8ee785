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

Intrinsics in (``--fov``, ``--intrinsics``, ``--calibration``): :class:`CameraOptions` holds what the
user gave and :meth:`CameraOptions.resolve` turns it into a :class:`CameraModel` for a video size --
the given camera, or, without one, an *assumed* camera (:data:`ASSUMED_FOV_DEG` across the image's
long side) whose focal length is uncertain by the range of :data:`ASSUMED_FOV_RANGE_DEG`.
:func:`load_calibration` reads OpenCV-style YAML/JSON (K + distortion ``k1, k2, p1, p2, k3``) and
:func:`undistort_points` removes the distortion from 2D keypoints before lifting.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

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
    """Pinhole intrinsics with optional OpenCV (Brown-Conrady) distortion.

    Attributes:
        fx, fy: focal lengths in pixels.
        cx, cy: principal point in pixels.
        width, height: image size in pixels (``w``/``h`` are aliases).
        k1, k2, k3: radial distortion, ``r_d = r (1 + k1 r^2 + k2 r^4 + k3 r^6)`` on normalised
            coordinates.
        p1, p2: tangential distortion, OpenCV's definition (``x_d += 2 p1 x y + p2 (r^2 + 2 x^2)``,
            ``y_d += p1 (r^2 + 2 y^2) + 2 p2 x y``).  The coefficients in OpenCV's order are
            :attr:`distortion` ``(k1, k2, p1, p2, k3)``.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    k1: float = 0.0
    k2: float = 0.0
    p1: float = 0.0
    p2: float = 0.0
    k3: float = 0.0

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
    def distortion(self) -> tuple[float, float, float, float, float]:
        """OpenCV's order: ``(k1, k2, p1, p2, k3)``."""
        return (self.k1, self.k2, self.p1, self.p2, self.k3)

    @property
    def has_distortion(self) -> bool:
        return any(self.distortion)

    @property
    def horizontal_fov_deg(self) -> float:
        return float(np.degrees(2 * np.arctan(self.width / (2 * self.fx))))

    @classmethod
    def from_fov(cls, width: int, height: int, horizontal_fov_deg: float) -> "CameraIntrinsics":
        """Square pixels, centred principal point, the given horizontal field of view."""
        f = width / (2 * np.tan(np.radians(horizontal_fov_deg) / 2))
        return cls(fx=f, fy=f, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height)

    @classmethod
    def assumed(cls, width: int, height: int, long_side_fov_deg: float | None = None) -> "CameraIntrinsics":
        """The camera streampose assumes when it is told none: square pixels, centred principal
        point, ``long_side_fov_deg`` (default :data:`ASSUMED_FOV_DEG`) across the image's long side,
        so a portrait phone video gets the same lens as a landscape one."""
        fov = ASSUMED_FOV_DEG if long_side_fov_deg is None else long_side_fov_deg
        f = focal_from_fov(max(width, height), fov)
        return cls(fx=f, fy=f, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height)

    def normalized(self, pixels):
        """``(..., 2)`` pixels -> ``(..., 2)`` normalised image coordinates ``((x - cx) / fx, ...)``
        (distortion *not* removed: use :func:`undistort_points` first)."""
        return (pixels - _like(pixels, [self.cx, self.cy])) / _like(pixels, [self.fx, self.fy])


# The camera assumed without intrinsics: phones' main cameras and webcams see ~55-80 degrees across
# the long side of the image; 65 degrees is the middle of the range the lifter was trained on
# (streampose_train.filming: 50-85 degrees).  The range is the uncertainty recorded in the header.
ASSUMED_FOV_DEG = 65.0
ASSUMED_FOV_RANGE_DEG = (50.0, 85.0)


def focal_from_fov(size_px: float, fov_deg: float) -> float:
    """Focal length in pixels that sees ``fov_deg`` across ``size_px`` pixels."""
    return float(size_px / (2 * math.tan(math.radians(fov_deg) / 2)))


def _split_xy(xy):
    return xy[..., 0:1], xy[..., 1:2]


def _join_xy(reference, x, y):
    if isinstance(reference, np.ndarray):
        return np.concatenate([x, y], axis=-1)
    import torch

    return torch.cat([x, y], dim=-1)


def distort_normalized(xy, intrinsics: CameraIntrinsics):
    """Ideal normalised coordinates ``(..., 2)`` -> distorted normalised ``(..., 2)`` (OpenCV's model)."""
    k1, k2, p1, p2, k3 = intrinsics.distortion
    if not (k1 or k2 or p1 or p2 or k3):
        return xy
    x, y = _split_xy(xy)
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    if not (p1 or p2):
        return xy * radial
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return _join_xy(xy, xd, yd)


def project_to_2d(points_cam, intrinsics: CameraIntrinsics, min_depth: float = 1e-3):
    """Project camera-frame points to pixels (with the intrinsics' distortion).

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
    xy = distort_normalized(points_cam[..., :2] / z, intrinsics)
    return xy * _like(xy, [intrinsics.fx, intrinsics.fy]) + _like(xy, [intrinsics.cx, intrinsics.cy])


def undistort_normalized(pixels: np.ndarray, intrinsics: CameraIntrinsics, iterations: int = 20) -> np.ndarray:
    """Pixels ``(..., 2)`` -> ideal (undistorted) normalised coordinates ``(..., 2)``, float64.

    Fixed-point inversion of the distortion model, as OpenCV's ``undistortPoints`` does (it stops
    early once a step moves less than 1e-12); exact to far below a pixel for real lenses.
    """
    pixels = np.asarray(pixels, dtype=np.float64)
    if pixels.shape[-1] != 2:
        raise InputError(f"undistort expects (..., 2) pixels, got {pixels.shape}")
    xd = intrinsics.normalized(pixels)
    if not intrinsics.has_distortion:
        return xd
    k1, k2, p1, p2, k3 = intrinsics.distortion
    x, y = xd[..., 0].copy(), xd[..., 1].copy()
    for _ in range(iterations):
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        # A point far outside the calibrated field can make the polynomial fold over; keep the
        # iteration from dividing by ~0 or flipping the point through the centre.
        radial = np.maximum(radial, 0.1)
        dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        new_x, new_y = (xd[..., 0] - dx) / radial, (xd[..., 1] - dy) / radial
        step = np.nanmax(np.abs(new_x - x) + np.abs(new_y - y), initial=0.0)
        x, y = new_x, new_y
        if step < 1e-12:
            break
    return np.stack([x, y], axis=-1)


def undistort_points(pixels: np.ndarray, intrinsics: CameraIntrinsics, iterations: int = 20) -> np.ndarray:
    """Pixels ``(..., 2)`` -> the pixels an ideal pinhole camera with the same K would have seen
    (float64).  A camera without distortion returns the pixels unchanged."""
    pixels = np.asarray(pixels, dtype=np.float64)
    if not intrinsics.has_distortion:
        return pixels.copy()
    xy = undistort_normalized(pixels, intrinsics, iterations)
    return xy * np.array([intrinsics.fx, intrinsics.fy]) + np.array([intrinsics.cx, intrinsics.cy])


# ------------------------------------------------------------------------------------ intrinsics in


def parse_intrinsics(value: Any) -> tuple[float, float, float, float]:
    """``"FX,FY,CX,CY"`` (pixels; a string or 4 numbers) -> a checked tuple.

    Raises:
        InputError: not four numbers, a focal length that is not positive, or a non-finite value.
    """
    if isinstance(value, str):
        parts = [p for p in re.split(r"[,\s]+", value.strip()) if p]
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise InputError(f"intrinsics must be FX,FY,CX,CY in pixels (4 numbers), got {value!r}") from None
    else:
        try:
            numbers = [float(v) for v in value]
        except (TypeError, ValueError):
            raise InputError(f"intrinsics must be FX,FY,CX,CY in pixels (4 numbers), got {value!r}") from None
    if len(numbers) != 4:
        raise InputError(f"intrinsics must be FX,FY,CX,CY in pixels (4 numbers), got {len(numbers)}: {value!r}")
    if not all(math.isfinite(v) for v in numbers):
        raise InputError(f"intrinsics must be finite numbers, got {value!r}")
    fx, fy, cx, cy = numbers
    if fx <= 0 or fy <= 0:
        raise InputError(f"intrinsics: focal lengths FX, FY must be positive pixels, got {fx:g}, {fy:g}")
    return fx, fy, cx, cy


def check_fov(value: Any) -> float:
    """A horizontal field of view in degrees, strictly between 0 and 180."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) < 180.0:
        raise InputError(f"fov must be a horizontal field of view in degrees, between 0 and 180 "
                         f"(exclusive); got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Calibration:
    """A calibration file's contents: K, distortion and (when the file says) the calibrated image size.

    Attributes:
        matrix: ``(3, 3)`` K in pixels of the calibrated image size.
        distortion: ``(k1, k2, p1, p2, k3)`` (missing trailing terms are 0).
        size: ``(width, height)`` of the calibrated images, or ``None``.
        source: the file it was read from.
    """

    matrix: tuple[tuple[float, float, float], ...]
    distortion: tuple[float, float, float, float, float]
    size: tuple[int, int] | None = None
    source: str = ""

    def intrinsics(self, width: int, height: int) -> CameraIntrinsics:
        """The calibration for frames of ``width x height``.

        A calibration made at another resolution of the same aspect ratio (the video is a scaled
        copy of the calibrated sensor image) is scaled to it; any other size is an error.
        """
        k = np.asarray(self.matrix, dtype=np.float64)
        fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
        if self.size is not None and tuple(self.size) != (width, height):
            cw, ch = self.size
            sx, sy = width / cw, height / ch
            if abs(sx - sy) > 0.01 * max(sx, sy):
                raise InputError(
                    f"{self.source or 'calibration'}: calibrated for {cw}x{ch} images, but the video "
                    f"is {width}x{height} (another aspect ratio: a cropped or rotated video needs its "
                    f"own calibration)")
            # Pixel centres: (0, 0) is the centre of the top-left pixel, so scale about (-0.5, -0.5).
            fx, fy = fx * sx, fy * sy
            cx, cy = (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5
        k1, k2, p1, p2, k3 = self.distortion
        return CameraIntrinsics(fx=float(fx), fy=float(fy), cx=float(cx), cy=float(cy), width=int(width),
                                height=int(height), k1=k1, k2=k2, p1=p1, p2=p2, k3=k3)


_MATRIX_KEYS = ("camera_matrix", "cameraMatrix", "K", "k", "intrinsic_matrix", "intrinsics", "mtx",
                "camera_intrinsics")
_DISTORTION_KEYS = ("distortion_coefficients", "dist_coeffs", "distCoeffs", "dist_coeff", "distortion",
                    "D", "d", "dist")
_WIDTH_KEYS = ("image_width", "imageWidth", "width", "img_width")
_HEIGHT_KEYS = ("image_height", "imageHeight", "height", "img_height")


def load_calibration(path: str | os.PathLike) -> Calibration:
    """Read a camera calibration: OpenCV ``FileStorage`` YAML (``%YAML:1.0``, ``!!opencv-matrix``),
    ROS ``camera_info`` YAML, or JSON.

    Recognised keys: K as ``camera_matrix`` / ``cameraMatrix`` / ``K`` / ``mtx`` (a 3x3 nested list, 9
    numbers, or a ``{rows, cols, data}`` matrix), or ``fx, fy, cx, cy`` at the top level;
    distortion as ``distortion_coefficients`` / ``dist_coeffs`` / ``D`` / ``dist`` (4, 5, 8 or more
    numbers in OpenCV's order k1, k2, p1, p2, k3, ...: terms beyond k3 must be 0); image size as
    ``image_width`` / ``image_height`` or ``width`` / ``height`` (optional).

    Raises:
        InputError: a missing/unreadable file, a syntax error, or a missing/implausible K -- one
            line naming the file.
    """
    path = Path(path).expanduser()
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{where}: calibration file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{where}: cannot read the calibration file ({getattr(error, 'strerror', None) or error})") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(f"{where}: not valid JSON ({error.msg}, line {error.lineno})") from None
    else:
        data = _parse_simple_yaml(text, where)
    return calibration_from_dict(data, where)


def calibration_from_dict(data: Any, where: str = "calibration") -> Calibration:
    """A :class:`Calibration` from a parsed YAML/JSON mapping (see :func:`load_calibration`)."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping of keys (camera_matrix, distortion_coefficients, ...)")
    raw_k = _first(data, _MATRIX_KEYS)
    if raw_k is not None:
        numbers = _numbers(raw_k, f"{where}: camera matrix")
        if len(numbers) != 9:
            raise InputError(f"{where}: the camera matrix needs 9 numbers (3x3), got {len(numbers)}")
        k = np.array(numbers, dtype=np.float64).reshape(3, 3)
    elif all(key in data for key in ("fx", "fy", "cx", "cy")):
        fx, fy, cx, cy = (_number(data[key], f"{where}: {key}") for key in ("fx", "fy", "cx", "cy"))
        k = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    else:
        raise InputError(f"{where}: no camera matrix (expected one of {', '.join(_MATRIX_KEYS[:4])}, "
                         f"or fx, fy, cx, cy)")
    if not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise InputError(f"{where}: the camera matrix needs positive focal lengths (K[0,0], K[1,1])")
    if not np.allclose(k[2], [0.0, 0.0, 1.0]) or abs(k[1, 0]) > 1e-9:
        raise InputError(f"{where}: the camera matrix's last row must be 0 0 1 (got {k[2].tolist()})")
    if abs(k[0, 1]) > 1e-6 * k[0, 0]:
        raise InputError(f"{where}: skewed camera matrices (K[0,1] != 0) are not supported")
    raw_d = _first(data, _DISTORTION_KEYS)
    dist = [0.0] * 5
    if raw_d is not None:
        values = _numbers(raw_d, f"{where}: distortion coefficients")
        if len(values) not in (0, 4, 5) and len(values) < 8:
            raise InputError(f"{where}: distortion needs 4, 5 or 8+ coefficients (k1 k2 p1 p2 [k3 ...]), "
                             f"got {len(values)}")
        if any(abs(v) > 0 for v in values[5:]):
            raise InputError(f"{where}: only the k1 k2 p1 p2 k3 distortion model is supported "
                             f"(the rational/thin-prism terms beyond k3 must be 0)")
        dist[: min(5, len(values))] = values[:5]
        if not all(math.isfinite(v) for v in dist):
            raise InputError(f"{where}: distortion coefficients must be finite")
    width, height = _first(data, _WIDTH_KEYS), _first(data, _HEIGHT_KEYS)
    size = None
    if width is not None and height is not None:
        w, h = _number(width, f"{where}: image width"), _number(height, f"{where}: image height")
        if w < 1 or h < 1 or w != int(w) or h != int(h):
            raise InputError(f"{where}: image width/height must be positive integers, got {w:g} x {h:g}")
        size = (int(w), int(h))
    return Calibration(matrix=tuple(tuple(float(v) for v in row) for row in k),
                       distortion=tuple(float(v) for v in dist), size=size, source=where)


def _first(data: dict, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in data and data[key] is not None:
            return data[key]
    return None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise InputError(f"{what} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{what} must be finite, got {value!r}")
    return number


def _numbers(value: Any, what: str) -> list[float]:
    """Flatten a nested list, or an OpenCV/ROS ``{rows, cols, data}`` matrix, to floats."""
    if isinstance(value, dict):
        if "data" not in value:
            raise InputError(f"{what}: a matrix mapping needs a 'data' list")
        data = _numbers(value["data"], what)
        rows, cols = value.get("rows"), value.get("cols")
        if rows is not None and cols is not None and int(_number(rows, what)) * int(_number(cols, what)) != len(data):
            raise InputError(f"{what}: rows x cols = {rows} x {cols} but {len(data)} numbers in 'data'")
        return data
    if isinstance(value, (list, tuple)):
        out: list[float] = []
        for item in value:
            out += _numbers(item, what) if isinstance(item, (list, tuple, dict)) else [_number(item, what)]
        return out
    return [_number(value, what)]


def _parse_simple_yaml(text: str, where: str) -> dict:
    """The YAML subset calibration files use: nested ``key: value`` mappings by indentation, flow
    lists ``[a, b, ...]`` (may span lines), block lists (``- a``), scalars, comments, OpenCV's
    ``%YAML:1.0`` / ``---`` header and ``!!opencv-matrix`` tags.  (PyYAML is not a dependency, and it
    rejects OpenCV's header anyway.)"""
    lines: list[tuple[int, int, str]] = []  # (line number, indent, content)
    pending: tuple[int, int, str] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw).rstrip()
        if not line.strip() or line.startswith("%") or line.strip() in ("---", "..."):
            continue
        if pending is not None:  # a flow list continues until its brackets balance
            pending = (pending[0], pending[1], pending[2] + " " + line.strip())
        else:
            pending = (number, len(line) - len(line.lstrip(" ")), line.strip())
        if pending[2].count("[") <= pending[2].count("]") and pending[2].count("{") <= pending[2].count("}"):
            lines.append(pending)
            pending = None
    if pending is not None:
        raise InputError(f"{where}:{pending[0]}: unclosed '[' or '{{' in the YAML")
    value, index = _yaml_block(lines, 0, lines[0][1] if lines else 0, where)
    if index != len(lines):
        number = lines[index][0]
        raise InputError(f"{where}:{number}: unexpected indentation in the YAML")
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected 'key: value' lines (a calibration), found none")
    return value


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if ch in "\"'":
            quote = None if quote == ch else (ch if quote is None else quote)
        elif ch == "#" and quote is None and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _yaml_block(lines, index: int, indent: int, where: str):
    """Parse lines at ``indent`` from ``index``: a mapping or a block list; returns (value, next index)."""
    if index < len(lines) and lines[index][2].startswith("- ") or (index < len(lines) and lines[index][2] == "-"):
        items = []
        while index < len(lines) and lines[index][1] == indent and lines[index][2].startswith("-"):
            items.append(_yaml_scalar(lines[index][2][1:].strip(), lines[index][0], where))
            index += 1
        return items, index
    mapping: dict[str, Any] = {}
    while index < len(lines):
        number, line_indent, content = lines[index]
        if line_indent < indent:
            break
        if line_indent > indent:
            raise InputError(f"{where}:{number}: unexpected indentation in the YAML")
        key, sep, rest = content.partition(":")
        if not sep or not key.strip() or key.strip().startswith(("[", "{", "-")):
            raise InputError(f"{where}:{number}: expected 'key: value', got {content[:40]!r}")
        key = key.strip().strip("\"'")
        rest = re.sub(r"^!!?[\w.:-]+\s*", "", rest.strip())  # a tag such as !!opencv-matrix
        index += 1
        if rest:
            mapping[key] = _yaml_scalar(rest, number, where)
        elif index < len(lines) and (lines[index][1] > indent or
                                     (lines[index][1] == indent and lines[index][2].startswith("-"))):
            mapping[key], index = _yaml_block(lines, index, lines[index][1], where)
        else:
            mapping[key] = None
    return mapping, index


def _yaml_scalar(text: str, number: int, where: str) -> Any:
    text = text.strip()
    if text.startswith("["):
        if not text.endswith("]"):
            raise InputError(f"{where}:{number}: malformed list {text[:40]!r}")
        inner = text[1:-1].strip()
        if not inner:
            return []
        if "[" in inner:  # nested flow lists: [[1, 2], [3, 4]]
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise InputError(f"{where}:{number}: malformed nested list {text[:40]!r}") from None
        return [_yaml_scalar(part, number, where) for part in inner.split(",") if part.strip()]
    if text.startswith("{"):
        if not text.endswith("}"):
            raise InputError(f"{where}:{number}: malformed mapping {text[:40]!r}")
        out = {}
        for part in text[1:-1].split(","):
            if part.strip():
                key, sep, value = part.partition(":")
                if not sep:
                    raise InputError(f"{where}:{number}: malformed mapping {text[:40]!r}")
                out[key.strip().strip("\"'")] = _yaml_scalar(value, number, where)
        return out
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("null", "~"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


# ------------------------------------------------------------------------------------ resolution


@dataclass(frozen=True)
class CameraModel:
    """The camera a run uses, and how sure streampose is of it.

    Attributes:
        intrinsics: the camera (distortion included).
        source: ``"given"`` (``--fov``, ``--intrinsics`` or ``--calibration``) or ``"assumed"``.
        how: ``"fov"``, ``"intrinsics"``, ``"calibration"`` or ``"default_fov"``.
        fx_range: ``(low, high)`` focal lengths the assumed one stands for (``None`` when given):
            the root's depth scales with the focal length, so it carries the same relative
            uncertainty.
        calibration: the calibration file, when one was given.
    """

    intrinsics: CameraIntrinsics
    source: str
    how: str
    fx_range: tuple[float, float] | None = None
    calibration: str | None = None

    @property
    def given(self) -> bool:
        return self.source == "given"

    @property
    def relative_uncertainty(self) -> float:
        """Half the focal range relative to the focal length (0 when given)."""
        if self.fx_range is None:
            return 0.0
        low, high = self.fx_range
        return float(max(self.intrinsics.fx - low, high - self.intrinsics.fx) / self.intrinsics.fx)

    def to_header(self) -> dict[str, Any]:
        """The JSONL header's ``camera`` record."""
        k = self.intrinsics
        out: dict[str, Any] = {
            "model": "pinhole+opencv_distortion" if k.has_distortion else "pinhole",
            "source": self.source, "how": self.how,
            "fx": round(k.fx, 3), "fy": round(k.fy, 3), "cx": round(k.cx, 3), "cy": round(k.cy, 3),
            "width": int(k.width), "height": int(k.height),
            "horizontal_fov_deg": round(k.horizontal_fov_deg, 3),
        }
        if k.has_distortion:
            out["distortion"] = [float(v) for v in k.distortion]
            out["distortion_order"] = "k1,k2,p1,p2,k3"
        if self.fx_range is not None:
            out["fx_range"] = [round(v, 3) for v in self.fx_range]
            out["fov_range_deg_long_side"] = list(ASSUMED_FOV_RANGE_DEG)
            out["relative_uncertainty"] = round(self.relative_uncertainty, 3)
            out["note"] = ("assumed camera: root depth (and distance) carry the focal length's "
                           "uncertainty; give --fov, --intrinsics or --calibration for metric depth")
        if self.calibration is not None:
            out["calibration"] = self.calibration
        return out


@dataclass(frozen=True)
class CameraOptions:
    """What the user said about the camera (at most one of the three), before the video size is known.

    Attributes:
        fov: horizontal field of view in degrees (square pixels, centred principal point).
        intrinsics: ``(fx, fy, cx, cy)`` pixels.
        calibration: a loaded :class:`Calibration`.
    """

    fov: float | None = None
    intrinsics: tuple[float, float, float, float] | None = None
    calibration: Calibration | None = None

    def __post_init__(self) -> None:
        given = [name for name in ("fov", "intrinsics", "calibration") if getattr(self, name) is not None]
        if len(given) > 1:
            raise InputError(f"give the camera once: {' and '.join(given)} were both given")
        if self.fov is not None:
            check_fov(self.fov)
        if self.intrinsics is not None:
            parse_intrinsics(self.intrinsics)

    @classmethod
    def from_config(cls, config: Any) -> "CameraOptions":
        """From a :class:`~streampose.settings.PipelineConfig` (its ``fov``, ``intrinsics``,
        ``calibration`` fields, already checked)."""
        calibration = getattr(config, "calibration", None)
        if calibration is not None and not isinstance(calibration, Calibration):
            calibration = load_calibration(calibration)
        intrinsics = getattr(config, "intrinsics", None)
        return cls(fov=getattr(config, "fov", None),
                   intrinsics=None if intrinsics is None else parse_intrinsics(intrinsics),
                   calibration=calibration)

    def resolve(self, width: int, height: int) -> CameraModel:
        """The camera for frames of ``width x height`` pixels."""
        if self.calibration is not None:
            return CameraModel(self.calibration.intrinsics(width, height), "given", "calibration",
                               calibration=self.calibration.source)
        if self.intrinsics is not None:
            fx, fy, cx, cy = self.intrinsics
            return CameraModel(CameraIntrinsics(fx, fy, cx, cy, int(width), int(height)), "given", "intrinsics")
        if self.fov is not None:
            return CameraModel(CameraIntrinsics.from_fov(int(width), int(height), self.fov), "given", "fov")
        long_side = max(width, height)
        low, high = (focal_from_fov(long_side, fov) for fov in sorted(ASSUMED_FOV_RANGE_DEG, reverse=True))
        return CameraModel(CameraIntrinsics.assumed(int(width), int(height)), "assumed", "default_fov",
                           fx_range=(low, high))
