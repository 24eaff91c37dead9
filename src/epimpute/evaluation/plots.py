"""Figures of the evaluation report, drawn with matplotlib's object API.

Every function returns a :class:`matplotlib.figure.Figure` built without ``pyplot``, so no
global backend or state is touched; :func:`save_png` renders it with the Agg canvas.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from epimpute.evaluation.catalog import METRICS
from epimpute.evaluation.strata import ALL

__all__ = ["Locus", "locus_plot", "metric_boxplot", "reliability_diagram", "save_png",
           "specificity_curves"]


def _figure(width: float, height: float):  # type: ignore[no-untyped-def]
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _colors(n: int) -> list:  # type: ignore[type-arg]
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _label(metric: str) -> str:
    info = METRICS.get(metric)
    if info is None:
        return metric
    arrow = "higher is better" if info.higher_is_better else "lower is better"
    return f"{metric} ({arrow})"


def _box(ax, position: float, values: NDArray[np.floating], *, width: float, color: object) -> None:  # type: ignore[no-untyped-def]
    """Draw one box (quartiles, median, whiskers at the last points within 1.5 IQR)."""
    from matplotlib.patches import Rectangle

    q1, median, q3 = np.percentile(values, [25, 50, 75])
    reach = 1.5 * (q3 - q1)
    low = values[values >= q1 - reach].min()
    high = values[values <= q3 + reach].max()
    left = position - width / 2
    ax.add_patch(
        Rectangle((left, q1), width, q3 - q1, facecolor=color, alpha=0.45, edgecolor="black", lw=0.8)
    )
    ax.hlines(median, left, left + width, color="black", lw=1.2)
    ax.vlines([position, position], [low, q3], [q1, high], color="black", lw=0.8)
    ax.hlines([low, high], position - width / 4, position + width / 4, color="black", lw=0.8)


def metric_boxplot(metrics: pd.DataFrame, metric: str, *, stratum: str = ALL):  # type: ignore[no-untyped-def]
    """Boxes of one metric over cell types, per assay and model.

    Parameters
    ----------
    metrics
        Long table with columns ``model, cell_type, assay, metric, value, stratum``.
    metric
        Metric to draw.
    stratum
        Stratum to draw.

    Returns
    -------
    matplotlib.figure.Figure
    """
    sub = metrics[(metrics["metric"] == metric) & (metrics["stratum"] == stratum)].dropna(subset=["value"])
    models = list(dict.fromkeys(metrics["model"]))
    assays = sorted(sub["assay"].unique())
    fig = _figure(max(4.0, 1.2 * len(assays) * max(1, len(models)) ** 0.5 + 2), 3.6)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(models))
    rng = np.random.default_rng(0)
    for m, (model, color) in enumerate(zip(models, _colors(len(models)))):
        data = [sub[(sub["model"] == model) & (sub["assay"] == a)]["value"].to_numpy() for a in assays]
        positions = np.arange(len(assays)) - 0.4 + width * (m + 0.5)
        for position, values in zip(positions, data):
            if values.size:
                _box(ax, position, values, width=width * 0.85, color=color)
                jitter = rng.uniform(-width / 4, width / 4, values.size)
                ax.scatter(position + jitter, values, s=9, color=color, zorder=3)
        ax.plot([], [], color=color, lw=6, alpha=0.6, label=model)
    ax.set_xticks(np.arange(len(assays)), assays, rotation=30 if len(assays) > 6 else 0)
    ax.set_ylabel(_label(metric))
    ax.set_title(f"{metric} per assay" + ("" if stratum == ALL else f" ({stratum})"))
    if models:
        ax.legend(frameon=False, fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return fig


def specificity_curves(metrics: pd.DataFrame, metric: str):  # type: ignore[no-untyped-def]
    """Mean of one metric against the specificity count, one panel per assay.

    The x axis is the number of cell types with an observed peak over the bin (0: no peak,
    1: specific to one cell type, n: shared by all); error bars are one standard error over
    the assay's cell types. The x ticks are whole numbers.

    Parameters
    ----------
    metrics
        Long table with columns ``model, cell_type, assay, metric, value, stratum``.
    metric
        Metric to draw.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.ticker import MaxNLocator

    sub = metrics[(metrics["metric"] == metric) & metrics["stratum"].str.startswith("count=")].dropna(
        subset=["value"]
    )
    sub = sub.assign(count=sub["stratum"].str.slice(len("count=")).astype(int))
    models = list(dict.fromkeys(metrics["model"]))
    assays = sorted(sub["assay"].unique()) or ["(none)"]
    columns = min(len(assays), 5)
    rows = -(-len(assays) // columns)
    fig = _figure(3.0 * columns + 0.5, 2.6 * rows + 0.4)
    axes = fig.subplots(rows, columns, squeeze=False, sharey=True)
    for index, assay in enumerate(assays):
        ax = axes[index // columns][index % columns]
        for model, color in zip(models, _colors(len(models))):
            rows_ = sub[(sub["model"] == model) & (sub["assay"] == assay)]
            if rows_.empty:
                continue
            grouped = rows_.groupby("count")["value"]
            mean, sem = grouped.mean(), grouped.sem().fillna(0.0)
            ax.errorbar(
                mean.index,
                mean.to_numpy(),
                yerr=sem.to_numpy(),
                color=color,
                marker="o",
                ms=3,
                capsize=2,
                label=model,
            )
        ax.set_title(assay, fontsize="medium")
        ax.set_xlabel("cell types with a peak")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # a count: whole ticks only
        ax.grid(alpha=0.3)
    for index in range(len(assays), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    axes[0][0].set_ylabel(_label(metric))
    if axes[0][0].get_legend_handles_labels()[0]:
        axes[0][0].legend(frameon=False, fontsize="small")
    fig.suptitle(f"{metric} by cell-type specificity of the bin")
    return fig


@dataclass
class Locus:
    """A window of one track for the example-locus plot.

    Attributes
    ----------
    key
        Track key ``biosample:assay``.
    contig, start_bin, bin_size
        Where the window lies.
    truth
        Observed signal of the window (arcsinh scale), shape ``(n,)``.
    peaks
        Boolean array of shape ``(n,)``: bins in observed peaks.
    specificity
        Specificity count per bin, shape ``(n,)``, or None.
    predictions
        Model name to imputed signal of the window, shape ``(n,)``.
    note
        Text added to the title (for example why the window was chosen).
    bands
        Model name to the predicted sd of the window, shape ``(n,)``: that model's panel
        shows its mean as a line with a +-1 sd band over the observed signal.
    """

    key: str
    contig: str
    start_bin: int
    bin_size: int
    truth: NDArray[np.floating]
    peaks: NDArray[np.bool_]
    specificity: NDArray[np.integer] | None = None
    predictions: dict[str, NDArray[np.floating]] = field(default_factory=dict)
    note: str = ""
    bands: dict[str, NDArray[np.floating]] = field(default_factory=dict)


def _spans(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def locus_plot(locus: Locus):  # type: ignore[no-untyped-def]
    """Observed and imputed signal of one window, observed peaks shaded.

    Parameters
    ----------
    locus
        The window and its signals.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n_panels = 1 + len(locus.predictions)
    fig = _figure(9.0, 1.0 + 1.1 * n_panels)
    axes = fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0]
    positions = (locus.start_bin + np.arange(locus.truth.size)) * locus.bin_size / 1e3
    colors = ["black", *_colors(len(locus.predictions))]
    top = max(
        [float(np.max(locus.truth, initial=0))]
        + [float(np.max(p + locus.bands.get(m, 0), initial=0))
           for m, p in locus.predictions.items()]
    )
    series = [("observed", locus.truth), *locus.predictions.items()]
    for ax, (name, values), color in zip(axes, series, colors):
        for first, end in _spans(locus.peaks):
            ax.axvspan(
                positions[first], positions[min(end, positions.size - 1)], color="gold", alpha=0.25, lw=0
            )
        band = locus.bands.get(name)
        if band is None:
            ax.fill_between(positions, values, step="mid", color=color, alpha=0.7, lw=0)
        else:  # observed underneath, the mean as a line in its +-1 sd band
            ax.fill_between(positions, locus.truth, step="mid", color="black", alpha=0.3, lw=0)
            ax.fill_between(positions, np.maximum(values - band, 0), values + band, step="mid",
                            color=color, alpha=0.3, lw=0)
            ax.step(positions, values, where="mid", color=color, lw=0.9)
        ax.set_ylim(0, top * 1.05 if top > 0 else 1)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize="small")
        ax.spines[["top", "right"]].set_visible(False)
    axes[-1].set_xlabel(f"{locus.contig} position (kb)")
    fig.suptitle(f"{locus.key}: observed peaks shaded" + (f" ({locus.note})" if locus.note else ""))
    return fig


def reliability_diagram(calibration: pd.DataFrame,
                        strata: tuple[str, ...] = (ALL, "high_specificity")):  # type: ignore[no-untyped-def]
    """Observed vs nominal coverage of the predicted central intervals, per model.

    Parameters
    ----------
    calibration
        Rows ``model, cell_type, assay, stratum, level, coverage, n_bins`` (see
        :mod:`epimpute.evaluation.calibration`); points are means over tracks.
    strata
        Strata drawn, one line style each (solid first).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _figure(4.6, 4.0)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", label="calibrated")
    models = list(dict.fromkeys(calibration["model"]))
    styles = ["-", "--", "-.", ":"]
    for model, color in zip(models, _colors(len(models))):
        rows = calibration[calibration["model"] == model]
        for stratum, style in zip(strata, styles):
            curve = (rows[rows["stratum"] == stratum].groupby("level")["coverage"].mean()
                     .dropna())
            if curve.empty:
                continue
            ax.plot(curve.index, curve.to_numpy(), style, marker="o", ms=3, color=color,
                    label=f"{model}, {stratum}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("nominal coverage of the central interval")
    ax.set_ylabel("observed share of bins inside")
    ax.legend(fontsize="small", loc="upper left")
    ax.set_title("Calibration of the predicted sd")
    return fig


def save_png(fig, path: str | os.PathLike[str], *, dpi: int = 100) -> None:  # type: ignore[no-untyped-def]
    """Render ``fig`` to a PNG file with the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi, format="png")
