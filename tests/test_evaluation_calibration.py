"""Coverage of predicted intervals: counted by stratum, reported by evaluate()."""

from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from epimpute.errors import InputError
from epimpute.evaluation.calibration import CoverageCounter, summarize_coverage
from epimpute.evaluation.run import evaluate
from epimpute.evaluation.strata import Strata
from epimpute.intervals import REPORTED_LEVELS, half_width
from epimpute.io.bigwig import BigWigWriter
from epimpute.store import Track, create_store

PHI = NormalDist().cdf
CONTIGS = {"chrA": 500_000, "chrB": 300_000}
BIN = 25
TRACKS = [Track(c, "H3K4me3") for c in ("c1", "c2", "c3")]


def test_counter_counts_each_stratum_by_hand():
    """Ratios |truth - mean| / sd of 0.5, 1.0, 3.0 and 0 (sd 0, exact): inside the 50%
    interval (z = 0.674) are the 0.5 and the exact one; in the 95% interval (1.96) all but
    the 3.0."""
    counter = CoverageCounter(Strata(2), levels=(0.5, 0.95))
    counter.update(truth=np.array([1.0, 2.0, 4.0, 7.0]), mean=np.array([0.5, 1.0, 1.0, 7.0]),
                   sd=np.array([1.0, 1.0, 1.0, 0.0]), specificity=np.array([0, 1, 1, 2]))
    rows = {(s, p): (c, n) for s, p, c, n in counter.rows()}
    assert rows[("all", 0.5)] == (0.5, 4) and rows[("all", 0.95)] == (0.75, 4)
    assert rows[("count=1", 0.5)] == (0.0, 2) and rows[("count=1", 0.95)] == (0.5, 2)
    assert rows[("count=0", 0.5)] == (1.0, 1) and rows[("count=2", 0.95)] == (1.0, 1)
    assert rows[("high_specificity", 0.95)] == (0.5, 2)  # count 1 of 2 cell types
    assert rows[("low_specificity", 0.5)] == (1.0, 1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A truth store; model 'right' predicts truth - noise with the noise's sd, 'wide' the
    same with twice the sd (as npz), 'narrow' half of it (sd as bigWig, mean as npz)."""
    root = tmp_path_factory.mktemp("calibration")
    rng = np.random.default_rng(4)
    writer = create_store(root / "truth.zarr", tracks=TRACKS, contigs=CONTIGS, bin_size=BIN)
    folders = {name: root / name for name in ("right", "wide", "narrow", "none")}
    for folder in folders.values():
        folder.mkdir()
    for row, track in enumerate(TRACKS):
        means, sds = {}, {}
        for contig, length in CONTIGS.items():
            n = length // BIN
            truth = np.arcsinh(np.convolve(rng.exponential(1.0, n), np.ones(8) / 2, "same"))
            sd = rng.uniform(0.1, 0.6, n)
            writer.write(row, contig, truth.astype(np.float32))
            means[contig] = (truth - rng.normal(0, sd)).astype(np.float32)
            sds[contig] = sd.astype(np.float32)
        name = f"{track.biosample}.{track.assay}"
        for model in ("right", "wide", "narrow", "none"):
            np.savez(folders[model] / f"{name}.npz", **means)
        np.savez(folders["right"] / f"{name}.sd.npz", **sds)
        np.savez(folders["wide"] / f"{name}.sd.npz", **{c: 2 * v for c, v in sds.items()})
        with BigWigWriter(folders["narrow"] / f"{name}.sd.bw", CONTIGS, bin_size=BIN) as bw:
            for contig, values in sds.items():
                bw.write(contig, 0, values / 2)
    return root, folders


def test_evaluate_reports_coverage_near_what_the_gaussian_says(setup):
    root, folders = setup
    out = root / "report"
    evaluate(root / "truth.zarr", folders, out, bootstrap=0, plots=True)
    table = pd.read_csv(out / "calibration.tsv", sep="\t")
    assert set(table["model"]) == {"right", "wide", "narrow"}  # 'none' has no sd files
    overall = table[table["stratum"] == "all"].groupby(["model", "level"])["coverage"].mean()
    for level in REPORTED_LEVELS:
        z = half_width(level)
        assert overall[("right", level)] == pytest.approx(level, abs=0.01)
        assert overall[("wide", level)] == pytest.approx(2 * PHI(2 * z) - 1, abs=0.01)
        # the bigWig sd is read as it is (arcsinh scale), not transformed again
        assert overall[("narrow", level)] == pytest.approx(2 * PHI(z / 2) - 1, abs=0.01)
    assert (table.loc[table["stratum"] == "all", "n_bins"] == sum(CONTIGS.values()) // BIN).all()
    summary = summarize_coverage(table)
    right = summary[(summary["model"] == "right") & (summary["stratum"] == "all")].iloc[0]
    assert right["tracks"] == 3 and right["cover50"] == pytest.approx(0.5, abs=0.01)
    html = (out / "report.html").read_text()
    assert "Calibration of the predicted sd" in html and (out / "plots" / "reliability.png").exists()
    # one specific-peak locus for the assay, then best, median and worst windows of a model
    assert len(list((out / "plots").glob("locus_*.png"))) == 4 and "band +-1 sd" in html


def test_negative_sds_are_refused_naming_the_file(setup, tmp_path):
    root, folders = setup
    bad = tmp_path / "bad"
    bad.mkdir()
    for path in folders["right"].iterdir():
        arrays = dict(np.load(path))
        if path.name.endswith(".sd.npz"):
            arrays["chrB"] = -arrays["chrB"]
        np.savez(bad / path.name, **arrays)
    with pytest.raises(InputError, match=r"c1\.H3K4me3\.sd\.npz.*negative"):
        evaluate(root / "truth.zarr", {"bad": bad}, tmp_path / "report", bootstrap=0,
                 plots=False)
    assert not (tmp_path / "report").exists()


def test_error_loci_are_the_best_median_and_worst_windows_with_their_band(setup):
    from types import SimpleNamespace

    from epimpute.evaluation.loci import LOCUS_BP, error_loci
    from epimpute.evaluation.peaks import DEFAULT_PEAK_PARAMS
    from epimpute.evaluation.sources import PredictionDir
    from epimpute.store import Store

    root, folders = setup
    store = Store.open(root / "truth.zarr")
    source = PredictionDir(folders["wide"], name="wide")
    target = SimpleNamespace(key="c2:H3K4me3", row=1, contigs=("chrA", "chrB"))
    loci = error_loci(store, source, target, lambda contig: None, bin_size=BIN,
                      params=DEFAULT_PEAK_PARAMS)
    width = LOCUS_BP // BIN
    errors = []
    for contig, length in CONTIGS.items():
        n = length // BIN // width * width
        truth = store.read(contig, tracks=[1])[0][:n].reshape(-1, width)
        mean = np.load(folders["wide"] / "c2.H3K4me3.npz")[contig][:n].reshape(-1, width)
        errors += ((truth - mean) ** 2).mean(axis=1).tolist()
    assert [locus.note.split(" ")[0] for locus in loci] == ["best", "median", "worst"]
    got = [float(np.mean((locus.truth - locus.predictions["wide"]) ** 2)) for locus in loci]
    # every window of this truth holds a peak, so all of them are ranked
    assert got[0] == pytest.approx(min(errors), rel=1e-5)
    assert got[2] == pytest.approx(max(errors), rel=1e-5)
    assert got[1] == pytest.approx(sorted(errors)[len(errors) // 2], rel=1e-5)
    worst = loci[2]
    sd = np.load(folders["wide"] / "c2.H3K4me3.sd.npz")[worst.contig]
    np.testing.assert_array_equal(worst.bands["wide"],
                                  sd[worst.start_bin:worst.start_bin + width])


def test_recorded_interval_widths_replace_the_gaussians(setup, tmp_path):
    """Laplace errors with their true sd: Gaussian intervals hold 1 - exp(-sqrt(2) z) of
    the bins (0.614 at 50%); with the Laplace half-widths -ln(1 - p) / sqrt(2) recorded in
    imputation.json, as impute writes them, they hold p."""
    import json

    from epimpute.intervals import CURVE_LEVELS

    root, _ = setup
    rng = np.random.default_rng(8)
    from epimpute.store import Store

    truth = Store.open(root / "truth.zarr")
    folders = {"gaussian": tmp_path / "gaussian", "shaped": tmp_path / "shaped"}
    for folder in folders.values():
        folder.mkdir()
    for row, track in enumerate(TRACKS):
        name = f"{track.biosample}.{track.assay}"
        b = {c: rng.uniform(0.1, 0.5, n // BIN) for c, n in CONTIGS.items()}
        means = {c: truth.read(c, tracks=[row])[0] - rng.laplace(0, b[c]) for c in CONTIGS}
        for folder in folders.values():
            np.savez(folder / f"{name}.npz", **{c: v.astype(np.float32) for c, v in means.items()})
            np.savez(folder / f"{name}.sd.npz",
                     **{c: (np.sqrt(2) * v).astype(np.float32) for c, v in b.items()})
    widths = [-np.log(1 - p) / np.sqrt(2) for p in CURVE_LEVELS]
    (folders["shaped"] / "imputation.json").write_text(json.dumps({"interval_half_widths": {
        "levels": list(CURVE_LEVELS),
        "tracks": {t.key: widths for t in TRACKS}}}))
    evaluate(root / "truth.zarr", folders, tmp_path / "report", bootstrap=0, plots=False)
    table = pd.read_csv(tmp_path / "report" / "calibration.tsv", sep="\t")
    overall = table[table["stratum"] == "all"].groupby(["model", "level"])["coverage"].mean()
    for level in REPORTED_LEVELS:
        laplace = 1 - np.exp(-np.sqrt(2) * half_width(level))
        assert overall[("gaussian", level)] == pytest.approx(laplace, abs=0.01)
        assert overall[("shaped", level)] == pytest.approx(level, abs=0.01)
    assert abs(1 - np.exp(-np.sqrt(2) * half_width(0.5)) - 0.5) > 0.1  # the two differ


def test_recorded_widths_at_other_levels_are_not_used(tmp_path):
    """A record at other levels (here 3 of them) leaves the Gaussian's intervals."""
    import json

    from epimpute.evaluation.sources import PredictionDir
    from epimpute.intervals import CURVE_LEVELS

    (tmp_path / "imputation.json").write_text(json.dumps({"interval_half_widths": {
        "levels": [0.5, 0.8, 0.95], "tracks": {"c1:H3K4me3": [0.6, 1.2, 2.0]}}}))
    folder = PredictionDir(tmp_path, name="m")
    assert folder.interval_widths("c1:H3K4me3", [0.5, 0.8, 0.95]) == [0.6, 1.2, 2.0]
    assert folder.interval_widths("c1:H3K4me3", CURVE_LEVELS) is None
    assert folder.interval_widths("c2:H3K4me3", [0.5, 0.8, 0.95]) is None
