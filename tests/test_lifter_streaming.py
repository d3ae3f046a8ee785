"""Streaming runner == offline whole-sequence pass with replicate padding, incl. both stream ends."""
import numpy as np
import pytest
import torch

from streampose.lifter.model import temporal_model, trajectory_model
from streampose.lifter.streaming import StreamingTemporalModel


def _trained_looking(model):
    gen = torch.Generator().manual_seed(0)
    for bn in [model.expand_bn, *model.layers_bn]:
        bn.running_mean.copy_(0.1 * torch.randn(bn.num_features, generator=gen))
        bn.running_var.copy_(0.5 + torch.rand(bn.num_features, generator=gen))
        bn.weight.data.copy_(0.5 + torch.rand(bn.num_features, generator=gen))
    return model.eval()


def _stream(runner, frames):
    out = []
    for x in frames:
        out += runner.push(x)
    return out, runner.flush()


@pytest.mark.parametrize("receptive_field", [1, 27, 81, 243])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("length", [4, 150])
def test_stream_matches_offline(receptive_field, causal, length):
    torch.manual_seed(receptive_field + length)
    model = _trained_looking(temporal_model(receptive_field, causal=causal, channels=32))
    x = torch.randn(1, length, 17, 2)
    with torch.no_grad():
        offline = model.forward_sequence(x)[0].numpy()
    runner = StreamingTemporalModel(model)
    pushed, flushed = _stream(runner, x[0].numpy())
    results = pushed + flushed
    assert [i for i, _ in results] == list(range(length))
    np.testing.assert_allclose(np.stack([p for _, p in results]), offline, rtol=1e-4, atol=2e-5)
    # The symmetric model answers frame t - lag when frame t arrives; the causal one answers at once.
    expected_lag = 0 if causal else receptive_field // 2
    assert runner.lag == expected_lag
    assert len(flushed) == min(expected_lag, length)


@pytest.mark.parametrize("causal", [False, True])
def test_batch_of_streams_matches_offline_per_stream(causal):
    # Three independent sequences advanced together equal each one's own offline pass.
    torch.manual_seed(5)
    model = _trained_looking(temporal_model(81, causal=causal, channels=24))
    x = torch.randn(3, 60, 17, 2)
    with torch.no_grad():
        offline = model.forward_sequence(x).numpy()  # (3, 60, 17, 3)
    runner = StreamingTemporalModel(model, batch=3)
    results = [r for frame in x.permute(1, 0, 2, 3).numpy() for r in runner.push_batch(frame)]
    results += runner.flush_batch()
    assert [i for i, _ in results] == list(range(60))
    streamed = np.stack([p for _, p in results], axis=1)  # (3, 60, 17, 3)
    np.testing.assert_allclose(streamed, offline, rtol=1e-4, atol=2e-5)
    with pytest.raises(ValueError, match="push_batch"):
        runner.push(np.zeros((17, 2)))
    with pytest.raises(ValueError, match=r"\(3, 17, 2\)"):
        runner.push_batch(np.zeros((2, 17, 2)))


def test_latency_of_each_push():
    model = _trained_looking(temporal_model(27, channels=16))
    runner = StreamingTemporalModel(model)
    frames = np.random.default_rng(0).normal(size=(20, 17, 2)).astype(np.float32)
    for t, x in enumerate(frames):
        out = runner.push(x)
        assert [i for i, _ in out] == ([t - 13] if t >= 13 else [])


def test_flush_resets_for_a_new_stream():
    model = _trained_looking(temporal_model(27, causal=True, channels=16))
    runner = StreamingTemporalModel(model)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(30, 17, 2)), rng.normal(size=(10, 17, 2))
    _stream(runner, a)
    second, _ = _stream(runner, b)
    fresh, _ = _stream(StreamingTemporalModel(model), b)
    assert [i for i, _ in second] == list(range(10))
    np.testing.assert_array_equal(np.stack([p for _, p in second]), np.stack([p for _, p in fresh]))


def test_trajectory_model_streams_one_joint():
    model = _trained_looking(trajectory_model(27, causal=True, channels=16))
    (index, root), = StreamingTemporalModel(model).push(np.zeros((17, 2)))
    assert index == 0 and root.shape == (1, 3)


def test_bad_frame_shape_is_a_clear_error():
    runner = StreamingTemporalModel(temporal_model(27, channels=8).eval())
    with pytest.raises(ValueError, match=r"\(17, 2\)"):
        runner.push(np.zeros((17, 3)))


# -- public API: Lifter / LifterStream -------------------------------------------------------------
def _lifter(tmp_path, causal, receptive_field=27, trajectory=True):
    from streampose.lifter import load_lifter
    from streampose.lifter.checkpoint import save_lifter_weights

    torch.manual_seed(3)
    pose = _trained_looking(temporal_model(receptive_field, causal=causal, channels=16))
    traj = _trained_looking(trajectory_model(receptive_field, causal=causal, channels=16)) if trajectory else None
    path = tmp_path / "lifter_test.pt"
    save_lifter_weights(path, pose, traj, {"input_layout": "h36m17", "fps": {"trained_range": [25, 60]}})
    return load_lifter(str(path), causal=causal)


