"""Prediction folders (npz and bigWig) and truth reading."""

import numpy as np
import pytest

from epimpute.errors import InputError
from epimpute.evaluation.sources import PredictionDir, read_truth


@pytest.fixture
def folder(tmp_path):
    np.savez(tmp_path / "E003.H3K4me3.npz", chr1=np.arange(4, dtype=np.float32), chr2=np.ones(2, np.float32))
    np.savez(tmp_path / "cell.v2@donor.H3K27me3.npz", chr1=np.full(4, np.nan, np.float32))
    (tmp_path / "notes.txt").write_text("not a track")
    np.savez(tmp_path / "E999.H3K4me3.npz", chr1=np.zeros(4, np.float32))
    return tmp_path


def test_finds_tracks_by_key_even_with_dots(folder):
    source = PredictionDir(folder, name="m")
    keys = source.keys(["E003:H3K4me3", "cell.v2@donor:H3K27me3", "E017:H3K4me3"])
    assert keys == ["E003:H3K4me3", "cell.v2@donor:H3K27me3"]
    assert source.contigs("E003:H3K4me3") == {"chr1", "chr2"}
    np.testing.assert_array_equal(source.read("E003:H3K4me3", "chr1", length=100, bin_size=25), np.arange(4))


def test_read_errors_name_the_file(folder):
    source = PredictionDir(folder, name="m")
    with pytest.raises(InputError, match=r"E003\.H3K4me3\.npz: contig 'chr1' has 4 bins, the truth has 5"):
        source.read("E003:H3K4me3", "chr1", length=101, bin_size=25)
    with pytest.raises(InputError, match="no array for contig 'chrX'"):
        source.read("E003:H3K4me3", "chrX", length=100, bin_size=25)
    with pytest.raises(InputError, match="NaN"):
        source.read("cell.v2@donor:H3K27me3", "chr1", length=100, bin_size=25)
    with pytest.raises(InputError, match="no prediction for track"):
        source.read("E017:H3K4me3", "chr1", length=100, bin_size=25)
    with pytest.raises(InputError, match="not found"):
        PredictionDir(folder / "missing", name="m")


def test_bigwig_predictions_are_binned_and_transformed(tmp_path):
    pyBigWig = pytest.importorskip("pyBigWig")
    handle = pyBigWig.open(str(tmp_path / "E003.H3K4me3.bw"), "w")
    handle.addHeader([("chr1", 100)])
    handle.addEntries(["chr1", "chr1"], [0, 25], ends=[25, 100], values=[4.0, 2.0])
    handle.close()
    source = PredictionDir(tmp_path, name="m")
    assert source.contigs("E003:H3K4me3") == {"chr1"}
    values = source.read("E003:H3K4me3", "chr1", length=100, bin_size=25)
    np.testing.assert_allclose(values, np.arcsinh([4.0, 2.0, 2.0, 2.0]), rtol=1e-6)


class _RawTruth:
    transform = "none"

    def read(self, contig, start=0, end=None, *, tracks=None):
        return np.array([[0.0, 3.0]], dtype=np.float32)


def test_truth_without_transform_is_put_on_the_arcsinh_scale():
    np.testing.assert_allclose(read_truth(_RawTruth(), "chr1", 0), np.arcsinh([0.0, 3.0]), rtol=1e-6)
