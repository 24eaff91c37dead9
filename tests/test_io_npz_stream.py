import numpy as np
import pytest

from epimpute.io.npz_stream import NpzStreamWriter


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
