"""``epimpute downstream``: compare feature sets as inputs of a cross-validated predictor.

Every feature set is evaluated on the same rows (the rows all of them and the labels
cover) with the same folds, so the table compares them side by side. The table (TSV) has
one line per feature set, fold and metric: ``feature_set``, ``n_features``, ``fold``
(``all`` for the pooled out-of-fold predictions, else the fold number), ``n_test``,
``n_train`` (for ``all``: every row, and the smallest fold's training rows), ``metric``,
``value``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from epimpute.downstream.cv import (
    METRICS,
    CVSettings,
    assign_folds,
    check_folds,
    cross_validate,
    training_rows,
)
from epimpute.downstream.features import build_features, check_within
from epimpute.downstream.labels import overlaps_positive, read_matrix, read_values
from epimpute.downstream.sources import open_source
from epimpute.downstream.windows import gene_windows, tile_windows
from epimpute.errors import InputError
from epimpute.io.atomic import atomic_file, check_destination

__all__ = ["COLUMNS", "TASKS", "downstream", "format_table", "is_table"]

log = logging.getLogger(__name__)

COLUMNS = ["feature_set", "n_features", "fold", "n_test", "n_train", "metric", "value"]
TASKS = ("auto", "regression", "classification")


def is_table(path: Path) -> bool:
    """Whether ``path`` is a table written by :func:`downstream` (its header line)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().rstrip("\n").split("\t") == COLUMNS
    except (OSError, UnicodeDecodeError):
        return False


def _parse_features(features: Sequence[str]) -> dict[str, list[Path]]:
    parsed: dict[str, list[Path]] = {}
    for item in features:
        name, sep, path = str(item).partition("=")
        if not sep or not name or not path:
            raise InputError(f"--feature '{item}': expected NAME=PATH")
        parsed.setdefault(name, []).append(Path(path))
    if not parsed:
        raise InputError("give at least one --feature NAME=PATH")
    for name, paths in parsed.items():
        if any(p.suffix == ".npy" for p in paths) and len(paths) > 1:
            raise InputError(f"feature set {name!r}: a .npy matrix must be its only path")
    return parsed


