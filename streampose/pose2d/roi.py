"""Rotated square regions of interest: from alignment points, to crops, and back to the image.

BlazePose localises a person by two *alignment points*: the mid-hip centre and a point whose distance
gives the body size and whose direction gives the body rotation (from the detector's keypoints 0/1 on
the first frame, from the landmark model's auxiliary landmarks 33/34 afterwards).  MediaPipe's
``AlignmentPointsRectsCalculator`` turns them into a square ROI of side ``2 * distance`` centred on the
hips, rotated so that hip->scale-point points *up* in the crop (target angle 90 degrees), and
``RectTransformationCalculator`` enlarges it 1.25x.

An ROI is a row ``[cx, cy, size, rotation]``: centre in image pixels (pixel centres at integers), side
length in pixels, rotation in radians (MediaPipe's convention: 0 = upright, pi/2 = body lying with the
head to the right).  The crop of side ``S`` maps crop pixel ``u`` (centres at integers) to image pixel
``p`` by ``p = c + R(rotation) (u - (S - 1) / 2) * size / S`` with ``R(a) = [[cos a, -sin a],
[sin a, cos a]]`` in y-down image axes.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from kornia.geometry.transform import warp_affine

from streampose.smoothing import OneEuroParams

ROI_SCALE = 1.25
ROTATION_TARGET = math.pi / 2  # hip -> scale point must point straight up in the crop

# MediaPipe's pose graph (pose_landmark_filtering.pbtxt) One-Euro-filters the two alignment points
# before deriving the next frame's ROI from them -- harder than the published landmarks, "to make the
# ROI crop very stable when the object is not moving but responsive enough in case of sudden
# movements" -- with speeds divided by the alignment box side (2 x hips -> scale point).
MEDIAPIPE_ROI_FILTER = OneEuroParams(min_cutoff=0.01, beta=10.0, derivate_cutoff=1.0)
# ... and its published image landmarks with these (same speed scale).
MEDIAPIPE_LANDMARK_FILTER = OneEuroParams(min_cutoff=0.05, beta=80.0, derivate_cutoff=1.0)


def normalize_radians(angle: torch.Tensor) -> torch.Tensor:
    """Wrap angles to [-pi, pi)."""
    return angle - 2 * math.pi * torch.floor((angle + math.pi) / (2 * math.pi))


def rois_from_alignment_points(centre: torch.Tensor, scale_point: torch.Tensor,
                               scale: float = ROI_SCALE) -> torch.Tensor:
    """Rotated square ROIs from alignment points.

    Args:
        centre: ``(P, 2)`` mid-hip points, image pixels.
        scale_point: ``(P, 2)`` size/rotation points, image pixels.
        scale: enlargement applied to the ``2 * |scale_point - centre|`` side.

    Returns:
        ``(P, 4)`` ROIs ``[cx, cy, size, rotation]``.
    """
    delta = scale_point - centre
    size = 2.0 * torch.linalg.vector_norm(delta, dim=-1) * scale
    # Image y points down, so "up" is -dy; the rotation is how far hip->scale deviates from up.
    rotation = normalize_radians(ROTATION_TARGET - torch.atan2(-delta[..., 1], delta[..., 0]))
    return torch.stack([centre[..., 0], centre[..., 1], size, rotation], dim=-1)


def crop_from_image_matrices(rois: torch.Tensor, crop_size: int) -> torch.Tensor:
    """Affine matrices that map crop pixels to image pixels.

    Args:
        rois: ``(P, 4)`` ``[cx, cy, size, rotation]``.

    Returns:
        ``(P, 2, 3)``: ``p_image = M[:, :2] @ u_crop + M[:, 2]``.
    """
    cx, cy, size, rotation = rois.unbind(-1)
    k = size / crop_size
    cos, sin = torch.cos(rotation) * k, torch.sin(rotation) * k
    half = (crop_size - 1) / 2.0
    # MediaPipe's landmark projection: image offset = [[cos, -sin], [sin, cos]] @ crop offset.
    row0 = torch.stack([cos, -sin, cx - (cos - sin) * half], dim=-1)
    row1 = torch.stack([sin, cos, cy - (sin + cos) * half], dim=-1)
    return torch.stack([row0, row1], dim=-2)


CROP_GRIDS = ("centres", "mediapipe")


def sampling_rois(rois: torch.Tensor, crop_size: int, grid: str = "centres") -> torch.Tensor:
    """The ROIs to *cut* the crops with so that crop pixels sample the image on ``grid``.

    ``"centres"``: crop pixel ``u`` samples the image at ``c + R (u - (S - 1) / 2) k`` (``k = size / S``),
    so the crop's pixel centres sit symmetrically in the ROI.  ``"mediapipe"``: MediaPipe's
    ``ImageToTensorCalculator`` maps the ROI's corners onto the tensor's corners ``0`` and ``S`` and
    warps with OpenCV, so crop pixel ``u`` samples ``c + R (u - S / 2) k``: half a crop pixel towards
    the ROI's top-left corner.  Both project the model's landmarks back the same way
    (:func:`crop_from_image_matrices`), so only what the network sees moves.

    Returns:
        ``(P, 4)`` ROIs, same size and rotation, centre shifted for ``"mediapipe"``.
    """
    if grid not in CROP_GRIDS:
        raise ValueError(f"crop grid must be one of {CROP_GRIDS}, got {grid!r}")
    if grid == "centres":
        return rois
    half_pixel = 0.5 * rois[:, 2] / crop_size
    cos, sin = torch.cos(rois[:, 3]), torch.sin(rois[:, 3])
    shifted = rois.clone()
    shifted[:, 0] -= half_pixel * (cos - sin)
    shifted[:, 1] -= half_pixel * (sin + cos)
    return shifted


def invert_affine(matrices: torch.Tensor) -> torch.Tensor:
    """Invert ``(P, 2, 3)`` affine matrices -> ``(P, 2, 3)``."""
    linear = matrices[:, :, :2]
    inv_linear = torch.linalg.inv(linear)
    inv_shift = -(inv_linear @ matrices[:, :, 2:])
    return torch.cat([inv_linear, inv_shift], dim=-1)


def image_from_crop_matrices(rois: torch.Tensor, crop_size: int) -> torch.Tensor:
    """``(P, 4)`` ROIs -> ``(P, 2, 3)`` matrices mapping image pixels to crop pixels."""
    return invert_affine(crop_from_image_matrices(rois, crop_size))


def apply_affine(matrices: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply ``(P, 2, 3)`` affine maps to ``(P, K, 2)`` points -> ``(P, K, 2)``."""
    return points @ matrices[:, :, :2].transpose(1, 2) + matrices[:, None, :, 2]


