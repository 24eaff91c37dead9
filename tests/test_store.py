import json
import pickle

import numpy as np
import pytest
import zarr

from epimpute import __version__
from epimpute.errors import InputError
from epimpute.store import Store, Track, create_store
from epimpute.store.store import StoreWriter, is_store

TRACKS = [
    Track("E003", "H3K4me3", source="/data/a.bw"),
    Track("E003", "H3K27ac"),
    Track("E004", "H3K4me3", individual="d1"),
]
CONTIGS = {"chr2": 45, "chr1": 20}  # store order is the given order


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "s.zarr"
    writer = create_store(path, tracks=TRACKS, contigs=CONTIGS, bin_size=10, transform="arcsinh")
    writer.write(0, "chr2", np.array([1, 2, 3, 4, 5], dtype=np.float32))
    writer.write(2, "chr2", np.array([7.0, 8.0]), start=3)
    writer.write(1, "chr1", np.array([9.0, 10.0]))
    return Store.open(path)


def test_metadata_and_names(store, tmp_path):
    assert store.path == tmp_path / "s.zarr"
    assert store.bin_size == 10
    assert store.transform == "arcsinh"
    assert store.tracks == TRACKS
    assert list(store.contigs.items()) == [("chr2", 45), ("chr1", 20)]
    assert store.n_bins("chr2") == 5
    assert store.n_bins("chr1") == 2
    assert store.biosamples == ["E003", "E004@d1"]
    assert store.assays == ["H3K27ac", "H3K4me3"]
    assert store.track_index("E004@d1:H3K4me3") == 2
    assert store.track_index("E004:H3K4me3") is None
    assert TRACKS[2].key == "E004@d1:H3K4me3"


def test_layout_on_disk(store):
    attrs = json.loads((store.path / "zarr.json").read_text())["attributes"]["epimpute"]
    assert attrs["format"] == "epimpute-store"
    assert attrs["format_version"] == 1
    assert attrs["created_by"] == f"epimpute {__version__}"
    assert attrs["contigs"] == {"chr2": 45, "chr1": 20}
    assert attrs["tracks"][0] == {
        "cell_type": "E003",
        "assay": "H3K4me3",
        "individual": "",
        "source": "/data/a.bw",
    }
    array = zarr.open_array(store.path / "signal" / "chr2", mode="r")
    assert array.shape == (3, 5)
    assert array.chunks == (1, 131072)
    assert array.dtype == np.float32


def test_read_whole_contig_unwritten_rows_are_zero(store):
    out = store.read("chr2")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1, 2, 3, 4, 5], [0, 0, 0, 0, 0], [0, 0, 0, 7, 8]])


def test_read_pads_bins_outside_the_contig_with_zeros(store):
    np.testing.assert_array_equal(store.read("chr2", -2, 3, tracks=[0]), [[0, 0, 1, 2, 3]])
    np.testing.assert_array_equal(
        store.read("chr2", 3, 8, tracks=[0, 2]), [[4, 5, 0, 0, 0], [7, 8, 0, 0, 0]]
    )
    np.testing.assert_array_equal(store.read("chr1", -3, -1).shape, (3, 2))
    assert not store.read("chr1", 5, 9).any()
    assert store.read("chr1", 1, 1).shape == (3, 0)


def test_read_selected_tracks_in_the_order_asked(store):
    np.testing.assert_array_equal(
        store.read("chr2", 2, 5, tracks=[2, 0, 2]), [[0, 7, 8], [3, 4, 5], [0, 7, 8]]
    )
    assert store.read("chr2", tracks=[]).shape == (0, 5)


def test_read_errors(store):
    with pytest.raises(InputError, match="no contig 'chrX' in the store"):
        store.read("chrX")
    with pytest.raises(ValueError, match="before start"):
        store.read("chr2", 4, 2)
    with pytest.raises(ValueError, match=r"track rows must be in \[0, 3\)"):
        store.read("chr2", tracks=[3])


def test_observed_matrix(store):
    biosamples, assays, observed = store.observed_matrix()
    assert biosamples == ["E003", "E004@d1"]
    assert assays == ["H3K27ac", "H3K4me3"]
    np.testing.assert_array_equal(observed, [[True, True], [False, True]])


def test_store_survives_pickling(store):
    copy = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(copy.read("chr2"), store.read("chr2"))


def test_writer_from_another_handle_and_bad_writes(store):
    writer = StoreWriter(store.path)
    writer.write(1, "chr1", np.array([4.0]), start=1)
    np.testing.assert_array_equal(store.read("chr1", tracks=[1]), [[9, 4]])
    with pytest.raises(ValueError, match="row 3 is outside"):
        writer.write(3, "chr1", np.ones(2))
    with pytest.raises(ValueError, match="outside chr1"):
        writer.write(0, "chr1", np.ones(2), start=1)
    with pytest.raises(ValueError, match="1-D"):
        writer.write(0, "chr1", np.ones((1, 2)))


def test_open_missing_path(tmp_path):
    with pytest.raises(InputError, match=r"absent\.zarr: no such store"):
        Store.open(tmp_path / "absent.zarr")


def test_open_something_else(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(InputError, match="folder: not an epimpute store"):
        Store.open(folder)
    plain = tmp_path / "plain.zarr"
    zarr.open_group(plain, mode="w")
    with pytest.raises(InputError, match=r"plain\.zarr: not an epimpute store"):
        Store.open(plain)
    assert not is_store(folder) and not is_store(plain)


def test_open_other_format_version(store):
    group = zarr.open_group(store.path, mode="r+")
    group.attrs["epimpute"] = {**group.attrs["epimpute"], "format_version": 2}
    assert is_store(store.path)
    with pytest.raises(InputError, match=r"s\.zarr: store format version 2, but this epimpute"):
        Store.open(store.path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tracks": [*TRACKS, Track("E003", "H3K27ac")]}, "track E003:H3K27ac is listed twice"),
        ({"tracks": []}, "at least one track"),
        ({"contigs": {}}, "at least one contig"),
        ({"contigs": {"a/b": 10}}, "contig name 'a/b' cannot be stored"),
        ({"contigs": {"chr1": 0}}, "length must be a positive integer"),
        ({"bin_size": 0}, "bin_size must be a positive integer"),
        ({"transform": "log"}, "unknown transform 'log'"),
    ],
)
def test_create_store_rejects_bad_arguments(tmp_path, kwargs, message):
    options = {"tracks": TRACKS, "contigs": CONTIGS, "bin_size": 10, "transform": "arcsinh"}
    with pytest.raises(InputError, match=message):
        create_store(tmp_path / "s.zarr", **{**options, **kwargs})
    assert list(tmp_path.iterdir()) == []


def test_create_store_refuses_existing_path(store):
    with pytest.raises(InputError, match=r"s\.zarr already exists"):
        create_store(store.path, tracks=TRACKS, contigs=CONTIGS, bin_size=10, transform="arcsinh")
