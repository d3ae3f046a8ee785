"""Camera math: screen normalisation, projection, look-at, world<->camera, virtual camera sampling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from streampose.camera import CameraIntrinsics, image_coordinates, normalize_screen_coordinates, project_to_2d
from streampose_train.filming import VirtualCamera, camera_to_world, look_at_rotation, world_to_camera
from streampose.errors import InputError
from streampose.skeleton import H36M17


def test_normalize_screen_coordinates_matches_videopose3d():
    xy = np.array([[0.0, 0.0], [1920.0, 1080.0], [960.0, 540.0]])
    out = normalize_screen_coordinates(xy, 1920, 1080)
    np.testing.assert_allclose(out, [[-1, -1080 / 1920], [1, 1080 / 1920], [0, 0]])


@pytest.mark.parametrize("w,h", [(1920, 1080), (720, 1280), (640, 480)])
def test_screen_round_trip_numpy_and_torch(w, h):
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, [w, h], size=(5, 17, 2))
    np.testing.assert_allclose(image_coordinates(normalize_screen_coordinates(xy, w, h), w, h), xy,
                               atol=1e-9)
    t = torch.tensor(xy, dtype=torch.float32)
    back = image_coordinates(normalize_screen_coordinates(t, w, h), w, h)
    assert isinstance(back, torch.Tensor)
    np.testing.assert_allclose(back.numpy(), xy, atol=1e-3)
    # aspect ratio is kept: a square in pixels stays a square
    n = normalize_screen_coordinates(np.array([[0.0, 0.0], [100.0, 100.0]]), w, h)
    assert n[1, 0] - n[0, 0] == pytest.approx(n[1, 1] - n[0, 1])


def test_bad_shapes_raise_input_error():
    with pytest.raises(InputError):
        normalize_screen_coordinates(np.zeros((17, 3)), 100, 100)
    with pytest.raises(InputError):
        project_to_2d(np.zeros((17, 2)), CameraIntrinsics.from_fov(640, 480, 60))
    with pytest.raises(InputError):
        VirtualCamera.sample(np.random.default_rng(0), subject=np.zeros((17, 3)))


def test_project_known_points():
    k = CameraIntrinsics(fx=500, fy=400, cx=320, cy=240, width=640, height=480)
    pts = np.array([[0.0, 0.0, 2.0], [1.0, 0.0, 2.0], [0.0, -1.0, 4.0]])
    np.testing.assert_allclose(project_to_2d(pts, k), [[320, 240], [570, 240], [320, 140]])
    torch_px = project_to_2d(torch.tensor(pts), k)
    np.testing.assert_allclose(torch_px.numpy(), [[320, 240], [570, 240], [320, 140]])


def test_radial_distortion_barrel_pulls_inwards():
    plain = CameraIntrinsics.from_fov(1280, 720, 70)
    barrel = CameraIntrinsics(**{**plain.__dict__, "k1": -0.1})
    point = np.array([[1.0, 0.5, 2.0]])
    centre = np.array([plain.cx, plain.cy])
    r_plain = np.linalg.norm(project_to_2d(point, plain) - centre)
    r_barrel = np.linalg.norm(project_to_2d(point, barrel) - centre)
    assert r_barrel < r_plain
    r2 = (0.5 ** 2 + 0.25 ** 2)
    assert r_barrel == pytest.approx(r_plain * (1 - 0.1 * r2))


def test_fov_and_intrinsics_helpers():
    k = CameraIntrinsics.from_fov(1000, 500, 90)
    assert k.fx == pytest.approx(500) and k.horizontal_fov_deg == pytest.approx(90)
    assert (k.w, k.h) == (1000, 500)
    np.testing.assert_allclose(k.matrix, [[500, 0, 499.5], [0, 500, 249.5], [0, 0, 1]])


def test_look_at_axes_and_handedness():
    # Camera 5 m in front of a subject at the origin who faces +z (their left is world +x).
    position, target = np.array([0.0, 1.0, 5.0]), np.array([0.0, 1.0, 0.0])
    rotation = look_at_rotation(position, target)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    camera = VirtualCamera(CameraIntrinsics.from_fov(640, 480, 60), rotation, -rotation @ position)
    np.testing.assert_allclose(camera.position, position)
    px = camera.project(np.array([[0.0, 1.0, 0.0], [0.3, 1.0, 0.0], [0.0, 1.5, 0.0]]))
    centre = np.array([camera.intrinsics.cx, camera.intrinsics.cy])
    np.testing.assert_allclose(px[0], centre, atol=1e-9)
    assert px[1, 0] > centre[0]  # subject's left shows on the image right (no mirroring)
    assert px[2, 1] < centre[1]  # up in the world is up in the image
    cam = world_to_camera(np.array([[0.0, 1.0, 0.0]]), camera)
    np.testing.assert_allclose(cam, [[0, 0, 5]], atol=1e-12)


def test_roll_turns_the_image():
    position, target = np.array([0.0, 1.0, 5.0]), np.array([0.0, 1.0, 0.0])
    rotation = look_at_rotation(position, target, roll_deg=90)
    up_in_camera = rotation @ np.array([0.0, 1.0, 0.0])
    assert abs(up_in_camera[1]) < 1e-9 and abs(up_in_camera[0]) == pytest.approx(1.0)


def test_world_camera_round_trip_numpy_and_torch():
    rng = np.random.default_rng(3)
    camera = VirtualCamera.sample(rng)
    pts = rng.normal(size=(4, 17, 3))
    np.testing.assert_allclose(camera_to_world(world_to_camera(pts, camera), camera), pts,
                               atol=1e-9)
    t = torch.tensor(pts)
    np.testing.assert_allclose(world_to_camera(t, camera).numpy(), world_to_camera(pts, camera),
                               atol=1e-9)


def _walking_subject(num_frames: int = 120, travel: float = 4.0) -> np.ndarray:
    """A rigid 1.75 m stick figure walking ``travel`` metres along +z: ``(T, 17, 3)``."""
    stand = np.array([
        [0, 0.95, 0], [-0.13, 0.95, 0], [-0.13, 0.5, 0], [-0.13, 0.08, 0], [0.13, 0.95, 0],
        [0.13, 0.5, 0], [0.13, 0.08, 0], [0, 1.2, 0], [0, 1.45, 0], [0, 1.6, 0.1], [0, 1.75, 0],
        [0.17, 1.45, 0], [0.2, 1.2, 0], [0.22, 0.95, 0], [-0.17, 1.45, 0], [-0.2, 1.2, 0],
        [-0.22, 0.95, 0]])
    assert stand.shape == (H36M17.num_joints, 3)
    offsets = np.zeros((num_frames, 1, 3))
    offsets[:, 0, 2] = np.linspace(0, travel, num_frames)
    return stand[None] + offsets


def test_virtual_cameras_keep_the_subject_in_view_and_cover_the_ranges():
    rng = np.random.default_rng(0)
    subject = _walking_subject()
    fractions, fovs, heights, portraits, azimuths = [], [], [], [], []
    for _ in range(200):
        camera = VirtualCamera.sample(rng, subject=subject)
        fractions.append(camera.fraction_in_view(subject))
        fovs.append(camera.info["fov_deg"])
        heights.append(camera.position[1])
        portraits.append(camera.intrinsics.height > camera.intrinsics.width)
        azimuths.append(camera.info["azimuth_deg"])
        # the mean root is in front of the camera
        assert world_to_camera(subject[:, 0].mean(0, keepdims=True), camera)[0, 2] > 1.0
    fractions = np.array(fractions)
    assert (fractions > 0.95).mean() > 0.95
    assert fractions.mean() > 0.98
    assert 50 <= min(fovs) and max(fovs) <= 85
    assert 0.5 <= min(heights) and max(heights) <= 2.5
    assert 0.15 < np.mean(portraits) < 0.45
    assert np.histogram(azimuths, bins=4, range=(0, 360))[0].min() > 25  # all around the subject


def test_sampling_is_deterministic_per_seed():
    a = VirtualCamera.sample(np.random.default_rng(7), subject=_walking_subject())
    b = VirtualCamera.sample(np.random.default_rng(7), subject=_walking_subject())
    c = VirtualCamera.sample(np.random.default_rng(8), subject=_walking_subject())
    np.testing.assert_array_equal(a.rotation, b.rotation)
    assert not np.allclose(a.rotation, c.rotation)