def crop_rois(images: torch.Tensor, rois: torch.Tensor, crop_size: int = 256,
              image_index: torch.Tensor | None = None, padding_mode: str = "border") -> torch.Tensor:
    """Cut rotated square crops out of images, all in one batched kornia warp.

    Args:
        images: ``(B, C, H, W)`` float.
        rois: ``(P, 4)`` ``[cx, cy, size, rotation]``.
        image_index: ``(P,)`` which image each ROI comes from; ``None`` means ROI ``i`` <- image
            ``i`` if ``B == P``, or image 0 if ``B == 1``.
        padding_mode: kornia padding for parts of the ROI outside the image (``"border"`` replicates
            the edge, like MediaPipe's landmark crop).

    Returns:
        ``(P, C, crop_size, crop_size)``.
    """
    if rois.shape[0] == 0:
        return images.new_zeros((0, images.shape[1], crop_size, crop_size))
    if image_index is None:
        if images.shape[0] == rois.shape[0]:
            source = images
        elif images.shape[0] == 1:
            source = images.expand(rois.shape[0], -1, -1, -1)
        else:
            raise ValueError(f"{images.shape[0]} images but {rois.shape[0]} ROIs: pass image_index")
    else:
        source = images[image_index]
    matrices = image_from_crop_matrices(rois.to(images.dtype), crop_size)
    return warp_affine(source, matrices, dsize=(crop_size, crop_size), mode="bilinear",
                       padding_mode=padding_mode, align_corners=True)


