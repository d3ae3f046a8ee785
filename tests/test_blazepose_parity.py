"""Converted BlazePose models vs the reference TFLite runtime (``ai-edge-litert``), and the weight
fetching logic.

The parity tests need the real models: they use the populated cache or fetch the pinned
mediapipe wheel once, and skip cleanly when neither works (no network) or when ``ai-edge-litert``
is not installed.  The fetch-logic tests at the bottom need neither.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from streampose.errors import ModelError
from streampose.pose2d import weights
from streampose.pose2d.weights import ensure_blazepose_models, load_detector, load_landmark_model

SHARED = Path(__file__).resolve().parents[2] / "shared"
VIDEO = SHARED / "data" / "videos" / "pose2sim_balance_cam01.mp4"


@pytest.fixture(scope="module")
def files():
    try:
        return ensure_blazepose_models()
    except ModelError as exc:
        pytest.skip(f"BlazePose models unavailable: {exc}")


@pytest.fixture(scope="module")
def interpreter_class():
    module = pytest.importorskip("ai_edge_litert.interpreter")
    return module.Interpreter


def run_reference(interpreter_class, model_path: Path, batch_nhwc: np.ndarray) -> dict[str, np.ndarray]:
    """Reference outputs, one sample at a time (the TFLite graph has batch 1), stacked."""
    interpreter = interpreter_class(model_path=str(model_path), num_threads=1)
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    outputs: dict[str, list[np.ndarray]] = {}
    for sample in batch_nhwc:
        interpreter.set_tensor(input_index, np.ascontiguousarray(sample[None], dtype=np.float32))
        interpreter.invoke()
        for detail in interpreter.get_output_details():
            outputs.setdefault(detail["name"], []).append(interpreter.get_tensor(detail["index"])[0].copy())
    return {name: np.stack(values) for name, values in outputs.items()}


def stick_figure(size: int) -> np.ndarray:
    """A person-like stick figure on a textured background, (size, size, 3) uint8 RGB."""
    import cv2

    rng = np.random.default_rng(7)
    image = np.clip(rng.normal(120, 20, (size, size, 3)), 0, 255).astype(np.uint8)
    s = size / 256.0

    def p(x, y):
        return int(x * s), int(y * s)

    colour, width = (220, 170, 140), max(2, int(9 * s))
    cv2.circle(image, p(128, 45), int(18 * s), colour, -1)
    for a, b in [((128, 63), (128, 150)), ((128, 80), (90, 120)), ((90, 120), (75, 160)), ((128, 80), (166, 118)),
                 ((166, 118), (185, 150)), ((128, 150), (108, 200)), ((108, 200), (104, 245)), ((128, 150), (150, 200)),
                 ((150, 200), (158, 245))]:  # fmt: skip
        cv2.line(image, p(*a), p(*b), colour, width)
    cv2.rectangle(image, p(108, 70), p(148, 150), (40, 60, 160), -1)  # shirt
    return image


def real_frame(size: int) -> np.ndarray:
    import av
    import cv2

    with av.open(str(VIDEO)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    height, width = frame.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return cv2.resize(frame[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA)


def landmark_inputs(include_real: bool) -> np.ndarray:
    rng = np.random.default_rng(0)
    images = [rng.uniform(0, 1, (256, 256, 3)), stick_figure(256) / 255.0]
    if include_real:
        images.append(real_frame(256) / 255.0)
    return np.stack(images).astype(np.float32)


def detector_inputs(include_real: bool) -> np.ndarray:
    rng = np.random.default_rng(1)
    images = [rng.uniform(-1, 1, (224, 224, 3)), stick_figure(224) / 127.5 - 1.0]
    if include_real:
        images.append(real_frame(224) / 127.5 - 1.0)
    return np.stack(images).astype(np.float32)


def to_nchw(batch: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))


def tight(reference: np.ndarray, relative: float = 1e-5) -> float:
    """fp32-rounding tolerance: accumulation order differs (XNNPACK vs oneDNN), so scale with magnitude."""
    return relative * float(np.abs(reference).max()) + 1e-4


def check_landmark_parity(files, interpreter_class, inputs: np.ndarray) -> None:
    reference = run_reference(interpreter_class, files.landmark_tflite, inputs)
    model = load_landmark_model(with_segmentation=True, with_heatmap=True)
    with torch.inference_mode():
        out = model(to_nchw(inputs))
    batch = len(inputs)
    ours_landmarks = out.landmarks.numpy().reshape(batch, 39, 5)
    ref_landmarks = reference["Identity"].reshape(batch, 39, 5)
    # Issue requirement: x, y within 0.5 px at 256-px input; we hold all five fields far tighter.
    assert np.abs(ours_landmarks[..., :2] - ref_landmarks[..., :2]).max() < 0.5
    np.testing.assert_allclose(ours_landmarks, ref_landmarks, atol=0.01)
    np.testing.assert_allclose(out.pose_flag.numpy(), reference["Identity_1"], atol=1e-5)
    heat_ref = reference["Identity_3"].transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out.heatmap.numpy(), heat_ref, atol=tight(heat_ref))
    np.testing.assert_allclose(out.world_landmarks.numpy(), reference["Identity_4"], atol=tight(reference["Identity_4"]))
    # Segmentation logits reach |1e3| and the 256x256 decoder amplifies fp32 rounding in a few
    # spots (measured: median diff 2e-5, max 0.8 of 1600 on random input; our fp32 result is the
    # closer one to a float64 run, see test_rounding_error_not_larger_than_reference).
    seg_ref = reference["Identity_2"].transpose(0, 3, 1, 2)
    seg_diff = np.abs(out.segmentation.numpy() - seg_ref)
    assert np.median(seg_diff) < 1e-3 and seg_diff.max() < 1e-3 * np.abs(seg_ref).max() + 1e-3
    np.testing.assert_allclose(torch.sigmoid(out.segmentation).numpy(), torch.sigmoid(torch.from_numpy(seg_ref)).numpy(), atol=5e-3)
    assert out.heatmap.shape == (batch, 39, 64, 64) and out.segmentation.shape == (batch, 1, 256, 256)


def check_detector_parity(files, interpreter_class, inputs: np.ndarray) -> None:
    reference = run_reference(interpreter_class, files.detector_tflite, inputs)
    model = load_detector()
    with torch.inference_mode():
        boxes, scores = model(to_nchw(inputs))
    assert boxes.shape == (len(inputs), 2254, 12) and scores.shape == (len(inputs), 2254, 1)
    np.testing.assert_allclose(boxes.numpy(), reference["Identity"], atol=tight(reference["Identity"]))
    np.testing.assert_allclose(scores.numpy(), reference["Identity_1"], atol=tight(reference["Identity_1"]))
    np.testing.assert_array_equal(scores.numpy()[..., 0].argmax(1), reference["Identity_1"][..., 0].argmax(1))


def test_landmark_model_matches_reference_runtime(files, interpreter_class):
    check_landmark_parity(files, interpreter_class, landmark_inputs(include_real=False))


def test_detector_matches_reference_runtime(files, interpreter_class):
    check_detector_parity(files, interpreter_class, detector_inputs(include_real=False))


@pytest.mark.shared
@pytest.mark.skipif(not VIDEO.is_file(), reason="../shared videos not available")
def test_parity_on_real_video_frame(files, interpreter_class):
    check_landmark_parity(files, interpreter_class, landmark_inputs(include_real=True)[2:])
    check_detector_parity(files, interpreter_class, detector_inputs(include_real=True)[2:])
    # The frame shows one person: the reference says so, and so must we.
    with torch.inference_mode():
        flag = load_landmark_model()(to_nchw(landmark_inputs(include_real=True)[2:])).pose_flag
    assert flag.item() > 0.5


def test_rounding_error_not_larger_than_reference(files, interpreter_class):
    """Where we differ from the reference runtime, a float64 run of our graph sides with us."""
    inputs = landmark_inputs(include_real=False)
    reference = run_reference(interpreter_class, files.landmark_tflite, inputs)
    model = load_landmark_model(with_segmentation=True, with_heatmap=False)
    with torch.inference_mode():
        ours = model(to_nchw(inputs))
        exact = model.double()(to_nchw(inputs).double())
    pairs = [
        (ours.landmarks, exact.landmarks, reference["Identity"]),
        (ours.world_landmarks, exact.world_landmarks, reference["Identity_4"]),
        (ours.segmentation[:, 0], exact.segmentation[:, 0], reference["Identity_2"][..., 0]),
    ]
    for ours_value, exact_value, ref_value in pairs:
        exact_value = exact_value.numpy()
        assert np.abs(ours_value.numpy() - exact_value).max() <= 1.5 * np.abs(ref_value - exact_value).max()


def test_pruned_heads_give_identical_results(files):
    inputs = to_nchw(landmark_inputs(include_real=False))
    full = load_landmark_model(with_segmentation=True, with_heatmap=True)
    lean = load_landmark_model(with_segmentation=False, with_heatmap=False)
    assert len(lean.net.nodes) < len(full.net.nodes) - 30
    with torch.inference_mode():
        a, b = full(inputs), lean(inputs)
    assert b.segmentation is None and b.heatmap is None
    torch.testing.assert_close(a.landmarks, b.landmarks, rtol=0, atol=1e-4)
    torch.testing.assert_close(a.world_landmarks, b.world_landmarks, rtol=0, atol=1e-5)


def test_populated_cache_needs_no_network(files, tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("pip must not be called when the cache is populated")

    monkeypatch.setattr(weights.subprocess, "run", no_network)
    # Hand-placed .tflite files (STREAMPOSE_BLAZEPOSE_DIR) -> verified, copied, converted offline.
    monkeypatch.setenv("STREAMPOSE_BLAZEPOSE_DIR", str(files.detector_tflite.parent))
    local = ensure_blazepose_models(tmp_path / "cache")
    assert local.detector_converted.is_file() and local.landmark_converted.is_file()
    monkeypatch.delenv("STREAMPOSE_BLAZEPOSE_DIR")
    monkeypatch.setenv("STREAMPOSE_CACHE", str(tmp_path))
    (tmp_path / "blazepose").mkdir()
    for name in ("pose_detection.pt", "pose_landmark_full.pt"):
        (tmp_path / "blazepose" / name).write_bytes((tmp_path / "cache" / name).read_bytes())
    model = load_landmark_model(with_heatmap=False)  # converted files only: loads without sources
    assert model(torch.zeros(1, 3, 256, 256)).landmarks.shape == (1, 195)


def test_models_from_user_wheel_and_from_files_copied_into_cache(files, tmp_path, monkeypatch):
    monkeypatch.delenv("STREAMPOSE_BLAZEPOSE_DIR", raising=False)
    monkeypatch.setattr(weights.subprocess, "run", lambda *a, **k: pytest.fail("pip must not be called"))
    # A wheel of an unpinned platform is accepted when the models inside match their pins.
    wheel = tmp_path / "mediapipe-0.10.21-cp312-cp312-macosx_11_0_arm64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(files.detector_tflite, weights.DETECTOR_MEMBER)
        archive.write(files.landmark_tflite, weights.LANDMARK_MEMBER)
        archive.writestr("mediapipe/__init__.py", "")
    from_wheel = ensure_blazepose_models(tmp_path / "a", wheel=wheel)
    assert from_wheel.detector_tflite.read_bytes() == files.detector_tflite.read_bytes()
    assert from_wheel.landmark_converted.is_file()
    # The two .tflite files copied into the cache directory by hand.
    (tmp_path / "b").mkdir()
    for source in (files.detector_tflite, files.landmark_tflite):
        (tmp_path / "b" / source.name).write_bytes(source.read_bytes())
    by_hand = ensure_blazepose_models(tmp_path / "b")
    assert by_hand.detector_converted.is_file() and by_hand.landmark_converted.is_file()


# ---------------------------------------------------------------- fetch logic without weights


def test_corrupt_hand_placed_models_are_rejected(tmp_path, monkeypatch):
    hand = tmp_path / "hand"
    hand.mkdir()
    for name in ("pose_detection.tflite", "pose_landmark_full.tflite"):
        (hand / name).write_bytes(b"TFL3 not really a model")
    monkeypatch.setenv("STREAMPOSE_BLAZEPOSE_DIR", str(hand))
    with pytest.raises(ModelError, match="pip download --no-deps"):
        ensure_blazepose_models(tmp_path / "cache")


def test_wheel_with_wrong_models_is_rejected(tmp_path, monkeypatch):
    monkeypatch.delenv("STREAMPOSE_BLAZEPOSE_DIR", raising=False)
    wheel = tmp_path / "mediapipe-0.10.21-cp399-none-any.whl"  # unpinned name: models are checked
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(weights.DETECTOR_MEMBER, b"bad")
        archive.writestr(weights.LANDMARK_MEMBER, b"bad")
    with pytest.raises(ModelError, match="sha256"):
        ensure_blazepose_models(tmp_path / "cache", wheel=wheel)
    assert not (tmp_path / "cache" / "pose_detection.tflite").exists()


def test_failed_download_raises_model_error_with_instructions(tmp_path, monkeypatch):
    monkeypatch.delenv("STREAMPOSE_BLAZEPOSE_DIR", raising=False)
    monkeypatch.delenv("STREAMPOSE_BLAZEPOSE_WHEEL", raising=False)

    class Failed:
        returncode = 1
        stderr = "ERROR: Could not find a version that satisfies the requirement"
        stdout = ""

    calls = []
    monkeypatch.setattr(weights.subprocess, "run", lambda command, **kw: calls.append(command) or Failed())
    with pytest.raises(ModelError) as info:
        ensure_blazepose_models(tmp_path / "cache")
    message = str(info.value)
    assert "mediapipe==0.10.21" in message and "STREAMPOSE_BLAZEPOSE_WHEEL" in message and "\n" not in message
    assert calls and "--no-deps" in calls[0] and "mediapipe==0.10.21" in calls[0]


def test_pinned_digests_are_sha256_hex():
    for digest in list(weights.MODEL_SHA256.values()) + list(weights.WHEEL_SHA256.values()):
        assert len(digest) == 64 and int(digest, 16) >= 0
    assert hashlib.sha256(b"").hexdigest() not in weights.MODEL_SHA256.values()
