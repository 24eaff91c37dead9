"""The report folder: tables, JSON, figures and the self-contained HTML page."""

import json

import numpy as np
import pandas as pd

from epimpute.evaluation.report import METRICS_COLUMNS, Evaluation, write_report


def _evaluation():
    rows = [
        ("m1", "c1", "H3K4me3", "mse", 0.5, "all"),
        ("m1", "c1", "H3K4me3", "gwcorr", np.nan, "all"),
        ("m1", "c1", "H3K4me3", "mse", 0.7, "count=1"),
        ("m2", "c1", "H3K4me3", "mse", 0.4, "all"),
        ("m2", "c1", "H3K4me3", "mse", 0.6, "count=1"),
    ]
    metrics = pd.DataFrame(rows, columns=METRICS_COLUMNS)
    return Evaluation(
        metrics=metrics,
        strata=pd.DataFrame({"cell_type": ["c1"], "assay": ["H3K4me3"], "stratum": ["all"], "n_bins": [10]}),
        info={"truth": "store.zarr"},
    )


def test_writes_every_file(tmp_path):
    write_report(tmp_path / "rep", _evaluation(), dpi=30)
    out = tmp_path / "rep"
    table = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert list(table.columns) == ["model", "cell_type", "assay", "metric", "value", "stratum"]
    assert table["value"].isna().sum() == 1
    payload = json.loads((out / "metrics.json").read_text())
    assert payload["format"] == "epimpute-evaluation" and payload["format_version"] == 1
    assert payload["metrics"][1]["value"] is None and payload["info"]["truth"] == "store.zarr"
    assert {p.name for p in (out / "plots").iterdir()} == {
        "box_mse.png",
        "box_gwcorr.png",
        "specificity_mse.png",
        "specificity_gwcorr.png",
    }
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4
    assert "<td class='best'>0.4</td>" in page  # lower MSE is better
    for name in (
        "strata.tsv",
        "group_tests.tsv",
        "paired_tests.tsv",
        "bootstrap.tsv",
        "bootstrap_differences.tsv",
    ):
        assert (out / name).exists()


def test_without_plots(tmp_path):
    write_report(tmp_path, _evaluation(), plots=False)
    assert not (tmp_path / "plots").exists()
    assert "data:image" not in (tmp_path / "report.html").read_text()
