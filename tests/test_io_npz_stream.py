import numpy as np
import pytest

from epimpute.io.npz_stream import NpzStreamWriter


def test_round_trip_against_numpy_load(tmp_path):
    rng = np.random.default_rng(4)
    arrays = {"chr1": rng.normal(size=1000).astype(np.float32),
              "chr10": rng.normal(size=7).astype(np.float32), "chrM": np.zeros(0, np.float32)}
    path = tmp_path / "t.npz"
    with NpzStreamWriter(path) as out:
        for name, values in arrays.items():
            out.begin(name, values.size)
            for lo in range(0, values.size, 300):  # in chunks
                out.write(values[lo:lo + 300].astype(np.float64))  # converted to float32
    with np.load(path) as saved:
        assert saved.files == list(arrays)
        for name, values in arrays.items():
            assert saved[name].dtype == np.float32
            np.testing.assert_array_equal(saved[name], values)
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]


def test_errors_leave_no_file(tmp_path):
    path = tmp_path / "t.npz"
    with pytest.raises(ValueError, match="more values written"):
        with NpzStreamWriter(path) as out:
            out.begin("a", 3)
            out.write(np.ones(4))
    with pytest.raises(ValueError, match="2 values of the array were never written"):
        with NpzStreamWriter(path) as out:
            out.begin("a", 3)
            out.write(np.ones(1))
    assert not list(tmp_path.iterdir())


def test_an_existing_file_is_kept_until_the_new_one_is_complete(tmp_path):
    path = tmp_path / "t.npz"
    np.savez(path, old=np.arange(3, dtype=np.float32))
    with pytest.raises(RuntimeError):
        with NpzStreamWriter(path) as out:
            out.begin("new", 2)
            raise RuntimeError("stop")
    with np.load(path) as saved:
        assert saved.files == ["old"]


def test_streamed_and_whole_arrays_read_back_with_numpy(tmp_path):
    path = tmp_path / "out.npz"
    table = np.arange(12, dtype=np.float32).reshape(6, 2)
    with NpzStreamWriter(path) as out:
        out.begin("signal", 5)
        out.write(np.zeros(3))
        out.write(np.ones(2))
        out.begin("table", 6, columns=2)
        out.write(table[:4])
        out.write(table[4:])
        out.begin("start", 3, dtype="<i8")
        out.write(np.array([0, 25, 50]))
        out.add("names", np.array(["a", "bc"]))
    with np.load(path) as saved:
        assert saved["signal"].tolist() == [0, 0, 0, 1, 1]
        assert saved["table"].dtype == np.float32 and np.array_equal(saved["table"], table)
        assert saved["start"].dtype == np.int64 and saved["start"].tolist() == [0, 25, 50]
        assert saved["names"].tolist() == ["a", "bc"]


def test_a_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "out.npz"
    with pytest.raises(ValueError, match="rows of shape"):
        with NpzStreamWriter(path) as out:
            out.begin("table", 4, columns=3)
            out.write(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="never written"):
        with NpzStreamWriter(path) as out:
            out.begin("signal", 4)
            out.write(np.zeros(3))
    assert list(tmp_path.iterdir()) == []
