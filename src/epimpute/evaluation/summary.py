"""The summary of an evaluation: one mean per model and metric, what it covers, what it leaves out."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from epimpute.io.trackkey import TrackKey

__all__ = ["SUMMARY_COLUMNS", "summarize"]

SUMMARY_COLUMNS = ["model", "metric", "mean", "tracks", "bins"]

ALL = "all"


def summarize(
    metrics: pd.DataFrame,
    strata: pd.DataFrame | None = None,
    *,
    names: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Genome-wide mean of each metric per model, over the tracks every model was scored on.

    Parameters
    ----------
    metrics
        Long table of scores (``model, cell_type, assay, metric, value[, stratum]``); only
        the genome-wide rows (stratum ``all``) are summarised.
    strata
        Bins per stratum of each track (``cell_type, assay, stratum, n_bins``), for the
        ``bins`` column (0 where it is absent).
    names
        Metrics to summarise, in this order (default: those present, in order of appearance).

    Returns
    -------
    tuple[pandas.DataFrame, list[str]]
        The table (:data:`SUMMARY_COLUMNS`, model then metric order: ``tracks`` counts the
        tracks with a defined value, ``bins`` their bins) and notes on what the means leave
        out: tracks not scored for every model, and tracks whose value is undefined (e.g. the
        correlation of a constant, all-zero truth).
    """
    overall = metrics[metrics["stratum"] == ALL] if "stratum" in metrics else metrics
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
    sizes: dict[tuple[str, str], int] = {}
    if strata is not None and not strata.empty:
        whole = strata[strata["stratum"] == ALL]
        sizes = {(c, a): int(n) for c, a, n in
                 whole[["cell_type", "assay", "n_bins"]].itertuples(index=False)}
    names = list(dict.fromkeys(shared["metric"])) if names is None else list(names)
    rows = []
    for name in names:
        scored = shared[shared["metric"] == name]
        undefined = scored[scored["value"].isna()]
        if len(undefined):
            keys = sorted({str(TrackKey.of(c, a))
                           for c, a in zip(undefined["cell_type"], undefined["assay"])})
            notes.append(f"{name} is undefined for {len(keys)} track(s) ({', '.join(keys[:5])}"
                         f"{' ...' if len(keys) > 5 else ''}: a constant, e.g. all-zero, truth or "
                         "prediction); the means leave them out")
        for model in by_model:
            defined = scored[(scored["model"] == model) & scored["value"].notna()]
            bins = sum(sizes.get(t, 0) for t in zip(defined["cell_type"], defined["assay"]))
            mean = float(defined["value"].mean()) if len(defined) else float("nan")
            rows.append((model, name, mean, len(defined), bins))
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    order = {m: i for i, m in enumerate(by_model)}
    table = table.sort_values("model", key=lambda s: s.map(order), kind="stable")
    return table.reset_index(drop=True), notes
