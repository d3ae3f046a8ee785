"""``PoseEstimator2D``: BlazePose detector -> rotated ROI -> landmark model, tracked across frames.

Per frame:

1. Run the *detector* only when needed: no person is tracked (first frame, or the previous frame
   lost its person), or -- with ``detect_every=N`` / several people -- periodically to pick up
   newcomers.  Detections become ROIs from their hip centre and size/rotation keypoints.
2. Crop every tracked person's ROI to 256x256 in one batched kornia warp and run the landmark model
   once on the whole batch.
3. Read out 2D landmarks (``readout="regression"``: the model's regressed coordinates;
   ``"integral"``: soft-argmax over the heat maps, see :mod:`streampose.pose2d.readout`), project
   them back to image pixels with the inverse ROI affine.
4. A person whose pose-presence flag falls below ``min_presence`` is dropped (and re-detected on the
   next frame); otherwise the next frame's ROI comes from this frame's auxiliary landmarks 33/34
   (same alignment rule as the detector's keypoints), unless that ROI leaves the image.  A *fresh*
   detection that fails the presence test is remembered: while the detector keeps finding it at the
   same spot, the landmark model re-tests it only every ``retry_rejected_after`` frames.

Coordinates are image pixels with pixel centres at integers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from streampose.errors import InputError, ModelError
from streampose.settings import DEFAULT_PRECISION, PRECISIONS, READOUTS, check_choice
from streampose.skeleton import BLAZEPOSE_TO_H36M, map_confidence, map_joints
from streampose.smoothing import OneEuroParams, OneEuroSmoother
from streampose.types import Frame, Person2D

from .detection import PoseDetection, PoseDetector, box_iou
from .readout import IntegralOptions, integral_readout
from .roi import (
    CROP_GRIDS, MEDIAPIPE_ROI_FILTER, apply_affine, crop_from_image_matrices, crop_rois_uint8, paste_crops,
    roi_inside_image, rois_from_alignment_points, sampling_rois,
)

LANDMARK_INPUT_SIZE = 256
NUM_LANDMARKS = 33  # BlazePose's 33 pose landmarks; 33/34 are the ROI alignment points, 35-38 unused
NUM_MODEL_LANDMARKS = 39
ALIGNMENT_LANDMARKS = (33, 34)
# A track is kept while the landmark network's pose flag is >= this: MediaPipe's rule
# (tensors_to_pose_landmarks_and_segmentation.pbtxt).  It was 0.9, against a weak first detection on
# sports2d that locked onto a rotated "lying" pose; that detection came from our antialiased
# detector letterbox, which MediaPipe's does not do (DEFAULT_LETTERBOX).  Measured by
# benchmarks/pose2d_vs_mediapipe.py against 0.9 (frames with a person / frames only MediaPipe finds):
# intel 1066/172 -> 1213/66, sports2d 216/8 -> 225/0, pose2sim_multiperson cam03 87/9 -> 99/1 (its
# longest miss 13 -> 1 frames); the other four clips 100/0 either way.
MIN_PRESENCE = 0.5
# The next frame's ROI comes from this frame's alignment landmarks after MediaPipe's One-Euro filter
# (``roi.MEDIAPIPE_ROI_FILTER``); None = straight from the raw landmarks.
DEFAULT_ROI_FILTER: OneEuroParams | None = MEDIAPIPE_ROI_FILTER
# Where crop pixels sample the ROI (roi.sampling_rois) and how the detector's input is letterboxed
# (detection.LETTERBOXES).
DEFAULT_CROP_GRID = "mediapipe"
DEFAULT_LETTERBOX = "mediapipe"
# The ROI filter's clock: "frames" steps it 1/30 s per frame whatever the video's rate (what
# MediaPipe's Python solutions do: they stamp every frame 33.333 ms after the last), "video" uses the
# frames' own times.  Frames without a (usable) time always step by ASSUMED_FRAME_SECONDS.
ROI_FILTER_CLOCKS = ("frames", "video")
DEFAULT_ROI_FILTER_CLOCK = "frames"
ASSUMED_FRAME_SECONDS = 1.0 / 30.0
# Two tracks whose landmark boxes overlap this much have converged onto one person.
DUPLICATE_IOU = 0.5
# With several people and no explicit detect_every, look for newcomers this often (frames).
MULTI_PERSON_DETECT_INTERVAL = 10
# A fresh detection whose landmarks fail ``min_presence`` tends to be found again, in the same place,
# on the next frames (sports2d: a small backlit figure, 30 of 230 frames each paid detector + a
# rejected landmark run).  Such a spot is re-tested with the landmark model only every this many
# frames; in between the detector still runs, so a person elsewhere is picked up at once and a
# person at that spot at most this many frames - 1 late.  1 = re-test every frame (MediaPipe's way).
RETRY_REJECTED_AFTER = 3
# A detection is "the same spot" as a rejected one when its ROI centre is within this fraction of the
# rejected ROI's size and the sizes differ by less than this ratio.
REJECTED_CENTRE_TOLERANCE = 0.25
REJECTED_SIZE_RATIO = 1.25

# Chosen by benchmarks/readout_jitter.py on the three shared videos (same network outputs, read out
# both ways): the windowed integral readout lowers frame-to-frame jitter by ~4.5% pooled (-20% on the
# near-static pose2sim clip) while agreeing with the regression to ~4 px; sigmoid-normalised 7x7
# windows measured marginally best; the paper's whole-map softmax *raises* jitter by 11%.
DEFAULT_READOUT = "integral"
DEFAULT_INTEGRAL = IntegralOptions(activation="sigmoid", window=7, min_confidence=0.5, cell_origin=0.0,
                                   window_centre="nearest")


@dataclass
class CropLandmarks:
    """The landmark model's outputs for a batch of ``P`` crops (raw, in crop space).

    Attributes:
        landmarks: ``(P, 39, 5)`` ``[x, y, z, visibility_logit, presence_logit]``, x/y/z in
            256-px crop units (x, y continuous: the crop spans [0, 256]).
        presence: ``(P,)`` pose flag, already a probability.
        world: ``(P, 39, 3)`` metres, in the crop's (rotated) axes.
        heatmaps: ``(P, 39, 64, 64)`` logits or ``None``.
        segmentation: ``(P, 1, 256, 256)`` logits or ``None``.
    """

    landmarks: torch.Tensor
    presence: torch.Tensor
    world: torch.Tensor
    heatmaps: torch.Tensor | None
    segmentation: torch.Tensor | None

    @staticmethod
    def from_model_outputs(outputs) -> "CropLandmarks":
        """Sort the model's outputs by their (distinct) shapes, whatever order they come in.

        Accepts :class:`streampose.pose2d.weights.LandmarkOutputs` (a named tuple whose unrequested
        heads are ``None``) or any tuple of tensors.
        """
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        outputs = tuple(o for o in outputs if o is not None)
        found: dict[str, torch.Tensor] = {}
        for out in outputs:
            shape = tuple(out.shape[1:])
            if shape == (NUM_MODEL_LANDMARKS * 5,):
                found["landmarks"] = out.reshape(-1, NUM_MODEL_LANDMARKS, 5)
            elif shape == (1,):
                found["presence"] = out.reshape(-1)
            elif shape == (NUM_MODEL_LANDMARKS * 3,):
                found["world"] = out.reshape(-1, NUM_MODEL_LANDMARKS, 3)
            elif len(shape) == 3 and shape[0] == NUM_MODEL_LANDMARKS:
                found["heatmaps"] = out
            elif len(shape) == 3 and shape[0] == 1:
                found["segmentation"] = out
        missing = {"landmarks", "presence", "world"} - found.keys()
        if missing:
            raise ModelError(f"landmark model outputs lack {sorted(missing)}; got shapes "
                             f"{[tuple(o.shape) for o in outputs]}")
        return CropLandmarks(found["landmarks"].float(), found["presence"].float(), found["world"].float(),
                               found.get("heatmaps"), found.get("segmentation"))


@dataclass
class _Track:
    roi: torch.Tensor  # (4,) [cx, cy, size, rotation] for the coming frame
    bbox: np.ndarray | None = None  # last landmark box, for de-duplicating detections
    age: int = 0
    # One-Euro filter of the two alignment landmarks the next ROI comes from (None: unfiltered)
    alignment_filter: OneEuroSmoother | None = None


@dataclass
class _RejectedSpot:
    """Where a fresh detection's landmarks failed ``min_presence``; not re-tested until it expires."""

    roi: torch.Tensor  # (4,) ROI of the latest detection at this spot (follows a moving figure)
    frames_left: int

    def matches(self, roi: torch.Tensor) -> bool:
        size = float(self.roi[2])
        centre_shift = float(torch.linalg.vector_norm(roi[:2] - self.roi[:2]))
        ratio = float(roi[2]) / max(size, 1e-6)
        return (centre_shift <= REJECTED_CENTRE_TOLERANCE * size
                and 1.0 / REJECTED_SIZE_RATIO <= ratio <= REJECTED_SIZE_RATIO)


