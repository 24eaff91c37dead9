"""Top-1% metrics against a separate implementation of the challenge definitions."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from epimpute.evaluation import topbins
from epimpute.evaluation.topbins import (
    aucimp1,
    aucobs1,
    catch1imp,
    catch1obs,
    match1,
    mse1imp,
    mse1obs,
)


def _reference(y_true, y_pred):
    """The challenge scorer's definitions, written out with sorting and scikit-learn."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    n = int(y_true.size * 0.01)
    top_true = y_true >= np.sort(y_true)[-n]
    top_pred = y_pred >= np.sort(y_pred)[-n]
    wide_true = y_true >= np.sort(y_true)[-5 * n]
    wide_pred = y_pred >= np.sort(y_pred)[-5 * n]
    return {
        "mse1obs": np.mean((y_true[top_true] - y_pred[top_true]) ** 2),
        "mse1imp": np.mean((y_true[top_pred] - y_pred[top_pred]) ** 2),
        "match1": np.sum(top_true & top_pred),
        "catch1obs": np.sum(top_true & wide_pred),
        "catch1imp": np.sum(top_pred & wide_true),
        "aucobs1": roc_auc_score(top_true, y_pred),
        "aucimp1": roc_auc_score(top_pred, y_true),
    }


FUNCTIONS = {
    "mse1obs": mse1obs,
    "mse1imp": mse1imp,
    "match1": match1,
    "catch1obs": catch1obs,
    "catch1imp": catch1imp,
    "aucobs1": aucobs1,
    "aucimp1": aucimp1,
}


@pytest.fixture
def tied_pair():
    rng = np.random.default_rng(5)
    y_true = np.round(rng.gamma(0.4, 1.5, 20000), 2).astype(np.float32)
    y_pred = np.round(0.7 * y_true + rng.gamma(0.4, 1.0, 20000), 2).astype(np.float32)
    return y_true, y_pred


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_metrics_match_reference(name, tied_pair):
    y_true, y_pred = tied_pair
    assert FUNCTIONS[name](y_true, y_pred) == pytest.approx(_reference(y_true, y_pred)[name], rel=1e-6)
    mask = np.arange(y_true.size) % 3 != 0
    expected = _reference(y_true[mask], y_pred[mask])[name]
    assert FUNCTIONS[name](y_true, y_pred, mask) == pytest.approx(expected, rel=1e-6)


def test_shared_sort_path_matches_functions(tied_pair):
    from epimpute.evaluation._ranking import Ranked

    y_true, y_pred = tied_pair
    together = topbins.top_metrics_from_ranked(Ranked(y_true), Ranked(y_pred))
    for name, func in FUNCTIONS.items():
        assert together[name] == pytest.approx(func(y_true, y_pred), rel=1e-12)


def test_hand_case():
    # 100 bins: n = 1, 5n = 5. Observed top bin 99; imputed order 97 > 98 > 99 > 96 > 95 > ...
    y_true = np.arange(100, dtype=np.float64)
    y_pred = np.arange(100) / 1000.0
    y_pred[[97, 98, 99]] = [10.0, 9.0, 8.0]
    assert mse1obs(y_true, y_pred) == pytest.approx((99 - 8) ** 2)
    assert mse1imp(y_true, y_pred) == pytest.approx((97 - 10) ** 2)
    assert match1(y_true, y_pred) == 0
    assert catch1obs(y_true, y_pred) == 1
    assert catch1imp(y_true, y_pred) == 1
    assert aucobs1(y_true, y_pred) == pytest.approx(97 / 99)  # two negatives score above the positive
    assert aucimp1(y_true, y_pred) == pytest.approx(97 / 99)


def test_ties_at_the_threshold_count_as_top():
    y_true = np.zeros(100)
    y_true[[10, 20]] = 5.0
    y_pred = np.zeros(100)
    assert mse1obs(y_true, y_pred) == pytest.approx(25.0)  # both tied bins, not one
    assert match1(y_true, y_pred) == 2  # every imputed bin ties into the top


def test_too_few_bins_give_nan():
    assert np.isnan(match1(np.arange(99.0), np.arange(99.0)))
    assert np.isnan(aucobs1(np.ones(500), np.arange(500.0)))  # all bins tie into the top: one class
    with pytest.raises(ValueError):
        topbins.top_count(100, fraction=0.5)
