"""Every metric the evaluation reports: name, family, direction and what it needs.

The names are the ``metric`` column of ``metrics.tsv``. "Streaming" metrics are exact from
running sums over contigs; "full pass" metrics need the whole track (all contigs) at once and
are computed from the concatenated track of the one track being scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["METRICS", "MetricInfo", "metric_names"]


@dataclass(frozen=True)
class MetricInfo:
    """Description of one metric.

    Attributes
    ----------
    name
        Column value in ``metrics.tsv``.
    family
        ``"challenge"`` (ENCODE Imputation Challenge) or ``"edice"``.
    higher_is_better
        Direction of improvement.
    full_pass
        True when the whole track is needed at once (ranks, top percent).
    needs
        Extra input: ``"genes"``, ``"enhancers"``, ``"variance"`` (two or more cell types of
        the assay in the truth), or ``""``.
    bootstrap
        True when block-bootstrap confidence intervals are reported for it.
    description
        One line for the report.
    """

    name: str
    family: Literal["challenge", "edice"]
    higher_is_better: bool
    full_pass: bool
    needs: Literal["", "genes", "enhancers", "variance"]
    bootstrap: bool
    description: str


def _m(
    name: str,
    family: Literal["challenge", "edice"],
    *,
    higher: bool,
    full: bool,
    needs: Literal["", "genes", "enhancers", "variance"],
    boot: bool,
    text: str,
) -> MetricInfo:
    return MetricInfo(name, family, higher, full, needs, boot, text)


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        _m("mse", "challenge", higher=False, full=False,
           needs="", boot=True, text="mean squared error over all bins"),
        _m("gwcorr", "challenge", higher=True, full=False,
           needs="", boot=True, text="Pearson correlation over all bins"),
        _m("gwspear", "challenge", higher=True, full=True,
           needs="", boot=False, text="Spearman correlation over all bins"),
        _m("mse1obs", "challenge", higher=False, full=True,
           needs="", boot=False, text="MSE over the top 1% observed bins"),
        _m("mse1imp", "challenge", higher=False, full=True,
           needs="", boot=False, text="MSE over the top 1% imputed bins"),
        _m("mseprom", "challenge", higher=False, full=False,
           needs="genes", boot=True, text="MSE over the 2 kb upstream of gene starts"),
        _m("msegene", "challenge", higher=False, full=False,
           needs="genes", boot=True, text="MSE over gene bodies"),
        _m("mseenh", "challenge", higher=False, full=False,
           needs="enhancers", boot=True, text="MSE over enhancers"),
        _m("msevar", "challenge", higher=False, full=False,
           needs="variance", boot=True, text="squared error weighted by the assay's cross-cell-type variance"),
        _m("match1", "challenge", higher=True, full=True,
           needs="", boot=False, text="bins in both the top 1% observed and top 1% imputed"),
        _m("catch1obs", "challenge", higher=True, full=True,
           needs="", boot=False, text="top 1% observed bins within the top 5% imputed"),
        _m("catch1imp", "challenge", higher=True, full=True,
           needs="", boot=False, text="top 1% imputed bins within the top 5% observed"),
        _m("aucobs1", "challenge", higher=True, full=True,
           needs="", boot=False, text="ROC-AUC of the imputed signal for the top 1% observed bins"),
        _m("aucimp1", "challenge", higher=True, full=True,
           needs="", boot=False, text="ROC-AUC of the observed signal for the top 1% imputed bins"),
        _m("mse_fg", "edice", higher=False, full=False,
           needs="", boot=True, text="MSE over bins in observed peaks"),
        _m("mse_bg", "edice", higher=False, full=False,
           needs="", boot=True, text="MSE over bins outside observed peaks"),
        _m("corr_fg", "edice", higher=True, full=False,
           needs="", boot=True, text="Pearson correlation over bins in observed peaks"),
        _m("corr_bg", "edice", higher=True, full=False,
           needs="", boot=True, text="Pearson correlation over bins outside observed peaks"),
        _m("auprc", "edice", higher=True, full=True,
           needs="", boot=False, text="average precision of the imputed signal for observed-peak bins"),
        _m("peak_precision", "edice", higher=True, full=False,
           needs="", boot=False, text="fraction of imputed peaks overlapping an observed peak"),
        _m("peak_recall", "edice", higher=True, full=False,
           needs="", boot=False, text="fraction of observed peaks overlapping an imputed peak"),
    )
}
"""All metrics, in report order."""


def metric_names(*, full_pass: bool = True) -> list[str]:
    """Metric names in report order; without the full-pass ones when ``full_pass`` is False."""
    return [name for name, info in METRICS.items() if full_pass or not info.full_pass]
