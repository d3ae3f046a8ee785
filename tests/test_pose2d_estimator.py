"""PoseEstimator2D with the real converted BlazePose networks on synthetic (and shared) video.

The synthetic person is a flat cartoon figure (skin-coloured head with hair and eyes, shirt, arms,
trousers, shoes) on a plain background; the real detector fires on it with score ~0.97 and the
landmark model puts the joints on the drawn limbs.  Tests skip when the weights are not cached and
cannot be fetched (fresh machine without network).
"""
from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from streampose.errors import InputError, ModelError
from streampose.skeleton import H36M17
from streampose.types import Frame
from figures import BACKGROUND, draw_person, figure_joints, scene  # noqa: F401
from videogen import make_video

HIP, RFOOT, LFOOT, HEAD = (H36M17.index(n) for n in ("Hip", "RFoot", "LFoot", "Head"))


@pytest.fixture(scope="module")
def models():
    from streampose.pose2d.weights import ensure_blazepose_models, load_detector, load_landmark_model

    try:
        ensure_blazepose_models()
    except ModelError as exc:
        pytest.skip(f"BlazePose weights unavailable: {exc}")
    torch.set_num_threads(1)  # the test machines are small and shared; one thread is the fastest there
    return {
        "detector": load_detector("cpu"),
        "landmarks": load_landmark_model("cpu", with_segmentation=True, with_heatmap=True),
    }


def make_estimator(models, **kwargs):
    from streampose.pose2d.estimator import PoseEstimator2D

    return PoseEstimator2D(detector_model=models["detector"], landmark_model=models["landmarks"], **kwargs)


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_person_appears_disappears_and_reappears(models, tmp_path):
    """Encoded video: figure on the left (8 frames), empty room (6), figure on the right (8)."""
    w, h = 320, 240

    def painter(i, width, height):
        if i < 8:
            return scene(width, height, [(100 + 2 * i, 30, 180)])  # walks slowly right
        if i < 14:
            return scene(width, height, [])
        return scene(width, height, [(230, 40, 170)])

    frames = decode(make_video(tmp_path / "appear.mp4", frames=22, size=(w, h), draw=painter))
    assert len(frames) == 22
    estimator = make_estimator(models)
    results = [estimator.process(Frame(i, i / 30, img)) for i, img in enumerate(frames)]
    counts = [len(r) for r in results]
    assert counts == [1] * 8 + [0] * 6 + [1] * 8, counts
    for i in list(range(8)) + list(range(14, 22)):
        person = results[i][0]
        cx, top, height = (100 + 2 * i, 30, 180) if i < 8 else (230, 40, 170)
        hip_y = figure_joints(cx, top, height)["hip"]
        kp = person.keypoints2d
        assert kp.shape == (17, 3) and person.landmarks33.shape == (33, 5) and person.world33.shape == (33, 3)
        assert abs(kp[HIP, 0] - cx) < 6 and abs(kp[HIP, 1] - hip_y) < 10, (i, kp[HIP])
        ankle_y = figure_joints(cx, top, height)["ankle"]
        assert abs(kp[RFOOT, 1] - ankle_y) < 12 and abs(kp[LFOOT, 1] - ankle_y) < 12
        assert kp[RFOOT, 0] < kp[LFOOT, 0]  # frontal figure: its right foot is on the image left
        assert kp[HEAD, 1] < kp[HIP, 1] - 0.4 * height
        assert person.score > 0.5 and (kp[:, 2] > 0.5).mean() > 0.8
        x0, y0, x1, y1 = person.bbox
        assert x0 < cx < x1 and y0 < hip_y < y1 and (y1 - y0) > 0.6 * height
        assert person.mask is None
    # tracking: one detector run finds the person, landmarks follow them without re-detection;
    # frame 8 (first empty) runs the landmark model on the old ROI, drops the track and looks again
    # on the same frame, frames 9..13 search in vain, frame 14 finds the person again
    assert estimator.stats["detector_runs"] == 1 + 1 + 5 + 1
    assert estimator.stats["landmark_runs"] == 8 + 1 + 8
    # world landmarks are metric and hip-centred: hips near the origin, legs plausibly long
    world = results[3][0].world33
    hips = world[[23, 24]].mean(0)
    assert np.linalg.norm(hips) < 0.1
    leg = np.linalg.norm(world[27] - world[23])
    assert 0.4 < leg < 1.3


