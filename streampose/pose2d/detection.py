"""BlazePose person detector post-processing: letterbox, box + keypoint decode, weighted NMS.

Follows MediaPipe's ``pose_detection_cpu.pbtxt``: the frame is letterboxed (aspect kept, zero border)
to 224x224 in [-1, 1]; each of the 2254 anchors regresses 12 numbers -- box centre/size and four
keypoints, in 224-px units relative to the anchor centre -- and one score logit (sigmoid, clipped to
+-100).  Candidates above 0.5 are merged by *weighted* non-maximum suppression (IoU > 0.3 clusters are
averaged with their scores as weights).  The four keypoints are: 0 mid-hip centre, 1 a point whose
distance from the hips encodes the whole-body size and whose direction encodes the body rotation,
2 mid-shoulder centre, 3 the matching upper-body point.

All coordinates returned to callers are image pixels, pixel centres at integer coordinates.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .anchors import generate_anchors

DETECTOR_INPUT_SIZE = 224
NUM_DETECTOR_KEYPOINTS = 4
MIN_DETECTION_SCORE = 0.5
NMS_IOU_THRESHOLD = 0.3
SCORE_CLIP = 100.0


@dataclass
class PoseDetection:
    """One detected person.

    Attributes:
        box: ``(4,)`` ``[x0, y0, x1, y1]`` image pixels.
        keypoints: ``(4, 2)`` image pixels: mid-hip, body-size/rotation point, mid-shoulder,
            upper-body point.
        score: sigmoid detection score in [0, 1].
    """

    box: np.ndarray
    keypoints: np.ndarray
    score: float


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the square detector input.

    A continuous image coordinate ``c`` maps to the input as ``c * scale + pad``.
    """

    scale: float
    pad_x: float
    pad_y: float
    size: int

    @staticmethod
    def fit(width: int, height: int, size: int = DETECTOR_INPUT_SIZE) -> "Letterbox":
        scale = size / max(width, height)
        return Letterbox(scale, (size - width * scale) / 2, (size - height * scale) / 2, size)


def letterbox_images(images: torch.Tensor, size: int = DETECTOR_INPUT_SIZE) -> tuple[torch.Tensor, Letterbox]:
    """Resize keeping aspect ratio and pad with zeros to a centred square, as the detector expects.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].

    Returns:
        ``(B, 3, size, size)`` float in [-1, 1] (padding is 0 = mid-grey after the rescale, as in
        MediaPipe, which pads the [-1, 1] tensor with zeros) and the :class:`Letterbox` used.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W) images, got {tuple(images.shape)}")
    height, width = images.shape[-2:]
    box = Letterbox.fit(width, height, size)
    new_w = max(1, round(width * box.scale))
    new_h = max(1, round(height * box.scale))
    # Antialiasing matters: full-HD frames shrink ~8x and plain bilinear sampling would alias.
    resized = F.interpolate(images, size=(new_h, new_w), mode="bilinear", align_corners=False,
                            antialias=True)
    left = (size - new_w) // 2
    top = (size - new_h) // 2
    padded = F.pad(resized * 2.0 - 1.0, (left, size - new_w - left, top, size - new_h - top))
    # The exact integer padding defines the mapping back.
    return padded, Letterbox(new_w / width, float(left), float(top), size)


def letterbox_frame_uint8(frame: torch.Tensor, size: int = DETECTOR_INPUT_SIZE) -> tuple[torch.Tensor, Letterbox]:
    """:func:`letterbox_images` for one ``(H, W, 3)`` uint8 frame, shrinking before any float conversion.

    Converting a full-HD frame to float took ~20 ms of a ~47 ms detector step on CPU.  On CPU the
    frame is shrunk on uint8 with OpenCV's area filter (the antialiased resample for downscaling), so
    only the ~224x126 result becomes float; elsewhere the frame goes through :func:`letterbox_images`
    on the device.  The two filters differ slightly (box vs. triangle kernel, uint8 rounding).

    Args:
        frame: ``(H, W, 3)`` uint8 RGB, on the model's device.

    Returns:
        ``(1, 3, size, size)`` float in [-1, 1] (padding 0) and the :class:`Letterbox` used.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != torch.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 frame, got {frame.dtype} {tuple(frame.shape)}")
    if frame.device.type != "cpu":
        return letterbox_images(frame.permute(2, 0, 1)[None].float().div_(255.0), size)
    height, width = frame.shape[:2]
    box = Letterbox.fit(width, height, size)
    new_w = max(1, round(width * box.scale))
    new_h = max(1, round(height * box.scale))
    shrunk = _area_resize(frame.numpy(), new_w, new_h)
    left = (size - new_w) // 2
    top = (size - new_h) // 2
    inputs = torch.zeros((1, size, size, 3))
    inputs[0, top:top + new_h, left:left + new_w] = torch.from_numpy(shrunk).float().mul_(2.0 / 255.0).sub_(1.0)
    # NHWC buffer viewed as NCHW: channels-last strides, which the convolutions accept without a copy.
    return inputs.permute(0, 3, 1, 2), Letterbox(new_w / width, float(left), float(top), size)


