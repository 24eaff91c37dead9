"""Welch / paired tests against the textbook formulas, and the block bootstrap."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as t_dist

from epimpute.evaluation.scoring import TrackScorer
from epimpute.evaluation.stats import (
    block_resample_counts,
    bootstrap_intervals,
    group_tests,
    paired_model_tests,
    percentile_interval,
)


def _metrics():
    rng = np.random.default_rng(0)
    rows = []
    for model, shift in (("a", 0.0), ("b", 0.1)):
        for assay in ("H3K4me3", "H3K27ac", "H3K27me3", "H3K9me3"):
            for cell in ("c1", "c2", "c3"):
                rows.append((model, cell, assay, "gwcorr", rng.random() + shift, "all"))
    return pd.DataFrame(rows, columns=["model", "cell_type", "assay", "metric", "value", "stratum"])


def _welch(a, b):
    va, vb = np.var(a, ddof=1) / a.size, np.var(b, ddof=1) / b.size
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return t, 2 * t_dist.sf(abs(t), df)


def test_group_tests_match_the_welch_formula():
    metrics = _metrics()
    tests = group_tests(metrics)
    row = tests[(tests.model == "a") & (tests.grouping == "role")].iloc[0]
    sub = metrics[metrics.model == "a"]
    a = sub[sub.assay.isin(["H3K4me3", "H3K27ac"])].value.to_numpy()
    b = sub[sub.assay.isin(["H3K27me3", "H3K9me3"])].value.to_numpy()
    t, p = _welch(a, b)
    assert (row.group_a, row.group_b, row.n_a, row.n_b) == ("activating", "repressive", 6, 6)
    assert row.statistic == pytest.approx(t, rel=1e-6)
    assert row.p_value == pytest.approx(p, rel=1e-6)
    assert set(tests.grouping) == {"assay", "shape", "role"}
    one = tests[(tests.model == "a") & (tests.grouping == "assay") & (tests.group_a == "H3K4me3")].iloc[0]
    assert (one.n_a, one.n_b) == (3, 9)


def test_paired_tests_match_the_paired_formula():
    metrics = _metrics()
    row = paired_model_tests(metrics).iloc[0]
    a = metrics[metrics.model == "a"].value.to_numpy()
    b = metrics[metrics.model == "b"].value.to_numpy()
    d = a - b
    t = d.mean() / (d.std(ddof=1) / np.sqrt(d.size))
    assert row.statistic == pytest.approx(t, rel=1e-6)
    assert row.p_value == pytest.approx(2 * t_dist.sf(abs(t), d.size - 1), rel=1e-6)
    assert row.mean_diff == pytest.approx(d.mean(), rel=1e-9)
    assert row.better == ("b" if d.mean() < 0 else "a")


def test_resample_counts_and_intervals():
    counts = block_resample_counts(7, n_boot=50, rng=np.random.default_rng(1))
    assert counts.shape == (50, 7) and (counts.sum(axis=1) == 7).all()
    low, high = percentile_interval(np.arange(101.0), level=0.9)
    assert (low, high) == pytest.approx((5.0, 95.0))
    assert np.isnan(percentile_interval(np.array([np.nan]))[0])


def test_bootstrap_brackets_the_estimate_and_pairs_models():
    rng = np.random.default_rng(3)
    y_true = rng.gamma(0.5, 1.0, 20000).astype(np.float32)
    scores = {}
    for model, noise in (("good", 0.1), ("bad", 0.8)):
        scorer = TrackScorer(block_bins=500)
        scorer.update(y_true, y_true + rng.normal(0, noise, y_true.size).astype(np.float32))
        scores[model] = scorer.result()
    # every block drawn once reproduces the point estimate
    ones = scores["good"].bootstrap(np.ones((1, scores["good"].n_blocks)))
    assert ones["mse"][0] == pytest.approx(scores["good"].values["all"]["mse"], rel=1e-9)
    assert ones["gwcorr"][0] == pytest.approx(scores["good"].values["all"]["gwcorr"], rel=1e-9)
    intervals, differences = bootstrap_intervals(scores, n_boot=200, rng=np.random.default_rng(0))
    mse_row = intervals[(intervals.model == "good") & (intervals.metric == "mse")].iloc[0]
    assert mse_row.ci_low <= mse_row.value <= mse_row.ci_high
    diff = differences[differences.metric == "mse"].iloc[0]
    assert diff.ci_high < 0  # good beats bad on every resample