def downstream(  # noqa: PLR0913 - keyword-only options, one per command-line option
    out: Path,
    *,
    features: Sequence[str],
    genes: Path | None = None,
    tile: int | None = None,
    region: str = "promoter",
    promoter: int = 2000,
    flank: int = 0,
    labels: Path | None = None,
    positives: Path | None = None,
    task: str = "auto",
    split: str = "chrom",
    folds: int = 5,
    block: int = 1_000_000,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Cross-validate a LightGBM predictor of ``labels`` (or ``positives``) on each feature
    set and write the metrics table to ``out``.

    Parameters
    ----------
    out
        The TSV to write (appears only when complete).
    features
        ``NAME=PATH`` items: a store (observed tracks), an ``epimpute impute`` folder, an
        ``epimpute factors`` file (repeat the name for one file per contig) or a ``.npy``
        matrix (rows named by ``X.rows.txt`` beside it, else in the labels' order).
    genes
        BED of genes (chrom, start, end, id[, score, strand]): one row per gene.
    tile
        Instead of ``genes``: one row per tile of this many bp over the sources' contigs.
    region
        Gene windows: ``promoter`` (TSS +/- ``promoter``), ``body`` or ``both``.
    promoter
        Half width of the promoter window in bp.
    flank
        Also average this many flanking windows of the same width on each side.
    labels
        TSV ``id<TAB>value`` (e.g. expression per gene id, or per ``chrom:start-end`` tile).
    positives
        Instead of ``labels``: BED of positive regions; a row is 1 when its (first) window
        overlaps one.
    task
        ``regression``, ``classification`` or ``auto`` (classification for ``positives``).
    split
        Folds by ``chrom`` or by ``block`` of ``block`` bp.
    folds
        Number of folds.
    block
        Block size in bp; with ``split="block"`` also the least distance between a fold's
        test rows and its training rows.
    seed
        Seed of the fold assignment and the boosters.
    overwrite
        Replace an existing ``out`` (only a table this function wrote).
    progress
        Show progress bars.

    Returns
    -------
    pandas.DataFrame
        The table written (columns :data:`COLUMNS`).

    Raises
    ------
    InputError
        On unreadable or inconsistent input: labels that match no row, a matrix whose rows
        differ from its names or the labels, a BED whose contigs no feature source has,
        folds with too few rows; nothing is written then.
    """
    out = Path(out)
    parsed = _parse_features(features)
    inputs = [p for paths in parsed.values() for p in paths]
    inputs += [p for p in (genes, labels, positives) if p is not None]
    check_destination(out, kind="downstream table", is_own=is_table, overwrite=overwrite,
                      inputs=inputs)
    if (genes is None) == (tile is None):
        raise InputError("give exactly one of --genes BED and --tile BP")
    if (labels is None) == (positives is None):
        raise InputError("give exactly one of --labels TSV and --positives BED")
    if task not in TASKS:
        raise InputError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {seed!r}")
    task = task if task != "auto" else ("classification" if positives else "regression")
    settings = CVSettings(split=split, folds=folds, block=block, seed=seed)

    sources = {n: open_source(n, p) for n, p in parsed.items() if p[0].suffix != ".npy"}
    if genes is not None:
        views = gene_windows(genes, region=region, promoter=promoter)
        what = str(genes)
    else:
        if not sources:
            raise InputError("--tile needs a store, imputation folder or factors feature set")
        common = [c for c in next(iter(sources.values())).contigs
                  if all(c in s.contigs for s in sources.values())]
        views = {"tile": tile_windows({c: min(s.contigs[c] for s in sources.values())
                                       for c in common}, tile=tile)}
        what = "the tiles"
    rows = next(iter(views.values()))
    keep = check_within(rows, list(sources.values()), what=what) if sources else None

    if labels is not None:
        values = read_values(labels)
        labels_order = values.index.tolist()
        present = np.isin(rows.ids, labels_order)
        if not present.any():
            raise InputError(f"{labels}: none of its {len(values)} ids (e.g. "
                             f"{labels_order[0]!r}) names a row of {what} (e.g. "
                             f"{rows.ids[0]!r})")
        y_all = values.reindex(rows.ids).to_numpy()
    else:
        labels_order = rows.ids.tolist()
        present = np.ones(len(rows), dtype=bool)
        y_all = overlaps_positive(rows, positives)
    if task == "classification" and not np.isin(y_all[present], (0.0, 1.0)).all():
        raise InputError(f"{labels}: classification needs labels of 0 and 1; give --task "
                         "regression for other values")
    if keep is not None:
        dropped = int((present & ~keep).sum())
        if dropped:
            log.info("%d labelled rows lie on contigs a feature source lacks; left out", dropped)
        present &= keep
    matrices = {n: read_matrix(p[0], labels_order=labels_order)
                for n, p in parsed.items() if p[0].suffix == ".npy"}
    for name, matrix in matrices.items():
        covered = np.isin(rows.ids, matrix.index)
        if not (covered & present).any():
            raise InputError(f"feature set {name!r}: none of the rows of {parsed[name][0]} "
                             "is a labelled row")
        present &= covered
    selected = np.flatnonzero(present)
    if selected.size < len(rows) and matrices:
        log.info("%d of %d rows are covered by every feature set and the labels",
                 selected.size, len(rows))
    views = {k: v.take(selected) for k, v in views.items()}
    rows, y = next(iter(views.values())), y_all[selected]

    fold = assign_folds(rows.chrom, rows.start, settings=settings)
    gap = settings.block if split == "block" else 0
    masks = [training_rows(fold, k, rows.chrom, rows.start, rows.end, gap=gap)
             for k in range(settings.folds)]
    check_folds(y, fold, masks, task=task, settings=settings)

    records = []
    for name in parsed:
        if name in matrices:
            x = matrices[name].reindex(rows.ids).to_numpy(np.float32)
        else:
            x = build_features(sources[name], views, flank=flank, progress=progress).to_numpy()
        result = cross_validate(x, y, fold, masks, task=task, settings=settings,
                                progress=progress, desc=f"cv {name}")
        for metric in METRICS[task]:
            records.append((name, x.shape[1], "all", y.size, min(result.train_rows), metric,
                            result.pooled[metric]))
            for k, scores in enumerate(result.per_fold):
                records.append((name, x.shape[1], str(k), result.test_rows[k],
                                result.train_rows[k], metric, scores[metric]))
    table = pd.DataFrame.from_records(records, columns=COLUMNS)
    with atomic_file(out) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    return table


def format_table(table: pd.DataFrame) -> str:
    """The pooled metrics, one line per feature set, as aligned text."""
    pooled = table[table["fold"] == "all"]
    wide = pooled.pivot(index="feature_set", columns="metric", values="value")
    wide = wide.reindex(index=list(dict.fromkeys(pooled["feature_set"])),
                        columns=list(dict.fromkeys(pooled["metric"])))
    wide.insert(0, "features", pooled.groupby("feature_set")["n_features"].first())
    wide.insert(1, "rows", pooled.groupby("feature_set")["n_test"].first())
    return wide.to_string(float_format=lambda v: f"{v:.4f}")
