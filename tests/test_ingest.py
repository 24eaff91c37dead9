import gzip

import numpy as np
import pyBigWig
import pytest

from epimpute.errors import InputError
from epimpute.io.bedgraph import write_bedgraph
from epimpute.io.samplesheet import read_sample_sheet
from epimpute.store import Store, Track, ingest
from epimpute.store.store import CHUNK_BINS

SIZES = {"chr1": 45, "chr2": 20, "chr10": 15}
HEADER = "cell_type\tassay\tpath\tindividual\tchrom\n"

# Hand-computed bins (bin size 10) of the inputs written by the `inputs` fixture.
EXPECTED = {
    "E1:H3K4me3": {"chr1": [0.8, 1.9, 0, 1, 2.4], "chr2": [3, 3], "chr10": [0, 0]},
    "E2:H3K4me3": {"chr1": [0] * 5, "chr2": [2, 0], "chr10": [0, 0]},
    "E1:H3K27ac": {"chr1": [0.5] * 5, "chr2": [1.5, 1.5], "chr10": [0, 0]},
    "E2@d1:H3K27ac": {"chr1": [1, 2, 3, 4, 5], "chr2": [0, 6], "chr10": [0, 0]},
    "E3:DNase": {"chr1": [5, 4, 3, 2, 1], "chr2": [0, 0], "chr10": [1, 1]},
}


def write_bigwig(path, sizes, entries):
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(list(sizes.items()))
    for chrom, start, end, value in entries:
        bw.addEntries([chrom], [start], ends=[end], values=[float(value)])
    bw.close()
    return path


@pytest.fixture
def inputs(tmp_path):
    """Signal files in tmp_path/data and a sheet listing them, in tmp_path."""
    data = tmp_path / "data"
    data.mkdir()
    write_bigwig(
        data / "e1_k4.bw",
        SIZES,
        [
            ("chr1", 6, 12, 2.0),
            ("chr1", 17, 20, 5.0),
            ("chr1", 30, 40, 1.0),
            ("chr1", 42, 45, 4.0),
            ("chr2", 0, 20, 3.0),
        ],
    )
    write_bigwig(data / "e2_k4.bw", {"chr1": 45, "chr2": 20}, [("chr2", 5, 10, 4.0)])
    with gzip.open(data / "e1_k27.bedGraph.gz", "wt") as fh:
        fh.write("track type=bedGraph\nchr2\t0\t20\t1.5\nchr1\t0\t45\t0.5\n")
    np.savez(data / "e2_d1_k27.npz", chr1=np.arange(1.0, 6.0), chr2=np.array([0.0, 6.0]))
    np.save(data / "e3_chr1.npy", np.array([5.0, 4.0, 3.0, 2.0, 1.0]))
    np.save(data / "e3_chr10.npy", np.array([1.0, 1.0], dtype=np.float32))
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(
        HEADER
        + "E1\tH3K4me3\tdata/e1_k4.bw\t\t\n"
        + "E2\tH3K4me3\tdata/e2_k4.bw\t\t\n"
        + "E1\tH3K27ac\tdata/e1_k27.bedGraph.gz\t\t\n"
        + "E2\tH3K27ac\tdata/e2_d1_k27.npz\td1\t\n"
        + "E3\tDNase\tdata/e3_chr1.npy\t\tchr1\n"
        + "E3\tDNase\tdata/e3_chr10.npy\t\tchr10\n"
    )
    return sheet


def sheet_with(tmp_path, rows):
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(HEADER + "".join("\t".join(row) + "\n" for row in rows))
    return sheet


def assert_nothing_left(out):
    assert not out.exists()
    if not out.parent.exists():
        return
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def check_signal(store, expected, *, transform=np.arcsinh):
    for key, contigs in expected.items():
        row = store.track_index(key)
        assert row is not None, key
        for contig, values in contigs.items():
            np.testing.assert_allclose(
                store.read(contig, tracks=[row])[0], transform(np.array(values)), rtol=1e-6
            )


