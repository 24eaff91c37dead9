import gzip

import numpy as np
import pytest

from epimpute.errors import InputError
from epimpute.io.bedgraph import read_binned_contigs, read_windows, write_bedgraph

SIZES = {"chr1": 45, "chr2": 20, "chr3": 30}


def read_all(path, **kwargs):
    options = {"chrom_sizes": SIZES, "bin_size": 10, **kwargs}
    return dict(read_binned_contigs(path, **options))


@pytest.mark.parametrize("name", ["signal.bedgraph", "signal.bedgraph.gz"])
def test_round_trip_plain_and_gzipped(tmp_path, name):
    path = tmp_path / name
    write_bedgraph(path, "chr1", [6, 17, 30, 42], [12, 20, 40, 45], [2.0, 5.0, 1.0, 4.0])
    if name.endswith(".gz"):
        with open(path, "rb") as fh:
            assert fh.read(2) == b"\x1f\x8b"
    out = read_all(path)
    assert list(out) == ["chr1"]  # absent contigs are not yielded
    np.testing.assert_allclose(out["chr1"], [0.8, 1.9, 0.0, 1.0, 2.4], rtol=1e-6)
    assert out["chr1"].dtype == np.float32


def test_header_lines_unsorted_rows_and_several_contigs(tmp_path):
    path = tmp_path / "signal.bdg"
    path.write_text(
        "browser position chr1:1-45\n"
        "track type=bedGraph name=x\n"
        "# comment\n"
        "chr2 10 20 3.0\n"
        "chr2\t0\t5\t2.0\n"
        "chr1\t0\t45\t1.0\n"
    )
    out = read_all(path)
    assert list(out) == ["chr2", "chr1"]
    np.testing.assert_allclose(out["chr2"], [1.0, 3.0])
    np.testing.assert_allclose(out["chr1"], [1, 1, 1, 1, 1])


def test_small_chunks_give_the_same_bins(tmp_path):
    path = tmp_path / "signal.bdg"
    path.write_text("chr1\t0\t5\t1\nchr1\t5\t25\t2\nchr1\t25\t45\t3\nchr2\t0\t20\t4\n")
    whole = read_all(path)
    for rows in (1, 2, 3):
        chunked = read_all(path, chunk_rows=rows)
        assert list(chunked) == list(whole)
        for chrom in whole:
            np.testing.assert_array_equal(chunked[chrom], whole[chrom])
    np.testing.assert_allclose(whole["chr1"], [1.5, 2.0, 2.5, 3.0, 3.0])


def test_chroms_filter_skips_other_contigs_unchecked(tmp_path):
    path = tmp_path / "signal.bdg"
    path.write_text("chrUn\t0\t999\t1\nchr2\t0\t20\t4\n")
    out = read_all(path, chroms={"chr2"})
    assert list(out) == ["chr2"]


def test_empty_and_header_only_files_yield_nothing(tmp_path):
    empty = tmp_path / "empty.bdg"
    empty.write_text("")
    header_only = tmp_path / "header.bdg"
    header_only.write_text("track type=bedGraph\n")
    assert read_all(empty) == {}
    assert read_all(header_only) == {}


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "chr1\t0\t10\t1\nchr1\t20\t30\t1\nchr1\t5\t15\t1\n",
            r"line 3: 'chr1 5 15 1': the interval overlaps line 1 \('chr1 0 10 1'\)",
        ),
        (
            "chr1\t0\t10\t1\nchr9\t0\t10\t1\n",
            r"line 2: 'chr9 0 10 1': contig 'chr9' is not in the chromosome sizes",
        ),
        ("chr1\t0\t10\t1\nchr1\t40\t50\t1\n", r"line 2: .*ends past chr1 \(45 bp; assembly"),
        (
            "chr1\t0\t10\t1\nchr2\t0\t10\t1\nchr1\t20\t30\t1\n",
            r"line 3: 'chr1 20 30 1': contig 'chr1' appears again",
        ),
        ("track x\nchr1\t0\t10\t1\nchr1\t10\tten\t1\n", r"line 3: 'chr1 10 ten 1': expected"),
        ("chr1\t0\t10\t1\nchr1\t10\t20\n", r"line 2: 'chr1 10 20': expected"),
        ("chr1\t0\t10\t1\nchr1\t10\t20\tnan\n", r"line 2: 'chr1 10 20 nan': the value is nan"),
        ("chr1\t0\t10\tinf\n", r"line 1: 'chr1 0 10 inf': the value is inf"),
        ("chr1\t10\t10\t1\n", r"line 1: .*empty, reversed"),
    ],
)
def test_bad_lines_are_reported_with_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.bedgraph"
    path.write_text(text)
    with pytest.raises(InputError, match=r"bad\.bedgraph, " + message):
        read_all(path)


def test_line_numbers_count_blank_and_header_lines(tmp_path):
    path = tmp_path / "bad.bdg"
    path.write_text("track x\n\nchr1\t0\t10\t1\n\nchr1\t5\t15\t1\n")
    with pytest.raises(InputError, match=r"line 5: 'chr1 5 15 1': the interval overlaps line 3"):
        read_all(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"absent\.bdg: no such file"):
        read_all(tmp_path / "absent.bdg")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_gzip(tmp_path, damage):
    path = tmp_path / "corrupt.bdg.gz"
    lines = "".join(f"chr1\t{i}\t{i + 1}\t{i % 7}\n" for i in range(45)).encode()
    if damage == "garbage":
        path.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    else:
        path.write_bytes(gzip.compress(lines)[:-30])
    with pytest.raises(InputError, match=r"corrupt\.bdg\.gz: not a readable bedGraph"):
        read_all(path)


def test_read_windows_cut_through_unsorted_intervals(tmp_path):
    # intervals in file order 30-40, 6-12, 17-20, 42-45; windows of 1 bin cut [6, 12)
    path = tmp_path / "s.bedgraph"
    path.write_text("chr1\t30\t40\t1\nchr1\t6\t12\t2\nchr1\t17\t20\t5\nchr1\t42\t45\t4\n"
                    "chr2\t0\t20\t3\n")
    got = list(read_windows(path, chrom_sizes=SIZES, bin_size=10, window_bins=1))
    assert [(c, first) for c, first, _ in got] == [("chr1", i) for i in range(5)] + [
        ("chr2", 0), ("chr2", 1)]
    np.testing.assert_allclose(np.concatenate([v for _, _, v in got[:5]]),
                               [0.8, 1.9, 0, 1, 2.4], rtol=1e-6)
    whole = read_all(path)
    for window_bins in (2, 3):
        parts = list(read_windows(path, chrom_sizes=SIZES, bin_size=10, window_bins=window_bins))
        np.testing.assert_array_equal(
            np.concatenate([v for c, _, v in parts if c == "chr1"]), whole["chr1"])
