"""Write the evaluation report folder: tables, JSON, PNG figures and one HTML page.

Files written into the report folder:

- ``metrics.tsv``: one row per score, columns ``model, cell_type, assay, metric, value,
  stratum`` (``cell_type`` holds the biosample, ``cell_type@individual`` when the truth has
  individuals; ``stratum`` is ``all`` for genome-wide scores, else a specificity stratum,
  see :mod:`epimpute.evaluation.strata`). Undefined scores are empty (NaN).
- ``metrics.json``: the same rows under ``"metrics"`` (NaN as null), with ``format``,
  ``format_version``, the run's settings under ``"info"`` and what made the report
  (:func:`epimpute.provenance.provenance`) under ``"created"``.
- ``summary.tsv``: the report's summary, one row per model and metric (``model, metric,
  mean, tracks, bins``): the mean over ``tracks`` scored tracks (those with a defined
  value), which hold ``bins`` bins together; the same rows are in ``metrics.json`` under
  ``"summary"``.
- ``strata.tsv``: bins per stratum of each scored track (``cell_type, assay, stratum, n_bins``).
- ``group_tests.tsv``, ``paired_tests.tsv``: Welch and paired t-tests
  (:mod:`epimpute.evaluation.stats`).
- ``bootstrap.tsv``, ``bootstrap_differences.tsv``: block-bootstrap confidence intervals of
  each model's scores and of the differences between models.
- ``calibration.tsv``: for imputations with a predicted sd beside them, the share of bins
  inside each central interval (:mod:`epimpute.evaluation.calibration`).
- ``plots/``: ``box_{metric}.png`` (per assay and model), ``specificity_{metric}.png``
  (metric vs number of cell types with a peak), ``locus_{n}.png`` (example loci),
  ``reliability.png`` (coverage of the predicted intervals).
- ``report.html``: a self-contained page (figures embedded) putting it together.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from epimpute import __version__
from epimpute.evaluation.calibration import CALIBRATION_COLUMNS, summarize_coverage
from epimpute.evaluation.catalog import METRICS
from epimpute.evaluation.plots import (
    Locus,
    locus_plot,
    metric_boxplot,
    reliability_diagram,
    save_png,
    specificity_curves,
)
from epimpute.evaluation.strata import ALL
from epimpute.evaluation.summary import SUMMARY_COLUMNS, summarize
from epimpute.provenance import KEY as PROVENANCE_KEY
from epimpute.provenance import provenance

__all__ = ["FORMAT", "FORMAT_VERSION", "METRICS_COLUMNS", "Evaluation",
           "write_report"]

FORMAT = "epimpute-evaluation"
FORMAT_VERSION = 1
METRICS_COLUMNS = ["model", "cell_type", "assay", "metric", "value", "stratum"]


@dataclass
class Evaluation:
    """Everything the report shows.

    Attributes
    ----------
    metrics
        Long table with :data:`METRICS_COLUMNS`.
    strata
        Bins per stratum: ``cell_type, assay, stratum, n_bins``.
    group_tests, paired_tests
        From :func:`epimpute.evaluation.stats.group_tests` / ``paired_model_tests``.
    intervals, differences
        From :func:`epimpute.evaluation.stats.bootstrap_intervals`, with ``cell_type`` and
        ``assay`` columns added.
    loci
        Example windows to plot.
    calibration
        Interval coverage of predicted sds (:data:`CALIBRATION_COLUMNS` rows).
    info
        Settings of the run (JSON-serialisable), shown in the report.
    """

    metrics: pd.DataFrame
    strata: pd.DataFrame = field(default_factory=pd.DataFrame)
    group_tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    paired_tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    intervals: pd.DataFrame = field(default_factory=pd.DataFrame)
    differences: pd.DataFrame = field(default_factory=pd.DataFrame)
    loci: Sequence[Locus] = ()
    info: dict[str, Any] = field(default_factory=dict)
    calibration: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=CALIBRATION_COLUMNS))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        return value.item() if hasattr(value, "item") else value

    return [{k: clean(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _present_metrics(metrics: pd.DataFrame) -> list[str]:
    present = set(metrics["metric"])
    return [m for m in METRICS if m in present] + sorted(present - set(METRICS))


def is_report(path: str | Path) -> bool:
    """Whether ``path`` is a report folder written by :func:`write_report`."""
    try:
        payload = json.loads((Path(path) / "metrics.json").read_text(encoding="utf-8"))
        return payload.get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def write_report(
    out: str | Path,
    evaluation: Evaluation,
    *,
    plots: bool = True,
    plot_metrics: Sequence[str] | None = None,
    dpi: int = 90,
) -> None:
    """Write the report files into the folder ``out`` (created if needed).

    Parameters
    ----------
    out
        Report folder.
    evaluation
        Tables, loci and settings to write.
    plots
        Draw the PNG figures (and embed them in the HTML page).
    plot_metrics
        Metrics to draw per-assay and specificity figures of (default: all present).
    dpi
        Resolution of the figures.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = evaluation.metrics[METRICS_COLUMNS]
    metrics.to_csv(out / "metrics.tsv", sep="\t", index=False, na_rep="")
    summary, _ = summarize(metrics, evaluation.strata, names=_present_metrics(metrics))
    summary.to_csv(out / "summary.tsv", sep="\t", index=False, na_rep="")
    created = provenance()
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "epimpute_version": __version__,
        PROVENANCE_KEY: created,
        "info": evaluation.info,
        "columns": METRICS_COLUMNS,
        "metrics": _records(metrics),
        "summary_columns": SUMMARY_COLUMNS,
        "summary": _records(summary),
    }
    (out / "metrics.json").write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    tables = {
        "strata.tsv": evaluation.strata,
        "group_tests.tsv": evaluation.group_tests,
        "paired_tests.tsv": evaluation.paired_tests,
        "bootstrap.tsv": evaluation.intervals,
        "bootstrap_differences.tsv": evaluation.differences,
        "calibration.tsv": evaluation.calibration,
    }
    for name, table in tables.items():
        table.to_csv(out / name, sep="\t", index=False, na_rep="")

    figures: dict[str, list[tuple[str, Path]]] = {"specificity": [], "box": [], "locus": [],
                                                  "reliability": []}
    if plots and not metrics.empty:
        folder = out / "plots"
        folder.mkdir(exist_ok=True)
        has_strata = metrics["stratum"].str.startswith("count=").any()
        drawn = _present_metrics(metrics)
        if plot_metrics is not None:
            drawn = [m for m in drawn if m in set(plot_metrics)]
        for metric in drawn:
            path = folder / f"box_{metric}.png"
            save_png(metric_boxplot(metrics, metric), path, dpi=dpi)
            figures["box"].append((metric, path))
            if has_strata:
                path = folder / f"specificity_{metric}.png"
                save_png(specificity_curves(metrics, metric), path, dpi=dpi)
                figures["specificity"].append((metric, path))
        for number, locus in enumerate(evaluation.loci, start=1):
            path = folder / f"locus_{number}.png"
            save_png(locus_plot(locus), path, dpi=dpi)
            caption = f"{locus.key}: {locus.note}" if locus.note else locus.key
            figures["locus"].append((caption, path))
        if not evaluation.calibration.empty:
            path = folder / "reliability.png"
            save_png(reliability_diagram(evaluation.calibration), path, dpi=dpi)
            figures["reliability"].append(("reliability diagram", path))
    (out / "report.html").write_text(_html(evaluation, metrics, summary, figures, created),
                                     encoding="utf-8")


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}.best{font-weight:bold;background:#e8f4e8}
img{max-width:100%;margin:.5em 0}details{margin:.5em 0}.note{color:#555;font-size:.9em}
"""


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _summary_table(summary: pd.DataFrame) -> str:
    """Mean over tracks per metric and model, best model highlighted, with the tracks and
    bins behind each column (and behind a value that covers fewer tracks)."""
    if summary.empty or not summary["tracks"].any():
        return "<p>No scores.</p>"
    models = list(dict.fromkeys(summary["model"]))
    cell = {(m, k): (v, n) for m, k, v, n, _ in summary.itertuples(index=False)}
    widest = summary.loc[summary.groupby("model")["tracks"].idxmax()].set_index("model")
    head = "".join(
        f"<th>{html.escape(m)}<br><span class='note'>{int(widest.at[m, 'tracks'])} tracks, "
        f"{int(widest.at[m, 'bins']):,} bins</span></th>"
        for m in models
    )
    rows = []
    for metric in dict.fromkeys(summary["metric"]):
        info = METRICS.get(metric)
        values = [cell[(m, metric)][0] for m in models]
        finite = [v for v in values if not math.isnan(v)]
        best = (max(finite) if info is None or info.higher_is_better else min(finite)) if finite else None
        cells = []
        for m, v in zip(models, values):
            n = cell[(m, metric)][1]
            fewer = f" <span class='note'>({n} tracks)</span>" if n < widest.at[m, "tracks"] else ""
            text = "" if math.isnan(v) else f"{v:.4g}"
            mark = " class='best'" if best is not None and v == best and len(models) > 1 else ""
            cells.append(f"<td{mark}>{text}{fewer}</td>")
        arrow = "" if info is None else (" &uarr;" if info.higher_is_better else " &darr;")
        rows.append(f"<tr><td>{html.escape(metric)}{arrow}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def _table(frame: pd.DataFrame, *, limit: int = 200) -> str:
    if frame is None or frame.empty:
        return "<p class='note'>None.</p>"
    shown = frame.head(limit)
    note = (
        f"<p class='note'>First {limit} of {len(frame)} rows; all are in the TSV file.</p>"
        if len(frame) > limit
        else ""
    )
    return shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0) + note


def _created(created: dict[str, str]) -> str:
    return (
        f"<p class='note'>Made by epimpute {html.escape(created['epimpute_version'])} at "
        f"{html.escape(created['utc'])} with <code>{html.escape(created['command'])}</code>.</p>"
    )


def _html(
    evaluation: Evaluation,
    metrics: pd.DataFrame,
    summary: pd.DataFrame,
    figures: dict[str, list[tuple[str, Path]]],
    created: dict[str, str],
) -> str:
    info = evaluation.info
    models = list(dict.fromkeys(metrics["model"]))
    n_tracks = metrics[["cell_type", "assay"]].drop_duplicates().shape[0]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>epimpute evaluation</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>epimpute evaluation</h1>",
        (
            f"<p>{n_tracks} observed track(s) scored for {len(models)} model(s): "
            f"{html.escape(', '.join(models))}. Signal is compared on the arcsinh scale of -log10 p.</p>"
        ),
        _created(created),
    ]
    if info:
        settings = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in info.items()
        )
        parts.append(f"<details><summary>Settings</summary><table>{settings}</table></details>")
    parts += [
        "<h2>Summary</h2>",
        (
            "<p class='note'>Mean over the scored tracks of each model (the tracks and bins they hold "
            "are under its name; a metric defined on fewer tracks says so); each track is scored over "
            "all its bins, or the subset the metric's definition names. Best model per metric "
            "highlighted; the table is also in summary.tsv.</p>"
        ),
        _summary_table(summary),
    ]
    if figures["specificity"]:
        parts += [
            "<h2>Performance by cell-type specificity</h2>",
            (
                "<p class='note'>Each bin is grouped by the number of cell types of its assay with an observed "
                "peak over it: 0 = no peak anywhere, 1 = a peak specific to one cell type, n = a peak shared by "
                "all. Points are means over the assay's cell types (error bars: one standard error).</p>"
            ),
        ]
        parts += [_image(path, metric) for metric, path in figures["specificity"]]
    if not evaluation.calibration.empty:
        parts += [
            "<h2>Calibration of the predicted sd</h2>",
            ("<p class='note'>Share of bins whose observed value lies inside the central 50/80/95% "
             "interval around the predicted mean (arcsinh scale; the half-widths in predicted sds "
             "that imputation.json records, else a Gaussian's), mean over tracks, overall and per "
             "specificity stratum; a calibrated model matches the nominal share. Every level is in "
             "calibration.tsv.</p>"),
            _table(summarize_coverage(evaluation.calibration)),
        ]
        parts += [_image(path, name) for name, path in figures["reliability"]]
    if figures["box"]:
        parts.append("<h2>Per-assay scores</h2>")
        parts += [_image(path, metric) for metric, path in figures["box"]]
    if figures["locus"]:
        parts.append(
            "<h2>Example loci</h2><p class='note'>Windows centred on a cell-type-specific observed peak; "
            "for a model with a predicted sd, also its best, median and worst 20-kb windows by MSE among "
            "those holding an observed peak, the mean drawn in its +-1 sd band over the observed signal "
            "(grey).</p>"
        )
        parts += [f"<figure>{_image(path, text)}<figcaption class='note'>{html.escape(text)}"
                  "</figcaption></figure>" for text, path in figures["locus"]]
    paired = evaluation.paired_tests
    if paired is not None and not paired.empty:
        parts += [
            "<h2>Model comparisons</h2>",
            "<p class='note'>Paired t-tests over tracks, all bins (all strata are in paired_tests.tsv).</p>",
            _table(paired[paired["stratum"] == ALL]),
        ]
    if evaluation.differences is not None and not evaluation.differences.empty:
        parts += [
            "<details><summary>Block-bootstrap intervals of model differences</summary>",
            _table(evaluation.differences),
            "</details>",
        ]
    groups = evaluation.group_tests
    if groups is not None and not groups.empty:
        parts += [
            "<h2>Group tests</h2>",
            (
                "<p class='note'>Welch t-tests between groups of tracks (assay vs other assays, narrow vs "
                "broad, activating vs repressive marks), all bins.</p>"
            ),
            _table(groups[(groups["stratum"] == ALL) & (groups["grouping"] != "assay")]),
        ]
    rows = "".join(
        f"<tr><td>{m.name}</td><td>{m.family}</td><td>{'higher' if m.higher_is_better else 'lower'}</td>"
        f"<td>{html.escape(m.description)}</td></tr>"
        for m in METRICS.values()
    )
    parts += [
        "<h2>Metric definitions</h2>",
        f"<table><tr><th>metric</th><th>set</th><th>better</th><th>definition</th></tr>{rows}</table>",
        _created(created),
        "</body></html>",
    ]
    return "\n".join(parts)
