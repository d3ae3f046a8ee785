"""Temporal conv lifter: geometry, strided == dilated, causality, replicate padding."""
import pytest
import torch

from streampose.lifter.model import (TemporalModel, filter_widths_for, replicate_pad, temporal_model,
                                     trajectory_model)


def _randomise_batchnorm(model: TemporalModel) -> TemporalModel:
    # Non-trivial running statistics so the eval-mode paths are really compared.
    gen = torch.Generator().manual_seed(0)
    for bn in [model.expand_bn, *model.layers_bn]:
        bn.running_mean.copy_(0.1 * torch.randn(bn.num_features, generator=gen))
        bn.running_var.copy_(0.5 + torch.rand(bn.num_features, generator=gen))
        bn.weight.data.copy_(0.5 + torch.rand(bn.num_features, generator=gen))
        bn.bias.data.copy_(0.1 * torch.randn(bn.num_features, generator=gen))
    return model.eval()


@pytest.mark.parametrize("receptive_field", [1, 27, 81, 243])
def test_receptive_field_and_output_length(receptive_field):
    model = temporal_model(receptive_field, channels=16).eval()
    assert model.receptive_field == receptive_field
    x = torch.randn(2, receptive_field + 4, 17, 2)
    assert model(x).shape == (2, 5, 17, 3)
    assert model.forward_sequence(x[:, :3]).shape == (2, 3, 17, 3)


def test_paper_filter_widths():
    assert filter_widths_for(243) == (3, 3, 3, 3, 3)
    assert filter_widths_for(27) == (3, 3, 3)
    with pytest.raises(ValueError, match="receptive field"):
        filter_widths_for(100)


@pytest.mark.parametrize("receptive_field", [27, 81, 243])
@pytest.mark.parametrize("causal", [False, True])
def test_strided_training_pass_equals_dilated_pass(receptive_field, causal):
    torch.manual_seed(0)
    model = _randomise_batchnorm(temporal_model(receptive_field, causal=causal, channels=32))
    x = torch.randn(3, receptive_field + 6, 17, 2)
    with torch.no_grad():
        dilated = model(x)
        strided = torch.cat([model.forward_single(x[:, k:k + receptive_field]) for k in range(7)], dim=1)
    assert strided.shape == dilated.shape
    torch.testing.assert_close(strided, dilated, rtol=1e-5, atol=1e-5)


def test_strided_pass_shares_parameters_and_gradients():
    model = temporal_model(27, channels=16)
    x = torch.randn(4, 27, 17, 2)
    model.forward_single(x).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_causal_output_ignores_future_frames_and_symmetric_does_not():
    torch.manual_seed(1)
    x = torch.randn(1, 60, 17, 2)
    later = x.clone()
    later[:, 40:] += 1.0
    causal = _randomise_batchnorm(temporal_model(27, causal=True, channels=16))
    symmetric = _randomise_batchnorm(temporal_model(27, causal=False, channels=16))
    with torch.no_grad():
        # Frames 0..39 of the causal output must not change when frames >= 40 change.
        torch.testing.assert_close(causal.forward_sequence(x)[:, :40], causal.forward_sequence(later)[:, :40])
        assert not torch.allclose(causal.forward_sequence(x)[:, 40], causal.forward_sequence(later)[:, 40])
        # The symmetric model looks 13 frames ahead.
        assert not torch.allclose(symmetric.forward_sequence(x)[:, 30], symmetric.forward_sequence(later)[:, 30])
        torch.testing.assert_close(symmetric.forward_sequence(x)[:, :27], symmetric.forward_sequence(later)[:, :27])


def test_replicate_padding_repeats_boundary_frames():
    x = torch.arange(4.0).reshape(1, 4, 1, 1)
    assert replicate_pad(x, 2).flatten().tolist() == [0, 0, 0, 1, 2, 3, 3, 3]
    assert replicate_pad(x, 2, causal_shift=2).flatten().tolist() == [0, 0, 0, 0, 0, 1, 2, 3]


def test_sequence_output_frame_alignment():
    # A constant sequence gives a constant output; the symmetric output for frame t equals the
    # valid output of the window centred on t.
    torch.manual_seed(2)
    model = _randomise_batchnorm(temporal_model(27, channels=16))
    x = torch.randn(1, 50, 17, 2)
    with torch.no_grad():
        seq = model.forward_sequence(x)
        torch.testing.assert_close(seq[:, 13:37], model(x)[:, :24])


def test_trajectory_model_outputs_one_joint():
    model = trajectory_model(81, channels=16).eval()
    assert model(torch.randn(1, 81, 17, 2)).shape == (1, 1, 1, 3)


def test_bad_input_shape_is_a_clear_error():
    model = temporal_model(27, channels=8)
    with pytest.raises(ValueError, match=r"\(N, T, 17, 2\)"):
        model(torch.randn(1, 27, 16, 2))
    with pytest.raises(ValueError, match="at least 27"):
        model(torch.randn(1, 10, 17, 2))
    with pytest.raises(ValueError, match="odd"):
        TemporalModel((3, 2))


def test_bn_momentum_schedule_setter():
    model = temporal_model(27, channels=8)
    model.set_bn_momentum(0.01)
    assert all(bn.momentum == 0.01 for bn in [model.expand_bn, *model.layers_bn])
