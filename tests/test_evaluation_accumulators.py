"""Streaming accumulators equal the whole-track computation."""

import numpy as np
import pytest

from epimpute.evaluation.accumulators import (
    PairMoments,
    RunningVariance,
    StreamingPairMetrics,
    StreamingWeightedMSE,
)


@pytest.fixture
def pair():
    rng = np.random.default_rng(9)
    y_true = rng.gamma(0.5, 1.0, 10000).astype(np.float32)
    y_pred = (y_true + rng.normal(0, 0.5, 10000)).astype(np.float32)
    return y_true, y_pred


def _pearson(a, b):
    a = np.asarray(a, dtype=np.float64) - np.mean(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64) - np.mean(b, dtype=np.float64)
    return np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b))


def test_chunked_mse_and_pearson_equal_whole_track(pair):
    y_true, y_pred = pair
    acc = StreamingPairMetrics()
    mask = y_true > 0.1
    for first in range(0, y_true.size, 3333):
        part = slice(first, first + 3333)
        acc.update(y_true[part], y_pred[part], mask[part])
    yt, yp = y_true[mask].astype(np.float64), y_pred[mask].astype(np.float64)
    assert acc.n == mask.sum()
    assert acc.mse() == pytest.approx(np.mean((yt - yp) ** 2), rel=1e-9)
    assert acc.pearson() == pytest.approx(_pearson(yt, yp), rel=1e-9)


def test_pearson_is_stable_with_a_large_offset():
    rng = np.random.default_rng(1)
    y_true = 1e6 + rng.normal(0, 1, 5000)
    y_pred = y_true + rng.normal(0, 1, 5000)
    acc = StreamingPairMetrics()
    for part in np.array_split(np.arange(5000), 7):
        acc.update(y_true[part], y_pred[part])
    assert acc.pearson() == pytest.approx(_pearson(y_true, y_pred), rel=1e-9)


def test_group_moments_pool_and_resample(pair):
    y_true, y_pred = pair
    groups = np.arange(y_true.size) % 5
    moments = PairMoments.from_groups(y_true, y_pred, groups, 5)
    assert moments.mse()[2] == pytest.approx(
        np.mean((y_true[groups == 2].astype(float) - y_pred[groups == 2]) ** 2)
    )
    pooled = moments.pool()
    assert float(pooled.pearson()) == pytest.approx(_pearson(y_true, y_pred), rel=1e-9)
    assert float(moments.pool().mse()) == pytest.approx(
        float(PairMoments.of(y_true, y_pred).mse()), rel=1e-12
    )
    # drawing group 0 twice, group 3 once equals scoring the repeated data
    counts = np.array([[2.0, 0, 0, 1, 0], [1, 1, 1, 1, 1]])
    repeated = np.concatenate([np.flatnonzero(groups == 0)] * 2 + [np.flatnonzero(groups == 3)])
    resampled = moments.resample(counts)
    assert resampled.pearson()[0] == pytest.approx(_pearson(y_true[repeated], y_pred[repeated]), rel=1e-9)
    assert resampled.mse()[1] == pytest.approx(float(pooled.mse()), rel=1e-12)


def test_weighted_mse_and_running_variance(pair):
    y_true, y_pred = pair
    weights = np.abs(np.sin(np.arange(y_true.size)))
    acc = StreamingWeightedMSE()
    for part in np.array_split(np.arange(y_true.size), 4):
        acc.update(y_true[part], y_pred[part], weights=weights[part])
    expected = np.sum(weights * (y_true.astype(float) - y_pred) ** 2) / weights.sum()
    assert acc.value() == pytest.approx(expected, rel=1e-9)
    assert np.isnan(StreamingWeightedMSE().value())
    stack = np.stack([y_true, y_pred, y_true * 2])
    running = RunningVariance(y_true.size)
    for row in stack:
        running.update(row)
    np.testing.assert_allclose(
        running.variance(), np.var(stack.astype(np.float64), axis=0), rtol=1e-9, atol=1e-12
    )
