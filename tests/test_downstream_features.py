"""Window features against direct numpy computations on a small store and factors file."""

from __future__ import annotations

import numpy as np
import pytest

from epimpute.downstream import sources as sources_module
from epimpute.downstream.features import build_features, check_within
from epimpute.downstream.labels import overlaps_positive, read_matrix, read_values
from epimpute.downstream.sources import FactorsSource, StoreSource, open_source
from epimpute.downstream.windows import Windows, gene_windows, tile_windows
from epimpute.errors import InputError
from epimpute.store import Store, Track, create_store

BIN = 100
CONTIGS = {"chrA": 1_000_000, "chrB": 450_050}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("ds") / "s.zarr"
    tracks = [Track("c1", "H3K4me3"), Track("c2", "H3K27ac")]
    writer = create_store(path, tracks=tracks, contigs=CONTIGS, bin_size=BIN)
    rng = np.random.default_rng(0)
    values = {}
    for contig, length in CONTIGS.items():
        n = -(-length // BIN)
        values[contig] = rng.random((2, n)).astype(np.float32)
        for row in range(2):
            writer.write(row, contig, values[contig][row])
    return Store.open(path), values


def _genes_bed(tmp_path):
    path = tmp_path / "genes.bed"
    path.write_text("chrA\t1000\t5000\tg1\t0\t+\n"
                    "chrA\t20010\t30990\tg2\t0\t-\n"
                    "chrB\t0\t350\tg3\t0\t+\n"          # promoter reaches before the start
                    "chrB\t449000\t450050\tg4\t0\t-\n"  # flank reaches past the end
                    "chrA\t7000\t8000\tg1\t0\t+\n")     # repeated name: first line kept
    return path


def _numpy_mean(values, lo_bp, hi_bp):
    lo, hi = max(lo_bp // BIN, 0), min(-(-hi_bp // BIN), values.shape[1])
    return values[:, lo:hi].mean(axis=1) if hi > lo else np.full(values.shape[0], np.nan)


def test_gene_windows_promoter_and_body(tmp_path):
    views = gene_windows(_genes_bed(tmp_path), region="both", promoter=500)
    prom, body = views["promoter"], views["body"]
    assert prom.ids.tolist() == ["g1", "g2", "g3", "g4"]
    assert prom.start.tolist() == [500, 30489, -500, 449549]  # TSS at end - 1 on '-'
    assert prom.end.tolist() == [1500, 31489, 500, 450549]
    assert body.start.tolist() == [1000, 20010, 0, 449000]


def test_features_equal_numpy_means_with_flanks(store, tmp_path, monkeypatch):
    store, values = store
    monkeypatch.setattr(sources_module, "_BLOCK_VALUES", 2)  # 4,096-bin blocks: streamed
    views = gene_windows(_genes_bed(tmp_path), region="both", promoter=500)
    table = build_features(StoreSource(store, name="obs"), views, flank=1)
    assert table.shape == (4, 2 * 3 * 2)
    for view_name, view in views.items():
        for shift in (0, -1, 1):
            w = view.shifted(shift)
            for i, gene in enumerate(view.ids):
                expected = _numpy_mean(values[w.chrom[i]], w.start[i], w.end[i])
                suffix = f"@{shift:+d}" if shift else ""
                got = [table.loc[gene, f"{view_name}.{key}{suffix}"]
                       for key in ("c1:H3K4me3", "c2:H3K27ac")]
                np.testing.assert_allclose(got, expected, rtol=1e-5)
    # g2 is on '-': its upstream flank lies at higher coordinates
    g2 = views["promoter"].shifted(-1)
    assert g2.start[1] == 31489 and g2.end[1] == 32489
    # g4 is on '-' at chrB's end: its upstream promoter flank has no bins inside, NaN
    assert np.isnan(table.loc["g4", "promoter.c1:H3K4me3@-1"])
    w = views["promoter"].shifted(1)
    assert w.start[3] == 448549  # downstream of a '-' gene is to the left


def test_tiles_cover_each_contig_to_its_end():
    tiles = tile_windows({"chrA": 12_000, "chrB": 5_000}, tile=5_000)
    assert tiles.ids.tolist() == ["chrA:0-5000", "chrA:5000-10000", "chrA:10000-12000",
                                  "chrB:0-5000"]


def test_factors_source_streams_the_factor_columns(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    factors = rng.random((10_000, 3)).astype(np.float32)
    path = tmp_path / "chrZ.factors.npz"
    np.savez(path, factors=factors, chrom=np.array("chrZ"), bin_size=np.array(25),
             factor_scale_bp=np.array([25, 250, 5000]), factor_member=np.zeros(3, np.int64),
             start=np.arange(10_000) * 25)
    monkeypatch.setattr(sources_module, "_BLOCK_VALUES", 3)  # 1,024-row blocks
    source = open_source("avocado", [path])
    assert isinstance(source, FactorsSource)
    assert source.columns == ["m0.25bp.0", "m0.250bp.1", "m0.5000bp.2"]
    assert source.contigs == {"chrZ": 250_000}
    start, end = np.array([0, 24_990, 100_000]), np.array([50, 60_000, 250_000])
    got = source.means("chrZ", start, end)
    expected = [factors[0:2].mean(0), factors[999:2400].mean(0), factors[4000:].mean(0)]
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-5)


def test_positive_overlaps_equal_a_brute_force_check(tmp_path):
    rng = np.random.default_rng(2)
    starts = rng.integers(0, 100_000, 300)
    windows = Windows(np.arange(300).astype(str).astype(object),
                      np.array(["chrA"] * 200 + ["chrB"] * 100, dtype=object),
                      starts, starts + rng.integers(1, 3000, 300), np.zeros(300, np.int8))
    regions = [(c, int(s), int(s + rng.integers(1, 5000)))
               for c, s in zip(rng.choice(["chrA", "chrB", "chrC"], 60),
                               rng.integers(0, 100_000, 60))]
    path = tmp_path / "pos.bed"
    path.write_text("".join(f"{c}\t{s}\t{e}\n" for c, s, e in regions))
    expected = [float(any(c == windows.chrom[i] and s < windows.end[i] and e > windows.start[i]
                          for c, s, e in regions)) for i in range(300)]
    assert overlaps_positive(windows, path).tolist() == expected
    assert 0 < sum(expected) < 300


def test_read_values_header_and_errors(tmp_path):
    path = tmp_path / "expr.tsv"
    path.write_text("gene_id\ttpm\ng1\t1.5\ng2\t0\n")
    assert read_values(path).to_dict() == {"g1": 1.5, "g2": 0.0}
    path.write_text("g1\t1.5\ng2\tlots\n")
    with pytest.raises(InputError, match=r"expr\.tsv: line 2: value 'lots' is not a number"):
        read_values(path)
    path.write_text("g1\t1\ng1\t2\n")
    with pytest.raises(InputError, match="'g1' appears more than once"):
        read_values(path)


def test_matrix_rows_by_name_file_or_labels_order(tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, np.arange(6, dtype=np.float64).reshape(3, 2))
    frame = read_matrix(path, labels_order=["a", "b", "c"])
    assert frame.loc["b"].tolist() == [2.0, 3.0]
    with pytest.raises(InputError, match=r"X\.npy has 3 rows but the labels name 2"):
        read_matrix(path, labels_order=["a", "b"])
    (tmp_path / "X.rows.txt").write_text("z\ny\nx\n")
    assert read_matrix(path, labels_order=["a", "b"]).loc["x"].tolist() == [4.0, 5.0]


def test_windows_on_another_assembly_are_named(store, tmp_path):
    store, _ = store
    path = tmp_path / "hg38.bed"
    path.write_text("chr1\t100\t200\tg1\nchr2\t100\t200\tg2\n")
    windows = gene_windows(path)["promoter"]
    with pytest.raises(InputError, match=r"none of its contigs \(chr1, chr2\).*chrA, chrB"):
        check_within(windows, [StoreSource(store, name="obs")], what=str(path))
    path.write_text("chrA\t100\t200\tg1\nchrB\t460000\t460100\tg2\n")
    with pytest.raises(InputError, match=r"g2 at chrB:45\d+ starts past the end of chrB"):
        check_within(gene_windows(path, promoter=10)["promoter"],
                     [StoreSource(store, name="obs")], what=str(path))
