"""Squared-error metrics against numpy formulas written here and hand-computed cases."""

import numpy as np
import pytest

from epimpute.errors import InputError
from epimpute.evaluation.error import (
    mse,
    mseenh,
    msegene,
    mseprom,
    msevar,
    weighted_mse,
)


@pytest.fixture
def pair():
    rng = np.random.default_rng(7)
    y_true = rng.gamma(0.5, 1.0, 5000).astype(np.float32)
    y_pred = (y_true + rng.normal(0, 0.4, 5000)).astype(np.float32)
    return y_true, y_pred


def _reference_weighted(y_true, y_pred, w):
    y_true, y_pred, w = (np.asarray(a, dtype=np.float64) for a in (y_true, y_pred, w))
    return np.sum(w * (y_true - y_pred) ** 2) / np.sum(w)


def test_mse_hand_case():
    assert mse(np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])) == pytest.approx(5 / 3, rel=1e-12)


def test_mse_matches_numpy_with_and_without_mask(pair):
    y_true, y_pred = pair
    expected = np.mean((y_true.astype(np.float64) - y_pred.astype(np.float64)) ** 2)
    assert mse(y_true, y_pred) == pytest.approx(expected, rel=1e-6)
    mask = y_true > 0.3
    expected = np.mean((y_true[mask].astype(np.float64) - y_pred[mask]) ** 2)
    assert mse(y_true, y_pred, mask) == pytest.approx(expected, rel=1e-6)


def test_stacked_tracks_give_one_value_per_track(pair):
    y_true, y_pred = pair
    stack_true = np.stack([y_true, y_pred])
    stack_pred = np.stack([y_pred, y_true + 1])
    values = mse(stack_true, stack_pred)
    assert values.shape == (2,)
    assert values[0] == pytest.approx(mse(y_true, y_pred), rel=1e-12)
    assert values[1] == pytest.approx(mse(y_pred, y_true + 1), rel=1e-12)
    per_row_mask = np.stack([y_true > 1, y_true < 1])
    masked = mse(stack_true, stack_pred, per_row_mask)
    assert masked[1] == pytest.approx(mse(y_pred, y_true + 1, y_true < 1), rel=1e-12)


def test_weighted_mse_hand_case():
    value = weighted_mse(
        np.array([0.0, 1.0, 2.0]), np.array([1.0, 5.0, 0.0]), weights=np.array([1.0, 0.0, 3.0])
    )
    assert value == pytest.approx((1 * 1 + 3 * 4) / 4, rel=1e-12)


def test_msevar_weights_by_cross_cell_variance(pair):
    y_true, y_pred = pair
    rng = np.random.default_rng(3)
    cells = np.stack([y_true, y_pred, rng.gamma(0.5, 1.0, y_true.size).astype(np.float32)])
    variance = np.var(cells.astype(np.float64), axis=0)
    expected = _reference_weighted(y_true, y_pred, variance / variance.sum())
    assert msevar(y_true, y_pred, variance=variance) == pytest.approx(expected, rel=1e-6)
    mask = rng.random(y_true.size) < 0.5
    expected = _reference_weighted(y_true[mask], y_pred[mask], variance[mask])
    assert msevar(y_true, y_pred, mask, variance=variance) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("metric", [mseprom, msegene, mseenh])
def test_region_metrics_count_overlapping_regions_once_per_region(metric, pair):
    y_true, y_pred = pair
    coverage = np.zeros(y_true.size, dtype=np.int32)
    coverage[100:200] += 1
    coverage[150:300] += 1  # overlap counted twice
    squared = (y_true.astype(np.float64) - y_pred) ** 2
    expected = (squared[100:200].sum() + squared[150:300].sum()) / (100 + 150)
    assert metric(y_true, y_pred, coverage=coverage) == pytest.approx(expected, rel=1e-6)


def test_undefined_cases_are_nan(pair):
    y_true, y_pred = pair
    assert np.isnan(mse(y_true, y_pred, np.zeros(y_true.size, dtype=bool)))
    assert np.isnan(msevar(y_true, y_pred, variance=np.zeros(y_true.size)))


def test_bad_arguments_raise_input_error(pair):
    y_true, y_pred = pair
    with pytest.raises(InputError, match="shape"):
        mse(y_true, y_pred[:-1])
    with pytest.raises(InputError, match="boolean"):
        mse(y_true, y_pred, np.ones(y_true.size))
    with pytest.raises(InputError, match="negative"):
        weighted_mse(y_true, y_pred, weights=-np.ones(y_true.size))
    with pytest.raises(InputError, match="shape"):
        weighted_mse(y_true, y_pred, weights=np.ones(3))
