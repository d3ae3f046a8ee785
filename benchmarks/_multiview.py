"""Calibrated multi-view geometry for the real-video 3D check (``benchmarks/accuracy_real.py``).

* :func:`parse_qca` / :func:`load_qca`: Qualisys QCA XML calibration -> :class:`Camera` list.
* :meth:`Camera.project` / :meth:`Camera.undistort`: world mm <-> pixels with OpenCV's distortion
  model (k1, k2, p1, p2, k3).
* :func:`triangulate_dlt`: confidence-weighted linear triangulation (DLT).
* :func:`triangulate_robust`: the same with outlier-view rejection by reprojection error: every
  subset of >= 2 views is tried (exhaustive RANSAC -- with at most 4-5 views there are few enough
  subsets to try them all), the one with the most inlier views wins (ties: lowest inlier error) and
  the point is re-triangulated from its inliers.
* :func:`associate_people`: which detection in each view is the same person, by triangulation
  consistency (every member view must reproject within a threshold, relative to the person's size).
* :func:`link_over_time`: gives the per-frame clusters persistent identities by 3D proximity.

Conventions: world coordinates in millimetres; camera axes as OpenCV (x right, y down, z forward);
``R`` / ``t`` map world to camera (``X_cam = R @ X + t``); pixels with (0, 0) at the centre of the
top-left pixel.  This file is numpy only (no OpenCV), so the tests can check it on hand-made cases.
"""
from __future__ import annotations

import itertools
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The QCA convention measured on the Pose2Sim calibration (reprojection ~10 px, ../shared/README.md):
# Qualisys rotation rows r1*, r2*, r3* give Rq; OpenCV's camera axes are R = diag(1, -1, -1) @ Rq.
QCA_AXES = np.diag([1.0, -1.0, -1.0])
QCA_SUBPIXEL = 64.0  # QCA intrinsics are in 1/64 pixel units


@dataclass
class Camera:
    """One calibrated camera.

    Attributes:
        name: the camera's serial/name (``"cam01"``).
        K: ``(3, 3)`` intrinsics in pixels.
        dist: ``(5,)`` OpenCV distortion ``k1, k2, p1, p2, k3``.
        R: ``(3, 3)`` world -> camera rotation.
        t: ``(3,)`` world -> camera translation, mm.
        size: ``(width, height)`` of the image in pixels.
    """

    name: str
    K: np.ndarray
    dist: np.ndarray
    R: np.ndarray
    t: np.ndarray
    size: tuple[int, int] = (0, 0)

    def __post_init__(self):
        self.K = np.asarray(self.K, np.float64).reshape(3, 3)
        self.dist = np.zeros(5) if self.dist is None else np.asarray(self.dist, np.float64).reshape(5)
        self.R = np.asarray(self.R, np.float64).reshape(3, 3)
        self.t = np.asarray(self.t, np.float64).reshape(3)

    @property
    def center(self) -> np.ndarray:
        """``(3,)`` camera centre in world mm."""
        return -self.R.T @ self.t

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World ``(..., 3)`` mm -> camera-frame ``(..., 3)`` mm."""
        return np.asarray(points, np.float64) @ self.R.T + self.t

    def distort_normalized(self, xy: np.ndarray) -> np.ndarray:
        """Ideal normalised image coordinates ``(..., 2)`` -> distorted normalised ``(..., 2)``."""
        k1, k2, p1, p2, k3 = self.dist
        x, y = xy[..., 0], xy[..., 1]
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        return np.stack([xd, yd], axis=-1)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points ``(..., 3)`` mm -> pixels ``(..., 2)`` (with distortion) and depth ``(...)`` mm.

        Points behind the camera (depth <= 0) still get a pixel position; check the depth.
        """
        cam = self.to_camera(points)
        depth = cam[..., 2]
        safe = np.where(np.abs(depth) < 1e-9, 1e-9, depth)
        xy = self.distort_normalized(cam[..., :2] / safe[..., None])
        pixels = xy @ self.K[:2, :2].T + self.K[:2, 2]
        return pixels, depth

    def undistort(self, pixels: np.ndarray, iterations: int = 20) -> np.ndarray:
        """Pixels ``(..., 2)`` -> ideal (undistorted) normalised coordinates ``(..., 2)``.

        Fixed-point inversion of the distortion model, as OpenCV's ``undistortPoints`` does; exact to
        ~1e-6 px for the mild distortion of real lenses.
        """
        pixels = np.asarray(pixels, np.float64)
        fx, fy, cx, cy, skew = self.K[0, 0], self.K[1, 1], self.K[0, 2], self.K[1, 2], self.K[0, 1]
        yd = (pixels[..., 1] - cy) / fy
        xd = (pixels[..., 0] - cx - skew * yd) / fx
        k1, k2, p1, p2, k3 = self.dist
        x, y = xd.copy(), yd.copy()
        for _ in range(iterations):
            r2 = x * x + y * y
            radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
            dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
            dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
            x = (xd - dx) / radial
            y = (yd - dy) / radial
        return np.stack([x, y], axis=-1)

    @property
    def normalized_projection(self) -> np.ndarray:
        """``(3, 4)`` ``[R | t]`` in metres: the projection matrix of undistorted normalised points."""
        return np.concatenate([self.R, self.t[:, None] / 1000.0], axis=1)


