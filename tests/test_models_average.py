import numpy as np
import pytest

from epimpute.errors import InputError
from epimpute.models.average import AverageImputer
from epimpute.models.layout import Layout


def test_average_of_the_assay_in_other_available_biosamples():
    layout = Layout.from_keys(["a:K4", "b:K4", "c:K4", "a:K27"], bin_size=25)
    signal = np.array([[1, 2], [3, 4], [5, 9], [7, 7]], dtype=np.float32)
    imputer = AverageImputer(layout)
    everything = np.ones(4, dtype=bool)
    # b:K27 -> only a has K27
    np.testing.assert_array_equal(
        imputer.impute_region(signal, everything, [(1, 0)], contig="x", start=0), [[7, 7]])
    # a:K4 left out -> mean of b and c
    loo = everything.copy()
    loo[0] = False
    np.testing.assert_array_equal(
        imputer.impute_region(signal, loo, [(0, 1)], contig="x", start=0), [[4, 6.5]])


def test_no_other_biosample_with_the_assay_is_an_error():
    layout = Layout.from_keys(["a:K4", "a:K27", "b:K4"], bin_size=25)
    with pytest.raises(InputError, match="no other cell type has assay 'K27'"):
        AverageImputer(layout).impute_region(np.zeros((3, 2), np.float32),
                                             np.ones(3, bool), [(0, 0)], contig="x", start=0)
