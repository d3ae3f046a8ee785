"""Synthetic training renderer: a body of shaded capsules, ray-cast with torch.

There is no real image data with 3D ground truth here, so the refiner learns from renders of mocap
poses.  Each of the 16 H36M-17 limbs is one capsule (torso, pelvis and head are fat capsules on their
bones), with random radii (body proportions), clothing colours and stripe/noise textures, Lambert
shading under a random light, a random background (flat, gradient or noise), and random occluding
boxes in front of the person.  Every pixel's ray is intersected with every capsule at once
(vectorised over pixels x capsules); the nearest hit gives colour, normal and the exact limb id.

Geometry is in camera space (x right, y down, z forward, metres; camera at the origin), with pinhole
intrinsics given per render, so the caller decides what part of a larger virtual frame the render
covers (we render person-centred squares).  Rendering is deterministic given the
``torch.Generator`` passed in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from streampose.refine.limbs import LIMBS, NUM_LIMBS
from streampose.skeleton import H36M17

# Mean capsule radius per limb (metres), indexed like LIMBS (child joint order 1..16).
_J = H36M17.index
_BASE_RADIUS = {
    "RHip": 0.10, "RKnee": 0.075, "RFoot": 0.055, "LHip": 0.10, "LKnee": 0.075, "LFoot": 0.055,
    "Spine": 0.14, "Thorax": 0.15, "Neck/Nose": 0.055, "Head": 0.10,
    "LShoulder": 0.065, "LElbow": 0.05, "LWrist": 0.04,
    "RShoulder": 0.065, "RElbow": 0.05, "RWrist": 0.04,
}
BASE_RADII = torch.tensor([_BASE_RADIUS[H36M17.joints[c]] for c, _ in LIMBS])

# Which garment covers each limb: 0 = top, 1 = bottom, 2 = skin (head, neck).
_GARMENT = {"RHip": 1, "RKnee": 1, "RFoot": 1, "LHip": 1, "LKnee": 1, "LFoot": 1, "Spine": 0,
            "Thorax": 0, "Neck/Nose": 2, "Head": 2, "LShoulder": 0, "LElbow": 0, "LWrist": 0,
            "RShoulder": 0, "RElbow": 0, "RWrist": 0}
GARMENT = torch.tensor([_GARMENT[H36M17.joints[c]] for c, _ in LIMBS])
_FOREARMS = torch.tensor([i for i, (c, _) in enumerate(LIMBS)
                          if H36M17.joints[c] in ("LWrist", "RWrist")])
_SHINS = torch.tensor([i for i, (c, _) in enumerate(LIMBS) if H36M17.joints[c] in ("LFoot", "RFoot")])


@dataclass
class Appearance:
    """Random look of one render (all tensors float32)."""

    radii: torch.Tensor          # (16,) capsule radii, metres
    colours: torch.Tensor        # (16, 3) albedo per limb in [0, 1]
    stripe_freq: torch.Tensor    # (16,) texture stripe frequency, cycles per metre (0 = none)
    stripe_dir: torch.Tensor     # (3,) world direction the stripes vary along
    stripe_amp: torch.Tensor     # () stripe contrast
    light_dir: torch.Tensor      # (3,) unit vector towards the light, camera space
    ambient: torch.Tensor        # ()
    background: torch.Tensor     # (3, H, W) in [0, 1]
    occluders: list[tuple[float, float, float, float, torch.Tensor]]  # (x0, y0, x1, y1) in [0,1] + colour
    noise_sigma: float           # pixel noise std


@dataclass
class Render:
    """One rendered sample.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        parts: ``(H, W)`` int64 limb id 0..15 of the visible surface, -1 background/occluder.
        mask: ``(H, W)`` float32 person mask (1 where any limb is visible).
        kp2d: ``(17, 2)`` float32 projected joints in render pixels.
    """

    image: np.ndarray
    parts: np.ndarray
    mask: np.ndarray
    kp2d: np.ndarray


def _uniform(gen: torch.Generator, low: float, high: float, *shape: int) -> torch.Tensor:
    return low + (high - low) * torch.rand(*shape, generator=gen)


def _random_colour(gen: torch.Generator) -> torch.Tensor:
    return torch.rand(3, generator=gen) * _uniform(gen, 0.3, 1.0, 1)


def _background(gen: torch.Generator, size: int) -> torch.Tensor:
    kind = int(torch.randint(0, 3, (1,), generator=gen))
    if kind == 0:  # flat
        bg = _random_colour(gen)[:, None, None].expand(3, size, size).clone()
    elif kind == 1:  # linear gradient between two colours
        angle = _uniform(gen, 0, 2 * np.pi, 1)
        ramp = torch.linspace(0, 1, size)
        ys, xs = torch.meshgrid(ramp, ramp, indexing="ij")
        t = ((xs - 0.5) * torch.cos(angle) + (ys - 0.5) * torch.sin(angle) + 0.5).clamp(0, 1)
        c0, c1 = _random_colour(gen), _random_colour(gen)
        bg = c0[:, None, None] * (1 - t) + c1[:, None, None] * t
    else:  # low-frequency colour noise (clutter)
        cells = int(torch.randint(3, 12, (1,), generator=gen))
        coarse = torch.rand(1, 3, cells, cells, generator=gen)
        bg = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]
    bg = bg + 0.05 * torch.randn(3, size, size, generator=gen)
    return bg.clamp(0, 1)


def sample_appearance(gen: torch.Generator, size: int) -> Appearance:
    """Draw a random body, clothing, light and scene.

    Args:
        gen: seeded generator (the only source of randomness).
        size: render side in pixels.
    """
    build = _uniform(gen, 0.8, 1.25, 1)
    radii = BASE_RADII * build * _uniform(gen, 0.85, 1.15, NUM_LIMBS)
    top, bottom = _random_colour(gen), _random_colour(gen)
    skin = torch.tensor([0.95, 0.75, 0.6]) * _uniform(gen, 0.35, 1.0, 1)
    colours = torch.stack([top, bottom, skin])[GARMENT].clone()
    if torch.rand(1, generator=gen) < 0.5:   # short sleeves
        colours[_FOREARMS] = skin
    if torch.rand(1, generator=gen) < 0.3:   # shorts
        colours[_SHINS] = skin
    striped = torch.rand(2, generator=gen) < 0.4
    freq = _uniform(gen, 4.0, 20.0, 2) * striped
    stripe_freq = torch.stack([freq[0], freq[1], torch.tensor(0.0)])[GARMENT]
    light = torch.tensor([0.0, -0.5, -1.0]) + 0.8 * torch.randn(3, generator=gen)
    occluders = []
    for _ in range(int(torch.randint(0, 3, (1,), generator=gen)) if torch.rand(1, generator=gen) < 0.4 else 0):
        x0, y0 = _uniform(gen, 0.0, 0.85, 2).tolist()
        w, h = _uniform(gen, 0.08, 0.35, 2).tolist()
        occluders.append((x0, y0, min(x0 + w, 1.0), min(y0 + h, 1.0), _random_colour(gen)))
    return Appearance(
        radii=radii, colours=colours, stripe_freq=stripe_freq, stripe_dir=F.normalize(torch.randn(3, generator=gen), dim=0),
        stripe_amp=_uniform(gen, 0.2, 0.5, 1)[0], light_dir=F.normalize(light, dim=0),
        ambient=_uniform(gen, 0.25, 0.55, 1)[0], background=_background(gen, size),
        occluders=occluders, noise_sigma=float(_uniform(gen, 0.0, 0.03, 1)))


def capsule_hits(rays: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
                 radius: torch.Tensor) -> torch.Tensor:
    """Ray parameter of the first hit of rays from the origin with capsules.

    A capsule is the union of a finite cylinder and two end spheres, so its first hit is the
    minimum over the three.

    Args:
        rays: ``(P, 3)`` unit ray directions from the camera centre.
        start: ``(C, 3)`` capsule axis start points.
        end: ``(C, 3)`` axis end points.
        radius: ``(C,)`` radii.

    Returns:
        ``(P, C)`` hit distance along each ray, ``inf`` where it misses.
    """
    inf = torch.tensor(float("inf"))
    axis = end - start                                           # (C, 3)
    axis_len2 = (axis * axis).sum(-1)                            # (C,)
    oa = -start                                                  # ray origin minus start
    d_axis = rays @ axis.T                                       # (P, C)
    oa_axis = (oa * axis).sum(-1)                                # (C,)
    d_oa = rays @ oa.T                                           # (P, C)
    oa2 = (oa * oa).sum(-1)
    qa = axis_len2 - d_axis ** 2
    qb = axis_len2 * d_oa - oa_axis * d_axis
    qc = axis_len2 * oa2 - oa_axis ** 2 - radius ** 2 * axis_len2
    disc = qb ** 2 - qa * qc
    t_cyl = (-qb - disc.clamp_min(0).sqrt()) / qa.clamp_min(1e-12)
    along = oa_axis + t_cyl * d_axis
    ok = (disc >= 0) & (qa > 1e-12) & (along > 0) & (along < axis_len2) & (t_cyl > 0)
    best = torch.where(ok, t_cyl, inf)
    for centre in (start, end):
        b = rays @ (-centre).T                                   # d . (o - c)
        c = (centre * centre).sum(-1) - radius ** 2
        disc_s = b ** 2 - c
        t_s = -b - disc_s.clamp_min(0).sqrt()
        best = torch.minimum(best, torch.where((disc_s >= 0) & (t_s > 0), t_s, inf))
    return best


def render_person(joints_cam: torch.Tensor, intrinsics: tuple[float, float, float, float],
                  size: int, appearance: Appearance, gen: torch.Generator) -> Render:
    """Ray-cast one person.

    Args:
        joints_cam: ``(17, 3)`` H36M-17 joints in camera space, metres (z > 0 in front).
        intrinsics: ``(fx, fy, cx, cy)`` in render pixels.
        size: render side ``S`` (square).
        appearance: from :func:`sample_appearance` (its background must be ``S x S``).
        gen: generator for the pixel noise.

    Returns:
        :class:`Render` with an ``(S, S, 3)`` image, exact part ids and projected joints.
    """
    joints_cam = joints_cam.to(torch.float32)
    fx, fy, cx, cy = intrinsics
    pix = torch.arange(size, dtype=torch.float32)
    ys, xs = torch.meshgrid(pix, pix, indexing="ij")
    rays = F.normalize(torch.stack([(xs - cx) / fx, (ys - cy) / fy, torch.ones_like(xs)], -1), dim=-1)
    rays = rays.reshape(-1, 3)

    child = joints_cam[[c for c, _ in LIMBS]]
    parent = joints_cam[[p for _, p in LIMBS]]
    t = capsule_hits(rays, parent, child, appearance.radii)      # (P, 16)
    t_near, part = t.min(dim=1)
    hit = torch.isfinite(t_near)

    # Surface normal: from the closest axis point to the hit point.
    point = rays * torch.where(hit, t_near, torch.zeros_like(t_near))[:, None]
    a, b = parent[part], child[part]
    ab = b - a
    s = (((point - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-9)).clamp(0, 1)
    normal = F.normalize(point - (a + s[:, None] * ab), dim=-1)
    lambert = (normal @ appearance.light_dir).clamp_min(0)
    shade = appearance.ambient + (1 - appearance.ambient) * lambert
    phase = (point - joints_cam[0]) @ appearance.stripe_dir * appearance.stripe_freq[part] * 2 * np.pi
    texture = 1 + appearance.stripe_amp * torch.sign(torch.sin(phase)) * (appearance.stripe_freq[part] > 0)
    body = (appearance.colours[part] * texture[:, None] * shade[:, None]).clamp(0, 1)

    image = appearance.background.reshape(3, -1).T.clone()
    image[hit] = body[hit]
    labels = torch.where(hit, part, torch.full_like(part, -1))
    image = image.reshape(size, size, 3)
    labels = labels.reshape(size, size)
    for x0, y0, x1, y1, colour in appearance.occluders:
        r0, r1 = int(y0 * size), max(int(y1 * size), int(y0 * size) + 1)
        c0, c1 = int(x0 * size), max(int(x1 * size), int(x0 * size) + 1)
        image[r0:r1, c0:c1] = colour
        labels[r0:r1, c0:c1] = -1
    if appearance.noise_sigma > 0:
        image = image + appearance.noise_sigma * torch.randn(image.shape, generator=gen)
    image_u8 = (image.clamp(0, 1) * 255 + 0.5).to(torch.uint8)

    kp2d = torch.stack([joints_cam[:, 0] / joints_cam[:, 2] * fx + cx,
                        joints_cam[:, 1] / joints_cam[:, 2] * fy + cy], -1)
    return Render(image=image_u8.numpy(), parts=labels.numpy(),
                  mask=(labels >= 0).to(torch.float32).numpy(), kp2d=kp2d.numpy())


def person_crop_intrinsics(joints_cam: torch.Tensor, size: int, fill: float = 0.8,
                           ) -> tuple[float, float, float, float]:
    """Intrinsics of a person-centred square view (a crop of a larger pinhole frame).

    Args:
        joints_cam: ``(17, 3)`` camera-space joints.
        size: render side in pixels.
        fill: fraction of the side the joints' bounding box spans (margin for body thickness).

    Returns:
        ``(fx, fy, cx, cy)`` with square pixels.
    """
    norm = joints_cam[:, :2] / joints_cam[:, 2:3]
    low, high = norm.min(0).values, norm.max(0).values
    focal = fill * size / float((high - low).max().clamp_min(1e-3))
    centre = (low + high) / 2
    return (focal, focal, size / 2 - 0.5 - focal * float(centre[0]),
            size / 2 - 0.5 - focal * float(centre[1]))
