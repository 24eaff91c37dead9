"""Fold assignment without leakage, and the booster on hand-computable cases."""

from __future__ import annotations

import numpy as np
import pytest

from epimpute.downstream.cv import (
    CVSettings,
    assign_folds,
    check_folds,
    cross_validate,
    score,
    training_rows,
)
from epimpute.errors import InputError


def _rows(n=600, contigs=6, seed=0, length=2000):
    rng = np.random.default_rng(seed)
    chrom = np.array([f"chr{i % contigs}" for i in range(n)], dtype=object)
    start = rng.integers(0, 5_000_000, n)
    return chrom, start, start + rng.integers(1, length, n)


def _gap(a_start, a_end, b_start, b_end):
    return np.maximum(0, np.maximum(b_start[None, :] - a_end[:, None],
                                    a_start[:, None] - b_end[None, :]))


def test_chromosome_folds_keep_each_contig_in_one_fold_and_balance_rows():
    chrom, start, _ = _rows(contigs=6)
    folds = assign_folds(chrom, start, settings=CVSettings(folds=3, seed=1))
    for contig in np.unique(chrom):
        assert np.unique(folds[chrom == contig]).size == 1
    assert np.bincount(folds).tolist() == [200, 200, 200]  # 6 contigs of 100 rows
    with pytest.raises(InputError, match="6 contig.* fewer than --folds 7"):
        assign_folds(chrom, start, settings=CVSettings(folds=7))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_block_folds_train_nowhere_near_their_test_rows(seed):
    chrom, start, end = _rows(n=800, contigs=3, seed=seed, length=30_000)
    settings = CVSettings(split="block", folds=4, block=100_000, seed=seed)
    folds = assign_folds(chrom, start, settings=settings)
    keys = [(c, s // 100_000) for c, s in zip(chrom, start)]
    for key in set(keys):
        assert np.unique(folds[[k == key for k in keys]]).size == 1
    for fold in range(4):
        train = training_rows(folds, fold, chrom, start, end, gap=settings.block)
        test = folds == fold
        assert not (train & test).any()
        for contig in np.unique(chrom):
            t, r = test & (chrom == contig), folds != fold
            gaps = _gap(start[r & (chrom == contig)], end[r & (chrom == contig)],
                        start[t], end[t])
            near = (gaps < settings.block).any(axis=1)
            # exactly the other folds' rows within the block distance are left out
            assert train[r & (chrom == contig)].tolist() == (~near).tolist()
            if train[chrom == contig].any() and t.any():
                kept = train & (chrom == contig)
                assert _gap(start[kept], end[kept], start[t], end[t]).min() >= settings.block


def test_folds_are_seeded():
    chrom, start, _ = _rows()
    settings = CVSettings(split="block", folds=5, block=200_000, seed=4)
    first = assign_folds(chrom, start, settings=settings)
    assert (assign_folds(chrom, start, settings=settings) == first).all()
    other = assign_folds(chrom, start, settings=CVSettings(split="block", folds=5,
                                                           block=200_000, seed=5))
    assert (other != first).any()


def _cv(x, y, task="regression", split="chrom"):
    chrom, start, end = _rows(n=y.size)
    settings = CVSettings(split=split, folds=3, block=100_000, seed=0)
    folds = assign_folds(chrom, start, settings=settings)
    gap = settings.block if split == "block" else 0
    masks = [training_rows(folds, k, chrom, start, end, gap=gap) for k in range(3)]
    check_folds(y, folds, masks, task=task, settings=settings)
    return cross_validate(x, y, folds, masks, task=task, settings=settings)


def test_an_exact_linear_function_of_one_feature_is_predicted_almost_perfectly():
    rng = np.random.default_rng(0)
    x = rng.random((600, 2)).astype(np.float32)
    y = 3.0 * x[:, 0] + 1.0
    result = _cv(x, y)
    assert result.pooled["pearson"] > 0.99 and result.pooled["spearman"] > 0.99
    assert result.pooled["r2"] > 0.98
    assert all(fold["pearson"] > 0.99 for fold in result.per_fold)


def test_a_constant_feature_carries_no_signal():
    rng = np.random.default_rng(0)
    y = rng.normal(size=600)
    result = _cv(np.ones((600, 1), np.float32), y)
    # each fold predicts its training mean: constant, so no correlation within a fold, and
    # the pooled R^2 cannot exceed 0 (the training mean sits across the overall mean)
    assert all(np.isnan(fold["pearson"]) for fold in result.per_fold)
    assert result.pooled["r2"] <= 0.0


def test_classification_of_a_thresholded_feature():
    rng = np.random.default_rng(1)
    x = rng.random((600, 3)).astype(np.float32)
    y = (x[:, 1] > 0.6).astype(float)
    result = _cv(x, y, task="classification", split="block")
    assert result.pooled["auroc"] > 0.99 and result.pooled["auprc"] > 0.98


def test_score_by_hand():
    y, p = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 5.0])
    got = score(y, p, "regression")
    assert got["mse"] == pytest.approx(0.25) and got["r2"] == pytest.approx(1 - 1 / 5)
    assert got["spearman"] == pytest.approx(1.0)
    got = score(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]), "classification")
    assert got["auroc"] == pytest.approx(0.75)
    assert got["auprc"] == pytest.approx((1 + 2 / 3) / 2)


def test_too_few_rows_per_fold_is_refused():
    chrom, start, end = _rows(n=24, contigs=3)
    settings = CVSettings(folds=3)
    folds = assign_folds(chrom, start, settings=settings)
    masks = [training_rows(folds, k, chrom, start, end, gap=0) for k in range(3)]
    with pytest.raises(InputError, match="fold 0 has 8 test and 16 training rows, fewer than 10"):
        check_folds(np.zeros(24), folds, masks, task="regression", settings=settings)
