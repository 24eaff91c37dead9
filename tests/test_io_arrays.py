import numpy as np
import pytest

from epimpute.errors import InputError
from epimpute.io.arrays import array_lengths, read_array, read_windows


def test_npy_needs_and_uses_chrom(tmp_path):
    path = tmp_path / "chr1.npy"
    np.save(path, np.array([1.0, 2.0, 3.0]))
    out = read_array(path, chrom="chr1")
    assert list(out) == ["chr1"]
    assert out["chr1"].dtype == np.float32
    np.testing.assert_array_equal(out["chr1"], [1, 2, 3])
    assert array_lengths(path, chrom="chr1") == {"chr1": 3}
    with pytest.raises(InputError, match=r"chr1\.npy: a \.npy file holds one contig"):
        read_array(path, chrom=None)


def test_npz_single_array_takes_the_given_contig(tmp_path):
    path = tmp_path / "one.npz"
    np.savez(path, np.array([0.5, 1.5]))
    np.testing.assert_array_equal(read_array(path, chrom="chr2")["chr2"], [0.5, 1.5])
    with pytest.raises(InputError, match=r"one\.npz: array 'arr_0' is not named after a contig"):
        read_array(path, chrom=None)


def test_npz_keyed_by_contig(tmp_path):
    path = tmp_path / "all.npz"
    np.savez(path, chr1=np.arange(4, dtype=np.float64), chr2=np.arange(2, dtype=np.int32))
    out = read_array(path, chrom=None)
    assert list(out) == ["chr1", "chr2"]
    np.testing.assert_array_equal(out["chr2"], [0, 1])
    assert out["chr2"].dtype == np.float32
    assert list(read_array(path, chrom="chr2")) == ["chr2"]
    assert array_lengths(path) == {"chr1": 4, "chr2": 2}
    with pytest.raises(InputError, match=r"all\.npz: no array named 'chr3'"):
        read_array(path, chrom="chr3")


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((2, 3)), r"has shape \(2, 3\); expected one value per bin"),
        (np.zeros(()), r"has shape \(\)"),
        (np.array(["a", "b"]), "has dtype <U1; expected numbers"),
        (np.array([True, False]), "has dtype bool; expected numbers"),
    ],
)
def test_wrong_shape_or_dtype(tmp_path, array, message):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(InputError, match=r"bad\.npy: array for 'chr1' " + message):
        read_array(path, chrom="chr1")
    with pytest.raises(InputError, match=message):
        array_lengths(path, chrom="chr1")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match=r"absent\.npz: no such file"):
        read_array(tmp_path / "absent.npz", chrom=None)
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip archive")
    with pytest.raises(InputError, match=r"corrupt\.npz: not a readable NumPy file"):
        read_array(corrupt, chrom=None)
    truncated = tmp_path / "truncated.npy"
    np.save(truncated, np.arange(100.0))
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(InputError, match=r"truncated\.npy: not a readable NumPy file"):
        read_array(truncated, chrom="chr1")


@pytest.mark.parametrize("save", ["npy", "npz", "npz_compressed"])
def test_read_windows_streams_the_array_read_array_returns(tmp_path, save):
    values = np.arange(10, dtype=">f8") / 4  # big-endian on purpose
    path = tmp_path / f"a.{save[:3]}"
    if save == "npy":
        np.save(path, values)
    elif save == "npz":
        np.savez(path, chr1=values, chr2=values[:3])
    else:
        np.savez_compressed(path, chr1=values, chr2=values[:3])
    got = list(read_windows(path, chrom="chr1", window_bins=4))
    assert [first for first, _ in got] == [0, 4, 8]
    assert all(v.dtype == np.float32 for _, v in got)
    np.testing.assert_array_equal(np.concatenate([v for _, v in got]),
                                  read_array(path, chrom="chr1")["chr1"])


def test_read_windows_truncated_array(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.arange(100, dtype=np.float64))
    path.write_bytes(path.read_bytes()[:-80])
    with pytest.raises(InputError, match=r"a\.npy: the array for 'chr1' ends early"):
        list(read_windows(path, chrom="chr1", window_bins=30))