def test_mixed_inputs_end_to_end(inputs, tmp_path):
    out = tmp_path / "compendium.zarr"
    store = ingest(inputs, out, bin_size=10)
    assert isinstance(store, Store)
    assert store.path == out
    assert list(store.contigs.items()) == [("chr1", 45), ("chr2", 20), ("chr10", 15)]
    assert [t.key for t in store.tracks] == list(EXPECTED)
    assert store.tracks[3] == Track(
        "E2", "H3K27ac", "d1", source=str(tmp_path.resolve() / "data" / "e2_d1_k27.npz")
    )
    assert store.tracks[4].source.split(";") == [
        str(tmp_path.resolve() / "data" / name) for name in ("e3_chr1.npy", "e3_chr10.npy")
    ]
    assert store.transform == "arcsinh" and store.bin_size == 10
    check_signal(store, EXPECTED)
    biosamples, assays, observed = store.observed_matrix()
    assert biosamples == ["E1", "E2", "E2@d1", "E3"]
    assert assays == ["DNase", "H3K27ac", "H3K4me3"]
    np.testing.assert_array_equal(observed, [[0, 1, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0]])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compendium.zarr", "data", "samples.tsv"]


def test_parallel_workers_write_the_same_store(inputs, tmp_path):
    serial = ingest(inputs, tmp_path / "serial.zarr", bin_size=10)
    parallel = ingest(inputs, tmp_path / "parallel.zarr", bin_size=10, jobs=3, progress=True)
    assert parallel.tracks == serial.tracks
    for contig in serial.contigs:
        np.testing.assert_array_equal(parallel.read(contig), serial.read(contig))


def test_specs_instead_of_a_sheet_and_transformed_inputs(inputs, tmp_path):
    specs = read_sample_sheet(inputs)
    store = ingest(specs, tmp_path / "s.zarr", bin_size=10, transformed=True)
    check_signal(store, EXPECTED, transform=lambda x: x)


def test_chroms_restricts_contigs_and_keeps_size_order(inputs, tmp_path):
    store = ingest(inputs, tmp_path / "s.zarr", bin_size=10, chroms=["chr10", "chr2"])
    assert list(store.contigs) == ["chr2", "chr10"]
    check_signal(store, {k: {c: v[c] for c in ("chr2", "chr10")} for k, v in EXPECTED.items()})


def test_chrom_sizes_file_with_bedgraph_only(tmp_path):
    (tmp_path / "genome.sizes").write_text("chrB\t30\nchrA\t12\n")
    write_bedgraph(tmp_path / "x.bdg", "chrA", [0, 4], [4, 12], [1.0, 3.0])
    sheet = sheet_with(tmp_path, [("E1", "ATAC", "x.bdg", "", "")])
    store = ingest(sheet, tmp_path / "s.zarr", chrom_sizes=tmp_path / "genome.sizes", bin_size=8)
    assert list(store.contigs.items()) == [("chrB", 30), ("chrA", 12)]
    # chrA bins: [0,8) 4 x 1 + 4 x 3 -> 2; [8,12) 4 bases of 3 -> 3; chrB absent -> 0
    np.testing.assert_allclose(store.read("chrA")[0], np.arcsinh([2.0, 3.0]), rtol=1e-6)
    np.testing.assert_array_equal(store.read("chrB"), np.zeros((1, 4)))


def test_arrays_only_take_sizes_from_their_length(tmp_path):
    np.savez(tmp_path / "a.npz", chrM=np.ones(3), chr2=np.zeros(2))
    np.save(tmp_path / "b.npy", np.full(3, 2.0))
    sheet = sheet_with(tmp_path, [("E1", "A", "a.npz", "", ""), ("E1", "B", "b.npy", "", "chrM")])
    store = ingest(sheet, tmp_path / "s.zarr", bin_size=25)
    assert store.contigs == {"chr2": 50, "chrM": 75}
    np.testing.assert_allclose(store.read("chrM"), np.arcsinh([[1, 1, 1], [2, 2, 2]]))


def test_overwrite(inputs, tmp_path):
    out = tmp_path / "s.zarr"
    ingest(inputs, out, bin_size=10, chroms=["chr2"])
    with pytest.raises(InputError, match=r"s\.zarr already exists; use --overwrite"):
        ingest(inputs, out, bin_size=10)
    store = ingest(inputs, out, bin_size=10, overwrite=True)
    assert list(store.contigs) == ["chr1", "chr2", "chr10"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "s.zarr", "samples.tsv"]


def test_overwrite_refuses_what_is_not_a_store(inputs, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="precious exists and is not an epimpute store"):
        ingest(inputs, out, bin_size=10, overwrite=True)
    assert (out / "notes.txt").read_text() == "keep me"


# --- bad inputs: the message names the culprit, and nothing is left behind ---------------


