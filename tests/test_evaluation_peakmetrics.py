"""Peak-relative (eDICE) metrics against numpy / scipy / scikit-learn and hand cases."""

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score

from epimpute.evaluation.peakmetrics import (
    auprc,
    corr_bg,
    corr_fg,
    mse_bg,
    mse_fg,
    peak_overlap,
    peak_precision,
    peak_recall,
)
from epimpute.evaluation.peaks import PeakParams, call_peaks, peak_mask


@pytest.fixture
def pair():
    rng = np.random.default_rng(2)
    y_true = np.round(rng.gamma(0.5, 1.0, 6000), 2).astype(np.float32)
    y_pred = np.round(y_true * 0.8 + rng.gamma(0.5, 0.5, 6000), 2).astype(np.float32)
    foreground = rng.random(6000) < 0.2
    return y_true, y_pred, foreground


def test_foreground_and_background_scores(pair):
    y_true, y_pred, fg = pair
    yt, yp = y_true.astype(np.float64), y_pred.astype(np.float64)
    assert mse_fg(y_true, y_pred, foreground=fg) == pytest.approx(np.mean((yt[fg] - yp[fg]) ** 2), rel=1e-6)
    assert mse_bg(y_true, y_pred, foreground=fg) == pytest.approx(np.mean((yt[~fg] - yp[~fg]) ** 2), rel=1e-6)
    assert corr_fg(y_true, y_pred, foreground=fg) == pytest.approx(
        stats.pearsonr(yt[fg], yp[fg])[0], rel=1e-6
    )
    assert corr_bg(y_true, y_pred, foreground=fg) == pytest.approx(
        stats.pearsonr(yt[~fg], yp[~fg])[0], rel=1e-6
    )
    mask = y_true < 2
    assert mse_fg(y_true, y_pred, mask, foreground=fg) == pytest.approx(
        np.mean((yt[fg & mask] - yp[fg & mask]) ** 2), rel=1e-6
    )


def test_auprc_matches_scikit_learn_with_ties(pair):
    y_true, y_pred, fg = pair
    assert auprc(y_true, y_pred, foreground=fg) == pytest.approx(
        average_precision_score(fg, y_pred), rel=1e-6
    )
    mask = np.arange(fg.size) % 2 == 0
    expected = average_precision_score(fg[mask], y_pred[mask])
    assert auprc(y_true, y_pred, mask, foreground=fg) == pytest.approx(expected, rel=1e-6)


def test_auprc_hand_case():
    # scores 0.9 (pos), 0.8 (neg), 0.7 (pos): AP = 0.5 * 1 + 0.5 * 2/3
    value = auprc(np.zeros(3), np.array([0.9, 0.8, 0.7]), foreground=np.array([True, False, True]))
    assert value == pytest.approx(0.5 + 1 / 3, rel=1e-12)


def test_default_foreground_is_called_from_the_observed_track():
    rng = np.random.default_rng(4)
    y_true = np.arcsinh(np.convolve(rng.exponential(1.0, 3000), np.ones(12) / 3, "same")).astype(np.float32)
    y_pred = y_true + rng.normal(0, 0.3, 3000).astype(np.float32)
    fg = peak_mask(call_peaks(y_true, bin_size=25), n_bins=3000, bin_size=25)
    assert 0 < fg.sum() < 3000
    assert mse_fg(y_true, y_pred) == pytest.approx(mse_fg(y_true, y_pred, foreground=fg), rel=1e-12)
    assert auprc(y_true, y_pred) == pytest.approx(average_precision_score(fg, y_pred), rel=1e-6)


def _blocks(n, spans, level=10.0):
    values = np.zeros(n)
    for first, end in spans:
        values[first:end] = level
    return np.arcsinh(values).astype(np.float32)


def test_peak_precision_and_recall_hand_case():
    # 25-bp bins, peaks need 8 bins (200 bp). Observed: [10,20) and [40,50); imputed: [15,25), [70,80).
    y_true = _blocks(100, [(10, 20), (40, 50)])
    y_pred = _blocks(100, [(15, 25), (70, 80)])
    assert peak_precision(y_true, y_pred) == pytest.approx(0.5)
    assert peak_recall(y_true, y_pred) == pytest.approx(0.5)
    early = np.arange(100) < 30  # only peaks whose summit bin is selected count
    assert peak_precision(y_true, y_pred, early) == pytest.approx(1.0)
    assert peak_recall(y_true, y_pred, early) == pytest.approx(1.0)
    counts = peak_overlap(
        call_peaks(y_true, bin_size=25), call_peaks(y_pred, bin_size=25), n_bins=100, bin_size=25
    )
    assert (counts.predicted, counts.predicted_hit, counts.observed, counts.observed_hit) == (2, 1, 2, 1)


def test_no_peaks_gives_nan_and_stacks_work():
    flat = np.zeros(100, dtype=np.float32)
    assert np.isnan(peak_precision(flat, flat))
    y_true = _blocks(100, [(10, 20)])
    values = peak_recall(
        np.stack([y_true, y_true]), np.stack([y_true, flat]), params=PeakParams(2.0, 200, 30)
    )
    assert values.tolist() == [1.0, 0.0]
