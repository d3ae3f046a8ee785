"""What a pipeline run can be asked to do: each setting's vocabulary, defined once, and the config.

Each choice-valued setting is a ``Literal`` type plus the tuple of its allowed values (the tuple is
derived from the type, so the two cannot disagree).  :class:`PipelineConfig` validates every field
when it is built and raises :class:`SettingError`; the 2D stage and the command line take their
vocabularies from here instead of keeping copies.

This module imports nothing heavy, so the command line can build its options from it without
loading torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from streampose.errors import StreamposeError

Precision = Literal["fp32", "bf16", "mixed", "auto"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
DEFAULT_PRECISION: Precision = "fp32"
# A single network runs in one dtype; "mixed" names a split between the 2D stage's two networks
# (bf16 detector, fp32 landmark model), so it is not a choice for one network.
NETWORK_PRECISIONS: tuple[str, ...] = tuple(p for p in PRECISIONS if p != "mixed")

Smoothing = Literal["kalman", "oneeuro", "none"]
SMOOTHINGS: tuple[str, ...] = get_args(Smoothing)

Readout = Literal["integral", "regression"]
READOUTS: tuple[str, ...] = get_args(Readout)

# What the command line offers; the API also accepts "cuda:N" for a particular GPU.
Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[str, ...] = get_args(Device)

# Where the root (Hip) position comes from: the 2D keypoints + 3D pose + intrinsics (geometry), or
# the lifter's trajectory model (measured worse in every setting, benchmarks/root.py; kept for A/B).
RootMethod = Literal["geometry", "trajectory"]
ROOT_METHODS: tuple[str, ...] = get_args(RootMethod)


class SettingError(StreamposeError, ValueError):
    """A setting has a value outside its vocabulary or range.

    A ``ValueError`` as well, so code that guards a constructor with ``except ValueError`` keeps
    working; a ``StreamposeError``, so the command line prints it as one line.
    """


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    """Raise :class:`SettingError` unless ``value`` is one of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise SettingError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def check_device(device: object) -> None:
    """Raise :class:`SettingError` unless ``device`` is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    if isinstance(device, str) and (device in DEVICES or device.startswith("cuda:")):
        return
    raise SettingError(f"unknown device {device!r}: use {', '.join(DEVICES)} (or cuda:N)")


def _check_at_least(name: str, value: object, minimum: int, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        allowed = f"an integer >= {minimum}" + (" or None" if optional else "")
        raise SettingError(f"{name} must be {allowed}; got {value!r}")


def _check_share(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise SettingError(f"{name} must be a number in [0, 1]; got {value!r}")


@dataclass
class PipelineConfig:
    """What to run and how; every field is checked when the config is built.

    Attributes:
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        causal: use the causal (live) lifter: no look-ahead, each frame final at once.  The
            symmetric (offline) lifter is more accurate and outputs each frame ``lag`` frames late.
        realtime: when the consumer falls behind a live source (camera, network stream, a live
            iterable of frames), drop the oldest waiting frames instead of making the source wait.
            A video file is never dropped from: it can wait, so every frame is processed.
        lifter: shipped model name or path of a lifter weights file.
        smoothing: one of :data:`SMOOTHINGS`.  Applied causally to each track's 2D keypoints (the
            reported 2D) and to its 3D output; the lifter itself gets the raw 2D unless
            ``smooth_2d`` is set.
        refine: run the patch-based refiner on the lifter's output.
        max_people: people to track at once (>= 1).
        readout: 2D readout, one of :data:`READOUTS`; ``None`` = the 2D stage's default.
        precision: 2D networks' arithmetic, one of :data:`PRECISIONS`: ``"fp32"`` (default,
            exact), ``"bf16"`` (faster on CPUs with native bf16 units; keypoints move by ~1% of the
            crop), ``"mixed"`` (bf16 detector only), ``"auto"`` (bf16 where it is native).
        keep_images: attach each frame's RGB image to its ``PoseFrame`` (``.image``), for drawing.
        want_mask: ask the 2D stage for person segmentation masks (``Person.mask``).
        queue_size: capacity of each inter-thread queue (>= 1).
        max_frames: stop after this many frames (>= 0; ``None``: the whole source).
        threads: torch CPU threads (``None``: 1 on machines with two cores or fewer, else torch's
            default).  Note that torch's thread count is process-wide.
        smooth_2d: feed the lifter the smoothed 2D keypoints instead of the raw ones.  Off by
            default: on the shared videos it added 1-2 frames of 3D lag, and offline it did not
            lower 3D jitter (README, Smoothing).
        world_fusion: share in ``[0, 1]`` of BlazePose's own 3D (GHUM world landmarks, aligned by a
            similarity) in the 3D pose, averaged with the lifter's (0: the lifter alone).
        bone_lengths: impose each track's running-median bone lengths, left and right equal.
        reproject: share in ``[0, 1]`` of the pose rebuilt so that it projects onto its 2D (bone
            depths from foreshortening, the lifter's depth order); 0: off.
        resample_fps: lift videos whose frame rate is outside the lifter's trained range at a
            trained rate (frames interpolated in time), instead of as they are.
        fov: the camera's horizontal field of view in degrees (square pixels, centred principal
            point).  At most one of ``fov``, ``intrinsics``, ``calibration``; with none, a 65-degree
            lens across the long side is assumed and the header says so (``camera.source``).
        intrinsics: ``"FX,FY,CX,CY"`` in pixels (or 4 numbers); stored as a tuple of floats.
        calibration: an OpenCV-style YAML/JSON calibration file (K + distortion); 2D keypoints are
            undistorted before lifting.  Read and checked when the config is built.
        person_height: the subject's standing height in metres: sets the body scale, and so the
            root's depth (``None``: the lifter's learnt size).
        root: where ``Person.root`` comes from, one of :data:`ROOT_METHODS` (``"geometry"``: solved
            from the 2D keypoints, the 3D pose and the intrinsics; see streampose.lifter.root).

    Raises:
        SettingError: a field outside its vocabulary or range.
    """

    device: str = "auto"
    causal: bool = False
    realtime: bool = False
    lifter: str = "default"
    smoothing: Smoothing = "kalman"
    refine: bool = False
    max_people: int = 1
    readout: Readout | None = None
    precision: Precision = DEFAULT_PRECISION
    keep_images: bool = False
    want_mask: bool = False
    queue_size: int = 8
    max_frames: int | None = None
    threads: int | None = None
    smooth_2d: bool = False
    world_fusion: float = 0.0
    bone_lengths: bool = False
    reproject: float = 0.0
    resample_fps: bool = False
    fov: float | None = None
    intrinsics: str | tuple[float, float, float, float] | None = None
    calibration: str | None = None
    person_height: float | None = None
    root: RootMethod = "geometry"

    def __post_init__(self) -> None:
        check_device(self.device)
        check_choice("smoothing", self.smoothing, SMOOTHINGS)
        check_choice("precision", self.precision, PRECISIONS)
        if self.readout is not None:
            check_choice("readout", self.readout, READOUTS)
        _check_at_least("max_people", self.max_people, 1)
        _check_at_least("queue_size", self.queue_size, 1)
        _check_at_least("max_frames", self.max_frames, 0, optional=True)
        _check_at_least("threads", self.threads, 1, optional=True)
        _check_share("world_fusion", self.world_fusion)
        _check_share("reproject", self.reproject)
        check_choice("root", self.root, ROOT_METHODS)
        self._check_camera()

    def _check_camera(self) -> None:
        given = [n for n in ("fov", "intrinsics", "calibration") if getattr(self, n) is not None]
        if len(given) > 1:
            raise SettingError(f"give the camera once: {' and '.join(given)} were both given")
        if self.person_height is not None and (
                isinstance(self.person_height, bool) or not isinstance(self.person_height, (int, float))
                or not 0.5 <= self.person_height <= 2.6):
            raise SettingError(f"person_height must be the subject's standing height in metres "
                               f"(0.5-2.6); got {self.person_height!r}")
        if not given:
            return
        # Imported here: settings stays light for the command line unless a camera is given.
        from streampose import camera
        from streampose.errors import InputError

        try:
            if self.fov is not None:
                self.fov = camera.check_fov(self.fov)
            if self.intrinsics is not None:
                self.intrinsics = camera.parse_intrinsics(self.intrinsics)
            if self.calibration is not None:
                camera.load_calibration(self.calibration)
        except InputError as error:
            raise SettingError(str(error)) from None


# The choice-valued fields of PipelineConfig and their vocabularies (the command line's choices).
CHOICES: dict[str, tuple[str, ...]] = {
    "device": DEVICES, "smoothing": SMOOTHINGS, "readout": READOUTS, "precision": PRECISIONS,
    "root": ROOT_METHODS,
}
