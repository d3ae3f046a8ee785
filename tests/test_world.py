"""World frame from a track: floor fit on generated walks (straight, around a circle, standing), foot
contacts and foot sliding, hand-checked."""
from __future__ import annotations

import numpy as np
import pytest

from streampose.errors import InputError
from streampose.lifter.root import ANKLE_HEIGHT_M
from streampose.skeleton import H36M17
from streampose.world import fit_ground, foot_contacts, foot_sliding

J = H36M17.index
FPS = 30.0
STAND = np.array([
    [0, 0.95, 0], [-0.1, 0.95, 0], [-0.1, 0.5, 0.02], [-0.1, 0.08, 0], [0.1, 0.95, 0],
    [0.1, 0.5, 0.02], [0.1, 0.08, 0], [0, 1.2, 0], [0, 1.45, 0], [0, 1.6, 0.1], [0, 1.75, 0],
    [0.17, 1.45, 0], [0.2, 1.2, 0], [0.22, 0.95, 0], [-0.17, 1.45, 0], [-0.2, 1.2, 0], [-0.22, 0.95, 0]])


def walk(path: np.ndarray, step: float = 0.6, seconds_per_step: float = 0.5) -> np.ndarray:
    """``(T, 17, 3)`` world joints (y up, floor 0) of a figure walking along ``path (K, 2)`` (x, z):
    the feet alternate, the stance foot stays planted, the swing foot lifts 10 cm."""
    length = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    frames = int(length[-1] / step * seconds_per_step * FPS)
    out = []
    for t in range(frames):
        s = t / (seconds_per_step * FPS)  # steps done
        distance = s * step
        centre = np.array([np.interp(distance, length, path[:, 0]), np.interp(distance, length, path[:, 1])])
        ahead = np.array([np.interp(distance + 0.05, length, path[:, 0]),
                          np.interp(distance + 0.05, length, path[:, 1])])
        heading = np.arctan2(*(ahead - centre))
        c, sn = np.cos(heading), np.sin(heading)
        turn = np.array([[c, 0, sn], [0, 1, 0], [-sn, 0, c]])
        pose = STAND @ turn.T + [centre[0], 0, centre[1]]
        for k, foot in enumerate((J("LFoot"), J("RFoot"))):
            phase = (s + k) % 2  # < 1: stance, else swing
            planted_at = (np.floor((s + k) / 2) * 2 - k + 0.5) * step  # where this foot stands
            if phase < 1:
                d = planted_at
                lift = 0.0
            else:
                d = planted_at + (phase - 1) * 2 * step
                lift = 0.1 * np.sin(np.pi * (phase - 1))
            spot = np.array([np.interp(d, length, path[:, 0]), np.interp(d, length, path[:, 1])])
            side = (STAND[foot] @ turn.T)[[0, 2]]
            pose[foot] = [spot[0] + side[0], ANKLE_HEIGHT_M + lift, spot[1] + side[1]]
        out.append(pose)
    return np.asarray(out)


def camera(pitch_deg: float = 15.0, roll_deg: float = 3.0, height: float = 1.4, back: float = 6.0):
    """World -> camera (OpenCV axes) of a camera ``height`` up, ``back`` m behind the origin, pitched down."""
    p, r = np.radians(pitch_deg), np.radians(roll_deg)
    base = np.diag([1.0, -1.0, -1.0])  # world y up / z towards the camera -> camera y down / z forward
    pitch = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    roll = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    rotation = roll @ pitch @ base
    position = np.array([0.0, height, back])
    return rotation, position


def to_camera(world: np.ndarray, rotation: np.ndarray, position: np.ndarray) -> np.ndarray:
    return (world - position) @ rotation.T


def _angle(a, b) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


@pytest.mark.parametrize("name,path,method", [
    ("straight", np.array([[-2.0, -1.0], [2.0, 1.0]]), "line"),
    ("circle", np.stack([1.5 * np.sin(np.linspace(0, 2 * np.pi, 60)),
                         1.5 * np.cos(np.linspace(0, 2 * np.pi, 60)) - 1.5], axis=1), "contacts"),
])
def test_floor_of_a_generated_walk(name, path, method):
    world = walk(path)
    rotation, position = camera()
    ground = fit_ground(to_camera(world, rotation, position), FPS)
    assert ground.method == method
    true_up = rotation @ np.array([0.0, 1.0, 0.0])
    assert _angle(ground.up, true_up) < 1.0
    assert ground.camera_height == pytest.approx(1.4, abs=0.05)
    back = ground.to_world(to_camera(world, rotation, position))
    # Floor at 0, y up: the planted ankles stand at their ankle height.
    assert np.median(back[:, [J("LFoot"), J("RFoot")], 1]) == pytest.approx(ANKLE_HEIGHT_M, abs=0.02)
    assert (back[:, J("Head"), 1] > 1.6).all()
    np.testing.assert_allclose(ground.to_camera(back), to_camera(world, rotation, position), atol=1e-9)


def test_standing_still_falls_back_to_the_body_up_and_too_little_data_is_an_error():
    world = np.repeat(STAND[None], 60, axis=0)
    rotation, position = camera(pitch_deg=20, roll_deg=0)
    ground = fit_ground(to_camera(world, rotation, position), FPS)
    assert ground.method == "body_up"
    assert _angle(ground.up, rotation @ [0.0, 1.0, 0.0]) < 1.0
    with pytest.raises(InputError):
        fit_ground(np.full((10, 17, 3), np.nan), FPS)
    with pytest.raises(InputError):
        fit_ground(np.zeros((10, 3)), FPS)


def test_contacts_and_sliding_hand_checked():
    world = np.repeat(STAND[None], 10, axis=0).copy()
    # Left foot planted; the right foot slides 1 cm per frame along x (on the floor), then lifts off.
    world[:, J("RFoot"), 0] += 0.01 * np.arange(10)
    world[7:, J("RFoot"), 1] += 0.3
    contacts = foot_contacts(world, FPS)
    assert contacts[:, 0].all()
    assert contacts[:7, 1].all() and not contacts[7:, 1].any()
    sliding = foot_sliding(world, contacts)
    # 9 left steps of 0 mm and 6 right steps of 10 mm.
    assert sliding["contact_frames"] == 15
    assert sliding["mm_per_contact_frame"] == pytest.approx(6 * 10 / 15)
