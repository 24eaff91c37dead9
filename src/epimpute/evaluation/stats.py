"""Statistics over scores: group tests, paired model tests, block-bootstrap intervals.

- :func:`group_tests`: two-sided Welch t-tests between groups of tracks for each model,
  metric and stratum: each assay against all other assays, narrow vs broad marks, activating
  vs repressive marks (:mod:`epimpute.evaluation.marks`).
- :func:`paired_model_tests`: two-sided paired t-tests between every two models over the
  tracks both scored.
- :func:`block_resample_counts` and :func:`bootstrap_intervals`: percentile confidence
  intervals from resampling genomic blocks with replacement, for each model's score and for
  the difference between two models (the same resampled blocks for both, so paired).

Inputs are the long metrics table (columns ``model, cell_type, assay, metric, value,
stratum``); NaN values are left out of every test.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats as scipy_stats

from epimpute.errors import InputError
from epimpute.evaluation.catalog import METRICS
from epimpute.evaluation.marks import GROUPINGS
from epimpute.evaluation.scoring import TrackScores

__all__ = [
    "block_resample_counts",
    "bootstrap_intervals",
    "group_tests",
    "paired_model_tests",
    "percentile_interval",
]

_GROUP_PAIRS = {"shape": ("narrow", "broad"), "role": ("activating", "repressive")}
_KEYS = ["model", "metric", "stratum"]


def _welch(a: NDArray[np.float64], b: NDArray[np.float64]) -> tuple[float, float]:
    if a.size < 2 or b.size < 2:
        return float("nan"), float("nan")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        result = scipy_stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def group_tests(
    metrics: pd.DataFrame,
    *,
    groupings: Mapping[str, Callable[[str], str | None]] = GROUPINGS,
) -> pd.DataFrame:
    """Welch t-tests between groups of tracks, per model, metric and stratum.

    Parameters
    ----------
    metrics
        Long table with columns ``model, cell_type, assay, metric, value, stratum``.
    groupings
        Grouping name to a function mapping an assay to its group (None: left out). The
        groupings ``shape`` and ``role`` compare narrow vs broad and activating vs
        repressive; any other grouping compares its first two groups in sorted order.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, metric, stratum, grouping, group_a, group_b, n_a, n_b, mean_a,
        mean_b, statistic, p_value``; grouping ``assay`` tests each assay against the rest.
    """
    rows = []
    values = metrics.dropna(subset=["value"])
    for (model, metric, stratum), sub in values.groupby(_KEYS, sort=False):
        assays = sub["assay"].to_numpy()
        scores = sub["value"].to_numpy(dtype=np.float64)
        comparisons = [
            ("assay", name, "other", assays == name, assays != name) for name in sorted(set(assays))
        ]
        for grouping, func in groupings.items():
            labels = np.array([func(a) for a in assays], dtype=object)
            present = sorted({label for label in labels if label is not None})
            first, second = _GROUP_PAIRS.get(grouping, tuple(present[:2]) if len(present) >= 2 else ("", ""))
            if first and second:
                comparisons.append((grouping, first, second, labels == first, labels == second))
        for grouping, name_a, name_b, in_a, in_b in comparisons:
            a, b = scores[in_a], scores[in_b]
            statistic, p_value = _welch(a, b)
            rows.append(
                {
                    "model": model,
                    "metric": metric,
                    "stratum": stratum,
                    "grouping": grouping,
                    "group_a": name_a,
                    "group_b": name_b,
                    "n_a": int(a.size),
                    "n_b": int(b.size),
                    "mean_a": float(a.mean()) if a.size else float("nan"),
                    "mean_b": float(b.mean()) if b.size else float("nan"),
                    "statistic": statistic,
                    "p_value": p_value,
                }
            )
    columns = [
        "model",
        "metric",
        "stratum",
        "grouping",
        "group_a",
        "group_b",
        "n_a",
        "n_b",
        "mean_a",
        "mean_b",
        "statistic",
        "p_value",
    ]
    return pd.DataFrame(rows, columns=columns)


def paired_model_tests(metrics: pd.DataFrame) -> pd.DataFrame:
    """Paired t-tests between every two models over the tracks both scored.

    Parameters
    ----------
    metrics
        Long table with columns ``model, cell_type, assay, metric, value, stratum``.

    Returns
    -------
    pandas.DataFrame
        Columns ``model_a, model_b, metric, stratum, n, mean_a, mean_b, mean_diff,
        statistic, p_value, better``; ``mean_diff`` is a - b and ``better`` names the model
        with the better mean given the metric's direction ("" on a tie or no data).
    """
    columns = [
        "model_a",
        "model_b",
        "metric",
        "stratum",
        "n",
        "mean_a",
        "mean_b",
        "mean_diff",
        "statistic",
        "p_value",
        "better",
    ]
    models = list(dict.fromkeys(metrics["model"]))
    wide = metrics.pivot_table(
        index=["cell_type", "assay", "metric", "stratum"],
        columns="model",
        values="value",
        aggfunc="first",
        dropna=False,
    )
    rows = []
    for model_a, model_b in itertools.combinations(models, 2):
        pair = wide[[model_a, model_b]].dropna()
        for (metric, stratum), sub in pair.groupby(level=["metric", "stratum"], sort=False):
            a = sub[model_a].to_numpy(dtype=np.float64)
            b = sub[model_b].to_numpy(dtype=np.float64)
            statistic = p_value = float("nan")
            if a.size >= 2:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore", RuntimeWarning)
                    result = scipy_stats.ttest_rel(a, b)
                statistic, p_value = float(result.statistic), float(result.pvalue)
            diff = float(np.mean(a - b)) if a.size else float("nan")
            higher = METRICS[metric].higher_is_better if metric in METRICS else True
            better = "" if not diff or np.isnan(diff) else (model_a if (diff > 0) == higher else model_b)
            rows.append(
                {
                    "model_a": model_a,
                    "model_b": model_b,
                    "metric": metric,
                    "stratum": stratum,
                    "n": int(a.size),
                    "mean_a": float(a.mean()) if a.size else float("nan"),
                    "mean_b": float(b.mean()) if b.size else float("nan"),
                    "mean_diff": diff,
                    "statistic": statistic,
                    "p_value": p_value,
                    "better": better,
                }
            )
    return pd.DataFrame(rows, columns=columns)


def block_resample_counts(
    n_blocks: int, *, n_boot: int = 1000, rng: np.random.Generator
) -> NDArray[np.float64]:
    """How often each of ``n_blocks`` blocks is drawn in each of ``n_boot`` resamples.

    Each resample draws ``n_blocks`` blocks uniformly with replacement.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(n_boot, n_blocks)`` whose rows sum to ``n_blocks``.
    """
    if n_blocks < 1 or n_boot < 1:
        raise InputError(f"need at least one block and one resample, got {n_blocks} and {n_boot}")
    return rng.multinomial(n_blocks, np.full(n_blocks, 1.0 / n_blocks), size=n_boot).astype(np.float64)


def percentile_interval(replicates: NDArray[np.floating], *, level: float = 0.95) -> tuple[float, float]:
    """Equal-tailed percentile interval of bootstrap replicates, NaNs dropped."""
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level}")
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_intervals(
    scores: Mapping[str, TrackScores],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    rng: np.random.Generator,
    metrics: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Block-bootstrap intervals for one track scored by several models.

    Parameters
    ----------
    scores
        Model name to the :class:`TrackScores` of the same track (same contigs, so the same
        blocks).
    n_boot, level
        Number of resamples and interval coverage.
    rng
        Random generator; one set of resampled blocks serves every model.
    metrics
        Metrics to report (default: every bootstrapped one that was computed).

    Returns
    -------
    tuple of pandas.DataFrame
        ``(intervals, differences)``: columns ``model, metric, value, ci_low, ci_high,
        n_blocks`` and ``model_a, model_b, metric, diff, ci_low, ci_high, n_blocks``
        (stratum ``all``; ``diff`` is a - b).
    """
    interval_columns = ["model", "metric", "value", "ci_low", "ci_high", "n_blocks"]
    diff_columns = ["model_a", "model_b", "metric", "diff", "ci_low", "ci_high", "n_blocks"]
    if not scores:
        return pd.DataFrame(columns=interval_columns), pd.DataFrame(columns=diff_columns)
    blocks = {s.n_blocks for s in scores.values()}
    if len(blocks) != 1:
        raise InputError(
            f"the models were scored on different genomic blocks ({sorted(blocks)}); cannot pair them"
        )
    n_blocks = blocks.pop()
    if n_blocks == 0:
        return pd.DataFrame(columns=interval_columns), pd.DataFrame(columns=diff_columns)
    counts = block_resample_counts(n_blocks, n_boot=n_boot, rng=rng)
    replicates = {model: s.bootstrap(counts) for model, s in scores.items()}
    intervals, differences = [], []
    for model, reps in replicates.items():
        for metric, values in reps.items():
            if metrics is not None and metric not in metrics:
                continue
            low, high = percentile_interval(values, level=level)
            point = scores[model].values["all"].get(metric, float("nan"))
            intervals.append([model, metric, point, low, high, n_blocks])
    for model_a, model_b in itertools.combinations(replicates, 2):
        for metric in replicates[model_a]:
            if metric not in replicates[model_b] or (metrics is not None and metric not in metrics):
                continue
            low, high = percentile_interval(
                replicates[model_a][metric] - replicates[model_b][metric], level=level
            )
            diff = scores[model_a].values["all"].get(metric, np.nan) - scores[model_b].values["all"].get(
                metric, np.nan
            )
            differences.append([model_a, model_b, metric, diff, low, high, n_blocks])
    return pd.DataFrame(intervals, columns=interval_columns), pd.DataFrame(differences, columns=diff_columns)
