"""Tracking rules of PoseEstimator2D: next-frame ROI from the alignment landmarks, its One-Euro
filter, the presence threshold, MediaPipe's crop grid and detector letterbox.

The tracking tests use stand-in networks: a detector that reports where the bright figure is, and a
landmark "model" that finds the figure's centroid in its crop and rates it with a fixed pose flag --
so the presence score is under the test's control while the figure stays plainly visible.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from streampose.pose2d.detection import PoseDetection, letterbox_frame_mediapipe, remove_letterbox
from streampose.pose2d.estimator import NUM_MODEL_LANDMARKS, PoseEstimator2D
from streampose.pose2d.roi import (
    MEDIAPIPE_ROI_FILTER, ROI_SCALE, apply_affine, crop_from_image_matrices, crop_rois_uint8,
    rois_from_alignment_points, sampling_rois,
)
from streampose.types import Frame

W, H = 320, 240
FIGURE_HALF = (14, 40)  # half width, half height of the bright figure (px)
# Crop-space alignment points that reproduce the ROI they were read from: hips at the crop centre,
# the scale point straight above at the distance whose 2 x 1.25 is the crop side.
SCALE_DISTANCE = 256 / (2 * ROI_SCALE)


def figure_frame(cx: float, cy: float) -> np.ndarray:
    image = np.full((H, W, 3), 30, np.uint8)
    x0, x1 = int(round(cx - FIGURE_HALF[0])), int(round(cx + FIGURE_HALF[0]))
    y0, y1 = int(round(cy - FIGURE_HALF[1])), int(round(cy + FIGURE_HALF[1]))
    image[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 230
    return image


class CentroidLandmarks(torch.nn.Module):
    """Stand-in landmark network: all 39 landmarks at the bright centroid of the crop (aux landmark 34
    above it, so the ROI keeps its size), pose flag ``presence`` while the crop shows the figure."""

    def __init__(self, presence: float):
        super().__init__()
        self.presence = presence
        self.calls = 0

    def forward(self, crops: torch.Tensor):
        self.calls += 1
        n = crops.shape[0]
        bright = crops.mean(1) > 0.5  # (P, 256, 256)
        landmarks = torch.zeros(n, NUM_MODEL_LANDMARKS, 5)
        presence = torch.full((n, 1), 0.02)
        for p in range(n):
            ys, xs = torch.nonzero(bright[p], as_tuple=True)
            if len(xs) < 50:
                continue
            # crop pixel centres are at integers; the model's coordinates are continuous (+0.5)
            centre = torch.stack([xs.float().mean(), ys.float().mean()]) + 0.5
            landmarks[p, :, :2] = centre
            landmarks[p, 34, :2] = centre - torch.tensor([0.0, SCALE_DISTANCE])
            landmarks[p, :, 3:] = 5.0  # visibility / presence logits
            presence[p] = self.presence
        world = torch.zeros(n, NUM_MODEL_LANDMARKS * 3)
        return landmarks.reshape(n, -1), presence, world


class FigureDetector:
    """Stand-in for PoseDetector: finds the bright figure, hips at its centre, scale point above."""

    def __init__(self):
        self.calls = 0

    def detect_frame(self, frame_u8: torch.Tensor, max_detections=None):
        self.calls += 1
        bright = frame_u8.float().mean(-1) > 128
        ys, xs = torch.nonzero(bright, as_tuple=True)
        if len(xs) < 50:
            return []
        cx, cy = float(xs.float().mean()), float(ys.float().mean())
        keypoints = np.array([[cx, cy], [cx, cy - 60.0], [cx, cy - 30.0], [cx, cy - 50.0]], np.float32)
        box = np.array([cx - 20, cy - 50, cx + 20, cy + 50], np.float32)
        return [PoseDetection(box, keypoints, 0.95)]


def fake_estimator(presence: float, **kwargs) -> PoseEstimator2D:
    estimator = PoseEstimator2D(detector_model=torch.nn.Identity(), landmark_model=CentroidLandmarks(presence),
                                readout="regression", **kwargs)
    estimator.detector = FigureDetector()
    return estimator


def walk(estimator: PoseEstimator2D, frames: int = 30, fps: float = 60.0):
    found = []
    for i in range(frames):
        cx, cy = 120 + 2.0 * i, 120 + 0.5 * i  # walks right and a little down
        people = estimator.process(Frame(i, i / fps, figure_frame(cx, cy)))
        found.append((people[0].landmarks33[23, :2] if people else None, (cx, cy)))
    return found


# ------------------------------------------------------------------ geometry


def test_roi_from_alignment_points_hand_computed():
    # hips (100, 200); scale point 30 px right and 40 px up: distance 50 px.
    rois = rois_from_alignment_points(torch.tensor([[100.0, 200.0]]), torch.tensor([[130.0, 160.0]]))
    # square side = 2 x 50 x 1.25; the hips -> scale direction is atan2(40, 30) = 53.13 deg above the
    # +x axis, i.e. 36.87 deg clockwise of "up": rotation = 90 deg - 53.13 deg = 0.6435 rad.
    assert rois[0].tolist() == pytest.approx([100.0, 200.0, 125.0, math.radians(90) - math.atan2(40, 30)], abs=1e-5)
    assert float(rois[0, 3]) == pytest.approx(0.643501, abs=1e-5)
    # In that ROI's crop the scale point lies straight above the hips, 50 px x 256 / 125 away.
    to_image = crop_from_image_matrices(rois, 256)
    crop_hips_and_scale = torch.tensor([[[127.5, 127.5], [127.5, 127.5 - 50 * 256 / 125]]])
    back = apply_affine(to_image, crop_hips_and_scale)
    assert back[0].flatten().tolist() == pytest.approx([100.0, 200.0, 130.0, 160.0], abs=1e-3)


def test_roi_rotation_quadrants():
    centre = torch.zeros(4, 2)
    scale_points = torch.tensor([[0.0, -10.0], [10.0, 0.0], [0.0, 10.0], [-10.0, 0.0]])  # up, right, down, left
    rois = rois_from_alignment_points(centre, scale_points)
    assert rois[:, 2].tolist() == pytest.approx([25.0] * 4)
    assert rois[:, 3].tolist() == pytest.approx([0.0, math.pi / 2, -math.pi, -math.pi / 2], abs=1e-6)


def test_next_roi_comes_from_landmarks_33_and_34():
    estimator = fake_estimator(0.99, roi_filter=None)
    image_xy = torch.zeros(1, NUM_MODEL_LANDMARKS, 2)
    image_xy[0, :] = torch.tensor([5.0, 5.0])  # every other landmark far away: must not matter
    image_xy[0, 33] = torch.tensor([100.0, 200.0])
    image_xy[0, 34] = torch.tensor([130.0, 160.0])
    estimator._tracks = [object()]
    rois = estimator._next_rois(image_xy)
    assert rois[0].tolist() == pytest.approx([100.0, 200.0, 125.0, 0.643501], abs=1e-5)


def test_mediapipe_crop_grid_shifts_sampling_half_a_crop_pixel():
    rois = torch.tensor([[100.0, 80.0, 512.0, 0.0], [100.0, 80.0, 512.0, math.pi / 2]])
    shifted = sampling_rois(rois, 256, "mediapipe")
    # k = 2 image px per crop px: half a crop px = 1 image px along the crop's -x and -y axes.
    assert shifted[0].tolist() == pytest.approx([99.0, 79.0, 512.0, 0.0], abs=1e-5)
    # rotated 90 deg: the crop's x axis is the image's +y, its y axis the image's -x
    assert shifted[1].tolist() == pytest.approx([101.0, 79.0, 512.0, math.pi / 2], abs=1e-5)
    assert torch.equal(sampling_rois(rois, 256, "centres"), rois)
    # crop pixel u then samples image c + (u - 128) k, MediaPipe's corner-to-corner warp
    image = torch.from_numpy(np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (256, 1, 3)))
    crop = crop_rois_uint8(image, sampling_rois(torch.tensor([[127.5, 127.5, 128.0, 0.0]]), 64, "mediapipe"), 64)
    column = crop[0, 0, 32] * 255  # crop row 32, columns 0..63
    assert column[10].item() == pytest.approx(127.5 + (10 - 32) * 2, abs=0.6)


def test_mediapipe_letterbox_maps_back_without_half_pixel_terms():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[40, 150] = 255  # one bright pixel
    inputs, box = letterbox_frame_mediapipe(torch.from_numpy(frame))
    assert inputs.shape == (1, 3, 224, 224)
    assert float(inputs[0, 0, 0, 0]) == pytest.approx(-1.0)  # black border, as MediaPipe's CPU graph pads
    peak = torch.nonzero(inputs[0, 0] == inputs[0, 0].max())[0]  # (row, col) of the brightest sample
    # tensor pixel u samples image pixel (u - pad) / scale: map the peak's continuous position back
    point = torch.tensor([[float(peak[1]), float(peak[0])]]) / 224
    back = remove_letterbox(point, box)[0]
    assert back.tolist() == pytest.approx([150.0, 40.0], abs=1.0 / box.scale)


# ------------------------------------------------------------------ presence and tracking


def test_visible_figure_with_low_presence_keeps_its_track():
    """A plainly visible figure rated 0.6 by the landmark network: tracked on every frame from one
    detection (MediaPipe's 0.5 rule); the landmarks follow the figure."""
    estimator = fake_estimator(0.6, min_presence=0.5)
    found = walk(estimator)
    assert all(hips is not None for hips, _ in found)
    assert estimator.detector.calls == 1
    assert estimator.stats["lost_presence"] == 0
    for hips, (cx, cy) in found[1:]:
        assert abs(hips[0] - cx) < 3.0 and abs(hips[1] - cy) < 3.0, (hips, cx, cy)


def test_presence_below_threshold_drops_the_track_every_frame():
    estimator = fake_estimator(0.6, min_presence=0.9)
    found = walk(estimator, frames=10)
    assert all(hips is None for hips, _ in found)
    assert estimator.detector.calls == 10  # re-detected on every frame, as MediaPipe would
    assert estimator.stats["lost_presence"] >= 4  # every re-test fails (some skipped as rejected spots)


def test_default_threshold_is_mediapipes():
    from streampose.pose2d.estimator import MIN_PRESENCE

    assert MIN_PRESENCE == 0.5


def test_figure_leaving_is_lost_and_redetected():
    estimator = fake_estimator(0.7)
    for i in range(5):
        assert estimator.process(Frame(i, i / 30, figure_frame(150, 120)))
    assert estimator.detector.calls == 1
    assert estimator.process(Frame(5, 5 / 30, figure_frame(-100, 120))) == []  # gone
    assert estimator.process(Frame(6, 6 / 30, figure_frame(250, 120)))  # back elsewhere: detected
    assert estimator.detector.calls == 3


def test_roi_filter_steadies_a_noisy_static_figure_and_starts_on_the_raw_points():
    rng = np.random.default_rng(0)

    def roi_trace(roi_filter):
        estimator = fake_estimator(0.9, roi_filter=roi_filter)
        centres = []
        for i in range(40):
            jitter = rng.normal(0.0, 1.5, 2)
            estimator.process(Frame(i, i / 30, figure_frame(160 + jitter[0], 120 + jitter[1])))
            centres.append(estimator._tracks[0].roi[:2].numpy().copy())
        return np.array(centres)

    raw = roi_trace(None)
    rng = np.random.default_rng(0)
    smooth = roi_trace(MEDIAPIPE_ROI_FILTER)
    assert smooth[0] == pytest.approx(raw[0], abs=1e-4)  # the first landmarks pass through unfiltered
    step = lambda c: np.abs(np.diff(c[5:], axis=0)).mean()  # noqa: E731
    assert step(smooth) < 0.3 * step(raw)


def test_roi_filter_follows_a_moving_figure():
    estimator = fake_estimator(0.9)
    found = walk(estimator, frames=40, fps=30)
    assert all(hips is not None for hips, _ in found)
    # the filtered ROI lags a little but the crop keeps the figure: the landmarks stay on it
    for hips, (cx, cy) in found[5:]:
        assert abs(hips[0] - cx) < 3.0 and abs(hips[1] - cy) < 3.0


def test_frames_without_usable_times_still_advance_the_filter_clock():
    estimator = fake_estimator(0.9)
    for i in range(3):
        estimator.process(figure_frame(160, 120))  # bare images: 1/30 s steps
    estimator.process(Frame(3, 0.0, figure_frame(160, 120)))  # time going backwards: stepped on
    assert estimator._time == pytest.approx(3 / 30)
    estimator.reset()
    assert estimator._time is None
