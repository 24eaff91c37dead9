import pytest

from epimpute.errors import InputError
from epimpute.models.layout import Layout, split_key


def test_from_keys_sorts_names_and_indexes_tracks():
    layout = Layout.from_keys(["b:K4", "a:K27", "a:K4"], bin_size=25)
    assert layout.biosamples == ("a", "b")
    assert layout.assays == ("K27", "K4")
    assert layout.tracks == ((1, 1), (0, 0), (0, 1))
    assert layout.keys == ["b:K4", "a:K27", "a:K4"]
    assert layout.index_of("b:K27") == (1, 0)


def test_round_trip_through_dict():
    layout = Layout.from_keys(["x@d1:A", "y:B"], bin_size=50, excluded=["y:A"],
                              biosamples=["x@d1", "y", "z"])
    assert Layout.from_dict(layout.to_dict()) == layout


def test_unknown_names_and_bad_keys_are_clear_errors():
    layout = Layout.from_keys(["a:K4"], bin_size=25)
    with pytest.raises(InputError, match="cell type 'q'"):
        layout.index_of("q:K4")
    with pytest.raises(InputError, match="assay 'K9'"):
        layout.index_of("a:K9")
    with pytest.raises(InputError, match="CELL:ASSAY"):
        split_key("nocolon")
