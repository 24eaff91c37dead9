"""Calibration of predicted sds: how often the truth lies inside the predicted intervals.

An imputation folder may hold, beside a track ``CELL.ASSAY.npz`` (or ``.bw``), its
predicted sd ``CELL.ASSAY.sd.npz`` (``epimpute impute --uncertainty``; arcsinh scale in
either format). For each such track, every bin's ratio ``|truth - mean| / sd`` is compared
with the half-widths of the central intervals: those the folder's ``imputation.json``
records for the track (``interval_half_widths``, the model's measured error shape), else a
Gaussian's (:mod:`epimpute.intervals`); the share of bins inside is the observed coverage at each nominal level, reported overall and
per specificity stratum (:mod:`epimpute.evaluation.strata`). A calibrated model's
coverage equals the nominal level.

``calibration.tsv`` of a report has the columns :data:`CALIBRATION_COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from epimpute.errors import InputError
from epimpute.evaluation.strata import Strata
from epimpute.intervals import CURVE_LEVELS, REPORTED_LEVELS, half_width

__all__ = ["CALIBRATION_COLUMNS", "CoverageCounter", "summarize_coverage"]

CALIBRATION_COLUMNS = ["model", "cell_type", "assay", "stratum", "level", "coverage",
                       "n_bins"]


class CoverageCounter:
    """Counts, per specificity count and nominal level, the bins inside the interval.

    Parameters
    ----------
    strata
        The strata of the track's assay.
    levels
        Nominal coverages in (0, 1).
    widths
        Half-widths of the central intervals at ``levels``, in predicted sds (the model's
        measured interval shape); None: a Gaussian's.
    """

    def __init__(self, strata: Strata, levels: Sequence[float] = CURVE_LEVELS,
                 widths: Sequence[float] | None = None) -> None:
        self.strata = strata
        self.levels = tuple(levels)
        if widths is not None and len(widths) != len(self.levels):
            raise InputError(f"{len(widths)} interval half-widths for {len(self.levels)} levels")
        self._bounds = np.array([half_width(p) for p in self.levels] if widths is None
                                else list(widths), dtype=np.float64)
        self._inside = np.zeros((strata.n_counts, len(self.levels)), dtype=np.int64)
        self._bins = np.zeros(strata.n_counts, dtype=np.int64)

    def update(self, truth: NDArray[np.floating], mean: NDArray[np.floating],
               sd: NDArray[np.floating], specificity: NDArray[np.integer] | None = None
               ) -> None:
        """Add one contig: observed, imputed and sd arrays of equal length, and the bins'
        specificity counts (None: every bin counts as 0, only ``all`` is meaningful)."""
        truth, mean, sd = (np.asarray(a, dtype=np.float64) for a in (truth, mean, sd))
        error = np.abs(truth - mean)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(sd > 0, error / sd, np.where(error == 0, 0.0, np.inf))
        counts = (np.zeros(ratio.size, dtype=np.int64) if specificity is None
                  else np.minimum(np.asarray(specificity, dtype=np.int64),
                                  self.strata.n_cell_types))
        self._bins += np.bincount(counts, minlength=self.strata.n_counts)
        for i, bound in enumerate(self._bounds):
            self._inside[:, i] += np.bincount(counts, weights=ratio <= bound,
                                              minlength=self.strata.n_counts).astype(np.int64)

    def rows(self) -> list[tuple[str, float, float, int]]:
        """``(stratum, level, coverage, n_bins)`` for every stratum and level (coverage NaN
        for an empty stratum)."""
        out = []
        for stratum, members in self.strata.members().items():
            index = list(members)
            bins = int(self._bins[index].sum())
            inside = self._inside[index].sum(axis=0)
            for level, count in zip(self.levels, inside):
                out.append((stratum, level, float(count) / bins if bins else float("nan"),
                            bins))
        return out


def summarize_coverage(calibration: pd.DataFrame,
                       levels: Sequence[float] = REPORTED_LEVELS) -> pd.DataFrame:
    """Mean coverage over tracks per model, stratum and level, one column per level.

    Parameters
    ----------
    calibration
        Rows with :data:`CALIBRATION_COLUMNS`.
    levels
        The levels to keep (columns ``cover50`` ...).

    Returns
    -------
    pandas.DataFrame
        Columns ``model, stratum, tracks`` and one ``coverN`` per level.
    """
    columns = ["model", "stratum", "tracks"] + [f"cover{round(100 * p)}" for p in levels]
    if calibration is None or calibration.empty:
        return pd.DataFrame(columns=columns)
    kept = calibration[np.isclose(calibration["level"].to_numpy()[:, None],
                                  np.asarray(levels)[None, :]).any(axis=1)]
    table = kept.pivot_table(index=["model", "stratum"], columns="level", values="coverage",
                             aggfunc="mean", sort=False)
    tracks = kept.groupby(["model", "stratum"], sort=False)["coverage"].count() // len(levels)
    table.columns = [f"cover{round(100 * p)}" for p in table.columns]
    table.insert(0, "tracks", tracks.reindex(table.index).to_numpy())
    return table.reset_index()[columns]