def paste_crops(crops: torch.Tensor, rois: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Warp crop-space maps (e.g. segmentation) back into image space (zero outside each ROI).

    Args:
        crops: ``(P, C, S, S)`` float maps in crop pixels.
        rois: ``(P, 4)`` the ROIs they were cut from.
        image_size: ``(width, height)`` of the image.

    Returns:
        ``(P, C, height, width)``.
    """
    width, height = image_size
    matrices = crop_from_image_matrices(rois.to(crops.dtype), crops.shape[-1])
    return warp_affine(crops, matrices, dsize=(height, width), mode="bilinear", padding_mode="zeros",
                       align_corners=True)


def roi_corners(rois: torch.Tensor) -> torch.Tensor:
    """``(P, 4)`` ROIs -> ``(P, 4, 2)`` image-pixel corners (for drawing and bounds checks)."""
    unit = rois.new_tensor([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    matrices = crop_from_image_matrices(rois, 1)
    # With crop_size 1 the crop centre is u = 0, so unit offsets span the whole ROI.
    return apply_affine(matrices, unit.expand(rois.shape[0], 4, 2))


def roi_inside_image(rois: torch.Tensor, image_size: tuple[int, int], min_fraction: float = 0.25
                     ) -> torch.Tensor:
    """Whether each ROI still overlaps the image enough to keep tracking from it.

    An ROI whose centre (the hips) has left the frame, or whose area lies mostly outside it, holds too
    little of the person to re-localise from; the detector should take over.

    Returns:
        ``(P,)`` bool.
    """
    width, height = image_size
    cx, cy = rois[:, 0], rois[:, 1]
    centre_in = (cx >= -0.5) & (cx <= width - 0.5) & (cy >= -0.5) & (cy <= height - 0.5)
    corners = roi_corners(rois)
    lo = corners.amin(dim=1)
    hi = corners.amax(dim=1)
    inter_w = (torch.minimum(hi[:, 0], rois.new_tensor(width - 0.5)) - torch.maximum(lo[:, 0], rois.new_tensor(-0.5))).clamp(min=0)
    inter_h = (torch.minimum(hi[:, 1], rois.new_tensor(height - 0.5)) - torch.maximum(lo[:, 1], rois.new_tensor(-0.5))).clamp(min=0)
    box_area = ((hi - lo).prod(dim=1)).clamp(min=1e-6)
    return centre_in & (inter_w * inter_h / box_area >= min_fraction) & (rois[:, 2] > 1.0)


def crop_rois_uint8(image: torch.Tensor, rois: torch.Tensor, crop_size: int = 256,
                    padding_mode: str = "border") -> torch.Tensor:
    """Like :func:`crop_rois` for one ``(H, W, 3)`` uint8 frame, converting only the crops to float.

    Converting a whole full-HD frame to float costs more than the crops themselves.  On CPU each ROI
    is warped straight from the uint8 frame with OpenCV (what MediaPipe's CPU graph does too); the
    result differs from the float warp by uint8 rounding (<= 0.5/255 measured) and OpenCV's 1/32-px
    fixed-point sample positions.  On other devices the pixels the ROIs cover are cut out, converted,
    and warped with kornia (:func:`_crop_rois_region`).

    Args:
        image: ``(H, W, C)`` uint8 on the target device.
        rois: ``(P, 4)`` ``[cx, cy, size, rotation]``.
        padding_mode: ``"border"`` (replicate the edge) or ``"zeros"``.

    Returns:
        ``(P, C, crop_size, crop_size)`` float in [0, 1]; on CPU a view of an NHWC buffer
        (``torch.channels_last`` strides), which channels-last convolutions read without a copy.
    """
    if rois.shape[0] == 0:
        return torch.zeros((0, image.shape[2], crop_size, crop_size), device=image.device)
    if image.device.type == "cpu":
        return _crop_rois_opencv(image, rois, crop_size, padding_mode)
    return _crop_rois_region(image, rois, crop_size, padding_mode)


_OPENCV_BORDER = {"border": cv2.BORDER_REPLICATE, "zeros": cv2.BORDER_CONSTANT}


def _crop_rois_opencv(image: torch.Tensor, rois: torch.Tensor, crop_size: int, padding_mode: str) -> torch.Tensor:
    """CPU crop: ``cv2.warpAffine`` on uint8 per ROI, then one float conversion of ``(P, S, S, C)``."""
    if padding_mode not in _OPENCV_BORDER:
        raise ValueError(f"padding_mode must be one of {sorted(_OPENCV_BORDER)}, got {padding_mode!r}")
    frame = image.numpy()
    # Crop -> image matrices: with WARP_INVERSE_MAP OpenCV samples dst(u) = src(M u), pixel centres at
    # integers in both, exactly our convention.
    matrices = crop_from_image_matrices(rois.double(), crop_size).numpy()
    crops = np.empty((rois.shape[0], crop_size, crop_size, frame.shape[2]), dtype=np.uint8)
    for p in range(rois.shape[0]):
        cv2.warpAffine(frame, matrices[p], (crop_size, crop_size), dst=crops[p],
                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=_OPENCV_BORDER[padding_mode])
    return torch.from_numpy(crops).permute(0, 3, 1, 2).float().div_(255.0)


def _crop_rois_region(image: torch.Tensor, rois: torch.Tensor, crop_size: int, padding_mode: str) -> torch.Tensor:
    """GPU crop: the region the ROIs cover -> float -> one batched kornia warp.

    The sub-image keeps a 2-pixel margin so bilinear sampling at its edge sees real neighbours, and it
    reaches the image border wherever an ROI does, so edge replication is the same as on the full
    frame.
    """
    height, width = image.shape[:2]
    corners = roi_corners(rois.float()).reshape(-1, 2)
    lo = torch.floor(corners.amin(dim=0)).long() - 2
    hi = torch.ceil(corners.amax(dim=0)).long() + 3
    x0, y0 = max(0, int(lo[0])), max(0, int(lo[1]))
    x1, y1 = min(width, int(hi[0])), min(height, int(hi[1]))
    if x1 - x0 < 2 or y1 - y0 < 2:  # ROIs (almost) entirely off the frame: sample the whole frame
        x0, y0, x1, y1 = 0, 0, width, height
    region = image[y0:y1, x0:x1].permute(2, 0, 1)[None].float().div_(255.0)
    shifted = rois.float().clone()
    shifted[:, 0] -= x0
    shifted[:, 1] -= y0
    return crop_rois(region, shifted, crop_size, padding_mode=padding_mode)
