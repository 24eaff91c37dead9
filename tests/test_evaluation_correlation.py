"""Correlations against scipy and hand-computed cases."""

import numpy as np
import pytest
from scipy import stats

from epimpute.evaluation.correlation import gwcorr, gwspear


@pytest.fixture
def tied_pair():
    rng = np.random.default_rng(11)
    y_true = np.round(rng.gamma(0.6, 1.0, 4000), 1).astype(np.float32)  # many ties
    y_pred = np.round(y_true + rng.normal(0, 0.5, 4000), 1).astype(np.float32)
    return y_true, y_pred


def test_hand_cases():
    assert gwcorr(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])) == pytest.approx(1.0, rel=1e-12)
    assert gwspear(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])) == pytest.approx(0.5, rel=1e-12)
    # ties: ranks [1.5, 1.5, 3] vs [1, 2, 3]
    expected = np.corrcoef([1.5, 1.5, 3.0], [1.0, 2.0, 3.0])[0, 1]
    assert gwspear(np.array([0.0, 0.0, 1.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(expected, rel=1e-12)


def test_match_scipy_with_ties_and_masks(tied_pair):
    y_true, y_pred = tied_pair
    assert gwcorr(y_true, y_pred) == pytest.approx(
        stats.pearsonr(y_true.astype(float), y_pred.astype(float))[0], rel=1e-6
    )
    assert gwspear(y_true, y_pred) == pytest.approx(stats.spearmanr(y_true, y_pred)[0], rel=1e-6)
    mask = y_pred > 0.2
    assert gwcorr(y_true, y_pred, mask) == pytest.approx(
        stats.pearsonr(y_true[mask], y_pred[mask])[0], rel=1e-6
    )
    assert gwspear(y_true, y_pred, mask) == pytest.approx(
        stats.spearmanr(y_true[mask], y_pred[mask])[0], rel=1e-6
    )


def test_stacks_and_undefined_cases(tied_pair):
    y_true, y_pred = tied_pair
    values = gwspear(np.stack([y_true, y_true]), np.stack([y_pred, y_true]))
    assert values[1] == pytest.approx(1.0)
    assert np.isnan(gwcorr(y_true, np.zeros_like(y_true)))
    assert np.isnan(gwspear(y_true[:1], y_pred[:1]))
