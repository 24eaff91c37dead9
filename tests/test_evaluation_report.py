"""The report folder: tables, JSON, figures and the self-contained HTML page."""

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

import epimpute
from epimpute.evaluation.report import (
    METRICS_COLUMNS,
    Evaluation,
    write_report,
)
from epimpute.evaluation.summary import SUMMARY_COLUMNS
from epimpute.provenance import recording_command


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


def test_summary_states_the_tracks_and_bins_behind_each_mean(tmp_path):
    rows = [
        ("m1", "c1", "H3K4me3", "mse", 0.5, "all"),
        ("m1", "c2", "H3K4me3", "mse", 0.3, "all"),
        ("m1", "c1", "H3K4me3", "gwcorr", np.nan, "all"),
        ("m1", "c2", "H3K4me3", "gwcorr", 0.8, "all"),
        ("m1", "c2", "H3K4me3", "mse", 9.0, "count=1"),  # not genome-wide: left out
    ]
    strata = pd.DataFrame(
        {"cell_type": ["c1", "c2", "c2"], "assay": ["H3K4me3"] * 3,
         "stratum": ["all", "all", "count=1"], "n_bins": [10, 30, 5]}
    )
    evaluation = Evaluation(metrics=pd.DataFrame(rows, columns=METRICS_COLUMNS), strata=strata)
    with recording_command(["epimpute", "evaluate", "--out", "my report"]):
        write_report(tmp_path / "rep", evaluation, plots=False)
    summary = pd.read_csv(tmp_path / "rep" / "summary.tsv", sep="\t")
    assert list(summary.columns) == SUMMARY_COLUMNS
    mse = summary[summary["metric"] == "mse"].iloc[0]
    assert (mse["model"], mse["tracks"], mse["bins"]) == ("m1", 2, 40)
    assert mse["mean"] == pytest.approx(0.4)
    corr = summary[summary["metric"] == "gwcorr"].iloc[0]
    assert (corr["tracks"], corr["bins"], corr["mean"]) == (1, 30, pytest.approx(0.8))
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "2 tracks, 40 bins" in page and "(1 tracks)" in page
    payload = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert payload["summary"][0] == {"model": "m1", "metric": "mse", "mean": pytest.approx(0.4),
                                     "tracks": 2, "bins": 40}


def test_report_records_version_command_and_time(tmp_path):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    with recording_command(["epimpute", "evaluate", "--out", "my report"]):
        write_report(tmp_path / "rep", _evaluation(), plots=False)
    created = json.loads((tmp_path / "rep" / "metrics.json").read_text())["created"]
    assert created["epimpute_version"] == epimpute.__version__
    assert created["command"] == "epimpute evaluate --out 'my report'"
    made = datetime.strptime(created["utc"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before <= made <= datetime.now(timezone.utc)
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "epimpute evaluate --out &#x27;my report&#x27;" in page
    assert created["utc"] in page
    # outside the command line, the report says it was made from Python
    write_report(tmp_path / "api", _evaluation(), plots=False)
    assert json.loads((tmp_path / "api" / "metrics.json").read_text())["created"]["command"] == (
        "python API")


def test_plot_metrics_limits_the_figures_to_those_metrics(tmp_path):
    write_report(tmp_path / "rep", _evaluation(), plot_metrics=["mse"], dpi=30)
    assert {p.name for p in (tmp_path / "rep" / "plots").iterdir()} == {
        "box_mse.png", "specificity_mse.png"}
    # the tables still hold every metric
    assert set(pd.read_csv(tmp_path / "rep" / "summary.tsv", sep="\t")["metric"]) == {
        "mse", "gwcorr"}
