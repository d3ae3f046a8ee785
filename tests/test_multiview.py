"""benchmarks/_multiview.py: calibration parsing, projection, robust triangulation, association."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _multiview as mv  # noqa: E402


def look_at(position, target=(0.0, 0.0, 900.0)) -> tuple[np.ndarray, np.ndarray]:
    """World->camera (R, t) of a camera at ``position`` (mm) looking at ``target``, world z up."""
    position, target = np.asarray(position, float), np.asarray(target, float)
    forward = target - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])  # rows: camera x (right), y (down), z (forward)
    return R, -R @ position


def synthetic_cameras(dist=(0.0, 0.0, 0.0, 0.0, 0.0)) -> list[mv.Camera]:
    K = np.array([[1500.0, 0, 540], [0, 1500.0, 960], [0, 0, 1]])
    cams = []
    for k, angle in enumerate(np.radians([10, 100, 190, 280])):
        pos = [3500 * np.cos(angle), 3500 * np.sin(angle), 1500 + 100 * k]
        R, t = look_at(pos)
        cams.append(mv.Camera(f"cam{k + 1:02d}", K, np.asarray(dist), R, t, (1088, 1920)))
    return cams


def body_points(n=17, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform([-400, -300, 0], [400, 300, 1800], size=(n, 3))


def test_projection_and_undistort_round_trip():
    cam = synthetic_cameras(dist=(-0.05, 0.14, 0.0006, 0.0007, 0.0))[0]
    X = body_points()
    px, depth = cam.project(X)
    assert (depth > 0).all()
    normalized = cam.undistort(px)
    cam_pts = cam.to_camera(X)
    np.testing.assert_allclose(normalized, cam_pts[:, :2] / cam_pts[:, 2:], atol=1e-8)


def test_triangulating_exact_projections_recovers_points():
    cams = synthetic_cameras(dist=(-0.046, 0.14, 0.0006, 0.0007, 0.0))
    X = body_points(50)
    obs = np.stack([c.project(X)[0] for c in cams], axis=1)  # (N, V, 2)
    np.testing.assert_allclose(mv.triangulate_dlt(obs, None, cams), X, atol=1e-6)
    robust = mv.triangulate_robust(obs, np.ones(obs.shape[:2]), cams, threshold_px=5.0)
    np.testing.assert_allclose(robust.points3d, X, atol=1e-6)
    assert robust.inliers.all()
    assert np.nanmax(robust.errors) < 1e-6
    # Two views are enough; missing observations (NaN) are skipped.
    two = obs.copy()
    two[:, 2:] = np.nan
    np.testing.assert_allclose(mv.triangulate_dlt(two, None, cams), X, atol=1e-6)


def test_outlier_view_is_rejected():
    cams = synthetic_cameras()
    X = body_points(20, seed=1)
    rng = np.random.default_rng(2)
    obs = np.stack([c.project(X)[0] for c in cams], axis=1) + rng.normal(0, 1.0, (20, 4, 2))
    obs[:, 1] += 150.0  # view 1 sees something else (e.g. another person): 150 px off
    plain = mv.triangulate_dlt(obs, None, cams)
    robust = mv.triangulate_robust(obs, None, cams, threshold_px=15.0)
    assert np.linalg.norm(plain - X, axis=-1).mean() > 20.0  # the outlier drags the plain DLT
    assert np.linalg.norm(robust.points3d - X, axis=-1).max() < 10.0
    assert not robust.inliers[:, 1].any() and robust.inliers[:, [0, 2, 3]].all()
    assert (robust.errors[:, 1] > 100).all()
    # A low-confidence view is down-weighted by the weighted DLT even without rejection.
    weights = np.tile([1.0, 1e-4, 1.0, 1.0], (20, 1))
    assert np.linalg.norm(mv.triangulate_dlt(obs, weights, cams) - X, axis=-1).max() < 10.0


def test_too_few_agreeing_views_gives_nan():
    cams = synthetic_cameras()
    X = body_points(5)
    obs = np.stack([c.project(X)[0] for c in cams], axis=1)
    obs[:, 1] += 200.0
    obs[:, 2:] = np.nan
    result = mv.triangulate_robust(obs, None, cams, threshold_px=10.0)
    assert np.isnan(result.points3d).all() and not result.inliers.any()


def test_association_matches_the_same_person_across_views():
    cams = synthetic_cameras()
    person_a = body_points(12, seed=3)
    person_b = body_points(12, seed=4) + np.array([900.0, 0.0, 0.0])
    rng = np.random.default_rng(5)
    detections, truth = [], []
    for v, cam in enumerate(cams):
        dets = []
        for X in (person_a, person_b):
            px = cam.project(X)[0] + rng.normal(0, 2.0, (12, 2))
            dets.append(np.concatenate([px, np.ones((12, 1))], axis=1))
        order = [1, 0] if v % 2 else [0, 1]  # views list the people in different orders
        detections.append(np.stack([dets[i] for i in order]))
        truth.append({order[j]: j for j in range(2)})  # person -> detection index
    # a false detection in view 2 that matches nobody
    detections[2] = np.concatenate([detections[2], detections[2][:1] + np.array([300.0, -250.0, 0.0])])
    clusters = mv.associate_people(detections, cams, max_cost=0.05)
    assert len(clusters) == 2
    for cluster in clusters:
        assert len(cluster.members) == 4
        person = min((0, 1), key=lambda p: np.linalg.norm(
            np.nanmean(cluster.points3d, 0) - np.mean((person_a, person_b)[p], 0)))
        assert cluster.members == {v: truth[v][person] for v in range(4)}
        assert max(cluster.errors_px.values()) < 10.0
    ids = mv.link_over_time([clusters, clusters[::-1]])
    assert ids[0] == ids[1][::-1]


QCA = """<?xml version='1.0' encoding='ASCII'?>
<calibration type="regular">
  <cameras>
    <camera active="1" serial="camA">
      <fov_video bottom="1919" left="0" right="1087" top="0"/>
      <transform r11="1" r12="0" r13="0" r21="0" r22="0" r23="1" r31="0" r32="-1" r33="0"
                 x="100" y="-3000" z="1000"/>
      <intrinsic centerPointU="34560" centerPointV="61440" focalLengthU="96000" focalLengthV="96064"
                 radialDistortion1="-0.05" radialDistortion2="0.14" radialDistortion3="0.01"
                 tangentalDistortion1="0.0006" tangentalDistortion2="0.0007" skew="0"/>
    </camera>
    <camera active="0" serial="off">
      <transform r11="1" r12="0" r13="0" r21="0" r22="1" r23="0" r31="0" r32="0" r33="1" x="0" y="0" z="0"/>
      <intrinsic centerPointU="0" centerPointV="0" focalLengthU="64" focalLengthV="64"/>
    </camera>
  </cameras>
