"""TrackScorer, fed contig by contig, equals the metric functions on the concatenated track."""

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score

from epimpute.errors import InputError
from epimpute.evaluation import topbins
from epimpute.evaluation.catalog import METRICS
from epimpute.evaluation.peakmetrics import peak_overlap
from epimpute.evaluation.peaks import call_peaks, peak_mask
from epimpute.evaluation.scoring import TrackScorer

BIN = 25


def _contig(rng, n):
    base = np.convolve(rng.exponential(1.0, n), np.ones(10) / 2.5, "same")
    y_true = np.arcsinh(base).astype(np.float32)
    y_pred = np.arcsinh(np.clip(base + rng.normal(0, 1.0, n), 0, None)).astype(np.float32)
    return y_true, y_pred


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(12)
    contigs = [_contig(rng, 3000), _contig(rng, 2100)]
    counts = [rng.integers(0, 4, 3000).astype(np.uint16), rng.integers(0, 4, 2100).astype(np.uint16)]
    variance = [rng.random(3000), rng.random(2100)]
    genes = [np.repeat([0, 1, 2], 1000), np.zeros(2100, dtype=int)]
    scorer = TrackScorer(n_cell_types=3, bin_size=BIN, block_bins=400)
    for (yt, yp), k, v, g in zip(contigs, counts, variance, genes):
        scorer.update(yt, yp, specificity=k, variance=v, genes=g, length=yt.size * BIN)
    return scorer.result(), contigs, counts, variance, genes


def _reference(contigs, counts, variance, genes, keep):
    """Every metric from scratch with numpy / scipy / scikit-learn on the selected bins."""
    yt = np.concatenate([c[0] for c in contigs])
    yp = np.concatenate([c[1] for c in contigs])
    fg = np.concatenate(
        [peak_mask(call_peaks(c[0], bin_size=BIN), n_bins=c[0].size, bin_size=BIN) for c in contigs]
    )
    k = np.concatenate(counts)
    sel = np.isin(k, keep)
    t, p, f = yt[sel].astype(np.float64), yp[sel].astype(np.float64), fg[sel]
    v, g = np.concatenate(variance)[sel], np.concatenate(genes)[sel]
    out = {
        "mse": np.mean((t - p) ** 2),
        "gwcorr": stats.pearsonr(t, p)[0],
        "gwspear": stats.spearmanr(yt[sel], yp[sel])[0],
        "msegene": np.sum(g * (t - p) ** 2) / g.sum(),
        "msevar": np.sum(v * (t - p) ** 2) / v.sum(),
        "mse_fg": np.mean((t[f] - p[f]) ** 2),
        "mse_bg": np.mean((t[~f] - p[~f]) ** 2),
        "corr_fg": stats.pearsonr(t[f], p[f])[0],
        "corr_bg": stats.pearsonr(t[~f], p[~f])[0],
        "auprc": average_precision_score(f, yp[sel]),
    }
    for name in ("mse1obs", "mse1imp", "match1", "catch1obs", "catch1imp", "aucobs1", "aucimp1"):
        out[name] = getattr(topbins, name)(yt[sel], yp[sel])
    hits = [0, 0, 0, 0]
    for (ct, cp), kk in zip(contigs, counts):
        overlap = peak_overlap(
            call_peaks(ct, bin_size=BIN),
            call_peaks(cp, bin_size=BIN),
            n_bins=ct.size,
            bin_size=BIN,
            mask=np.isin(kk, keep),
        )
        for i, value in enumerate(
            (overlap.predicted, overlap.predicted_hit, overlap.observed, overlap.observed_hit)
        ):
            hits[i] += value
    out["peak_precision"] = hits[1] / hits[0]
    out["peak_recall"] = hits[3] / hits[2]
    return out


@pytest.mark.parametrize(
    ("stratum", "keep"),
    [("all", [0, 1, 2, 3]), ("count=2", [2]), ("high_specificity", [1]), ("low_specificity", [2, 3])],
)
def test_every_metric_per_stratum_matches_reference(scored, stratum, keep):
    result, contigs, counts, variance, genes = scored
    expected = _reference(contigs, counts, variance, genes, keep)
    got = result.values[stratum]
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-6), name
    assert result.sizes[stratum] == int(np.isin(np.concatenate(counts), keep).sum())


def test_metric_set_and_order(scored):
    result = scored[0]
    assert list(result.values) == [
        "all",
        "count=0",
        "count=1",
        "count=2",
        "count=3",
        "high_specificity",
        "low_specificity",
    ]
    # no promoters / enhancers given: those metrics are absent, the rest in catalogue order
    assert list(result.values["all"]) == [m for m in METRICS if m not in ("mseprom", "mseenh")]
    assert result.n_blocks == 8 + 6


def test_without_strata_or_full_pass():
    rng = np.random.default_rng(0)
    yt, yp = _contig(rng, 1000)
    scorer = TrackScorer(full_pass=False)
    scorer.update(yt, yp)
    values = scorer.result().values
    assert list(values) == ["all"]
    assert "gwspear" not in values["all"] and "mse" in values["all"]


def test_rejects_bad_input():
    scorer = TrackScorer(n_cell_types=2)
    with pytest.raises(InputError, match="NaN"):
        scorer.update(np.array([np.nan, 1.0]), np.ones(2))
    with pytest.raises(InputError, match="specificity"):
        scorer.update(np.ones(3), np.ones(3), specificity=np.array([0, 3, 1]))
    with pytest.raises(InputError, match="one length"):
        scorer.update(np.ones(3), np.ones(2))