def test_rotated_person_is_tracked_through_a_rotated_roi(models):
    """A figure lying on its side: the ROI must rotate so the landmarks still land on the limbs."""
    upright = scene(240, 320, [(120, 40, 240)])
    lying = np.ascontiguousarray(np.rot90(upright, k=-1))  # clockwise: head now on the right
    joints = figure_joints(120, 40, 240)
    estimator = make_estimator(models)
    people = []
    for _ in range(3):
        people = estimator.process(lying)
    assert len(people) == 1
    kp = people[0].keypoints2d
    # rot90 clockwise maps upright (x, y) to (H - 1 - y, x) with H = 320
    assert abs(kp[HIP, 0] - (319 - joints["hip"])) < 10 and abs(kp[HIP, 1] - 120) < 8, kp[HIP]
    assert kp[HEAD, 0] > kp[HIP, 0] + 60  # head to the right of the hips
    assert abs(kp[RFOOT, 0] - (319 - joints["ankle"])) < 15


def test_two_people_batched_and_max_people(models):
    image = scene(480, 240, [(120, 30, 180), (360, 40, 170)])
    single = make_estimator(models, max_people=1)
    assert len(single.process(image)) == 1
    double = make_estimator(models, max_people=2)
    people = double.process(image)
    people = double.process(image)  # second frame: both tracked, one batched landmark call
    assert len(people) == 2
    hips = sorted(p.keypoints2d[HIP, 0] for p in people)
    assert abs(hips[0] - 120) < 8 and abs(hips[1] - 360) < 8
    assert double.stats["landmark_runs"] == 2 and double.stats["detector_runs"] == 1


def test_newcomer_is_picked_up_and_detect_every(models):
    one = scene(480, 240, [(120, 30, 180)])
    two = scene(480, 240, [(120, 30, 180), (360, 40, 170)])
    estimator = make_estimator(models, max_people=2)
    counts = [len(estimator.process(one if i < 3 else two)) for i in range(14)]
    # searched for newcomers every 10 frames while short of max_people: found at frame 10
    assert counts[:10] == [1] * 10 and counts[10:] == [2] * 4, counts
    assert estimator.stats["detector_runs"] == 2
    per_frame = make_estimator(models, detect_every=1)
    results = [per_frame.process(one) for _ in range(3)]
    assert per_frame.stats["detector_runs"] == 3 and all(len(r) == 1 for r in results)
    assert abs(results[-1][0].keypoints2d[HIP, 0] - 120) < 6


def test_rejected_detection_is_retested_only_every_n_frames(models):
    """A figure whose landmarks fail the presence threshold (forced here with an unreachable one) is not
    sent through the landmark model again on the next frames -- but the detector keeps looking, so a
    figure at another spot is tested at once."""
    left = scene(480, 240, [(120, 30, 180)])
    right = scene(480, 240, [(360, 40, 170)])
    patient = make_estimator(models, min_presence=1.01, retry_rejected_after=3)
    assert [patient.process(left) for _ in range(7)] == [[]] * 7
    # landmark runs on frames 0, 3 and 6; frames 1, 2, 4, 5 skip the known-bad spot
    assert patient.stats["detector_runs"] == 7
    assert patient.stats["landmark_runs"] == 3 and patient.stats["rejected_detections_skipped"] == 4
    patient.process(right)  # frame 7: the left spot is remembered, the right one is new
    assert patient.stats["landmark_runs"] == 4
    eager = make_estimator(models, min_presence=1.01, retry_rejected_after=1)
    for _ in range(4):
        eager.process(left)
    assert eager.stats["landmark_runs"] == 4 and eager.stats["rejected_detections_skipped"] == 0
    with pytest.raises(ValueError):
        make_estimator(models, retry_rejected_after=0)