def fails(sheet, out, message, **kwargs):
    with pytest.raises(InputError, match=message):
        ingest(sheet, out, **{"bin_size": 10, **kwargs})
    assert_nothing_left(out)


def test_bedgraph_without_sizes(tmp_path):
    write_bedgraph(tmp_path / "x.bdg", "chr1", [0], [5], [1.0])
    sheet = sheet_with(tmp_path, [("E1", "A", "x.bdg", "", "")])
    fails(
        sheet, tmp_path / "s.zarr", r"x\.bdg needs contig sizes: pass chrom_sizes \(--chrom-sizes"
    )


def test_contig_size_mismatch_between_bigwigs(tmp_path):
    write_bigwig(tmp_path / "a.bw", {"chr1": 45}, [("chr1", 0, 5, 1.0)])
    write_bigwig(tmp_path / "b.bw", {"chr1": 50}, [("chr1", 0, 5, 1.0)])
    sheet = sheet_with(tmp_path, [("E1", "A", "a.bw", "", ""), ("E2", "A", "b.bw", "", "")])
    fails(sheet, tmp_path / "s.zarr", r"contig 'chr1' is 50 bp in .*b\.bw but 45 bp in .*a\.bw")


def test_contig_size_mismatch_with_chrom_sizes(inputs, tmp_path):
    fails(
        inputs,
        tmp_path / "s.zarr",
        r"contig 'chr1' is 45 bp in .*e1_k4\.bw but 46 bp in chrom_sizes",
        chrom_sizes={"chr1": 46, "chr2": 20, "chr10": 15},
    )


def test_array_length_must_match_chrom_sizes(tmp_path):
    np.save(tmp_path / "x.npy", np.ones(4))
    sheet = sheet_with(tmp_path, [("E1", "A", "x.npy", "", "chr1")])
    fails(
        sheet,
        tmp_path / "s.zarr",
        r"x\.npy: chr1 has 4 bins, but 45 bp \(from chrom_sizes\) at bin size 10 needs 5",
        chrom_sizes={"chr1": 45},
    )
    fails(
        sheet,
        tmp_path / "s.zarr",
        r"x\.npy: contig 'chr1' is not in chrom_sizes",
        chrom_sizes={"chr2": 45},
    )


def test_arrays_of_one_contig_must_agree_without_sizes(tmp_path):
    np.save(tmp_path / "x.npy", np.ones(4))
    np.save(tmp_path / "y.npy", np.ones(5))
    sheet = sheet_with(
        tmp_path, [("E1", "A", "x.npy", "", "chr1"), ("E2", "A", "y.npy", "", "chr1")]
    )
    fails(sheet, tmp_path / "s.zarr", r"y\.npy: chr1 has 5 bins, but .*x\.npy has 4")


@pytest.mark.parametrize("jobs", [1, 2])
def test_nan_in_bigwig(inputs, tmp_path, jobs):
    write_bigwig(
        tmp_path / "data" / "e2_k4.bw", {"chr1": 45, "chr2": 20}, [("chr2", 5, 10, np.nan)]
    )
    fails(inputs, tmp_path / "s.zarr", r"e2_k4\.bw: chr2:5-10 has the value nan", jobs=jobs)


@pytest.mark.parametrize("value", [np.inf, np.nan, -1.0])
def test_bad_values_in_arrays(inputs, tmp_path, value):
    np.save(tmp_path / "data" / "e3_chr10.npy", np.array([1.0, value]))
    fails(
        inputs,
        tmp_path / "s.zarr",
        rf"e3_chr10\.npy: chr10 bin 1 \(bases 10-20\) has the value {value}; signal must be "
        "finite and non-negative",
    )


@pytest.mark.parametrize("transformed", [False, True])
def test_negative_values_in_bedgraph(inputs, tmp_path, transformed):
    write_bedgraph(tmp_path / "data" / "e1_k27.bedGraph.gz", "chr1", [0, 20], [5, 30], [1.0, -2.0])
    fails(
        inputs,
        tmp_path / "s.zarr",
        r"e1_k27\.bedGraph\.gz: chr1 bin 2 \(bases 20-30\) has the value -2\.0",
        transformed=transformed,
    )


def test_overlap_in_bedgraph_names_the_line(inputs, tmp_path):
    write_bedgraph(tmp_path / "data" / "e1_k27.bedGraph.gz", "chr1", [0, 5], [10, 20], [1.0, 2.0])
    fails(
        inputs,
        tmp_path / "s.zarr",
        r"e1_k27\.bedGraph\.gz, line 2: 'chr1 5 20 2\.0': the interval overlaps line 1",
    )