@pytest.mark.parametrize("causal", [False, True])
def test_lifter_stream_equals_lift_sequence(tmp_path, causal):
    lifter = _lifter(tmp_path, causal)
    assert lifter.receptive_field == 27 and lifter.lag == (0 if causal else 13)
    assert lifter.input_layout == "h36m17"
    rng = np.random.default_rng(0)
    kp2d = np.concatenate([rng.uniform(0, 640, (40, 17, 2)), rng.uniform(0, 1, (40, 17, 1))], -1)
    kp3d, root = lifter.lift_sequence(kp2d, (640, 480))
    assert kp3d.shape == (40, 17, 3) and root.shape == (40, 3)
    np.testing.assert_allclose(kp3d[:, 0], 0.0, atol=1e-7)  # root-relative
    stream = lifter.stream((640, 480))
    results = [r for x in kp2d for r in stream.push(x)] + stream.flush()
    assert [r.index for r in results] == list(range(40))
    np.testing.assert_allclose(np.stack([r.keypoints3d for r in results]), kp3d, rtol=1e-4, atol=3e-5)
    np.testing.assert_allclose(np.stack([r.root for r in results]), root, rtol=1e-4, atol=3e-5)


def test_lifter_uses_normalised_coordinates(tmp_path):
    # The same pose filmed at twice the resolution (pixels x2) must lift to the same 3D.
    lifter = _lifter(tmp_path, causal=True, trajectory=False)
    kp2d = np.random.default_rng(1).uniform(100, 300, (10, 17, 2))
    a, root = lifter.lift_sequence(kp2d, (640, 480))
    b, _ = lifter.lift_sequence(kp2d * 2, (1280, 960))
    assert root is None
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_lifter_bad_inputs_are_input_errors(tmp_path):
    from streampose.errors import InputError

    lifter = _lifter(tmp_path, causal=False, trajectory=False)
    with pytest.raises(InputError, match="17"):
        lifter.lift_sequence(np.zeros((5, 16, 3)), (640, 480))
    with pytest.raises(InputError, match="NaN"):
        lifter.lift_sequence(np.full((5, 17, 3), np.nan), (640, 480))
    with pytest.raises(InputError, match="image_size"):
        lifter.stream((0, 480))
    with pytest.raises(InputError, match=r"\(17, 3\)"):
        lifter.stream((640, 480)).push(np.zeros((5, 17, 3)))


def test_missing_weights_are_a_model_error(tmp_path, monkeypatch):
    from streampose.errors import ModelError
    from streampose.lifter import load_lifter

    monkeypatch.setenv("STREAMPOSE_CACHE", str(tmp_path))
    with pytest.raises(ModelError, match="not found"):
        load_lifter("no_such_model")
    with pytest.raises(ModelError, match="not found"):
        load_lifter(tmp_path / "missing.pt")


def test_weights_in_cache_are_found_by_name(tmp_path, monkeypatch):
    from streampose.lifter import load_lifter
    from streampose.lifter.checkpoint import save_lifter_weights

    monkeypatch.setenv("STREAMPOSE_CACHE", str(tmp_path))
    save_lifter_weights(tmp_path / "lifter" / "lifter_mine.pt", temporal_model(27, channels=8).eval(), None,
                        {"input_layout": "coco17"})
    lifter = load_lifter("mine")
    assert lifter.input_layout == "coco17" and lifter.receptive_field == 27


@pytest.mark.parametrize("causal", [False, True])
def test_test_time_flip_is_mirror_equivariant_and_streams(tmp_path, causal):
    from streampose.lifter import load_lifter
    from streampose.skeleton import H36M17

    _lifter(tmp_path, causal)  # writes the weights file
    lifter = load_lifter(str(tmp_path / "lifter_test.pt"), causal=causal, test_time_flip=True)
    rng = np.random.default_rng(2)
    kp2d = rng.uniform(0, 640, (30, 17, 2))
    # x -> w - x is the exact mirror in normalised screen coordinates (x / w * 2 - 1 -> its negative).
    mirrored_2d = kp2d[:, H36M17.flip_permutation] * [-1.0, 1.0] + [640.0, 0.0]
    kp3d, root = lifter.lift_sequence(kp2d, (640, 480))
    kp3d_m, root_m = lifter.lift_sequence(mirrored_2d, (640, 480))
    # Averaging with the mirrored pass makes the lifter exactly mirror-equivariant.
    np.testing.assert_allclose(kp3d_m, kp3d[:, H36M17.flip_permutation] * [-1.0, 1.0, 1.0], atol=2e-5)
    np.testing.assert_allclose(root_m, root * [-1.0, 1.0, 1.0], atol=2e-5)
    plain, _ = load_lifter(str(tmp_path / "lifter_test.pt"), causal=causal).lift_sequence(kp2d, (640, 480))
    assert np.abs(plain - kp3d).max() > 1e-3  # the augmentation changed something
    stream = lifter.stream((640, 480))
    results = [r for x in kp2d for r in stream.push(x)] + stream.flush()
    np.testing.assert_allclose(np.stack([r.keypoints3d for r in results]), kp3d, rtol=1e-4, atol=3e-5)
    np.testing.assert_allclose(np.stack([r.root for r in results]), root, rtol=1e-4, atol=3e-5)


def test_unusable_device_is_a_model_error(tmp_path):
    from streampose.errors import ModelError
    from streampose.lifter import load_lifter

    _lifter(tmp_path, causal=False)
    with pytest.raises(ModelError, match="device"):
        load_lifter(str(tmp_path / "lifter_test.pt"), device="no_such_device")
