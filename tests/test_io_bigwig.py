import numpy as np
import pyBigWig
import pytest

from epimpute.errors import InputError
from epimpute.io.bigwig import BigWigWriter, chrom_sizes, read_binned, read_windows

SIZES = {"chr1": 45, "chr2": 20}


def write_bigwig(path, sizes, entries):
    """Write (chrom, start, end, value) entries, sorted, with pyBigWig."""
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(list(sizes.items()))
    for chrom, start, end, value in entries:
        bw.addEntries([chrom], [start], ends=[end], values=[float(value)])
    bw.close()
    return path


@pytest.fixture
def signal_bw(tmp_path):
    # chr1 bins of 10: [0,10) 4 bases of 2.0 -> 0.8; [10,20) 2 x 2.0 + 3 x 5.0 -> 1.9;
    # [20,30) -> 0; [30,40) 10 x 1.0 -> 1.0; [40,45) 5 bases, 3 x 4.0 -> 2.4
    return write_bigwig(
        tmp_path / "signal.bw",
        SIZES,
        [
            ("chr1", 6, 12, 2.0),
            ("chr1", 17, 20, 5.0),
            ("chr1", 30, 40, 1.0),
            ("chr1", 42, 45, 4.0),
            ("chr2", 0, 20, 3.0),
        ],
    )


def test_chrom_sizes_reads_the_header(signal_bw):
    assert chrom_sizes(signal_bw) == SIZES


def test_read_binned_hand_computed(signal_bw):
    out = read_binned(signal_bw, "chr1", length=45, bin_size=10)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.8, 1.9, 0.0, 1.0, 2.4], rtol=1e-6)
    np.testing.assert_allclose(read_binned(signal_bw, "chr2", length=20, bin_size=10), [3, 3])


@pytest.mark.parametrize("chunk_bins", [1, 2, 3])
def test_read_binned_chunking_does_not_change_bins(signal_bw, chunk_bins):
    whole = read_binned(signal_bw, "chr1", length=45, bin_size=10)
    chunked = read_binned(signal_bw, "chr1", length=45, bin_size=10, chunk_bins=chunk_bins)
    np.testing.assert_array_equal(chunked, whole)


def test_read_binned_empty_contig_is_zero(tmp_path):
    path = write_bigwig(tmp_path / "sparse.bw", SIZES, [("chr1", 0, 10, 1.0)])
    np.testing.assert_array_equal(read_binned(path, "chr2", length=20, bin_size=10), [0, 0])


def test_read_binned_unknown_contig(signal_bw):
    with pytest.raises(InputError, match=r"signal\.bw: contig 'chrX' is not in"):
        read_binned(signal_bw, "chrX", length=45, bin_size=10)


def test_read_binned_length_mismatch(signal_bw):
    with pytest.raises(InputError, match=r"signal\.bw: contig 'chr1' is 45 bp .* 50 bp"):
        read_binned(signal_bw, "chr1", length=50, bin_size=10)


def test_read_binned_rejects_nan_in_file(tmp_path):
    path = write_bigwig(
        tmp_path / "nan.bw", SIZES, [("chr1", 0, 10, 1.0), ("chr1", 20, 30, np.nan)]
    )
    with pytest.raises(InputError, match=r"nan\.bw: chr1:20-30 has the value nan"):
        read_binned(path, "chr1", length=45, bin_size=10)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"absent\.bw: no such file"):
        chrom_sizes(tmp_path / "absent.bw")


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.bw"
    path.write_bytes(b"this is not a bigWig" * 20)
    with pytest.raises(InputError, match=r"corrupt\.bw: not a readable bigWig"):
        read_binned(path, "chr1", length=45, bin_size=10)