# ------------------------------------------------------------------------------------ calibration


def parse_qca(text: str) -> list[Camera]:
    """Parse a Qualisys QCA XML calibration (the text of a ``*.qca.txt`` file).

    Per ``<camera>``: ``<transform r11..r33 x y z>`` (rotation rows and camera position in mm) and
    ``<intrinsic focalLengthU/V centerPointU/V radialDistortion1-3 tangentalDistortion1-2 skew>`` in
    1/64 pixel units; image size from ``<fov_video>`` (inclusive pixel bounds).  Converted with the
    measured convention: ``R = diag(1, -1, -1) @ Rq``, ``t = -R @ c``, ``K = intrinsics / 64``.
    Inactive cameras (``active="0"``) are skipped.  Returns the cameras in file order.
    """
    root = ET.fromstring(text)
    cameras = []
    for node in root.iter("camera"):
        if node.get("active", "1") == "0":
            continue
        tr, intr = node.find("transform"), node.find("intrinsic")
        if tr is None or intr is None:
            raise ValueError(f"camera {node.get('serial')!r} lacks <transform> or <intrinsic>")
        rq = np.array([[float(tr.get(f"r{i}{j}")) for j in (1, 2, 3)] for i in (1, 2, 3)])
        c = np.array([float(tr.get(k)) for k in ("x", "y", "z")])
        R = QCA_AXES @ rq
        t = -R @ c

        def f(key: str, default: float = 0.0) -> float:
            value = intr.get(key)
            return default if value is None else float(value)

        fx, fy = f("focalLengthU") / QCA_SUBPIXEL, f("focalLengthV") / QCA_SUBPIXEL
        cx, cy = f("centerPointU") / QCA_SUBPIXEL, f("centerPointV") / QCA_SUBPIXEL
        K = np.array([[fx, f("skew") / QCA_SUBPIXEL, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        dist = np.array([f("radialDistortion1"), f("radialDistortion2"), f("tangentalDistortion1"),
                         f("tangentalDistortion2"), f("radialDistortion3")])
        fov = node.find("fov_video")
        if fov is not None:
            size = (int(fov.get("right")) - int(fov.get("left")) + 1,
                    int(fov.get("bottom")) - int(fov.get("top")) + 1)
        else:
            size = (int(round(f("sensorMaxU") / QCA_SUBPIXEL)), int(round(f("sensorMaxV") / QCA_SUBPIXEL)))
        cameras.append(Camera(node.get("serial") or f"cam{len(cameras) + 1:02d}", K, dist, R, t, size))
    if not cameras:
        raise ValueError("no active <camera> in the calibration")
    return cameras


def load_qca(path: str | Path) -> list[Camera]:
    """:func:`parse_qca` of a file."""
    return parse_qca(Path(path).read_text())


# ------------------------------------------------------------------------------------ triangulation


def _projections(cameras: list[Camera]) -> np.ndarray:
    return np.stack([c.normalized_projection for c in cameras])  # (V, 3, 4)


def _undistort_all(points: np.ndarray, cameras: list[Camera]) -> np.ndarray:
    """``(N, V, 2)`` pixels -> ``(N, V, 2)`` undistorted normalised coordinates."""
    return np.stack([cam.undistort(points[:, v]) for v, cam in enumerate(cameras)], axis=1)


def _dlt_normalized(xy: np.ndarray, weights: np.ndarray, projections: np.ndarray) -> np.ndarray:
    """Weighted DLT on normalised coordinates: ``xy (N, V, 2)``, ``weights (N, V)`` (0 = unused),
    ``projections (V, 3, 4)`` -> ``(N, 3)`` metres (NaN where fewer than two views have weight)."""
    w = np.where(np.isfinite(xy).all(-1), weights, 0.0)
    xy = np.nan_to_num(xy)
    rows_x = xy[..., 0:1] * projections[None, :, 2] - projections[None, :, 0]  # (N, V, 4)
    rows_y = xy[..., 1:2] * projections[None, :, 2] - projections[None, :, 1]
    A = np.concatenate([rows_x * w[..., None], rows_y * w[..., None]], axis=1)  # (N, 2V, 4)
    _, _, vt = np.linalg.svd(A)
    X = vt[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = X[:, :3] / X[:, 3:4]
    out[(w > 0).sum(axis=1) < 2] = np.nan
    return out


def reprojection_errors(points3d: np.ndarray, points2d: np.ndarray, cameras: list[Camera]
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Pixel distance between the projection of ``points3d (..., 3)`` mm into every camera and the
    observations ``points2d (..., V, 2)`` px: returns errors ``(..., V)`` px and depths ``(..., V)`` mm."""
    errors, depths = [], []
    for v, cam in enumerate(cameras):
        pixels, depth = cam.project(points3d)
        errors.append(np.linalg.norm(pixels - points2d[..., v, :], axis=-1))
        depths.append(depth)
    return np.stack(errors, axis=-1), np.stack(depths, axis=-1)


def triangulate_dlt(points2d: np.ndarray, weights: np.ndarray | None, cameras: list[Camera]) -> np.ndarray:
    """Confidence-weighted linear triangulation.

    Args:
        points2d: ``(..., V, 2)`` pixel observations of each point in each of the ``V`` cameras
            (NaN = not seen).
        weights: ``(..., V)`` confidences (0 = not used), or ``None`` for all ones.
        cameras: the ``V`` cameras.

    Returns:
        ``(..., 3)`` world points in mm; NaN where fewer than two views have a positive weight.
    """
    points2d = np.asarray(points2d, np.float64)
    lead = points2d.shape[:-2]
    V = points2d.shape[-2]
    flat = points2d.reshape(-1, V, 2)
    w = np.ones(flat.shape[:2]) if weights is None else np.asarray(weights, np.float64).reshape(-1, V)
    X = _dlt_normalized(_undistort_all(flat, cameras), w, _projections(cameras)) * 1000.0
    return X.reshape(*lead, 3)


@dataclass
class Triangulation:
    """Result of :func:`triangulate_robust`, for points of leading shape ``S`` seen by ``V`` cameras.

    Attributes:
        points3d: ``S + (3,)`` world mm; NaN where fewer than ``min_views`` views agree.
        inliers: ``S + (V,)`` bool, the views the point was finally triangulated from.
        errors: ``S + (V,)`` px, reprojection error of the final point in every view that saw it
            (NaN where the view had no observation or the point is NaN).
    """

    points3d: np.ndarray
    inliers: np.ndarray
    errors: np.ndarray


def triangulate_robust(points2d: np.ndarray, weights: np.ndarray | None, cameras: list[Camera],
                       threshold_px: float | np.ndarray = 40.0, min_views: int = 2) -> Triangulation:
    """Weighted DLT with outlier-view rejection by reprojection error.

    Every subset of at least two observing views is triangulated; a view is an inlier of a subset's
    point when it reprojects within ``threshold_px`` and the point lies in front of it.  The subset
    with the most inliers wins (ties: the lowest mean inlier error); the point is re-triangulated
    from all its inliers (weighted) and re-checked.  Points with fewer than ``min_views`` inliers are
    NaN.

    Args:
        points2d: ``(..., V, 2)`` pixels (NaN = not seen).
        weights: ``(..., V)`` confidences; views with weight <= 0 count as not seen.
        cameras: the ``V`` cameras.
        threshold_px: inlier threshold in pixels, a scalar or an array broadcastable to ``(..., V)``
            (e.g. a fraction of each view's person height).
        min_views: fewest agreeing views for a valid point.
    """
    points2d = np.asarray(points2d, np.float64)
    lead = points2d.shape[:-2]
    V = points2d.shape[-2]
    flat = points2d.reshape(-1, V, 2)
    N = len(flat)
    w = np.ones((N, V)) if weights is None else np.broadcast_to(np.asarray(weights, np.float64), lead + (V,)).reshape(N, V)
    thr = np.broadcast_to(np.asarray(threshold_px, np.float64), lead + (V,)).reshape(N, V)
    seen = np.isfinite(flat).all(-1) & (w > 0)
    xy = _undistort_all(flat, cameras)
    P = _projections(cameras)

    best_count = np.zeros(N, int)
    best_err = np.full(N, np.inf)
    best_inliers = np.zeros((N, V), bool)
    for size in range(2, V + 1):
        for subset in itertools.combinations(range(V), size):
            mask = np.zeros(V, bool)
            mask[list(subset)] = True
            usable = seen[:, mask].all(axis=1)
            if not usable.any():
                continue
            X = _dlt_normalized(xy[usable], np.where(mask, w[usable], 0.0), P) * 1000.0
            err, depth = reprojection_errors(X, flat[usable], cameras)
            inl = seen[usable] & (err < thr[usable]) & (depth > 0)
            count = inl.sum(axis=1)
            mean_err = np.where(inl, err, 0.0).sum(axis=1) / np.maximum(count, 1)
            idx = np.flatnonzero(usable)
            better = (count > best_count[idx]) | ((count == best_count[idx]) & (mean_err < best_err[idx]))
            better &= count >= min_views
            best_count[idx[better]] = count[better]
            best_err[idx[better]] = mean_err[better]
            best_inliers[idx[better]] = inl[better]

    points3d = np.full((N, 3), np.nan)
    ok = best_count >= min_views
    if ok.any():
        X = _dlt_normalized(xy[ok], np.where(best_inliers[ok], w[ok], 0.0), P) * 1000.0
        err, depth = reprojection_errors(X, flat[ok], cameras)
        # The refit may drift off a marginal inlier; keep the refit only if its inliers still agree.
        still = (np.where(best_inliers[ok], err < thr[ok] * 1.5, True) & np.where(best_inliers[ok], depth > 0, True)).all(1)
        X[~still] = np.nan
        points3d[np.flatnonzero(ok)] = X
    errors, _ = reprojection_errors(points3d, flat, cameras)
    errors = np.where(seen & np.isfinite(points3d).all(-1, keepdims=True), errors, np.nan)
    inliers = best_inliers & np.isfinite(points3d).all(-1, keepdims=True)
    return Triangulation(points3d.reshape(*lead, 3), inliers.reshape(*lead, V), errors.reshape(*lead, V))


# ------------------------------------------------------------------------------------ association


@dataclass
class Cluster:
    """One person in one frame, seen by several views.

    Attributes:
        members: ``{view index: detection index}`` of the views that saw this person.
        points3d: ``(J, 3)`` world mm, plain weighted DLT from the members (NaN where < 2 saw a joint).
        cost: the association cost: the worst member view's median reprojection error divided by
            that view's person height (dimensionless; 0.05 = 5 % of the person's height).
        errors_px: ``{view: median reprojection error in px}`` of each member.
    """

    members: dict[int, int]
    points3d: np.ndarray
    cost: float
    errors_px: dict[int, float] = field(default_factory=dict)


def _person_height(kp: np.ndarray) -> np.ndarray:
    """``(..., J, >=2)`` px -> ``(...)`` the vertical extent of the keypoints (at least 1 px)."""
    y = kp[..., 1]
    return np.maximum(np.nanmax(y, axis=-1) - np.nanmin(y, axis=-1), 1.0)


def associate_people(detections: list[np.ndarray], cameras: list[Camera], max_cost: float = 0.08,
                     min_conf: float = 0.3, min_views: int = 2, min_joints: int = 6) -> list[Cluster]:
    """Match the people detected in each view to each other by triangulation consistency.

    Every combination of at most one detection per view (at least ``min_views`` views) is
    triangulated (weighted DLT per joint); its cost is the worst member view's median reprojection
    error over the joints, relative to that view's person height.  Combinations are accepted
    greedily, most views first, then lowest cost, while their cost is below ``max_cost`` and none of
    their detections is taken yet.

    Args:
        detections: per view, an array ``(D_v, J, 3)`` of ``[x, y, confidence]`` pixels of its ``D_v``
            detected people (``D_v`` may be 0).
        cameras: the ``V`` cameras, in the same order.
        max_cost: acceptance threshold on the relative reprojection error.
        min_conf: joints below this confidence are ignored.
        min_views: fewest views for a cluster.
        min_joints: fewest joints a member view must reproject for its median to count.

    Returns:
        the accepted :class:`Cluster` list (most views first).
    """
    V = len(cameras)
    options = [range(-1, len(d)) for d in detections]
    combos = [c for c in itertools.product(*options) if sum(i >= 0 for i in c) >= min_views]
    if not combos:
        return []
    J = next(d.shape[1] for d in detections if len(d))
    pts = np.full((len(combos), J, V, 2), np.nan)
    conf = np.zeros((len(combos), J, V))
    height = np.ones((len(combos), V))
    for k, combo in enumerate(combos):
        for v, i in enumerate(combo):
            if i >= 0:
                det = detections[v][i]
                pts[k, :, v] = det[:, :2]
                conf[k, :, v] = np.where(det[:, 2] >= min_conf, det[:, 2], 0.0)
                height[k, v] = _person_height(det[None])[0]
    X = triangulate_dlt(pts, conf, cameras)  # (C, J, 3)
    err, depth = reprojection_errors(X, pts, cameras)  # (C, J, V)
    used = (conf > 0) & np.isfinite(X).all(-1)[..., None]
    err = np.where(used & (depth > 0), err, np.where(used, 1e6, np.nan))  # behind a camera: rejected
    n_used = used.sum(axis=1)  # (C, V)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns = views not in the combo
        med = np.nanmedian(np.where(used, err, np.nan), axis=1)  # (C, V)
    members_mask = np.array([[i >= 0 for i in c] for c in combos])
    rel = np.where(members_mask, med / height, np.nan)
    bad = members_mask & ((n_used < min_joints) | ~np.isfinite(rel))
    cost = np.where(bad.any(axis=1), np.inf, np.nanmax(np.where(members_mask, rel, -np.inf), axis=1))
    n_views = members_mask.sum(axis=1)
    order = np.lexsort((cost, -n_views))
    taken: set[tuple[int, int]] = set()
    clusters = []
    for k in order:
        if not cost[k] < max_cost:
            continue
        pairs = [(v, i) for v, i in enumerate(combos[k]) if i >= 0]
        if any(p in taken for p in pairs):
            continue
        taken.update(pairs)
        clusters.append(Cluster(dict(pairs), X[k], float(cost[k]), {v: float(med[k, v]) for v, _ in pairs}))
    return clusters


def link_over_time(clusters_per_frame: list[list[Cluster]], max_step_mm: float = 400.0,
                   max_gap: int = 10) -> list[list[int]]:
    """Give per-frame clusters persistent person ids by 3D proximity.

    A cluster continues the person whose last known centre (mean of its valid joints) is nearest,
    if closer than ``max_step_mm`` times (1 + frames since last seen, capped at ``max_gap``)^0.5;
    matching is greedy by distance.  Otherwise it starts a new id.

    Returns:
        per frame, the person id of each cluster (same order as the input).
    """
    last: dict[int, tuple[int, np.ndarray]] = {}
    next_id = 0
    ids_per_frame = []
    for t, clusters in enumerate(clusters_per_frame):
        centres = [np.nanmean(c.points3d, axis=0) for c in clusters]
        pairs = []
        for ci, centre in enumerate(centres):
            for pid, (seen, prev) in last.items():
                gap = t - seen
                if gap > max_gap or not np.isfinite(centre).all():
                    continue
                d = float(np.linalg.norm(centre - prev))
                if d < max_step_mm * np.sqrt(gap):
                    pairs.append((d, ci, pid))
        ids = [-1] * len(clusters)
        used: set[int] = set()
        for d, ci, pid in sorted(pairs):
            if ids[ci] < 0 and pid not in used:
                ids[ci] = pid
                used.add(pid)
        for ci in range(len(clusters)):
            if ids[ci] < 0:
                ids[ci] = next_id
                next_id += 1
            if np.isfinite(centres[ci]).all():
                last[ids[ci]] = (t, centres[ci])
        ids_per_frame.append(ids)
    return ids_per_frame


# ------------------------------------------------------------------------------------ pose helpers


def similarity_align(source: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Align each ``source (..., J, 3)`` onto ``target (..., J, 3)`` with the optimal similarity
    transform (rotation, scale, translation; Umeyama with reflection guard), fitted on the joints
    where ``mask (..., J)`` is true (all when ``None``); returns the aligned ``(..., J, 3)`` (every
    joint is transformed).  Without a mask this equals :func:`streampose.metrics.procrustes_align`,
    the P-MPJPE alignment.  Masked-out target joints may be NaN.
    """
    source = np.asarray(source, np.float64)
    target = np.asarray(target, np.float64)
    if mask is None:
        mask = np.ones(source.shape[:-1], bool)
    w = np.asarray(mask, np.float64)[..., None]  # (..., J, 1)
    n = np.maximum(w.sum(axis=-2, keepdims=True), 1e-12)
    src = np.where(w > 0, source, 0.0)
    tgt = np.where(w > 0, target, 0.0)
    mu_s = (w * src).sum(axis=-2, keepdims=True) / n
    mu_t = (w * tgt).sum(axis=-2, keepdims=True) / n
    p, q = (src - mu_s) * w, (tgt - mu_t) * w
    u, sigma, vt = np.linalg.svd(np.swapaxes(p, -1, -2) @ q)
    sign = np.sign(np.linalg.det(u @ vt))
    sigma = sigma.copy()
    sigma[..., -1] *= sign
    vt = vt.copy()
    vt[..., -1, :] *= sign[..., None]
    rotation = u @ vt
    scale = sigma.sum(axis=-1)[..., None, None] / np.maximum((p * p).sum(axis=(-1, -2))[..., None, None], 1e-12)
    return scale * ((source - mu_s) @ rotation) + mu_t


def joint_angle_deg(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Angle at ``b`` between ``a - b`` and ``c - b`` in degrees, for ``(..., 3)`` points."""
    u, w = a - b, c - b
    cos = (u * w).sum(-1) / np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(w, axis=-1), 1e-12)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
