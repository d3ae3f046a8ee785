"""The root from geometry: exact on synthetic projections with known K, scale from the subject's
height, robust to a bad keypoint, and the tracker's per-track path (root smoothed with the pose)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from streampose.camera import CameraIntrinsics, CameraModel, CameraOptions, project_to_2d, undistort_normalized
from streampose.lifter.root import ANKLE_HEIGHT_M, RootSolver, skeleton_height, solve_root
from streampose.skeleton import H36M17
from streampose.tracker import Tracker
from streampose.types import Frame, Person2D

# A 1.75 m stick figure (x right, y down, z forward; root-relative, metres).
STAND = np.array([
    [0, 0, 0], [-0.13, 0, 0], [-0.13, 0.45, 0.02], [-0.13, 0.87, 0], [0.13, 0, 0], [0.13, 0.45, 0.02],
    [0.13, 0.87, 0], [0, -0.25, 0], [0, -0.5, 0.02], [0, -0.65, -0.08], [0, -0.8, 0], [0.17, -0.5, 0],
    [0.2, -0.25, -0.05], [0.22, 0.0, -0.1], [-0.17, -0.5, 0], [-0.2, -0.25, 0.05], [-0.22, 0.0, 0.1]])


def _camera(distorted: bool = True) -> CameraIntrinsics:
    return CameraIntrinsics(fx=1100, fy=1090, cx=630, cy=370, width=1280, height=720,
                            k1=-0.08 if distorted else 0.0, p1=0.001 if distorted else 0.0)


def _poses(count: int, seed: int = 0) -> np.ndarray:
    """``(count, 17, 3)`` the stick figure turned about the vertical and bent a little."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        a = rng.uniform(-np.pi, np.pi)
        turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        out.append(STAND @ turn.T + rng.normal(0, 0.03, STAND.shape) * (np.arange(17) > 0)[:, None])
    return np.asarray(out)


def _pixels(pose: np.ndarray, root: np.ndarray, k: CameraIntrinsics, confidence: float = 0.9) -> np.ndarray:
    xy = project_to_2d(pose + root, k)
    return np.concatenate([xy, np.full((len(xy), 1), confidence)], axis=1)


def test_skeleton_height_hand_computed():
    pose = np.zeros((17, 3))
    j = H36M17.index
    for side in ("R", "L"):
        pose[j(f"{side}Knee")] = [0, 0.4, 0]
        pose[j(f"{side}Foot")] = [0, 0.8, 0]
    pose[j("Spine")], pose[j("Thorax")], pose[j("Neck/Nose")], pose[j("Head")] = (
        [0, -0.25, 0], [0, -0.5, 0], [0, -0.65, 0], [0, -0.8, 0])
    assert skeleton_height(pose) == pytest.approx(0.8 + 0.8 + ANKLE_HEIGHT_M)
    assert skeleton_height(np.stack([pose, 2 * pose])).shape == (2,)


def test_solve_is_exact_without_noise():
    k = _camera()
    poses = _poses(20)
    rng = np.random.default_rng(1)
    roots = np.column_stack([rng.uniform(-1, 1, 20), rng.uniform(-0.5, 0.5, 20), rng.uniform(2.5, 9, 20)])
    pixels = np.stack([_pixels(p, r, k) for p, r in zip(poses, roots)])
    uv = undistort_normalized(pixels[..., :2], k)
    np.testing.assert_allclose(solve_root(poses, uv, pixels[..., 2]), roots, atol=1e-7)
    np.testing.assert_allclose(solve_root(poses, uv, pixels[..., 2], robust=False), roots, atol=1e-7)
    # One frame at a time: the same.
    np.testing.assert_allclose(solve_root(poses[3], uv[3], pixels[3, :, 2]), roots[3], atol=1e-7)


def test_solver_per_track_exact_with_distortion_and_scale_from_height():
    k = _camera()
    model = CameraModel(k, "given", "intrinsics")
    poses, root = _poses(30, seed=2), np.array([0.4, 0.2, 4.0])
    solver = RootSolver(model)
    for pose in poses:
        result = solver(pose, _pixels(pose, root, k))
        np.testing.assert_allclose(result.root, root, atol=1e-5)
        assert result.scale == 1.0
    assert solver.scale_source == "lifter"
    # The lifter sees a 1.75 m body 12 % too large: the depth comes out 12 % too far...
    big = RootSolver(model)
    result = big(1.12 * poses[0], _pixels(poses[0], root, k))
    assert result.root[2] == pytest.approx(1.12 * root[2], rel=1e-4)
    # ... unless the subject's height is given: the pose is rescaled and the root is exact again.
    true_height = float(np.median(skeleton_height(poses)))
    sized = RootSolver(model, person_height=true_height)
    for pose in poses:
        result = sized(1.12 * pose, _pixels(pose, root, k))
    assert sized.scale_source == "height"
    assert result.scale == pytest.approx(1 / 1.12, rel=0.02)
    np.testing.assert_allclose(result.root, root, rtol=0.02)
    np.testing.assert_allclose(result.keypoints3d, poses[-1], atol=0.03)