</calibration>
"""


def test_qca_parser_on_hand_written_xml():
    cams = mv.parse_qca(QCA)
    assert [c.name for c in cams] == ["camA"]
    cam = cams[0]
    assert cam.size == (1088, 1920)
    np.testing.assert_allclose(cam.K, [[1500, 0, 540], [0, 1501, 960], [0, 0, 1]])
    np.testing.assert_allclose(cam.dist, [-0.05, 0.14, 0.0006, 0.0007, 0.01])
    rq = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float)
    np.testing.assert_allclose(cam.R, np.diag([1, -1, -1]) @ rq)
    np.testing.assert_allclose(cam.center, [100, -3000, 1000])
    # This camera sits at y = -3000 looking along +y (world z up): a point in front projects near
    # the principal point with positive depth, and a point above it lands higher in the image.
    px, depth = cam.project(np.array([[100.0, 0.0, 1000.0], [100.0, 0.0, 1500.0]]))
    assert depth[0] == pytest.approx(3000.0)
    np.testing.assert_allclose(px[0], [540, 960], atol=1e-9)
    assert px[1, 1] < px[0, 1]


@pytest.mark.shared
def test_pose2sim_calibration_loads(shared_dir):
    path = shared_dir / "data" / "videos" / "pose2sim_multiperson" / "Calib.qca.txt"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    cams = mv.load_qca(path)
    assert [c.name for c in cams] == ["cam01", "cam02", "cam03", "cam04"]
    for cam in cams:
        assert cam.size == (1088, 1920)
        np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-6)
        # All four cameras look at the capture volume around the world origin (1-4 m away).
        _, depth = cam.project(np.array([[0.0, 0.0, 900.0]]))
        assert 1000 < depth[0] < 5000


def test_masked_similarity_alignment():
    from streampose.metrics import procrustes_align

    rng = np.random.default_rng(7)
    target = rng.normal(0, 300, (5, 12, 3))
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    source = 0.001 * (target @ rot.T) + 0.5  # metres, rotated, shifted
    np.testing.assert_allclose(mv.similarity_align(source, target), target, atol=1e-9)
    np.testing.assert_allclose(mv.similarity_align(source, target), procrustes_align(source, target), atol=1e-9)
    # Joints outside the mask neither move the fit nor need a finite target.
    corrupted = target.copy()
    corrupted[:, :2] = np.nan
    mask = np.ones((5, 12), bool)
    mask[:, :2] = False
    np.testing.assert_allclose(mv.similarity_align(source, corrupted, mask), target, atol=1e-9)
