"""Predicted variant effects against known ones (the truth of ``epimpute synth-sequence``).

Each scored pair is one variant in one cell type for one mark whose true effect
(``truth/variants.tsv``: alternative minus reference allele, arcsinh) is not zero, and for
which a prediction table of that cell type (``epimpute variants``: ``MARK:effect``,
``status`` ``ok``) has a value. Two numbers per group of pairs:

- ``auroc``: area under the ROC curve of the predicted effect for the label "the true
  effect is positive" (1: every gain ranked above every loss; 0.5: chance);
- ``spearman``: Spearman correlation of the predicted and the true effect.

Groups: every pair (stratum ``all``) and the pairs whose site is accessible in exactly ``k``
cell types (stratum ``cells=k``; the cell types with a non-zero true effect on the
accessibility track, i.e. those where the variant's TF is active), each over all marks
(``mark`` ``all``) and per mark.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

from epimpute.errors import InputError
from epimpute.evaluation._ranking import Ranked, pearson, roc_auc
from epimpute.models.seqcell import ACCESSIBILITY_ASSAYS

__all__ = ["effect_pairs", "read_effects", "variant_accuracy"]

ALL = "all"
_KEY = ["CHROM", "POS", "REF", "ALT"]


def read_effects(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A tab-separated effects table (``truth/variants.tsv`` or ``epimpute variants`` output).

    Raises
    ------
    InputError
        When the file cannot be read or lacks the columns CHROM, POS, REF, ALT.
    """
    try:
        table = pd.read_csv(path, sep="\t", dtype={"CHROM": str})
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot be read as a tab-separated table ({error})") from None
    missing = [c for c in _KEY if c not in table.columns]
    if missing:
        raise InputError(f"{path}: no column {', '.join(missing)}")
    return table


def _accessibility(truth: pd.DataFrame) -> str:
    assays = {c.split(":", 1)[1] for c in truth.columns if ":" in c}
    for name in ACCESSIBILITY_ASSAYS:
        if name in assays:
            return name
    raise InputError(f"the truth table has no accessibility column "
                     f"(CELL:{'/'.join(ACCESSIBILITY_ASSAYS)})")


def effect_pairs(truth: pd.DataFrame, predicted: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per scored (variant, cell type, mark): ``ID cell mark cells truth predicted``.

    Parameters
    ----------
    truth
        The true effects, one row per variant, columns CHROM POS REF ALT and ``CELL:ASSAY``.
    predicted
        Cell type to its prediction table (columns CHROM POS REF ALT, ``status`` and
        ``MARK:effect``); variants are matched on CHROM, POS, REF and ALT.

    Returns
    -------
    pandas.DataFrame
        ``cells`` is the number of cell types (of all those in ``truth``) where the site is
        accessible; rows with a true effect of 0, or no ``ok`` prediction, are left out.
    """
    assay = _accessibility(truth)
    accessible = [c for c in truth.columns if c.endswith(f":{assay}")]
    truth = truth.assign(POS=truth["POS"].astype(int),
                         cells=(truth[accessible].to_numpy() != 0).sum(axis=1))
    frames = []
    for cell, table in predicted.items():
        ok = table[table["status"] == "ok"] if "status" in table.columns else table
        ok = ok.assign(POS=ok["POS"].astype(int), CHROM=ok["CHROM"].astype(str))
        joined = truth.merge(ok, on=_KEY, suffixes=("", ".predicted"))
        for column in ok.columns:
            if not column.endswith(":effect"):
                continue
            mark = column.removesuffix(":effect")
            if f"{cell}:{mark}" not in truth.columns:
                continue
            frames.append(pd.DataFrame({
                "ID": joined["ID"] if "ID" in joined else np.arange(len(joined)),
                "cell": cell, "mark": mark, "cells": joined["cells"],
                "truth": joined[f"{cell}:{mark}"].astype(float),
                "predicted": joined[column].astype(float)}))
    columns = ["ID", "cell", "mark", "cells", "truth", "predicted"]
    if not frames:
        return pd.DataFrame(columns=columns)
    pairs = pd.concat(frames, ignore_index=True)[columns]
    return pairs[(pairs["truth"] != 0) & np.isfinite(pairs["predicted"])].reset_index(drop=True)


def _scores(pairs: pd.DataFrame) -> dict[str, float]:
    truth = pairs["truth"].to_numpy(dtype=np.float64)
    predicted = pairs["predicted"].to_numpy(dtype=np.float64)
    ranked = Ranked(predicted)
    return {"n": len(pairs), "gains": int((truth > 0).sum()),
            "auroc": roc_auc(truth > 0, ranked),
            "spearman": pearson(Ranked(truth).ranks, ranked.ranks) if len(pairs) > 1
            else float("nan")}


def variant_accuracy(truth: pd.DataFrame, predicted: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """AUROC of the effect's direction and Spearman of its size, overall and per stratum.

    Parameters
    ----------
    truth, predicted
        As for :func:`effect_pairs`.

    Returns
    -------
    pandas.DataFrame
        Columns ``stratum mark n gains auroc spearman``: stratum ``all`` then ``cells=k``
        (ascending ``k``), mark ``all`` then each mark; ``n`` scored pairs, ``gains`` of
        them with a positive true effect. AUROC is NaN when all pairs share a direction.

    Raises
    ------
    InputError
        When no pair can be scored (no shared variant, cell type or mark).
    """
    pairs = effect_pairs(truth, predicted)
    if pairs.empty:
        raise InputError("no variant effect to score: the predictions share no variant, "
                         "cell type and mark with a non-zero true effect")
    rows = []
    strata = [(ALL, pairs)] + [(f"cells={k}", pairs[pairs["cells"] == k])
                               for k in sorted(pairs["cells"].unique())]
    for stratum, group in strata:
        for mark in [ALL, *sorted(group["mark"].unique())]:
            chosen = group if mark == ALL else group[group["mark"] == mark]
            rows.append({"stratum": stratum, "mark": mark, **_scores(chosen)})
    return pd.DataFrame(rows, columns=["stratum", "mark", "n", "gains", "auroc", "spearman"])
