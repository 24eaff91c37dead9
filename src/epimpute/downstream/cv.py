"""Cross-validated gradient boosting (LightGBM) on window features, folds kept apart in the
genome.

Folds
-----
- ``chrom``: whole contigs per fold. Contigs are taken largest first (ties in a seeded
  random order) and each goes to the fold with the fewest rows so far.
- ``block``: the genome is cut into blocks of ``block`` bp (``start // block`` per
  contig); blocks are shuffled with the seed and dealt to the folds in turn. A fold's
  model is then trained without the rows of the other folds that lie closer than
  ``block`` bp to any of its test rows (gap between the windows), so neighbouring bins
  never sit on both sides of a split.

Metrics are computed on the pooled out-of-fold predictions (every row predicted once, by
the model that did not see it) and per fold: regression ``pearson``, ``spearman``, ``r2``
(``1 - SSE / SST``) and ``mse``; classification ``auroc`` and ``auprc`` (average
precision). A metric that is undefined (constant predictions, one class) is NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from epimpute.errors import InputError

__all__ = [
    "METRICS",
    "SPLITS",
    "CVResult",
    "CVSettings",
    "assign_folds",
    "check_folds",
    "cross_validate",
    "score",
    "training_rows",
]

SPLITS = ("chrom", "block")
METRICS = {"regression": ("pearson", "spearman", "r2", "mse"),
           "classification": ("auroc", "auprc")}


@dataclass(frozen=True)
class CVSettings:
    """Cross-validation and booster settings."""

    split: str = "chrom"
    folds: int = 5
    block: int = 1_000_000
    seed: int = 0
    min_rows: int = 10
    """Fewest test or training rows a fold may have."""
    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 10


def assign_folds(chrom: np.ndarray, start: np.ndarray, *, settings: CVSettings) -> np.ndarray:
    """The fold (``0 .. folds-1``) of every row.

    Raises
    ------
    InputError
        If the split is unknown, ``folds`` is below 2, or there are fewer contigs (chrom) or
        blocks (block) holding rows than folds.
    """
    if settings.split not in SPLITS:
        raise InputError(f"--split must be one of {', '.join(SPLITS)}, got {settings.split!r}")
    if settings.folds < 2:
        raise InputError(f"--folds must be at least 2, got {settings.folds}")
    rng = np.random.default_rng(settings.seed)
    if settings.split == "chrom":
        contigs, inverse, counts = np.unique(chrom.astype(str), return_inverse=True,
                                             return_counts=True)
        if contigs.size < settings.folds:
            raise InputError(f"{contigs.size} contig(s) hold rows, fewer than --folds "
                             f"{settings.folds}: use fewer folds or --split block")
        order = np.lexsort((rng.permutation(contigs.size), -counts))
        load = np.zeros(settings.folds, dtype=np.int64)
        fold_of = np.zeros(contigs.size, dtype=np.int64)
        for c in order:
            fold_of[c] = int(np.argmin(load))
            load[fold_of[c]] += counts[c]
        return fold_of[inverse.reshape(-1)]
    if settings.block < 1:
        raise InputError(f"--block must be a positive number of bp, got {settings.block}")
    keys = np.char.add(np.char.add(chrom.astype(str), ":"),
                       (np.asarray(start) // settings.block).astype(str))
    blocks, inverse = np.unique(keys, return_inverse=True)
    if blocks.size < settings.folds:
        raise InputError(f"{blocks.size} block(s) of {settings.block} bp hold rows, fewer "
                         f"than --folds {settings.folds}")
    fold_of = np.empty(blocks.size, dtype=np.int64)
    fold_of[rng.permutation(blocks.size)] = np.arange(blocks.size) % settings.folds
    return fold_of[inverse.reshape(-1)]


def training_rows(folds: np.ndarray, fold: int, chrom: np.ndarray, start: np.ndarray,
                  end: np.ndarray, *, gap: int) -> np.ndarray:
    """Rows that train the model of ``fold``: the other folds' rows whose gap to every test
    row of ``fold`` is at least ``gap`` bp (bool mask)."""
    test = folds == fold
    train = ~test
    if gap <= 0:
        return train
    for contig in np.unique(chrom[test]):
        on = chrom == contig
        t = np.flatnonzero(test & on)
        order = np.argsort(start[t])
        lo, hi = start[t][order] - gap, end[t][order] + gap
        # merge the widened test windows into disjoint, sorted intervals
        reach = np.maximum.accumulate(hi)
        new = np.concatenate([[True], lo[1:] >= reach[:-1]])
        m_lo = lo[new]
        m_hi = np.maximum.reduceat(hi, np.flatnonzero(new))
        candidates = np.flatnonzero(train & on)
        k = np.searchsorted(m_hi, start[candidates], side="right")
        inside = k < m_lo.size
        inside[inside] = m_lo[k[inside]] < end[candidates][inside]
        train[candidates[inside]] = False
    return train


def score(y: np.ndarray, predicted: np.ndarray, task: str) -> dict[str, float]:
    """The task's metrics of ``predicted`` against ``y``."""
    from scipy.stats import pearsonr, spearmanr

    if task == "classification":
        from sklearn.metrics import average_precision_score, roc_auc_score

        if np.unique(y).size < 2:
            return {"auroc": float("nan"), "auprc": float("nan")}
        return {"auroc": float(roc_auc_score(y, predicted)),
                "auprc": float(average_precision_score(y, predicted))}
    constant = np.ptp(predicted) == 0 or np.ptp(y) == 0
    sst = float(np.sum((y - y.mean()) ** 2))
    sse = float(np.sum((y - predicted) ** 2))
    return {"pearson": float("nan") if constant else float(pearsonr(y, predicted)[0]),
            "spearman": float("nan") if constant else float(spearmanr(y, predicted)[0]),
            "r2": 1.0 - sse / sst if sst > 0 else float("nan"),
            "mse": sse / y.size}


