"""Figures are built without touching matplotlib's global state."""

import sys

import numpy as np
import pandas as pd

from epimpute.evaluation.plots import (
    Locus,
    locus_plot,
    metric_boxplot,
    save_png,
    specificity_curves,
)


def _metrics():
    rows = []
    for model in ("a", "b"):
        for assay in ("H3K4me3", "H3K27me3"):
            for cell in ("c1", "c2"):
                for stratum, value in (("all", 0.5), ("count=0", 0.1), ("count=1", 0.2), ("count=2", 0.4)):
                    rows.append((model, cell, assay, "gwcorr", value + 0.1 * (model == "b"), stratum))
    return pd.DataFrame(rows, columns=["model", "cell_type", "assay", "metric", "value", "stratum"])


def test_figures_render_to_png(tmp_path):
    had_pyplot = "matplotlib.pyplot" in sys.modules
    metrics = _metrics()
    locus = Locus(
        "c1:H3K4me3",
        "chr1",
        100,
        25,
        np.linspace(0, 3, 50),
        np.arange(50) > 30,
        specificity=np.ones(50, dtype=np.uint16),
        predictions={"a": np.ones(50), "b": np.zeros(50)},
        note="centre peak observed in 1 of 2 cell types",
    )
    for name, fig in (
        ("box", metric_boxplot(metrics, "gwcorr")),
        ("curve", specificity_curves(metrics, "gwcorr")),
        ("locus", locus_plot(locus)),
    ):
        save_png(fig, tmp_path / f"{name}.png", dpi=40)
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert had_pyplot or "matplotlib.pyplot" not in sys.modules


def test_specificity_axis_shows_whole_counts_only():
    # counts 0..2 would get 0.5-step ticks from matplotlib's default locator
    fig = specificity_curves(_metrics(), "gwcorr")
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert len(ticks) >= 2
        assert all(float(t).is_integer() for t in ticks)