def test_writer_round_trip_with_clipped_last_bin(tmp_path):
    path = tmp_path / "out.bw"
    with BigWigWriter(path, SIZES, bin_size=10) as writer:
        writer.write("chr1", 0, np.array([1.0, 2.0], dtype=np.float32))
        writer.write("chr1", 2, np.array([3.0, 4.0, 5.0]))
        writer.write("chr2", 1, np.array([7.0]))
    bw = pyBigWig.open(str(path))
    try:
        assert bw.chroms() == SIZES
        assert bw.intervals("chr1") == (
            (0, 10, 1.0),
            (10, 20, 2.0),
            (20, 30, 3.0),
            (30, 40, 4.0),
            (40, 45, 5.0),
        )
        assert bw.intervals("chr2") == ((10, 20, 7.0),)
    finally:
        bw.close()
    np.testing.assert_array_equal(
        read_binned(path, "chr1", length=45, bin_size=10), [1, 2, 3, 4, 5]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bw"]


def test_writer_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "out.bw"
    with pytest.raises(RuntimeError, match="boom"):
        with BigWigWriter(path, SIZES, bin_size=10) as writer:
            writer.write("chr1", 0, np.ones(5))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_out_of_order_chunks(tmp_path):
    path = tmp_path / "out.bw"
    with pytest.raises(ValueError, match="out of order"):
        with BigWigWriter(path, SIZES, bin_size=10) as writer:
            writer.write("chr1", 2, np.ones(2))
            writer.write("chr1", 0, np.ones(2))
    with pytest.raises(ValueError, match="out of order"):
        with BigWigWriter(path, SIZES, bin_size=10) as writer:
            writer.write("chr2", 0, np.ones(2))
            writer.write("chr1", 0, np.ones(2))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "chrom, start, values, message",
    [
        ("chr3", 0, np.ones(1), "not in chrom_sizes"),
        ("chr1", 4, np.ones(2), "outside chr1"),
        ("chr1", 0, np.array([1.0, np.nan]), "finite"),
        ("chr1", 0, np.ones((2, 2)), "1-D"),
    ],
)
def test_writer_rejects_bad_chunks(tmp_path, chrom, start, values, message):
    with pytest.raises(ValueError, match=message):
        with BigWigWriter(tmp_path / "out.bw", SIZES, bin_size=10) as writer:
            writer.write(chrom, start, values)
    assert list(tmp_path.iterdir()) == []


def test_writer_into_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        with BigWigWriter(tmp_path / "nope" / "out.bw", SIZES, bin_size=10):
            pass


def test_read_windows_cut_through_intervals(signal_bw):
    # windows of 2 bins = 20 bases: the edge at 20 is an interval's end, the one at 40 too;
    # the hand-computed bins of the fixture come out window by window
    got = list(read_windows(signal_bw, "chr1", length=45, bin_size=10, window_bins=2))
    assert [first for first, _ in got] == [0, 2, 4]
    np.testing.assert_allclose(np.concatenate([v for _, v in got]), [0.8, 1.9, 0, 1, 2.4],
                               rtol=1e-6)
    # windows of 1 bin: the edge at 10 cuts [6, 12) in two
    one = list(read_windows(signal_bw, "chr1", length=45, bin_size=10, window_bins=1))
    np.testing.assert_allclose(np.concatenate([v for _, v in one]), [0.8, 1.9, 0, 1, 2.4],
                               rtol=1e-6)


def test_read_windows_checks_the_header_before_any_window(signal_bw):
    with pytest.raises(InputError, match="50 bp was expected"):
        next(read_windows(signal_bw, "chr1", length=50, bin_size=10))
    with pytest.raises(ValueError, match="window_bins"):
        next(read_windows(signal_bw, "chr1", length=45, bin_size=10, window_bins=0))


def test_read_windows_longer_than_one_request(tmp_path):
    # bin size 1, so the 16,384-bin request edge is base 16,384: intervals of 1 and 3 bp
    # and one of 5,000 bp cross it; each bin is the base's own value
    length = 40_000
    starts = np.array([10, 16_383, 16_385, 16_390, 30_000])
    ends = np.array([16_383, 16_384, 16_388, 21_390, 39_999])
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    bw = pyBigWig.open(str(tmp_path / "d.bw"), "w")
    bw.addHeader([("chr1", length)])
    bw.addEntries(["chr1"] * 5, starts.tolist(), ends=ends.tolist(), values=values.tolist())
    bw.close()
    expected = np.zeros(length)
    for s, e, v in zip(starts, ends, values, strict=True):
        expected[s:e] = v
    got = list(read_windows(tmp_path / "d.bw", "chr1", length=length, bin_size=1,
                            window_bins=35_000))
    assert [first for first, _ in got] == [0, 35_000]
    np.testing.assert_array_equal(np.concatenate([v for _, v in got]), expected)