@dataclass(frozen=True)
class CVResult:
    """Out-of-fold predictions and the metrics of one feature set."""

    predicted: np.ndarray
    pooled: dict[str, float]
    per_fold: list[dict[str, float]]
    test_rows: list[int]
    train_rows: list[int]


def cross_validate(x: np.ndarray, y: np.ndarray, folds: np.ndarray, train_masks: list[np.ndarray],
                   *, task: str, settings: CVSettings, progress: bool = False,
                   desc: str = "folds") -> CVResult:
    """Fit one booster per fold on its training rows and predict its test rows.

    Parameters
    ----------
    x
        ``(rows, features)`` float32; NaN is a missing value.
    y
        Labels (0/1 for classification).
    folds
        Fold of every row.
    train_masks
        Training rows of every fold (:func:`training_rows`).
    task
        ``regression`` or ``classification``.
    settings
        Booster settings and seed.
    progress, desc
        Show a progress bar over the folds, labelled ``desc``.
    """
    import lightgbm
    from tqdm.auto import tqdm

    model_type = lightgbm.LGBMClassifier if task == "classification" else lightgbm.LGBMRegressor
    predicted = np.zeros(y.size, dtype=np.float64)
    per_fold, n_test, n_train = [], [], []
    for fold, train in enumerate(tqdm(train_masks, desc=desc, unit="fold",
                                      disable=not progress)):
        test = folds == fold
        model = model_type(n_estimators=settings.n_estimators,
                           learning_rate=settings.learning_rate, num_leaves=settings.num_leaves,
                           min_child_samples=settings.min_child_samples,
                           random_state=settings.seed + fold, deterministic=True,
                           force_col_wise=True, n_jobs=1, verbose=-1)
        model.fit(x[train], y[train])
        if task == "classification":
            predicted[test] = model.predict_proba(x[test])[:, 1]
        else:
            predicted[test] = model.predict(x[test])
        per_fold.append(score(y[test], predicted[test], task))
        n_test.append(int(test.sum()))
        n_train.append(int(train.sum()))
    return CVResult(predicted, score(y, predicted, task), per_fold, n_test, n_train)


def check_folds(y: np.ndarray, folds: np.ndarray, train_masks: list[np.ndarray], *, task: str,
                settings: CVSettings) -> None:
    """InputError when a fold has too few test or training rows, or (classification) its
    training rows lack a class."""
    for fold, train in enumerate(train_masks):
        n_test, n_train = int((folds == fold).sum()), int(train.sum())
        if min(n_test, n_train) < settings.min_rows:
            raise InputError(f"fold {fold} has {n_test} test and {n_train} training rows, "
                             f"fewer than {settings.min_rows}: use fewer --folds, a smaller "
                             "--block or more rows")
        if task == "classification" and np.unique(y[train]).size < 2:
            raise InputError(f"fold {fold}: its training rows are all of one class "
                             f"({int(y[train][0])})")
