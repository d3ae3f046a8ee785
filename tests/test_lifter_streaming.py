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
