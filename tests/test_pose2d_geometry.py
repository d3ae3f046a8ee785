"""Geometry of the 2D stage without any weights: anchors, decode, NMS, letterbox, ROIs, crops, readout."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from streampose.pose2d.anchors import NUM_BLAZEPOSE_ANCHORS, generate_anchors
from streampose.pose2d.detection import (
    Letterbox, box_iou, decode_detections, letterbox_frame_uint8, letterbox_images, remove_letterbox, weighted_nms,
)
from streampose.pose2d.readout import IntegralOptions, integral_readout, soft_argmax_2d
from streampose.pose2d.roi import (
    _crop_rois_region, apply_affine, crop_from_image_matrices, crop_rois, crop_rois_uint8, image_from_crop_matrices, paste_crops,
    roi_inside_image, rois_from_alignment_points,
)


# ---------------------------------------------------------------- anchors

def test_anchor_count_and_layout():
    anchors = generate_anchors()
    assert anchors.shape == (NUM_BLAZEPOSE_ANCHORS, 4) == (2254, 4)
    assert torch.all(anchors[:, 2:] == 1.0)  # fixed anchor size
    # stride 8: 28x28 cells, 2 anchors per cell, row-major, x fastest
    assert torch.allclose(anchors[0, :2], torch.tensor([0.5 / 28, 0.5 / 28]))
    assert torch.allclose(anchors[1, :2], anchors[0, :2])
    assert torch.allclose(anchors[2, :2], torch.tensor([1.5 / 28, 0.5 / 28]))
    assert torch.allclose(anchors[56, :2], torch.tensor([0.5 / 28, 1.5 / 28]))
    # stride 16 starts after 28*28*2 = 1568 anchors
    assert torch.allclose(anchors[1568, :2], torch.tensor([0.5 / 14, 0.5 / 14]))
    # the three stride-32 layers are merged: 7x7 cells with 6 anchors each, starting at 1960
    assert torch.allclose(anchors[1960:1966, :2], torch.full((6, 2), 0.5 / 7))
    assert torch.allclose(anchors[1966, :2], torch.tensor([1.5 / 7, 0.5 / 7]))
    assert torch.allclose(anchors[-1, :2], torch.tensor([6.5 / 7, 6.5 / 7]))


# ---------------------------------------------------------------- decode + NMS

def test_decode_hand_made_regressors():
    anchors = generate_anchors()
    raw = torch.zeros(1, NUM_BLAZEPOSE_ANCHORS, 12)
    logits = torch.full((1, NUM_BLAZEPOSE_ANCHORS, 1), -10.0)
    i = 1968  # a stride-32 anchor at cell (1, 0): centre (1.5/7, 0.5/7)
    raw[0, i, :4] = torch.tensor([22.4, -11.2, 44.8, 89.6])  # +0.1, -0.05 shift; 0.2 x 0.4 size
    raw[0, i, 4:] = torch.tensor([0.0, 0.0, 22.4, 0.0, 0.0, 22.4, -22.4, -22.4])
    logits[0, i, 0] = 0.0
    logits[0, 5, 0] = 500.0  # clipped to 100 -> sigmoid 1, no overflow
    boxes, kps, scores = decode_detections(raw, logits, anchors)
    cx, cy = 1.5 / 7 + 0.1, 0.5 / 7 - 0.05
    assert torch.allclose(boxes[0, i], torch.tensor([cx - 0.1, cy - 0.2, cx + 0.1, cy + 0.2]), atol=1e-6)
    ax, ay = 1.5 / 7, 0.5 / 7
    expected_kps = torch.tensor([[ax, ay], [ax + 0.1, ay], [ax, ay + 0.1], [ax - 0.1, ay - 0.1]])
    assert torch.allclose(kps[0, i], expected_kps, atol=1e-6)
    assert scores[0, i] == pytest.approx(0.5)
    assert scores[0, 5] == pytest.approx(1.0) and torch.isfinite(scores).all()
    assert scores[0, 0] == pytest.approx(1 / (1 + math.exp(10)), rel=1e-4)


def test_weighted_nms_merges_overlapping_boxes():
    boxes = torch.tensor([
        [0.10, 0.10, 0.50, 0.50],   # best
        [0.12, 0.10, 0.52, 0.50],   # overlaps the best (IoU ~0.9) -> merged into it
        [0.60, 0.60, 0.90, 0.90],   # separate person
        [0.30, 0.30, 0.70, 0.70],   # IoU with best = 0.1/0.3 ~ 0.14 < 0.3 -> survives
    ])
    kps = boxes[:, None, :2].repeat(1, 4, 1)
    scores = torch.tensor([0.9, 0.6, 0.8, 0.55])
    out_boxes, out_kps, out_scores = weighted_nms(boxes, kps, scores, iou_threshold=0.3)
    assert out_scores.tolist() == pytest.approx([0.9, 0.8, 0.55])
    merged = (0.9 * boxes[0] + 0.6 * boxes[1]) / 1.5
    assert torch.allclose(out_boxes[0], merged)
    assert torch.allclose(out_kps[0, 0], merged[:2])
    assert torch.allclose(out_boxes[1], boxes[2]) and torch.allclose(out_boxes[2], boxes[3])
    assert weighted_nms(boxes, kps, scores, max_detections=1)[0].shape == (1, 4)
    empty = weighted_nms(boxes[:0], kps[:0], scores[:0])
    assert empty[0].shape == (0, 4) and empty[1].shape == (0, 4, 2)


def test_box_iou():
    iou = box_iou(torch.tensor([0.0, 0.0, 2.0, 2.0]), torch.tensor([[1.0, 0.0, 3.0, 2.0], [5.0, 5.0, 6.0, 6.0]]))
    assert iou.tolist() == pytest.approx([2 / 6, 0.0])


def test_letterbox_round_trip():
    image = torch.zeros(1, 3, 100, 300)
    image[0, :, 40:46, 210:216] = 1.0  # a bright square centred on pixel (212.5, 42.5)
    boxed, letterbox = letterbox_images(image)
    assert boxed.shape == (1, 3, 224, 224)
    assert letterbox.scale == pytest.approx(224 / 300, rel=0.01)
    assert letterbox.pad_x == 0 and letterbox.pad_y == pytest.approx((224 - 75) // 2)
    assert boxed.min() >= -1.0 and boxed.max() <= 1.0
    assert boxed[0, 0, 0, 0] == 0.0  # letterbox padding is 0 in the [-1, 1] range
    # locate the blob in the letterboxed input and map its position back to image pixels
    weight = (boxed[0, 0] + 1).clamp(min=0) * (boxed[0, 0] > 0)
    ys, xs = torch.meshgrid(torch.arange(224.0), torch.arange(224.0), indexing="ij")
    centre = torch.stack([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()
    normalised = (centre + 0.5) / 224
    back = remove_letterbox(normalised, letterbox)
    assert torch.allclose(back, torch.tensor([212.5, 42.5]), atol=1.0)
    assert Letterbox.fit(640, 480).pad_y == pytest.approx(28.0)


def test_uint8_letterbox_matches_float_letterbox():
    # A smooth frame (the filters differ in kernel shape, so compare where that barely matters).
    yy, xx = np.mgrid[0:450, 0:800].astype(np.float32)
    frame = np.stack([127 + 100 * np.sin(xx / 40), 127 + 100 * np.cos(yy / 30), xx * 0 + 60], -1).astype(np.uint8)
    frame[200:260, 500:560] = 255  # a blob whose position must survive both paths
    expected, box = letterbox_images(torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255)
    got, box_u8 = letterbox_frame_uint8(torch.from_numpy(frame))
    assert box_u8 == box and got.shape == expected.shape == (1, 3, 224, 224)
    assert got[0, :, :int(box.pad_y)].abs().max() == 0.0  # padding stays exactly 0
    # measured: mean 0.001, max 0.35 (at the blob edges) on the [-1, 1] scale
    assert (got - expected).abs().mean() < 0.005 and (got - expected).abs().max() < 0.5
    with pytest.raises(ValueError):
        letterbox_frame_uint8(torch.zeros(10, 10, 3))


# ---------------------------------------------------------------- ROIs and crops

@pytest.mark.parametrize("scale_point, rotation", [
    ((100.0, 60.0), 0.0),               # head straight up
    ((140.0, 100.0), math.pi / 2),      # body lying, head to the right
    ((60.0, 100.0), -math.pi / 2),      # head to the left
    ((100.0 + 40 * math.sin(0.3), 100.0 - 40 * math.cos(0.3)), 0.3),  # leaning right by 0.3 rad
])
def test_roi_rotation_and_scale(scale_point, rotation):
    rois = rois_from_alignment_points(torch.tensor([[100.0, 100.0]]), torch.tensor([scale_point]))
    assert rois[0, :2].tolist() == pytest.approx([100.0, 100.0])
    assert rois[0, 2].item() == pytest.approx(2 * 40 * 1.25, rel=1e-5)
    assert rois[0, 3].item() == pytest.approx(rotation, abs=1e-5)
    # whatever the rotation, the scale point lands straight above the centre in the crop
    crop_pts = apply_affine(image_from_crop_matrices(rois, 256), torch.tensor([[scale_point]]))
    assert crop_pts[0, 0].tolist() == pytest.approx([127.5, 127.5 - 40 * 256 / 100], abs=1e-3)


def test_crop_matrices_round_trip():
    rois = torch.tensor([[50.0, 80.0, 120.0, 0.7], [300.0, 200.0, 40.0, -2.5]])
    points = torch.tensor([[[10.0, 20.0], [55.5, 81.25]], [[299.0, 199.0], [0.0, 0.0]]])
    to_crop = image_from_crop_matrices(rois, 256)
    back = apply_affine(crop_from_image_matrices(rois, 256), apply_affine(to_crop, points))
    assert torch.allclose(back, points, atol=1e-3)
    # the ROI centre is the crop centre
    centre = apply_affine(to_crop, rois[:, None, :2])
    assert torch.allclose(centre, torch.full((2, 1, 2), 127.5), atol=1e-4)


def test_crop_content_lands_where_the_matrix_says():
    image = torch.zeros(1, 1, 240, 320)
    dot = (200.0, 90.0)
    image[0, 0, 89:92, 199:202] = 1.0
    rois = torch.tensor([[180.0, 120.0, 150.0, 0.6], [190.0, 100.0, 60.0, -1.2]])
    crops = crop_rois(image, rois, crop_size=128)
    assert crops.shape == (2, 1, 128, 128)
    expected = apply_affine(image_from_crop_matrices(rois, 128), torch.tensor([[dot], [dot]]))
    for p in range(2):
        c = crops[p, 0]
        ys, xs = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
        found = torch.stack([(c * xs).sum(), (c * ys).sum()]) / c.sum()
        assert torch.allclose(found, expected[p, 0], atol=0.6), (found, expected[p, 0])
    # pasting the crops back restores the image content inside the ROI
    pasted = paste_crops(crops, rois, (320, 240))
    assert pasted.shape == (2, 1, 240, 320)
    assert pasted[1, 0, 85:96, 195:206].sum() == pytest.approx(9.0, rel=0.25)


def test_uint8_region_crop_matches_full_frame_crop():
    rng = np.random.default_rng(1)
    frame = torch.from_numpy(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    full = frame.permute(2, 0, 1)[None].float() / 255
    # inside, rotated; overlapping the top-left corner (edge replication); and one off the frame
    rois = torch.tensor([[160.0, 120.0, 80.0, 0.4], [10.0, 15.0, 90.0, -0.9], [400.0, 300.0, 50.0, 0.0]])
    expected = crop_rois(full, rois, 64)
    got = crop_rois_uint8(frame, rois, 64)  # CPU: OpenCV warp on uint8, rounded to uint8
    assert got.shape == (3, 3, 64, 64)
    assert torch.allclose(got, expected, atol=0.6 / 255)
    assert (got - expected).abs().mean() < 0.3 / 255  # rounding only, not a shifted sample grid
    # The region path (used on GPUs) is checked on CPU tensors here: float warp, no rounding.
    region = _crop_rois_region(frame, rois, 64, "border")
    assert torch.allclose(region, expected, atol=1e-5)


def test_roi_inside_image():
    rois = torch.tensor([[50.0, 50.0, 40.0, 0.0], [-30.0, 50.0, 40.0, 0.0], [99.0, 50.0, 300.0, 0.0]])
    assert roi_inside_image(rois, (100, 100)).tolist() == [True, False, False]


# ---------------------------------------------------------------- integral readout

def _gaussian_logits(centres, size=64, sigma=1.5):
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                            indexing="ij")
    maps = [-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2) for cx, cy in centres]
    return torch.stack(maps).float()


def test_soft_argmax_recovers_sub_pixel_peak():
    peaks = [(20.3, 33.7), (40.55, 10.2)]
    logits = _gaussian_logits(peaks)[None]  # (1, 2, 64, 64); softmax of a log-Gaussian is the Gaussian
    coords, _ = soft_argmax_2d(logits)
    assert torch.allclose(coords[0], torch.tensor(peaks), atol=0.02)
    # a 7x7 window around a nearby guess still recovers the peak of a narrow blob
    windowed, _ = soft_argmax_2d(_gaussian_logits(peaks, sigma=0.8)[None], torch.tensor([[[21.0, 33.0], [40.0, 11.0]]]), 7)
    assert torch.allclose(windowed[0], torch.tensor(peaks), atol=0.05)
    # the quantised arg-max could not do this: it is off by up to half a cell
    assert (torch.tensor(peaks) - torch.tensor(peaks).round()).abs().max() > 0.25


def test_window_ignores_a_second_blob():
    blob_a, blob_b = (15.0, 15.0), (45.0, 45.0)
    two = torch.logsumexp(torch.stack([_gaussian_logits([blob_a]), _gaussian_logits([blob_b])]), dim=0)[None]
    full, _ = soft_argmax_2d(two)
    assert torch.allclose(full[0, 0], torch.tensor([30.0, 30.0]), atol=0.1)  # pulled half-way
    windowed, _ = soft_argmax_2d(two, torch.tensor([[[16.0, 14.0]]]), window=7)
    # (a window that is off-centre by a cell truncates the blob asymmetrically: ~0.15 cell bias)
    assert torch.allclose(windowed[0, 0], torch.tensor(blob_a), atol=0.2)


def test_integral_readout_in_crop_pixels():
    # heat-map cell (20.3, 33.7) covers crop pixels around (20.3 + 0.5) * 4 - 0.5 = 82.7, 136.3
    logits = 4.0 + _gaussian_logits([(20.3, 33.7), (5.0, 5.0)], sigma=1.2)[None]
    regressed = torch.tensor([[[80.0, 138.0], [200.0, 200.0], [10.0, 10.0]]])  # 3 joints, 2 heat maps
    out = integral_readout(logits, regressed, 256, IntegralOptions("softmax", 7, 0.5, cell_origin=0.5))
    assert out[0, 0].tolist() == pytest.approx([82.7, 136.3], abs=0.15)
    # sigmoid weights flatten the top of the blob, so the 7x7 window biases it towards its centre
    sig = integral_readout(logits, regressed, 256, IntegralOptions("sigmoid", 7, 0.5, cell_origin=0.5))
    assert sig[0, 0].tolist() == pytest.approx([82.7, 136.3], abs=0.6)
    # joint 1's window (around cell 50, 50) holds no confident blob -> keeps its regression
    assert out[0, 1].tolist() == [200.0, 200.0]
    assert out[0, 2].tolist() == [10.0, 10.0]  # no heat map for joint 2
    # MediaPipe's grid convention puts cell j at continuous 4 j, i.e. crop pixel 4 j - 0.5
    near_peak = torch.tensor([[[80.5, 134.0], [200.0, 200.0], [10.0, 10.0]]])
    mp = integral_readout(logits, near_peak, 256, IntegralOptions("softmax", 7, 0.5, cell_origin=0.0))
    assert mp[0, 0].tolist() == pytest.approx([20.3 * 4 - 0.5, 33.7 * 4 - 0.5], abs=0.15)
    with pytest.raises(ValueError):
        soft_argmax_2d(logits, activation="relu")


def test_padded_frame_rows_are_viewed_not_copied():
    from streampose.pose2d.estimator import _frame_view

    rng = np.random.default_rng(3)
    padded = rng.integers(0, 256, (60, 90 * 3 + 12), dtype=np.uint8)  # rows padded like PyAV's
    frame = padded[:, :270].reshape(60, 90, 3)
    view = _frame_view(frame)
    assert view.data_ptr() == frame.ctypes.data and view.stride() == (282, 3, 1)
    rois = torch.tensor([[45.0, 30.0, 40.0, 0.3]])
    dense = torch.from_numpy(np.ascontiguousarray(frame))
    assert torch.equal(crop_rois_uint8(view, rois, 32), crop_rois_uint8(dense, rois, 32))
    assert torch.equal(letterbox_frame_uint8(view)[0], letterbox_frame_uint8(dense)[0])
    flipped = _frame_view(frame[::-1])  # negative strides cannot be viewed: copied
    assert torch.equal(flipped, torch.from_numpy(np.ascontiguousarray(frame[::-1])))
