"""evaluate(): a tiny store and two models end to end, checked against direct computation."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from epimpute.errors import InputError
from epimpute.evaluation.run import evaluate
from epimpute.store import Track, create_store

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CELLS = ("c1", "c2", "c3")
ASSAYS = ("H3K4me3", "H3K27me3")
CONTIGS = {"chrA": 60_000, "chrB": 40_010}  # chrB ends in a partial bin
BIN = 25


def _signal(rng, n):
    return np.arcsinh(np.convolve(rng.exponential(1.0, n), np.ones(12) / 3, "same")).astype(np.float32)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    rng = np.random.default_rng(21)
    tracks = [Track(c, a) for c in CELLS for a in ASSAYS]
    truth = {
        (t.key, contig): _signal(rng, -(-length // BIN)) for t in tracks for contig, length in CONTIGS.items()
    }
    writer = create_store(root / "truth.zarr", tracks=tracks, contigs=CONTIGS, bin_size=BIN)
    for row, track in enumerate(tracks):
        for contig in CONTIGS:
            writer.write(row, contig, truth[(track.key, contig)])
    for model, noise in (("good", 0.2), ("poor", 1.0)):
        folder = root / model
        folder.mkdir()
        for track in tracks:
            np.savez(
                folder / f"{track.biosample}.{track.assay}.npz",
                **{
                    contig: np.clip(
                        truth[(track.key, contig)] + rng.normal(0, noise, truth[(track.key, contig)].size),
                        0,
                        None,
                    ).astype(np.float32)
                    for contig in CONTIGS
                },
            )
    (root / "genes.bed").write_text(
        "chrA\t1000\t5000\tg1\t.\t+\nchrB\t100\t900\tg2\t.\t-\nchrQ\t0\t10\tg3\t.\t+\n"
    )
    (root / "enh.bed").write_text("chrA\t20000\t20600\te1\t0\t.\t20000\t20600\t0,0,0\t1\t600\t0\n")
    return root, truth


def _run(root, out, **options):
    options.setdefault("plots", False)
    options.setdefault("bootstrap", 20)
    return evaluate(root / "truth.zarr", {"good": root / "good", "poor": root / "poor"}, out, **options)


def test_report_and_values(setup):
    root, truth = setup
    out = root / "report"
    metrics = _run(root, out, genes=root / "genes.bed", enhancers=root / "enh.bed", plots=True)
    assert list(metrics.columns) == ["model", "cell_type", "assay", "metric", "value", "stratum"]
    assert set(metrics["model"]) == {"good", "poor"}
    assert metrics[["cell_type", "assay"]].drop_duplicates().shape[0] == 6
    assert set(metrics["stratum"]) == {
        "all",
        "count=0",
        "count=1",
        "count=2",
        "count=3",
        "high_specificity",
        "low_specificity",
        "tss<1kb",
        "tss1-5kb",
        "tss5-20kb",
        "tss20-100kb",
        "tss>=100kb",
    }
    on_disk = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert len(on_disk) == len(metrics)
    assert len(json.loads((out / "metrics.json").read_text())["metrics"]) == len(metrics)
    assert (out / "plots" / "specificity_gwcorr.png").exists() and (out / "plots" / "locus_1.png").exists()
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert not list(root.glob("*.tmp-*"))

    def value(model, metric, stratum="all"):
        rows = metrics[
            (metrics.model == model)
            & (metrics.cell_type == "c2")
            & (metrics.assay == "H3K27me3")
            & (metrics.metric == metric)
            & (metrics.stratum == stratum)
        ]
        return float(rows["value"].iloc[0])

    prediction = {c: np.load(root / "good" / "c2.H3K27me3.npz")[c] for c in CONTIGS}
    yt = np.concatenate([truth[("c2:H3K27me3", c)] for c in CONTIGS]).astype(np.float64)
    yp = np.concatenate([prediction[c] for c in CONTIGS]).astype(np.float64)
    assert value("good", "mse") == pytest.approx(np.mean((yt - yp) ** 2), rel=1e-6)
    cells = np.stack([np.concatenate([truth[(f"{c}:H3K27me3", k)] for k in CONTIGS]) for c in CELLS])
    variance = np.var(cells.astype(np.float64), axis=0)
    assert value("good", "msevar") == pytest.approx(
        np.sum(variance * (yt - yp) ** 2) / variance.sum(), rel=1e-6
    )
    # chrA gene body bins 40..200; chrB '-' gene body bins 4..36 (offset by chrA's 2400 bins)
    genes = np.r_[40:201, 2400 + 4 : 2400 + 37]
    assert value("good", "msegene") == pytest.approx(np.mean((yt[genes] - yp[genes]) ** 2), rel=1e-6)
    promoters = np.r_[0:40, 2400 + 37 : 2400 + 117]  # 80 bins upstream, clipped at chrA's start
    assert value("good", "mseprom") == pytest.approx(np.mean((yt[promoters] - yp[promoters]) ** 2), rel=1e-6)
    assert value("good", "mseenh") == pytest.approx(np.mean((yt[800:825] - yp[800:825]) ** 2), rel=1e-6)
    assert value("good", "gwcorr") > value("poor", "gwcorr")
    # TSSs: chrA 1000 (+ gene start), chrB 899 (- gene end - 1); bin centres 25k + 12.5
    near = np.r_[0:80, 2400 + 0 : 2400 + 76]  # centres within 1 kb: < 2000 and < 1899
    assert value("good", "mse", "tss<1kb") == pytest.approx(np.mean((yt[near] - yp[near]) ** 2),
                                                           rel=1e-6)
    far = np.r_[840:2400, 2400 + 836 : 2400 + 1601]  # centres >= 21000 and >= 20899
    assert value("good", "gwcorr", "tss20-100kb") == pytest.approx(
        np.corrcoef(yt[far], yp[far])[0, 1], rel=1e-6)
    assert np.isnan(value("good", "mse", "tss>=100kb"))  # no bin that far

    paired = pd.read_csv(out / "paired_tests.tsv", sep="\t")
    row = paired[(paired.metric == "mse") & (paired.stratum == "all")].iloc[0]
    assert (row.n, row.better) == (6, "good")
    boot = pd.read_csv(out / "bootstrap.tsv", sep="\t")
    assert {"model", "cell_type", "assay", "metric", "ci_low", "ci_high"} <= set(boot.columns)
    strata = pd.read_csv(out / "strata.tsv", sep="\t")
    assert strata[strata.stratum == "all"]["n_bins"].tolist() == [2400 + 1601] * 6
    assert strata[strata.stratum == "tss<1kb"]["n_bins"].tolist() == [80 + 76] * 6


def test_targets_and_errors(setup):
    root, _ = setup
    metrics = _run(root, root / "one", targets=["c1:H3K4me3"], bootstrap=0, full_pass=False)
    assert set(zip(metrics.cell_type, metrics.assay)) == {("c1", "H3K4me3")}
    assert "gwspear" not in set(metrics.metric)
    with pytest.raises(InputError, match="already exists"):
        _run(root, root / "one", targets=["c1:H3K4me3"])
    _run(root, root / "one", targets=["c1:H3K4me3"], bootstrap=0, overwrite=True)
    with pytest.raises(InputError, match="no observed track"):
        _run(root, root / "two", targets=["c9:H3K4me3"])
    empty = root / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="none of the prediction folders"):
        evaluate(root / "truth.zarr", {"empty": empty}, root / "three")
    with pytest.raises(InputError, match="no prediction for target"):
        evaluate(
            root / "truth.zarr",
            {"good": root / "good", "empty": empty},
            root / "four",
            targets=["c1:H3K4me3"],
        )
    assert not list(root.glob("*.tmp-*"))
    assert not (root / "two").exists()


@pytest.mark.skipif(not (SHARED / "roadmap_pilot").is_dir(), reason="../shared/data is absent")
def test_real_pilot_tracks(tmp_path):
    """Three real H3K4me3 tracks (the first 200k bins): copying another cell scores worse than itself."""
    n = 200_000
    cells = ("E003", "E017", "E116")
    data = {
        c: np.load(SHARED / "roadmap_pilot" / f"{c}.H3K4me3.pilot.arcsinh.npz")["arr_0"][:n] for c in cells
    }
    tracks = [Track(c, "H3K4me3") for c in cells]
    writer = create_store(tmp_path / "pilot.zarr", tracks=tracks, contigs={"pilot": n * BIN}, bin_size=BIN)
    for row, cell in enumerate(cells):
        writer.write(row, "pilot", data[cell])
    (tmp_path / "copy").mkdir()
    np.savez(tmp_path / "copy" / "E003.H3K4me3.npz", pilot=data["E017"])
    metrics = evaluate(
        tmp_path / "pilot.zarr", {"copy": tmp_path / "copy"}, tmp_path / "out", plots=False, bootstrap=0
    )
    scores = metrics[metrics.stratum == "all"].set_index("metric")["value"]
    assert 0 < scores["gwcorr"] < 1 and 0.5 < scores["aucobs1"] < 1
    by_count = metrics[metrics.metric == "gwcorr"].set_index("stratum")["value"]
    assert by_count["count=3"] > by_count["count=1"]  # shared peaks are easier to copy than specific ones


# --- what --overwrite may replace, and what the summary says ------------------------------


def _cli_evaluate(root, out, *extra):
    from epimpute.cli import main

    return main(["-q", "evaluate", "--truth", str(root / "truth.zarr"), "--pred",
                 f"good={root / 'good'}", "--out", str(out), "--bootstrap", "0", "--no-plots",
                 "--target", "c1:H3K4me3", *extra])


@pytest.mark.parametrize("name", [".", "truth.zarr", "good", "notes"])
def test_overwrite_never_replaces_inputs_the_working_directory_or_foreign_folders(
        setup, name, monkeypatch, capsys):
    root, _ = setup
    (root / "notes").mkdir(exist_ok=True)
    (root / "notes" / "keep.txt").write_text("keep me")
    monkeypatch.chdir(root)
    before = sorted(p.name for p in root.iterdir())
    inside = sorted(p.name for p in (root / name).iterdir())
    assert _cli_evaluate(root, Path(name), "--overwrite") == 2
    assert "refusing" in capsys.readouterr().err or name == "notes"
    assert sorted(p.name for p in root.iterdir()) == before
    assert sorted(p.name for p in (root / name).iterdir()) == inside


def test_overwrite_replaces_a_report(setup, capsys):
    root, _ = setup
    out = root / "report-again"
    assert _cli_evaluate(root, out) == 0
    (out / "extra.txt").write_text("old")
    assert _cli_evaluate(root, out) == 2
    assert "already exists" in capsys.readouterr().err
    assert _cli_evaluate(root, out, "--overwrite") == 0
    assert not (out / "extra.txt").exists() and (out / "metrics.json").is_file()


def test_negative_bootstrap_is_refused(setup, capsys):
    root, _ = setup
    assert _cli_evaluate(root, root / "neg", "--bootstrap", "-5") == 2
    assert "--bootstrap: the number of resamples must be 0 or more, got -5" in capsys.readouterr().err
    assert not (root / "neg").exists()


def test_summary_uses_the_common_tracks_and_counts_undefined_correlations(tmp_path, capsys):
    from epimpute.cli import main
    from epimpute.evaluation.summary import summarize

    rng = np.random.default_rng(3)
    tracks = [Track("c1", "A"), Track("c2", "A"), Track("c3", "A")]
    contigs = {"chrA": 25 * 400}
    truth = {t.key: _signal(rng, 400) for t in tracks}
    truth["c3:A"][:] = 0  # all-zero truth: the correlation is undefined
    writer = create_store(tmp_path / "truth.zarr", tracks=tracks, contigs=contigs, bin_size=BIN)
    for row, track in enumerate(tracks):
        writer.write(row, "chrA", truth[track.key])
    for model, keys in (("full", ["c1:A", "c2:A", "c3:A"]), ("part", ["c1:A", "c3:A"])):
        (tmp_path / model).mkdir()
        for key in keys:
            cell = key.split(":")[0]
            np.savez(tmp_path / model / f"{cell}.A.npz", chrA=np.abs(
                truth[key] + rng.normal(0, 0.3, 400)).astype(np.float32) + 0.1)
    code = main(["-q", "evaluate", "--truth", str(tmp_path / "truth.zarr"),
                 "--pred", f"full={tmp_path / 'full'}", "--pred", f"part={tmp_path / 'part'}",
                 "--out", str(tmp_path / "report"), "--bootstrap", "0", "--no-plots"])
    assert code == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "report" / "metrics.tsv", sep="\t")
    overall = table[(table.stratum == "all") & (table.metric == "gwcorr")]
    full_c1 = overall[(overall.model == "full") & (overall.cell_type == "c1")]["value"].item()
    summary, notes = summarize(table)
    # full's mean is over c1 and c3 (the tracks both models have), and c3's is undefined
    gwcorr = summary[(summary.metric == "gwcorr") & (summary.model == "full")].iloc[0]
    assert gwcorr["mean"] == pytest.approx(full_c1) and gwcorr["tracks"] == 1
    assert set(overall[overall.cell_type == "c2"].model) == {"full"}
    assert overall[overall.cell_type == "c3"]["value"].isna().all()
    assert any("different tracks (full 3, part 2)" in n for n in notes)
    assert any("gwcorr is undefined for 1 track(s) (c3:A" in n for n in notes)
    assert "note: the models were scored on different tracks" in printed
    assert f"gwcorr: full {full_c1:.4f}" in printed