def letterbox_frame_mediapipe(frame: torch.Tensor, size: int = DETECTOR_INPUT_SIZE) -> tuple[torch.Tensor, Letterbox]:
    """The detector input as MediaPipe's CPU graph makes it: one bilinear warp of the uint8 frame.

    MediaPipe's ``ImageToTensorCalculator`` (``pose_detection_cpu.pbtxt``: keep aspect ratio,
    ``BORDER_ZERO``) pads the whole-image rectangle to a square, maps that square's corners onto the
    224x224 tensor's and samples it with ``cv2.warpPerspective`` (``INTER_LINEAR``, no antialiasing:
    a full-HD frame is point-sampled ~8x down) on the uint8 image, so the letterbox border is black
    (-1 after the [-1, 1] rescale), not mid-grey.  Tensor pixel ``u`` samples image pixel
    ``u / scale - pad / scale`` (pixel centres at integers in both).

    Args:
        frame: ``(H, W, 3)`` uint8 RGB (any device; the warp runs on CPU).

    Returns:
        ``(1, 3, size, size)`` float in [-1, 1] on the frame's device and the :class:`Letterbox`
        that maps keypoints back (continuous input coordinate ``c`` <-> image pixel ``c``).
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != torch.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 frame, got {frame.dtype} {tuple(frame.shape)}")
    height, width = frame.shape[:2]
    box = Letterbox.fit(width, height, size)
    matrix = np.array([[box.scale, 0.0, box.pad_x], [0.0, box.scale, box.pad_y]])
    warped = cv2.warpAffine(frame.cpu().numpy(), matrix, (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inputs = torch.from_numpy(warped).float().mul_(2.0 / 255.0).sub_(1.0)[None].permute(0, 3, 1, 2)
    # MediaPipe's letterbox removal has no half-pixel term: its tensor and image coordinates are
    # both the warp's sample positions, so the keypoints map back without remove_letterbox's -0.5.
    return inputs.to(frame.device), Letterbox(box.scale, box.pad_x - 0.5 * box.scale, box.pad_y - 0.5 * box.scale,
                                              size)


LETTERBOXES = ("area", "mediapipe")


def _area_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``cv2.resize(INTER_AREA)`` via an exact integer box shrink first where the frame allows one.

    OpenCV's area filter has a fast path for integer ratios only; 1080x1920 -> 126x224 (ratio 8.57)
    took 4.4 ms, a 4x integer shrink then the remaining 2.14x takes 2.5 ms.  The first factor is the
    largest integer dividing both sides that leaves at least twice the target size, so the second
    stage still averages (>= 2x2 pixels per output pixel) rather than interpolates.
    """
    rows, cols = image.shape[:2]
    factor = min(rows // (2 * height), cols // (2 * width))
    while factor > 1 and (rows % factor or cols % factor):
        factor -= 1
    if factor > 1:
        image = cv2.resize(image, (cols // factor, rows // factor), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def decode_detections(raw_boxes: torch.Tensor, raw_scores: torch.Tensor, anchors: torch.Tensor,
                      input_size: int = DETECTOR_INPUT_SIZE) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decode the detector's raw regressors relative to the (fixed-size) anchors.

    Args:
        raw_boxes: ``(B, N, 12)`` ``[dx, dy, w, h, k0x, k0y, ..., k3x, k3y]`` in input pixels,
            offsets from the anchor centre.
        raw_scores: ``(B, N, 1)`` or ``(B, N)`` score logits.
        anchors: ``(N, 4)`` ``[x_center, y_center, w, h]`` normalised (see :func:`generate_anchors`).

    Returns:
        ``boxes (B, N, 4)`` ``[x0, y0, x1, y1]``, ``keypoints (B, N, 4, 2)`` -- both normalised to the
        square input ([0, 1]) -- and ``scores (B, N)`` in [0, 1].
    """
    if raw_boxes.shape[-1] != 4 + 2 * NUM_DETECTOR_KEYPOINTS or raw_boxes.shape[-2] != anchors.shape[0]:
        raise ValueError(f"raw boxes {tuple(raw_boxes.shape)} do not match {anchors.shape[0]} anchors")
    anchors = anchors.to(raw_boxes)
    centre = anchors[:, :2]
    anchor_size = anchors[:, 2:]
    box_centre = raw_boxes[..., 0:2] / input_size * anchor_size + centre
    box_size = raw_boxes[..., 2:4] / input_size * anchor_size
    boxes = torch.cat([box_centre - box_size / 2, box_centre + box_size / 2], dim=-1)
    kp = raw_boxes[..., 4:].reshape(*raw_boxes.shape[:-1], NUM_DETECTOR_KEYPOINTS, 2)
    keypoints = kp / input_size * anchor_size[:, None, :] + centre[:, None, :]
    scores = torch.sigmoid(raw_scores.reshape(raw_boxes.shape[:-1]).clamp(-SCORE_CLIP, SCORE_CLIP))
    return boxes, keypoints, scores


def box_iou(box: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """IoU of one box ``(4,)`` with each of ``boxes (M, 4)`` (``[x0, y0, x1, y1]``) -> ``(M,)``."""
    x0 = torch.maximum(box[0], boxes[:, 0])
    y0 = torch.maximum(box[1], boxes[:, 1])
    x1 = torch.minimum(box[2], boxes[:, 2])
    y1 = torch.minimum(box[3], boxes[:, 3])
    inter = (x1 - x0).clamp(min=0) * (y1 - y0).clamp(min=0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(union))


def weighted_nms(boxes: torch.Tensor, keypoints: torch.Tensor, scores: torch.Tensor,
                 iou_threshold: float = NMS_IOU_THRESHOLD, max_detections: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted non-maximum suppression (MediaPipe ``WEIGHTED`` algorithm).

    The best remaining candidate collects every remaining box overlapping it by IoU > threshold
    (itself included); the cluster's boxes and keypoints are averaged with score weights and the
    result keeps the best candidate's score.  Averaging instead of discarding steadies the boxes.

    Args:
        boxes: ``(M, 4)``; keypoints: ``(M, K, 2)``; scores: ``(M,)`` -- candidates of one image.

    Returns:
        ``(D, 4)``, ``(D, K, 2)``, ``(D,)`` merged detections, best score first.
    """
    order = torch.argsort(scores, descending=True, stable=True)
    remaining = order
    out_boxes, out_kps, out_scores = [], [], []
    while remaining.numel() > 0:
        best = remaining[0]
        overlap = box_iou(boxes[best], boxes[remaining]) > iou_threshold
        overlap[0] = True  # a degenerate (zero-area) best box still forms its own cluster
        cluster = remaining[overlap]
        weights = scores[cluster] / scores[cluster].sum().clamp(min=1e-12)
        out_boxes.append((boxes[cluster] * weights[:, None]).sum(0))
        out_kps.append((keypoints[cluster] * weights[:, None, None]).sum(0))
        out_scores.append(scores[best])
        remaining = remaining[~overlap]
        if max_detections is not None and len(out_scores) >= max_detections:
            break
    if not out_scores:
        return boxes.new_zeros((0, 4)), keypoints.new_zeros((0, *keypoints.shape[1:])), scores.new_zeros((0,))
    return torch.stack(out_boxes), torch.stack(out_kps), torch.stack(out_scores)


def remove_letterbox(points: torch.Tensor, letterbox: Letterbox) -> torch.Tensor:
    """Map ``(..., 2)`` points normalised to the square detector input to image pixels (centres at
    integers)."""
    continuous = (points * letterbox.size - points.new_tensor([letterbox.pad_x, letterbox.pad_y])) / letterbox.scale
    return continuous - 0.5


class PoseDetector:
    """BlazePose detector network plus its post-processing.

    Args:
        model: ``(B, 3, 224, 224)`` in [-1, 1] -> ``(raw_boxes (B, 2254, 12), score_logits (B, 2254, 1))``.
        min_score: candidates below this sigmoid score are dropped before NMS.
    """

    def __init__(self, model: torch.nn.Module, min_score: float = MIN_DETECTION_SCORE,
                 iou_threshold: float = NMS_IOU_THRESHOLD, letterbox: str = "area"):
        if letterbox not in LETTERBOXES:
            raise ValueError(f"letterbox must be one of {LETTERBOXES}, got {letterbox!r}")
        self.model = model
        self.letterbox = letterbox
        self.min_score = min_score
        self.iou_threshold = iou_threshold
        self._anchors: torch.Tensor | None = None

    @torch.inference_mode()
    def detect(self, images: torch.Tensor, max_detections: int | None = None) -> list[list[PoseDetection]]:
        """Detect people in a batch of frames.

        Args:
            images: ``(B, 3, H, W)`` float in [0, 1] on the model's device.

        Returns:
            for each frame, its detections (best score first) in image pixels.
        """
        inputs, letterbox = letterbox_images(images)
        return self._detect_letterboxed(inputs, letterbox, max_detections)

    @torch.inference_mode()
    def detect_frame(self, frame: torch.Tensor, max_detections: int | None = None) -> list[PoseDetection]:
        """Detect people in one ``(H, W, 3)`` uint8 RGB frame on the model's device (letterboxed by
        :func:`letterbox_frame_uint8`, or :func:`letterbox_frame_mediapipe` with
        ``letterbox="mediapipe"``); detections best score first, in image pixels."""
        make_input = letterbox_frame_mediapipe if self.letterbox == "mediapipe" else letterbox_frame_uint8
        inputs, letterbox = make_input(frame)
        return self._detect_letterboxed(inputs, letterbox, max_detections)[0]

    def _detect_letterboxed(self, inputs: torch.Tensor, letterbox: Letterbox, max_detections: int | None
                            ) -> list[list[PoseDetection]]:
        raw_boxes, raw_scores = self.model(inputs)
        if self._anchors is None or self._anchors.device != raw_boxes.device:
            self._anchors = generate_anchors().to(raw_boxes.device)
        boxes, keypoints, scores = decode_detections(raw_boxes.float(), raw_scores.float(), self._anchors)
        results: list[list[PoseDetection]] = []
        for b in range(boxes.shape[0]):
            keep = scores[b] >= self.min_score
            merged = weighted_nms(boxes[b][keep], keypoints[b][keep], scores[b][keep],
                                  self.iou_threshold, max_detections)
            box_px = remove_letterbox(merged[0].reshape(-1, 2, 2), letterbox).reshape(-1, 4)
            kp_px = remove_letterbox(merged[1], letterbox)
            results.append([
                PoseDetection(box_px[i].cpu().numpy(), kp_px[i].cpu().numpy(), float(merged[2][i]))
                for i in range(merged[2].shape[0])
            ])
        return results