def _image_tensor(image: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB (numpy or tensor) -> ``(1, 3, H, W)`` float in [0, 1] on ``device``."""
    tensor = image if isinstance(image, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(image))
    return tensor.to(device, non_blocking=True).permute(2, 0, 1)[None].float().div_(255.0)


def _frame_view(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 array -> tensor sharing its memory where possible.

    Decoded frames often pad their rows (PyAV: 3264-byte rows for 1080-px RGB); copying such a
    full-HD frame just to drop the padding cost ~1.2 ms per frame.  Row padding is fine for torch and
    OpenCV as long as each row's pixels are packed; anything else (negative or pixel-level strides)
    is copied.
    """
    itemsize = image.itemsize
    if image.strides[2] == itemsize and image.strides[1] == 3 * itemsize and image.strides[0] >= image.shape[1] * 3 * itemsize:
        return torch.from_numpy(image)
    return torch.from_numpy(np.ascontiguousarray(image))


# (detector, landmark model) arithmetic per estimator precision, measured by
# benchmarks/pose2d_precision.py on the shared videos (1 thread, native bf16 CPU): ``bf16`` makes the
# 2D stage 1.21-1.31x faster, but the landmarks move by 1.7-2.6 px mean in the 256-px crop and 2D
# jitter changes by -23..+8%; ``mixed`` (bf16 detector only) gains just 1.05-1.13x and its detector
# decisions flip near the threshold (sports2d: 156 -> 149 frames with a person).  So fp32 -- exact
# parity with the reference runtime -- stays the default and bf16 is opt-in for speed.
PRECISION_SPLIT = {"fp32": ("fp32", "fp32"), "bf16": ("bf16", "bf16"), "mixed": ("bf16", "fp32")}


def resolve_estimator_precision(precision: str, device: str | torch.device) -> str:
    """``auto`` -> ``bf16`` on a CPU with native bf16 units, else ``fp32``; others pass through."""
    check_choice("precision", precision, PRECISIONS)
    if precision != "auto":
        return precision
    from .weights import resolve_precision  # one rule for "auto", shared with the weight loaders
    return resolve_precision("auto", device)


def _load_models(device: torch.device, want_mask: bool, readout: str, precision: str
                 ) -> tuple[torch.nn.Module, torch.nn.Module]:
    try:
        from .weights import load_detector, load_landmark_model
    except ImportError as exc:  # the weights module ships with the package; this means a broken install
        raise ModelError(f"BlazePose weight loader unavailable: {exc}") from exc
    detector_precision, landmark_precision = PRECISION_SPLIT[precision]  # already resolved by the caller
    detector = load_detector(device, precision=detector_precision)
    landmarks = load_landmark_model(device, with_segmentation=want_mask, with_heatmap=readout == "integral",
                                    precision=landmark_precision)
    return detector, landmarks


class PoseEstimator2D:
    """BlazePose 2D pose per frame, with ROI tracking between frames.

    Args:
        device: torch device for both networks and all pre/post-processing.
        readout: ``"integral"`` (soft-argmax over the heat maps around the regressed point) or
            ``"regression"`` (the regressed landmark coordinates as they are).
        max_people: most people tracked at once (each gets its own ROI; crops are batched).
        want_mask: also return each person's segmentation probability in image pixels.
        detect_every: also run the detector every ``N`` frames while tracking; detections of tracked
            people replace their ROI (undoing drift), others start new tracks (``1`` = detect every
            frame, no ROI tracking).  ``None``: only when needed -- for one person, only after
            losing them; for several, every 10 frames while fewer than ``max_people`` are tracked.
        min_presence: pose-flag threshold below which a person counts as lost.
        retry_rejected_after: a fresh detection whose landmarks fail ``min_presence`` is re-tested
            with the landmark model only every ``N`` frames while the detector keeps finding it at
            the same spot (``1`` = every frame).  Saves a wasted landmark run per frame on figures
            the landmark model will not accept (small, backlit, cut off).
        detector_model, landmark_model: ready-made networks (default: the converted BlazePose
            models from :mod:`streampose.pose2d.weights`).
        precision: arithmetic of the default networks: ``"fp32"``, ``"bf16"`` (both networks),
            ``"mixed"`` (bf16 detector, fp32 landmark model) or ``"auto"`` (``bf16`` on CPUs with
            native bf16 units, else ``fp32``); see ``PRECISION_SPLIT`` for the measured trade.
        integral: options of the integral readout.
    """

    def __init__(self, device: str | torch.device = "cpu", readout: str = DEFAULT_READOUT, max_people: int = 1,
                 want_mask: bool = False, detect_every: int | None = None, min_presence: float = MIN_PRESENCE,
                 retry_rejected_after: int = RETRY_REJECTED_AFTER,
                 detector_model: torch.nn.Module | None = None, landmark_model: torch.nn.Module | None = None,
                 integral: IntegralOptions = DEFAULT_INTEGRAL, precision: str = DEFAULT_PRECISION,
                 roi_filter: OneEuroParams | None = DEFAULT_ROI_FILTER, crop_grid: str = DEFAULT_CROP_GRID,
                 detector_letterbox: str = DEFAULT_LETTERBOX, roi_filter_clock: str = DEFAULT_ROI_FILTER_CLOCK):
        check_choice("readout", readout, READOUTS)
        if max_people < 1:
            raise ValueError(f"max_people must be >= 1, got {max_people}")
        if detect_every is not None and detect_every < 1:
            raise ValueError(f"detect_every must be >= 1 or None, got {detect_every}")
        check_choice("precision", precision, PRECISIONS)
        check_choice("crop_grid", crop_grid, CROP_GRIDS)
        check_choice("roi_filter_clock", roi_filter_clock, ROI_FILTER_CLOCKS)
        if retry_rejected_after < 1:
            raise ValueError(f"retry_rejected_after must be >= 1, got {retry_rejected_after}")
        self.device = torch.device(device)
        self.readout = readout
        self.max_people = max_people
        self.want_mask = want_mask
        self.detect_every = detect_every
        self.min_presence = min_presence
        self.retry_rejected_after = retry_rejected_after
        self.integral = integral
        self.roi_filter = roi_filter
        self.roi_filter_clock = roi_filter_clock
        self.crop_grid = crop_grid
        # The resolved precision of the networks loaded here; None when the caller brought both
        # networks (their arithmetic is the caller's).
        self.precision: str | None = None
        if detector_model is None or landmark_model is None:
            self.precision = resolve_estimator_precision(precision, self.device)
            loaded = _load_models(self.device, want_mask, readout, self.precision)
            detector_model = detector_model or loaded[0]
            landmark_model = landmark_model or loaded[1]
        self.detector = PoseDetector(detector_model.eval(), letterbox=detector_letterbox)
        self.landmark_model = landmark_model.eval()
        self.description = f"blazepose_full/{readout}" + (
            f"/{self.precision}" if self.precision in ("bf16", "mixed") else "")
        self.stats = {"frames": 0, "detector_runs": 0, "landmark_runs": 0, "rejected_detections_skipped": 0,
                      "lost_presence": 0, "lost_roi_outside": 0}
        self._tracks: list[_Track] = []
        self._rejected: list[_RejectedSpot] = []
        self._frames_since_detection = 0
        self._time: float | None = None  # the current frame's time, seconds (the ROI filter's clock)
        # The raw crop-space outputs and ROIs of the latest landmark call, for diagnostics and the
        # readout benchmark (which re-reads the same network outputs with every readout).
        self.last_outputs: CropLandmarks | None = None
        self.last_rois: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget all tracks (e.g. at a scene cut or a new video)."""
        self._tracks = []
        self._rejected = []
        self._frames_since_detection = 0
        self._time = None
        self.last_outputs = None
        self.last_rois = None

    # ---------------------------------------------------------------- per frame

    @torch.inference_mode()
    def process(self, frame: Frame | np.ndarray) -> list[Person2D]:
        """Estimate the 2D pose of the people in one frame.

        Args:
            frame: a :class:`~streampose.types.Frame` (or its ``(H, W, 3)`` uint8 RGB image).

        Returns:
            up to ``max_people`` :class:`Person2D`, best pose-presence first; empty when nobody is
            found.
        """
        image = frame.image if isinstance(frame, Frame) else frame
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise InputError(f"pose2d expects an (H, W, 3) uint8 RGB image, got {desc}")
        height, width = image.shape[:2]
        self.stats["frames"] += 1
        self._advance_clock(frame.time if isinstance(frame, Frame) and self.roi_filter_clock == "video" else None)
        # Stay uint8: the crops and the detector's letterbox convert only what they sample to float.
        frame_u8 = _frame_view(image).to(self.device, non_blocking=True)
        self._age_rejected_spots()
        detected = self._should_detect()
        if detected:
            self._add_detections(frame_u8)
        self.last_outputs = self.last_rois = None
        tracked_before = len(self._tracks)
        people = self._landmark_pass(frame_u8, (width, height))
        if not detected and len(self._tracks) < min(tracked_before, self.max_people):
            # A track was lost on a frame the detector did not see.  Look again on this frame, not
            # the next: when the person is still in view (the ROI lagged a fast move, or the pose
            # flag dipped), losing the track then costs no frame of output.
            kept = self._tracks
            self._add_detections(frame_u8)
            fresh = self._tracks[len(kept):]
            if fresh:
                self._tracks = fresh
                people = people + self._landmark_pass(frame_u8, (width, height), reported=[p.bbox for p in people])
                self._tracks = kept + self._tracks
                people.sort(key=lambda person: -person.score)
        return people

    def _landmark_pass(self, frame_u8: torch.Tensor, image_size: tuple[int, int],
                       reported: list[np.ndarray] | None = None) -> list[Person2D]:
        """Run the landmark network once over every track's ROI (one batch) and update the tracks."""
        if not self._tracks:
            return []
        rois = torch.stack([t.roi for t in self._tracks])
        crops = crop_rois_uint8(frame_u8, sampling_rois(rois, LANDMARK_INPUT_SIZE, self.crop_grid), LANDMARK_INPUT_SIZE)
        outputs = CropLandmarks.from_model_outputs(self.landmark_model(crops))
        self.stats["landmark_runs"] += 1
        self.last_outputs, self.last_rois = outputs, rois
        return self._read_people(outputs, rois, image_size, reported)

    def _advance_clock(self, frame_time: float | None) -> None:
        """The ROI filter's clock: the frame's time (``roi_filter_clock="video"``), or 1/30 s on from
        the last frame (``"frames"``, a bare image, or a time that does not increase)."""
        previous = self._time
        if frame_time is None or not np.isfinite(frame_time) or (previous is not None and frame_time <= previous):
            frame_time = 0.0 if previous is None else previous + ASSUMED_FRAME_SECONDS
        self._time = float(frame_time)

    def _next_rois(self, image_xy: torch.Tensor) -> torch.Tensor:
        """The coming frame's ROI of each tracked person from this frame's alignment landmarks
        (``image_xy (P, 39, 2)``), One-Euro filtered per track as MediaPipe does (speeds relative to
        the unfiltered alignment box side)."""
        centre, scale_point = image_xy[:, ALIGNMENT_LANDMARKS[0]], image_xy[:, ALIGNMENT_LANDMARKS[1]]
        if self.roi_filter is None:
            return rois_from_alignment_points(centre, scale_point)
        points = torch.stack([centre, scale_point], dim=1).double().cpu().numpy()  # (P, 2, 2)
        smoothed = np.empty_like(points)
        for p, track in enumerate(self._tracks):
            box_side = 2.0 * float(np.linalg.norm(points[p, 1] - points[p, 0]))
            if not (np.isfinite(points[p]).all() and box_side > 1e-6):
                smoothed[p] = points[p]  # nothing sensible to filter; the ROI check drops it
                continue
            if track.alignment_filter is None:
                track.alignment_filter = OneEuroSmoother(self.roi_filter)
            smoothed[p] = track.alignment_filter.push(self._time, points[p], scale=box_side)
        smoothed_t = torch.from_numpy(smoothed).to(image_xy.device, image_xy.dtype)
        return rois_from_alignment_points(smoothed_t[:, 0], smoothed_t[:, 1])

    def _should_detect(self) -> bool:
        self._frames_since_detection += 1
        if not self._tracks:
            return True
        if self.detect_every is not None:
            return self._frames_since_detection >= self.detect_every
        return len(self._tracks) < self.max_people and self._frames_since_detection >= MULTI_PERSON_DETECT_INTERVAL

    def _add_detections(self, frame_u8: torch.Tensor) -> None:
        """Run the detector on an ``(H, W, 3)`` uint8 frame; re-anchor tracked people it finds and start
        tracks for newcomers."""
        self._frames_since_detection = 0
        self.stats["detector_runs"] += 1
        detections = self.detector.detect_frame(frame_u8)
        if not detections:
            return
        kps = torch.from_numpy(np.stack([d.keypoints for d in detections])).to(self.device, torch.float32)
        rois = rois_from_alignment_points(kps[:, 0], kps[:, 1])
        for roi, det in zip(rois, detections):
            match = next((t for t in self._tracks if self._same_person(det, t)), None)
            if match is not None:
                match.roi = roi  # periodic re-detection (detect_every) resets drifted ROIs
                continue
            rejected = next((spot for spot in self._rejected if spot.matches(roi)), None)
            if rejected is not None:
                rejected.roi = roi  # same figure, maybe moved: keep following it until the re-test
                self.stats["rejected_detections_skipped"] += 1
            elif len(self._tracks) < self.max_people:
                self._tracks.append(_Track(roi, None))

    def _age_rejected_spots(self) -> None:
        for spot in self._rejected:
            spot.frames_left -= 1
        self._rejected = [spot for spot in self._rejected if spot.frames_left > 0]

    @staticmethod
    def _same_person(det: PoseDetection, track: _Track) -> bool:
        """Whether a detection is a person we already track.

        The detector's box covers roughly the head and shoulders, not the body, so box IoU with the
        landmark box is a poor test; the detected hip centre falling inside the tracked person's
        landmark box is a robust one.
        """
        if track.bbox is None:
            return False
        x, y = det.keypoints[0]
        x0, y0, x1, y1 = track.bbox
        return bool(x0 <= x <= x1 and y0 <= y <= y1)

    def _read_people(self, out: CropLandmarks, rois: torch.Tensor, image_size: tuple[int, int],
                     reported: list[np.ndarray] | None = None) -> list[Person2D]:
        """Landmarks of each track from the network's outputs; keeps the tracks that stay visible.

        ``reported``: boxes of people already reported on this frame (a duplicate is dropped)."""
        width, height = image_size
        scale = rois[:, 2] / LANDMARK_INPUT_SIZE  # crop px -> image px
        # Model x/y are continuous crop coordinates; shift to pixel-centre convention.
        crop_xy = out.landmarks[..., :2] - 0.5
        if self.readout == "integral":
            if out.heatmaps is None:
                raise ModelError("readout='integral' needs the landmark model's heat-map output")
            crop_xy = integral_readout(out.heatmaps, crop_xy, LANDMARK_INPUT_SIZE, self.integral)
        to_image = crop_from_image_matrices(rois, LANDMARK_INPUT_SIZE)
        image_xy = apply_affine(to_image, crop_xy)  # (P, 39, 2)
        z = out.landmarks[..., 2] * scale[:, None]
        visibility = torch.sigmoid(out.landmarks[..., 3])
        presence = torch.sigmoid(out.landmarks[..., 4])
        # World landmarks live in the crop's axes; undo the ROI's in-plane rotation (MediaPipe does too).
        cos, sin = torch.cos(rois[:, 3])[:, None], torch.sin(rois[:, 3])[:, None]
        wx, wy = out.world[..., 0], out.world[..., 1]
        world = torch.stack([cos * wx - sin * wy, sin * wx + cos * wy, out.world[..., 2]], dim=-1)
        visible = out.presence >= self.min_presence
        next_rois = self._next_rois(image_xy)
        inside = roi_inside_image(next_rois, image_size)
        keep = visible & inside
        masks = None
        if self.want_mask:
            if out.segmentation is None:
                raise ModelError("want_mask=True needs the landmark model's segmentation output")
            masks = paste_crops(torch.sigmoid(out.segmentation.float()),
                                sampling_rois(rois, LANDMARK_INPUT_SIZE, self.crop_grid), image_size)[:, 0]

        landmarks33 = torch.cat([image_xy[:, :NUM_LANDMARKS], z[:, :NUM_LANDMARKS, None],
                                 visibility[:, :NUM_LANDMARKS, None], presence[:, :NUM_LANDMARKS, None]], dim=-1)
        landmarks_np = landmarks33.cpu().numpy()
        world_np = world[:, :NUM_LANDMARKS].cpu().numpy()
        presence_np = out.presence.cpu().numpy()
        keep_np = keep.cpu().numpy()
        self.stats["lost_presence"] += int((~visible).sum())
        self.stats["lost_roi_outside"] += int((visible & ~inside).sum())

        people: list[tuple[float, Person2D]] = []
        tracks: list[_Track] = []
        reported = list(reported or [])
        for p, track in enumerate(self._tracks):
            if not bool(visible[p]):
                # Lost: no output, and the detector takes over next frame.  A fresh detection that
                # failed is remembered so that the next frames do not pay for the same failure.
                if track.age == 0 and self.retry_rejected_after > 1:
                    self._rejected.append(_RejectedSpot(rois[p], self.retry_rejected_after))
                continue
            xy = landmarks_np[p, :, :2]
            bbox = np.array([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()], dtype=np.float32)
            bbox = np.clip(bbox, [0, 0, 0, 0], [width - 1, height - 1, width - 1, height - 1]).astype(np.float32)
            keypoints = np.concatenate([map_joints(xy, BLAZEPOSE_TO_H36M),
                                        map_confidence(landmarks_np[p, :, 3], BLAZEPOSE_TO_H36M)[:, None]], axis=1)
            person = Person2D(
                bbox=bbox, score=float(presence_np[p]), keypoints2d=keypoints.astype(np.float32),
                landmarks33=landmarks_np[p].astype(np.float32), world33=world_np[p].astype(np.float32),
                mask=None if masks is None else masks[p].cpu().numpy())
            # Two tracks on one person (e.g. after a re-detection) would report them twice: keep the first.
            if any(float(box_iou(torch.from_numpy(bbox), torch.from_numpy(other[None]))[0]) > DUPLICATE_IOU
                   for other in reported):
                continue
            reported.append(bbox)
            people.append((person.score, person))
            track.bbox = bbox
            track.age += 1
            if bool(keep_np[p]):
                track.roi = next_rois[p]
                tracks.append(track)
        self._tracks = tracks
        people.sort(key=lambda item: -item[0])
        return [person for _, person in people]