def test_low_confidence_and_missing_joints_are_left_out():
    k = _camera(distorted=False)
    pose, root = _poses(1)[0], np.array([0.0, 0.1, 5.0])
    pixels = _pixels(pose, root, k)
    pixels[13, :2] += 300  # a wild wrist the detector doubts
    pixels[13, 2] = 0.05
    pixels[16, :2] = np.nan  # a joint not found at all
    uv = undistort_normalized(pixels[:, :2], k)
    np.testing.assert_allclose(solve_root(pose, uv, pixels[:, 2]), root, atol=1e-7)
    # Fewer than two joints: no solution, NaN (not an exception).
    assert np.isnan(solve_root(pose[:1], uv[:1], pixels[:1, 2])).all()


def test_huber_pass_limits_a_confident_bad_keypoint():
    k = _camera(distorted=False)
    pose, root = _poses(1, seed=4)[0], np.array([0.2, 0.0, 4.0])
    pixels = _pixels(pose, root, k)
    pixels[3, :2] += [0, 250]  # an ankle far off, reported with full confidence
    uv = undistort_normalized(pixels[:, :2], k)
    plain = solve_root(pose, uv, pixels[:, 2], robust=False)
    robust = solve_root(pose, uv, pixels[:, 2])
    assert np.linalg.norm(robust - root) < 0.5 * np.linalg.norm(plain - root)


@dataclass
class _Result:
    keypoints3d: np.ndarray
    root: np.ndarray | None
    index: int = -1


class _TruthStream:
    """A causal 'lifter' that answers each frame with the true pose (and a useless trajectory root)."""

    def __init__(self, poses):
        self.poses = list(poses)

    def push(self, kp2d):
        return [_Result(self.poses.pop(0).astype(np.float32), np.array([0.0, 0.0, 99.0], np.float32))]

    def flush(self):
        return []


class _TruthLifter:
    def __init__(self, poses):
        self.poses = poses

    def stream(self, image_size):
        return _TruthStream(self.poses)


def _run_tracker(poses, roots, k, **options):
    tracker = Tracker(_TruthLifter(poses), causal=True, **options)
    image = np.zeros((k.height, k.width, 3), np.uint8)
    frames = []
    for t, (pose, root) in enumerate(zip(poses, roots)):
        kp = _pixels(pose, root, k).astype(np.float32)
        box = np.array([*np.nanmin(kp[:, :2], 0), *np.nanmax(kp[:, :2], 0)], np.float32)
        frames += tracker.push(Frame(index=t, time=t / 30.0, image=image), [Person2D(box, 0.9, kp)])
    return frames + tracker.flush()


def test_tracker_reports_the_geometric_root_with_the_given_camera():
    k = _camera()
    poses = _poses(40, seed=5)
    roots = np.column_stack([np.linspace(-0.5, 0.5, 40), np.full(40, 0.2), np.linspace(3.0, 5.0, 40)])
    from streampose.camera import Calibration

    calibration = Calibration(tuple(map(tuple, k.matrix)), k.distortion, (k.width, k.height))
    frames = _run_tracker(poses, roots, k, smoothing="none", camera=CameraOptions(calibration=calibration))
    got = np.array([f.people[0].root for f in frames])
    np.testing.assert_allclose(got, roots, atol=1e-4)
    # The default Kalman smooths the root with the joints; a straight, steady walk stays on it.
    frames = _run_tracker(poses, roots, k, camera=CameraOptions(calibration=calibration))
    got = np.array([f.people[0].root for f in frames])
    assert np.abs(got - roots).max() < 0.05
    # The pose stays root-relative.
    assert all(np.allclose(f.people[0].keypoints3d[0], 0) for f in frames)


def test_tracker_without_intrinsics_assumes_a_camera_and_trajectory_mode_keeps_the_model():
    k = _camera(distorted=False)
    poses = _poses(10, seed=6)
    roots = np.tile([0.0, 0.1, 4.0], (10, 1))
    assumed = CameraOptions().resolve(k.width, k.height).intrinsics
    frames = _run_tracker(poses, roots, k, smoothing="none")
    got = np.array([f.people[0].root for f in frames])
    # Assumed focal length f_a instead of the true f: the depth scales by f_a / f.
    np.testing.assert_allclose(got[:, 2], 4.0 * assumed.fx / k.fx, rtol=0.02)
    frames = _run_tracker(poses, roots, k, smoothing="none", root="trajectory")
    np.testing.assert_allclose([f.people[0].root for f in frames], np.tile([0, 0, 99.0], (10, 1)))
