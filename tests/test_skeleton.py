import numpy as np
import pytest

from streampose.skeleton import (
    BLAZEPOSE33, BLAZEPOSE_TO_COCO, BLAZEPOSE_TO_H36M, COCO17, COCO_TO_H36M, H36M17,
    flip_horizontal, map_confidence, map_joints,
)


def test_h36m_order_and_parents_match_videopose3d():
    assert H36M17.num_joints == 17
    assert H36M17.joints[0] == "Hip" and H36M17.joints[9] == "Neck/Nose" and H36M17.joints[16] == "RWrist"
    assert list(H36M17.parents) == [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15]
    assert len(H36M17.bones) == 16


@pytest.mark.parametrize("skeleton", [H36M17, COCO17, BLAZEPOSE33])
def test_flip_permutation_is_an_involution_that_swaps_sides(skeleton):
    perm = skeleton.flip_permutation
    assert sorted(perm) == list(range(skeleton.num_joints))
    assert np.array_equal(perm[perm], np.arange(skeleton.num_joints))
    for left, right in zip(skeleton.left, skeleton.right):
        assert skeleton.joints[left].lower().replace("left", "") == skeleton.joints[right].lower().replace("right", "") \
            or skeleton.joints[left][1:] == skeleton.joints[right][1:]
        assert perm[left] == right


def test_flip_twice_is_identity_and_mirrors_x():
    rng = np.random.default_rng(0)
    pose = rng.normal(size=(5, 17, 3))
    once = flip_horizontal(pose, H36M17)
    assert np.allclose(flip_horizontal(once, H36M17), pose)
    # The left wrist of the flipped pose is the mirrored right wrist of the original.
    assert np.allclose(once[:, 13, 0], -pose[:, 16, 0])
    pixels = rng.uniform(0, 639, size=(17, 2))
    assert np.allclose(flip_horizontal(pixels, H36M17, width=640)[13, 0], 639 - pixels[16, 0])


def test_blazepose_to_coco_picks_the_same_named_landmarks():
    points = np.arange(33 * 2, dtype=np.float32).reshape(33, 2)
    coco = map_joints(points, BLAZEPOSE_TO_COCO)
    for j, name in enumerate(COCO17.joints):
        assert np.allclose(coco[j], points[BLAZEPOSE33.index(name)])


def test_blazepose_to_h36m_synthesised_joints():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(33, 3))
    h36m = map_joints(points, BLAZEPOSE_TO_H36M)
    b = {name: points[i] for i, name in enumerate(BLAZEPOSE33.joints)}
    hip = (b["left_hip"] + b["right_hip"]) / 2
    thorax = (b["left_shoulder"] + b["right_shoulder"]) / 2
    assert np.allclose(h36m[H36M17.index("Hip")], hip)
    assert np.allclose(h36m[H36M17.index("Thorax")], thorax)
    assert np.allclose(h36m[H36M17.index("Spine")], (hip + thorax) / 2)
    assert np.allclose(h36m[H36M17.index("RFoot")], b["right_ankle"])
    assert np.allclose(h36m[H36M17.index("LWrist")], b["left_wrist"])


def test_coco_and_blazepose_routes_agree_on_shared_joints():
    rng = np.random.default_rng(2)
    points = rng.normal(size=(4, 33, 2))
    direct = map_joints(points, BLAZEPOSE_TO_H36M)
    via_coco = map_joints(map_joints(points, BLAZEPOSE_TO_COCO), COCO_TO_H36M)
    same = [j for j, name in enumerate(H36M17.joints) if name != "Head"]
    assert np.allclose(direct[:, same], via_coco[:, same], atol=1e-5)


def test_mapped_confidence_is_min_of_contributors():
    conf = np.ones(33)
    conf[BLAZEPOSE33.index("left_hip")] = 0.2
    mapped = map_confidence(conf, BLAZEPOSE_TO_H36M)
    assert mapped[H36M17.index("Hip")] == pytest.approx(0.2)
    assert mapped[H36M17.index("LHip")] == pytest.approx(0.2)
    assert mapped[H36M17.index("RHip")] == pytest.approx(1.0)
