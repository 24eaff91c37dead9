"""Simulated replicates, dispersion fits, differential peaks and peak-shape distances."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from epimpute.cli import main
from epimpute.differential import compare, differential, replicates
from epimpute.differential.calls import PeakTable, consensus_peaks, peak_counts
from epimpute.differential.nb import (
    DispersionTrend,
    block_sums,
    fit_dispersion_trend,
    sample_replicates,
    to_counts,
)
from epimpute.differential.shapes import peak_wasserstein
from epimpute.errors import InputError
from epimpute.store import Store, Track, create_store

BIN = 25
N_BINS = 40_000
PEAK_BINS = 20
PEAK_STARTS = np.arange(200) * 200 + 100  # 200 peaks of 20 bins, each inside a 40-bin block
PLANTED = np.arange(0, 200, 5)  # 40 peaks where cell types A and B differ 4x: in B ...
UP = PLANTED[::2]  # ... 4x higher at 20 of them, 4x lower at the other 20 (so that DESeq2's
DOWN = PLANTED[1::2]  # median-of-ratios size factors stay unbiased)


def _write_store(path: Path, signals: dict[str, np.ndarray], contig: str = "c1") -> Path:
    """A store of -log10 p signals (stored as arcsinh), one track per cell type."""
    tracks = [Track(cell_type=c, assay="H3K4me3") for c in signals]
    writer = create_store(path, tracks=tracks, contigs={contig: N_BINS * BIN}, bin_size=BIN)
    for row, values in enumerate(signals.values()):
        writer.write(row, contig, np.arcsinh(values))
    return path


def _planted_signals(seed: int = 1) -> dict[str, np.ndarray]:
    """Cell types A, C, D with peaks of random heights; B is A with the UP peaks 4x higher
    and the DOWN peaks 4x lower."""
    rng = np.random.default_rng(seed)
    signals = {}
    for cell in ("A", "C", "D"):
        x = np.full(N_BINS, 0.05) * rng.uniform(0.8, 1.25, size=N_BINS // 40).repeat(40)
        for start, h in zip(PEAK_STARTS, 5.0 * rng.uniform(0.8, 1.25, size=PEAK_STARTS.size)):
            x[start : start + PEAK_BINS] = h
        signals[cell] = x
    signals["B"] = signals["A"].copy()
    signals["B"][np.add.outer(PEAK_STARTS[UP], np.arange(PEAK_BINS)).ravel()] *= 4.0
    signals["B"][np.add.outer(PEAK_STARTS[DOWN], np.arange(PEAK_BINS)).ravel()] /= 4.0
    return signals


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("planted")
    store = _write_store(folder / "obs.zarr", _planted_signals())
    reps = replicates(store, folder / "reps.zarr", targets=["A:H3K4me3", "B:H3K4me3"], n=3,
                      seed=7)
    return folder, store, reps


def test_nb_draws_have_the_negative_binomial_mean_and_variance():
    mu, alpha = 8.0, 0.25
    draws = sample_replicates(np.full(100_000, mu), DispersionTrend(alpha, 0.0), n=4, block=1,
                              rng=np.random.default_rng(3)).ravel()
    variance = mu + alpha * mu**2  # 24
    assert abs(draws.mean() - mu) < 4 * np.sqrt(variance / draws.size)
    assert draws.var() == pytest.approx(variance, rel=0.03)
    assert np.array_equal(draws, np.rint(draws))


def test_block_draws_share_one_dispersion_per_block():
    mu, block, trend = 5.0, 8, DispersionTrend(0.1, 40.0)
    draws = sample_replicates(np.full(8 * 40_000, mu), trend, n=2, block=block,
                              rng=np.random.default_rng(4))
    alpha = 0.1 + 40.0 / (mu * block)  # the trend at the block's summed mean, 40: 1.1
    bins = draws.ravel()
    assert bins.mean() == pytest.approx(mu, rel=0.02)
    assert bins.var() == pytest.approx(mu + alpha * mu**2, rel=0.05)  # 32.5
    sums = block_sums(draws, block).ravel()
    big = mu * block
    assert sums.var() == pytest.approx(big + alpha * big**2, rel=0.05)  # 1800


def test_same_seed_same_draws():
    mean = np.linspace(0, 30, 500)
    trend = DispersionTrend(0.2, 1.0)
    one = sample_replicates(mean, trend, n=3, block=10, rng=np.random.default_rng(9))
    two = sample_replicates(mean, trend, n=3, block=10, rng=np.random.default_rng(9))
    assert np.array_equal(one, two)


def test_dispersion_fit_recovers_a_known_trend():
    rng = np.random.default_rng(11)
    mu = np.exp(rng.uniform(np.log(2), np.log(2000), size=60_000))
    alpha = 0.1 + 2.0 / mu
    # numpy's own negative binomial: n = 1/alpha successes, p = 1/(1 + alpha mu)
    counts = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu), size=(6, mu.size))
    trend = fit_dispersion_trend(counts)
    assert trend.a0 == pytest.approx(0.1, abs=0.01)
    assert trend.a1 == pytest.approx(2.0, abs=0.3)


def test_dispersion_fit_ignores_a_few_outlying_regions():
    rng = np.random.default_rng(12)
    mu = np.full(40_000, 100.0)
    counts = rng.negative_binomial(1 / 0.2, 1 / (1 + 0.2 * mu), size=(5, mu.size)).astype(float)
    counts[:, :400] = [[500], [0], [0], [0], [0]]  # 1%: mean 100, dispersion estimate 5
    assert float(fit_dispersion_trend(counts)(100.0)) == pytest.approx(0.2, abs=0.02)
    kept = float(fit_dispersion_trend(counts, outlier_ratio=1e9)(100.0))  # the mean of both
    assert kept == pytest.approx(0.99 * 0.2 + 0.01 * (50_000 - 100) / 100**2, abs=0.015)


def test_dispersion_fit_of_continuous_signal_takes_all_the_spread():
    rng = np.random.default_rng(13)
    mu = np.exp(rng.uniform(np.log(20), np.log(2000), size=50_000))
    signal = mu * rng.gamma(1 / 0.1, 0.1, size=(4, mu.size))  # squared CV 0.1, no Poisson part
    trend = fit_dispersion_trend(signal, poisson=False)
    assert trend.a0 == pytest.approx(0.1, rel=0.05) and trend.a1 < 0.5
    assert fit_dispersion_trend(signal, poisson=True)(100.0) < trend(100.0)


def test_to_counts_inverts_arcsinh_and_clips_negatives():
    assert to_counts(np.arcsinh([0.0, 2.0, -1.0]), scale=10).tolist() == pytest.approx([0, 20, 0])
    with pytest.raises(InputError):
        to_counts([1.0], scale=0)


def test_consensus_and_counts_by_hand():
    a = np.zeros(100)
    a[10:20] = 5  # peak [250, 500)
    b = np.zeros(100)
    b[15:30] = 5  # [375, 750): overlaps a's
    b[60:70] = 5  # [1500, 1750)
    peaks = consensus_peaks([a, b], bin_size=25, length=2500, contig="c")
    assert peaks.start.tolist() == [250, 1500] and peaks.end.tolist() == [750, 1750]
    values = np.vstack([np.arange(100.0), np.ones(100)])
    counts = peak_counts(values, peaks, bin_size=25)
    assert counts.tolist() == [[sum(range(10, 30)), sum(range(60, 70))], [20, 10]]


def test_wasserstein_of_hand_computable_shapes():
    peaks = PeakTable("c", np.array([0, 200]), np.array([100, 300]))  # bins 0-3 and 8-11
    point = np.zeros(12)
    point[0] = 1.0
    moved = np.zeros(12)
    moved[3] = 2.0  # all the mass 3 bins further, twice as high
    flat = np.zeros(12)
    flat[0:4] = 1.0
    d = peak_wasserstein(point, moved, peaks, bin_size=25)
    assert d[0] == pytest.approx(75.0)  # 3 bins of 25 bp
    assert np.isnan(d[1])  # no signal over the second peak
    assert peak_wasserstein(point, flat, peaks, bin_size=25)[0] == pytest.approx(37.5)  # 1.5 bins
    assert peak_wasserstein(flat, 3 * flat, peaks, bin_size=25)[0] == pytest.approx(0.0)


def test_replicate_store_holds_n_tracks_per_target_near_the_mean(planted):
    folder, store, reps = planted
    rep = Store.open(reps)
    assert [t.key for t in rep.tracks] == [f"{c}@rep{i}:H3K4me3" for c in "AB" for i in (1, 2, 3)]
    assert rep.transform == "none"
    values = rep.read("c1")
    mean = to_counts(Store.open(store).read("c1", tracks=[0])[0], scale=10)
    in_peaks = mean > 20
    assert values[:3, in_peaks].mean() == pytest.approx(mean[in_peaks].mean(), rel=0.15)
    again = replicates(store, folder / "again.zarr", targets=["A:H3K4me3", "B:H3K4me3"], n=3,
                       seed=7)
    assert np.array_equal(Store.open(again).read("c1"), values)


def test_differential_finds_the_planted_fourfold_peaks(planted):
    folder, _, reps = planted
    result = differential([reps], folder / "AvsB", cell_types=["A", "B"], assay="H3K4me3")
    table = pd.read_csv(result.tsv, sep="\t")
    assert list(table.columns) == ["chrom", "start", "end", "baseMean", "log2FC", "pvalue", "padj"]
    assert table["start"].tolist() == (PEAK_STARTS * BIN).tolist()
    planted_rows = table.iloc[PLANTED]
    others = table.drop(index=PLANTED)
    assert (planted_rows["padj"] < 0.05).all()
    assert table.loc[UP, "log2FC"].to_numpy() == pytest.approx(2.0, abs=0.5)
    assert table.loc[DOWN, "log2FC"].to_numpy() == pytest.approx(-2.0, abs=0.5)
    false = int((others["padj"] < 0.05).sum())
    assert false / (false + PLANTED.size) <= 0.1  # the false discovery rate, about 0.05
    assert (others["log2FC"].abs() < 0.6).all()
    bed = pd.read_csv(result.bed, sep="\t", header=None)
    assert set(bed[1]) >= set(PEAK_STARTS[PLANTED] * BIN)
    assert result.n_significant == PLANTED.size + false == len(bed)
    assert result.n_peaks == PEAK_STARTS.size


def test_compare_of_an_exact_imputation_correlates_perfectly(tmp_path):
    signals = _planted_signals()
    rng = np.random.default_rng(5)
    for start in PEAK_STARTS:  # give B's peaks random shapes
        signals["B"][start : start + PEAK_BINS] *= rng.uniform(0.2, 1.0, PEAK_BINS)
    store = _write_store(tmp_path / "obs.zarr", signals)
    imputed = tmp_path / "imputed"
    imputed.mkdir()
    for cell in "AB":
        np.savez(imputed / f"{cell}.H3K4me3.npz", c1=np.arcsinh(signals[cell]).astype(np.float32))
    result = compare(store, imputed, tmp_path / "shapes.tsv", cell_types=["A", "B"],
                     assay="H3K4me3")
    assert result.n_peaks == PEAK_STARTS.size
    assert result.spearman == pytest.approx(1.0)
    table = pd.read_csv(result.tsv, sep="\t")
    assert (table["ws_observed"] > 0).all()


def _cli(*args) -> int:
    return main(["-q", *map(str, args)])


def test_cli_exits_2_on_bad_input(planted, tmp_path, capsys):
    _, store, reps = planted
    assert _cli("differential", reps, "--cell-type", "A", "--cell-type", "Z",
                "--assay", "H3K4me3", "--out", tmp_path / "x") == 2
    assert "Z:H3K4me3" in capsys.readouterr().err
    one = replicates(store, tmp_path / "one.zarr", targets=["A:H3K4me3", "C:H3K4me3"], n=1)
    assert _cli("differential", one, "--cell-type", "A", "--cell-type", "C",
                "--assay", "H3K4me3", "--out", tmp_path / "x") == 2
    assert "1 replicate" in capsys.readouterr().err
    other = _write_store(tmp_path / "other.zarr", _planted_signals(), contig="c2")
    moved = replicates(other, tmp_path / "moved.zarr", targets=["C:H3K4me3"], n=2)
    assert _cli("differential", reps, moved, "--cell-type", "A", "--cell-type", "C",
                "--assay", "H3K4me3", "--out", tmp_path / "x") == 2
    assert "contigs" in capsys.readouterr().err
    assert _cli("replicates", store, "--target", "Q:H3K4me3", "--out", tmp_path / "r.zarr") == 2
    assert "Q:H3K4me3" in capsys.readouterr().err
    assert _cli("compare", "--truth", store, "--imputed", tmp_path, "--cell-type", "A",
                "--cell-type", "B", "--assay", "H3K4me3", "--out", tmp_path / "s.tsv") == 2
    assert "no imputed track" in capsys.readouterr().err
    assert not list(tmp_path.glob("x.*")) and not (tmp_path / "r.zarr").exists()


def test_cli_differential_writes_and_refuses_to_overwrite(planted, tmp_path, capsys):
    _, _, reps = planted
    args = ["differential", reps, "--cell-type", "A", "--cell-type", "B", "--assay", "H3K4me3",
            "--out", tmp_path / "AvsB"]
    assert _cli(*args) == 0
    assert " of 200 peaks differential" in capsys.readouterr().out
    assert _cli(*args) == 2
    assert _cli(*args, "--overwrite") == 0


@pytest.mark.filterwarnings("ignore:The dispersion trend curve fitting did not converge")
def test_differential_tests_the_regions_of_a_bed(planted, tmp_path, capsys):
    _, _, reps = planted  # 4 regions: too few for PyDESeq2's trend, it falls back to the mean
    bed = tmp_path / "regions.bed"
    chosen = [0, 1, 5, 7]  # up, unchanged, down, unchanged; given out of order, one split
    lines = [f"c1\t{PEAK_STARTS[j] * BIN}\t{(PEAK_STARTS[j] + PEAK_BINS) * BIN}\n" for j in chosen]
    split = PEAK_STARTS[7] * BIN + 200
    lines[3] = f"c1\t{PEAK_STARTS[7] * BIN}\t{split}\nc1\t{split}\t{(PEAK_STARTS[7] + 20) * BIN}\n"
    bed.write_text("".join(reversed(lines)))
    result = differential([reps], tmp_path / "chosen", cell_types=["A", "B"], assay="H3K4me3",
                          peaks=bed)
    table = pd.read_csv(result.tsv, sep="\t")
    assert table["start"].tolist() == (PEAK_STARTS[chosen] * BIN).tolist()
    assert (table["padj"] < 0.05).tolist() == [True, False, True, False]
    bed.write_text("c1\t0\t500\nc9\t0\t500\n")
    assert _cli("differential", reps, "--cell-type", "A", "--cell-type", "B", "--assay",
                "H3K4me3", "--peaks", bed, "--out", tmp_path / "bad") == 2
    assert "line 2: contig 'c9'" in capsys.readouterr().err


def test_replicates_of_an_imputed_track_follow_the_imputed_mean(planted, tmp_path):
    _, store, _ = planted
    signals = _planted_signals()
    imputed = tmp_path / "imputed"
    imputed.mkdir()
    np.savez(imputed / "A.H3K4me3.npz", c1=np.arcsinh(signals["B"]).astype(np.float32))
    reps = Store.open(replicates(store, tmp_path / "r.zarr", targets=["A:H3K4me3"],
                                 imputed=imputed, n=2))
    up = np.add.outer(PEAK_STARTS[UP], np.arange(PEAK_BINS)).ravel()
    down = np.add.outer(PEAK_STARTS[DOWN], np.arange(PEAK_BINS)).ravel()
    values = reps.read("c1")
    # B's peaks are 4x A's at UP and a quarter at DOWN: the counts follow B, not A
    assert values[:, up].mean() / values[:, down].mean() == pytest.approx(
        signals["B"][up].mean() / signals["B"][down].mean(), rel=0.2)
    with pytest.raises(InputError, match="no imputed track 'C:H3K4me3'"):
        replicates(store, tmp_path / "r2.zarr", targets=["C:H3K4me3"], imputed=imputed)
