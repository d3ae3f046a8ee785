"""The shipped model weights, described by metadata in one place.

Every weights file that ships inside the package (``streampose/models/``) has one :class:`ModelEntry`
here: its file, sha256, what it expects as input, its licence and the headline held-out numbers of
its model card (the card beside the file has the full tables).  Loaders (``load_lifter``,
``load_refiner``) resolve shipped names through :func:`weights_path`, which also checks the digest, so
a damaged or swapped file fails with one clear line instead of producing wrong poses.

Weights a user trains or downloads are not listed: they are loaded by path, or by name from the
cache (``<cache>/lifter/lifter_NAME.pt``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from streampose.cache import sha256_file
from streampose.errors import ModelError

MODELS_DIR = Path(__file__).resolve().parent / "models"

CMU_TERMS = ("trained only on the CMU Graphics Lab Motion Capture Database subset (free for research, "
             "may be included in commercial products; the data itself may not be resold)")


@dataclass(frozen=True)
class ModelEntry:
    """One shipped weights file.

    Attributes:
        kind: ``"lifter"`` or ``"refiner"``.
        name: the name loaders take (``load_lifter("cmu")``).
        file: file name in ``streampose/models/``; its model card is the same name with ``.md``.
        sha256: hex digest of the file.
        input_layout: joint order of the 2D input (``"h36m17"``).
        receptive_field: frames the lifter sees per output (``None`` for per-frame models).
        causal: ``True`` if it needs no future frames (live use).
        licence: the terms the weights inherit from their training data.
        metrics: headline held-out numbers from the card (mm), data the model never trained on.
    """

    kind: str
    name: str
    file: str
    sha256: str
    input_layout: str
    receptive_field: int | None
    causal: bool
    licence: str
    metrics: dict = field(default_factory=dict)

    @property
    def card(self) -> Path:
        return MODELS_DIR / Path(self.file).with_suffix(".md").name


_ENTRIES = (
    ModelEntry("lifter", "cmu", "lifter_cmu.pt",
               "234a991a5cda1594adc73aabd0fbbfc52becbe9234132b914f0e2527baf118b8",
               input_layout="h36m17", receptive_field=27, causal=False, licence=CMU_TERMS,
               metrics={"cmu_heldout_30fps_mpjpe": 90.9, "cmu_heldout_30fps_p_mpjpe": 69.8}),
    ModelEntry("lifter", "cmu_causal", "lifter_cmu_causal.pt",
               "0fa4701855c1055a39d85e0d120482ae9d68ec6a236c9f3d1d286a9bc67041a9",
               input_layout="h36m17", receptive_field=27, causal=True, licence=CMU_TERMS,
               metrics={"cmu_heldout_30fps_mpjpe": 94.4, "cmu_heldout_30fps_p_mpjpe": 71.7}),
    # Trained in BlazePose's measured keypoint proportions (streampose_train.adapt): better on real
    # video, not on synthetic held-out mocap, so opt-in (see their cards).
    ModelEntry("lifter", "cmu_blazepose", "lifter_cmu_blazepose.pt",
               "7ed126ce91918f7bcd8a669b51215b69250a12ce8335981e09b998a4bafe3bb9",
               input_layout="h36m17", receptive_field=27, causal=False, licence=CMU_TERMS,
               metrics={"pose2sim_real_p_mpjpe": 75.0, "pose2sim_real_p_mpjpe_with_fusion_bones": 67.2,
                        "cmu_heldout_30fps_p_mpjpe_blazepose_proportions": 92.1}),
    ModelEntry("lifter", "cmu_blazepose_causal", "lifter_cmu_blazepose_causal.pt",
               "6217fbc977a065dcdc5b791ee0beca2380c6e0af55f2d16396713047d84514bb",
               input_layout="h36m17", receptive_field=27, causal=True, licence=CMU_TERMS,
               metrics={"pose2sim_real_p_mpjpe": 77.5, "pose2sim_real_p_mpjpe_with_fusion_bones": 68.6}),
    ModelEntry("refiner", "small_rgbseg", "refiner_small_rgbseg.pt",
               "8e284bb3cb1ccbd3bdb69fa9feff468e352ea28c166cb56994c74e12acadd54e",
               input_layout="h36m17", receptive_field=None, causal=True, licence=CMU_TERMS,
               metrics={"cmu_renders_heldout_mpjpe_lifter_only": 85.7, "cmu_renders_heldout_mpjpe": 83.4}),
)

REGISTRY: dict[tuple[str, str], ModelEntry] = {(e.kind, e.name): e for e in _ENTRIES}

#: The model each kind uses when the caller says ``"default"``; for lifters per ``causal``.
DEFAULTS = {("lifter", False): "cmu", ("lifter", True): "cmu_causal",
            ("refiner", False): "small_rgbseg", ("refiner", True): "small_rgbseg"}


def names(kind: str) -> list[str]:
    """Shipped names of one kind, sorted."""
    return sorted(name for (k, name) in REGISTRY if k == kind)


def entry(kind: str, name: str, causal: bool = False) -> ModelEntry | None:
    """The registry entry for a shipped name (``"default"`` resolves by ``causal``), else ``None``."""
    if name == "default":
        name = DEFAULTS[(kind, bool(causal))]
    return REGISTRY.get((kind, name))


@lru_cache(maxsize=None)
def _digest(path: Path, size: int, mtime_ns: int) -> str:
    return sha256_file(path)  # size and mtime are the cache key: a replaced file is read again


def weights_path(model: ModelEntry) -> Path:
    """The packaged file of ``model``, checked against its sha256 (once per file state).

    Raises:
        ModelError: the file is missing from the installation or its digest differs.
    """
    path = MODELS_DIR / model.file
    if not path.is_file():
        raise ModelError(f"shipped {model.kind} weights {model.file} are missing from this installation "
                         f"({MODELS_DIR}); reinstall streampose")
    stat = path.stat()
    if _digest(path, stat.st_size, stat.st_mtime_ns) != model.sha256:
        raise ModelError(f"shipped {model.kind} weights {path} are damaged (sha256 differs from the "
                         f"registry); reinstall streampose")
    return path