def test_segmentation_mask_in_image_pixels(models):
    image = scene(320, 240, [(160, 30, 180)])
    estimator = make_estimator(models, want_mask=True)
    person = estimator.process(image)[0]
    mask = person.mask
    assert mask is not None and mask.shape == (240, 320)
    torso = mask[80:110, 150:170].mean()
    background = np.concatenate([mask[:, :60].ravel(), mask[:, 260:].ravel()]).mean()
    assert torso > 0.8 and background < 0.1, (torso, background)


def test_readouts_agree_on_the_figure(models):
    image = scene(320, 240, [(160, 30, 180)])
    results = {}
    for readout in ("regression", "integral"):
        estimator = make_estimator(models, readout=readout)
        estimator.process(image)
        results[readout] = estimator.process(image)[0].landmarks33[:, :2]
    distance = np.linalg.norm(results["regression"] - results["integral"], axis=1)
    assert np.median(distance) < 3.0, distance
    assert distance.max() > 0  # the integral readout actually changed something


def test_bad_input_and_reset(models):
    estimator = make_estimator(models)
    with pytest.raises(InputError):
        estimator.process(np.zeros((10, 10), np.uint8))
    with pytest.raises(InputError):
        estimator.process(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError):
        make_estimator(models, readout="argmax")
    image = scene(320, 240, [(160, 30, 180)])
    estimator.process(image)
    estimator.process(image)
    assert estimator.stats["detector_runs"] == 1
    estimator.reset()
    estimator.process(image)
    assert estimator.stats["detector_runs"] == 2
    assert estimator.process(np.full((240, 320, 3), 200, np.uint8)) == []  # empty room


@pytest.mark.shared
def test_real_video_tracking(models, shared_dir):
    path = shared_dir / "data" / "videos" / "pose2sim_balance_cam01.mp4"
    estimator = make_estimator(models)
    boxes = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= 15:
                break
            people = estimator.process(frame.to_ndarray(format="rgb24"))
            assert len(people) == 1
            boxes.append(people[0].bbox)
    assert estimator.stats["detector_runs"] == 1
    boxes = np.array(boxes)
    heights = boxes[:, 3] - boxes[:, 1]
    # the balancing person is about 700-750 px tall in this 1080x1920 portrait video
    assert np.all((heights > 550) & (heights < 900)), heights
    assert np.abs(np.diff(boxes, axis=0)).max() < 60  # tracked smoothly, no jumps


def test_bf16_precision_stays_close_to_fp32(models, monkeypatch):
    from streampose.pose2d import estimator as estimator_module
    from streampose.pose2d.weights import load_detector, load_landmark_model

    image = scene(320, 240, [(160, 30, 180)])
    exact = make_estimator(models).process(image)
    fast = estimator_module.PoseEstimator2D(
        detector_model=load_detector("cpu", precision="bf16"),
        landmark_model=load_landmark_model("cpu", with_segmentation=True, precision="bf16")).process(image)
    assert len(exact) == len(fast) == 1
    height = np.ptp(exact[0].keypoints2d[:, 1])
    moved = np.linalg.norm(exact[0].keypoints2d[:, :2] - fast[0].keypoints2d[:, :2], axis=1)
    assert moved.max() > 0  # it really ran in bf16
    assert moved.mean() < 0.03 * height  # benchmarks/pose2d_precision.py: ~1% of the person on real video
    with pytest.raises(ValueError):
        make_estimator(models, precision="fp8")
    monkeypatch.setattr("streampose.pose2d.weights.native_bf16_cpu", lambda: False)
    assert estimator_module.resolve_estimator_precision("auto", "cpu") == "fp32"
    monkeypatch.setattr("streampose.pose2d.weights.native_bf16_cpu", lambda: True)
    assert estimator_module.resolve_estimator_precision("auto", "cpu") == "bf16"
    assert estimator_module.resolve_estimator_precision("auto", "cuda") == "fp32"
    assert estimator_module.resolve_estimator_precision("mixed", "cpu") == "mixed"