def test_corrupt_bigwig(inputs, tmp_path):
    (tmp_path / "data" / "e2_k4.bw").write_bytes(b"\x00garbage" * 64)
    fails(inputs, tmp_path / "s.zarr", r"e2_k4\.bw: not a readable bigWig file")


def test_corrupt_array(inputs, tmp_path):
    (tmp_path / "data" / "e2_d1_k27.npz").write_bytes(b"PK\x03\x04 broken")
    fails(inputs, tmp_path / "s.zarr", r"e2_d1_k27\.npz: not a readable NumPy file")


def test_missing_file(inputs, tmp_path):
    (tmp_path / "data" / "e1_k4.bw").unlink()
    fails(inputs, tmp_path / "s.zarr", r"samples\.tsv, line 2: .*e1_k4\.bw: no such file")


def test_duplicate_track(inputs, tmp_path):
    with open(inputs, "a") as fh:
        fh.write("E1\tH3K4me3\tdata/e2_k4.bw\t\t\n")
    fails(inputs, tmp_path / "s.zarr", r"samples\.tsv, line 8: track E1:H3K4me3 is already listed")


def test_empty_sheet(tmp_path):
    fails(
        sheet_with(tmp_path, []),
        tmp_path / "s.zarr",
        r"samples\.tsv: the sample sheet has a header but no rows",
    )
    (tmp_path / "samples.tsv").write_text("")
    fails(tmp_path / "samples.tsv", tmp_path / "s.zarr", r"samples\.tsv: the sample sheet is empty")


def test_missing_columns(tmp_path):
    (tmp_path / "samples.tsv").write_text("cell_type\tfile\nE1\tx.bw\n")
    fails(
        tmp_path / "samples.tsv",
        tmp_path / "s.zarr",
        r"samples\.tsv, line 1: missing column\(s\) assay, path",
    )


def test_unknown_requested_contig(inputs, tmp_path):
    fails(inputs, tmp_path / "s.zarr", r"contig\(s\) chrZ not found", chroms=["chr1", "chrZ"])


def test_bad_options(inputs, tmp_path):
    fails(inputs, tmp_path / "s.zarr", "jobs must be a positive integer", jobs=0)
    fails(inputs, tmp_path / "s.zarr", "bin_size must be a positive integer", bin_size=0)
    fails(inputs, tmp_path / "nope" / "s.zarr", "the folder .*nope does not exist")


def test_contig_longer_than_a_store_chunk_is_written_window_by_window(tmp_path):
    # one interval of 2.0 crosses the first store chunk's edge (bin CHUNK_BINS, base
    # CHUNK_BINS * 25): the bins around it get 10, 25 and 5 bases of 2.0 out of 25
    edge = CHUNK_BINS * 25
    length = edge + 1000
    write_bigwig(tmp_path / "a.bw", {"chr1": length}, [("chr1", edge - 10, edge + 30, 2.0)])
    (tmp_path / "b.bedgraph").write_text(f"chr1\t{edge - 10}\t{edge + 30}\t2\n")
    binned = np.zeros(CHUNK_BINS + 40)
    binned[CHUNK_BINS - 1 : CHUNK_BINS + 2] = [0.8, 2.0, 0.4]
    np.save(tmp_path / "c.npy", binned)
    sheet = sheet_with(tmp_path, [("A", "m", "a.bw", "", ""), ("B", "m", "b.bedgraph", "", ""),
                                  ("C", "m", "c.npy", "", "chr1")])
    store = ingest(sheet, tmp_path / "s.zarr", transformed=True)
    signal = store.read("chr1")
    assert signal.shape == (3, CHUNK_BINS + 40)
    for row in range(3):
        np.testing.assert_allclose(signal[row], binned, rtol=1e-6)


def test_bad_value_in_a_later_window_names_its_contig_bin(tmp_path):
    edge = CHUNK_BINS * 25
    values = np.zeros(CHUNK_BINS + 40)
    values[CHUNK_BINS + 3] = -2.0
    np.save(tmp_path / "c.npy", values)
    sheet = sheet_with(tmp_path, [("C", "m", "c.npy", "", "chr1")])
    fails(sheet, tmp_path / "s.zarr",
          rf"c\.npy: chr1 bin {CHUNK_BINS + 3} \(bases {edge + 75}-{edge + 100}\) has the "
          r"value -2\.0", bin_size=25)
