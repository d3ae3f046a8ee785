"""Hand-checkable cases for the pose error metrics."""
import numpy as np
import pytest

from streampose.metrics import mpjpe, mpjve, n_mpjpe, p_mpjpe, procrustes_align


def _random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def test_mpjpe_hand_cases():
    target = np.zeros((2, 3, 3))
    predicted = target.copy()
    predicted[0, 0] = [3.0, 4.0, 0.0]  # one joint 5 away, the other 5 joints exact
    assert mpjpe(predicted, target) == pytest.approx(5.0 / 6.0)
    assert mpjpe(target + [1.0, 2.0, 2.0], target) == pytest.approx(3.0)
    assert mpjpe(target, target) == 0.0


def test_p_mpjpe_of_similarity_transformed_copy_is_zero():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(5, 17, 3))
    predicted = np.stack([1.7 * p @ _random_rotation(rng) + rng.normal(size=3) for p in target])
    assert mpjpe(predicted, target) > 0.5
    assert p_mpjpe(predicted, target) == pytest.approx(0.0, abs=1e-9)


def test_p_mpjpe_does_not_allow_reflections():
    rng = np.random.default_rng(1)
    target = rng.normal(size=(17, 3))
    mirrored = target * [-1.0, 1.0, 1.0]
    assert p_mpjpe(mirrored, target) > 0.1


def test_procrustes_never_increases_error_and_is_bounded_by_mpjpe():
    rng = np.random.default_rng(2)
    target = rng.normal(size=(10, 17, 3))
    predicted = target + 0.3 * rng.normal(size=target.shape)
    assert p_mpjpe(predicted, target) <= n_mpjpe(predicted, target) <= mpjpe(predicted, target)
    assert procrustes_align(predicted, target).shape == target.shape


def test_n_mpjpe_of_scaled_copy_is_zero_but_not_of_rotated():
    rng = np.random.default_rng(3)
    target = rng.normal(size=(4, 17, 3))
    assert n_mpjpe(0.6 * target, target) == pytest.approx(0.0, abs=1e-12)
    assert mpjpe(0.6 * target, target) > 0.1
    rotated = target @ _random_rotation(rng)
    assert n_mpjpe(rotated, target) > 0.1


def test_mpjve_of_constant_offset_is_zero():
    rng = np.random.default_rng(4)
    target = np.cumsum(rng.normal(size=(20, 17, 3)), axis=0)
    assert mpjve(target + [0.1, -0.2, 0.3], target) == pytest.approx(0.0, abs=1e-12)
    jittered = target.copy()
    jittered[10] += [0.0, 0.0, 1.0]  # one frame off by 1: two velocities off by 1 on every joint
    assert mpjve(jittered, target) == pytest.approx(2.0 / 19.0)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="shape"):
        mpjpe(np.zeros((17, 3)), np.zeros((16, 3)))
    with pytest.raises(ValueError, match="T >= 2"):
        mpjve(np.zeros((1, 17, 3)), np.zeros((1, 17, 3)))
