"""The one-line-per-metric summary of an evaluation, and what it leaves out."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from epimpute.io.trackkey import TrackKey

__all__ = ["summary_means"]


def summary_means(
    metrics: pd.DataFrame, names: Sequence[str] = ("mse", "gwcorr", "mse1obs")
) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Genome-wide mean of each metric per model, over the tracks every model was scored on.

    Returns ``{metric: {model: mean}}`` and notes on what the means leave out: tracks not
    scored for every model, and tracks whose value is undefined (e.g. the correlation of a
    constant, all-zero truth).
    """
    overall = metrics[metrics["stratum"] == "all"] if "stratum" in metrics else metrics
    tracks = list(zip(overall["cell_type"], overall["assay"]))
    by_model: dict[str, set[tuple[str, str]]] = {}
    for model, track in zip(overall["model"], tracks):
        by_model.setdefault(model, set()).add(track)
    common = set.intersection(*by_model.values()) if by_model else set()
    notes = []
    if any(have != common for have in by_model.values()):
        counts = ", ".join(f"{m} {len(have)}" for m, have in by_model.items())
        notes.append(f"the models were scored on different tracks ({counts}); the means are over "
                     f"the {len(common)} track(s) every model has")
    shared = overall[[t in common for t in tracks]]
    means: dict[str, dict[str, float]] = {}
    for name in names:
        rows = shared[shared["metric"] == name]
        means[name] = {str(m): float(v) for m, v in rows.groupby("model")["value"].mean().items()}
        undefined = rows[rows["value"].isna()]
        if len(undefined):
            keys = sorted({str(TrackKey.of(c, a))
                           for c, a in zip(undefined["cell_type"], undefined["assay"])})
            notes.append(f"{name} is undefined for {len(keys)} track(s) ({', '.join(keys[:5])}"
                         f"{' ...' if len(keys) > 5 else ''}: a constant, e.g. all-zero, truth or "
                         "prediction); the means leave them out")
    return means, notes
