from pathlib import Path

import pytest

from epimpute.errors import InputError
from epimpute.io.trackkey import TrackKey, check_name, output_path
from epimpute.models.layout import split_key
from epimpute.store.store import Track


def test_parse_and_format_round_trip():
    key = TrackKey.parse("liver@donor-1:H3K4me3")
    assert (key.cell_type, key.individual, key.assay) == ("liver", "donor-1", "H3K4me3")
    assert key.biosample == "liver@donor-1"
    assert str(key) == "liver@donor-1:H3K4me3"
    assert str(TrackKey.parse("E003:H3K27ac")) == "E003:H3K27ac"
    assert split_key("liver@B:ATAC-seq") == ("liver@B", "ATAC-seq")
    assert Track("liver", "H3K4me3", "B").key == "liver@B:H3K4me3"
    assert TrackKey.of("liver@B", "H3K4me3") == TrackKey("liver", "H3K4me3", "B")


@pytest.mark.parametrize("name", ["E003", "H3K4me3", "a.b", "x+y", "_z", "-1", "9"])
def test_allowed_names(name):
    assert check_name(name, what="cell type") == name


@pytest.mark.parametrize("name", ["", ".", "..", ".hidden", "../evil", "a/b", "/abs", "a b",
                                  "a:b", "a@b", "a\\b", "é"])
def test_rejected_names(name):
    with pytest.raises(InputError, match="is not a valid name"):
        check_name(name, what="cell type")


@pytest.mark.parametrize("text", ["../../evil:H3K4me3", "/abs/path/X:H3K4me3", "E003:../x",
                                  "E003@..:H3K4me3", "E003@:H3K4me3", "E003", ":H3K4me3"])
def test_parse_rejects_keys_that_could_name_other_folders(text):
    with pytest.raises(InputError, match=r"track key|not a track key|empty individual"):
        TrackKey.parse(text)


def test_output_path_stays_in_its_folder(tmp_path):
    path = output_path(tmp_path, "liver@B:H3K4me3", ".bw")
    assert path == tmp_path / "liver@B.H3K4me3.bw"
    with pytest.raises(InputError):
        output_path(tmp_path, "../../evil:H3K4me3", ".bw")
    with pytest.raises(InputError):
        _ = Track("..", "H3K4me3").key
    assert Path(tmp_path).is_dir() and not any(tmp_path.iterdir())
