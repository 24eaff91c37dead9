import numpy as np
import pytest

from epimpute.models.features import context_margin, window_means


def test_window_means_match_direct_averages():
    rng = np.random.default_rng(0)
    signal = rng.random((3, 20)).astype(np.float32)
    margin = 2
    out = window_means(signal, (1, 3, 5), margin=margin)
    assert out.shape == (16, 3, 3)
    for j in range(16):
        centre = j + margin
        np.testing.assert_allclose(out[j, :, 0], signal[:, centre], rtol=1e-6)
        np.testing.assert_allclose(out[j, :, 1], signal[:, centre - 1:centre + 2].mean(1), rtol=1e-6)
        np.testing.assert_allclose(out[j, :, 2], signal[:, centre - 2:centre + 3].mean(1), rtol=1e-6)


def test_hand_computed_values():
    signal = np.array([[0, 0, 3, 6, 0, 0]], dtype=np.float32)
    out = window_means(signal, (1, 3), margin=1)
    assert out[:, 0, 0].tolist() == [0, 3, 6, 0]
    assert out[:, 0, 1].tolist() == [1, 3, 3, 2]


def test_margin_and_width_checks():
    assert context_margin((1, 9, 3)) == 4
    with pytest.raises(ValueError):
        window_means(np.zeros((1, 10)), (5,), margin=1)
    with pytest.raises(ValueError):
        window_means(np.zeros((1, 10)), (2,), margin=1)
