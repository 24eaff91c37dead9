"""Scoring imputed tracks against observed ones: metrics, peaks, strata and the report.

Modules, one concern each:

- :mod:`~epimpute.evaluation.error`, :mod:`~epimpute.evaluation.correlation`,
  :mod:`~epimpute.evaluation.topbins`, :mod:`~epimpute.evaluation.peakmetrics`: metric
  families; every metric is ``f(y_true, y_pred, mask=None)`` on the arcsinh scale.
- :mod:`~epimpute.evaluation.accumulators`: streaming (contig by contig) MSE / Pearson.
- :mod:`~epimpute.evaluation.peaks`: MACS3 ``bdgpeakcall``-style peak calling, peak files.
- :mod:`~epimpute.evaluation.regions`: genes / promoters / enhancers as per-bin coverage.
- :mod:`~epimpute.evaluation.strata`: cell-type-specificity strata.
- :mod:`~epimpute.evaluation.marks`: narrow / broad, activating / repressive marks.
- :mod:`~epimpute.evaluation.scoring`: every metric of one track, per stratum.
- :mod:`~epimpute.evaluation.stats`: Welch and paired tests, block bootstrap.
- :mod:`~epimpute.evaluation.catalog`: the list of metrics and their properties.
- :mod:`~epimpute.evaluation.sources`, :mod:`~epimpute.evaluation.plots`,
  :mod:`~epimpute.evaluation.report`, :mod:`~epimpute.evaluation.run`: reading predictions,
  figures, the report folder, and :func:`evaluate`, which ties them together.
"""

from epimpute.evaluation.catalog import METRICS
from epimpute.evaluation.correlation import gwcorr, gwspear
from epimpute.evaluation.error import (
    mse,
    mseenh,
    msegene,
    mseprom,
    msevar,
    weighted_mse,
)
from epimpute.evaluation.peakmetrics import (
    auprc,
    corr_bg,
    corr_fg,
    mse_bg,
    mse_fg,
    peak_precision,
    peak_recall,
)
from epimpute.evaluation.peaks import PeakParams, Peaks, call_peaks
from epimpute.evaluation.run import evaluate
from epimpute.evaluation.scoring import TrackScorer, TrackScores
from epimpute.evaluation.topbins import (
    aucimp1,
    aucobs1,
    catch1imp,
    catch1obs,
    match1,
    mse1imp,
    mse1obs,
)

__all__ = [
    "METRICS",
    "PeakParams",
    "Peaks",
    "TrackScorer",
    "TrackScores",
    "aucimp1",
    "aucobs1",
    "auprc",
    "call_peaks",
    "catch1imp",
    "catch1obs",
    "corr_bg",
    "corr_fg",
    "evaluate",
    "gwcorr",
    "gwspear",
    "match1",
    "mse",
    "mse1imp",
    "mse1obs",
    "mse_bg",
    "mse_fg",
    "mseenh",
    "msegene",
    "mseprom",
    "msevar",
    "peak_precision",
    "peak_recall",
    "weighted_mse",
]
