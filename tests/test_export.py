"""Export of store tracks to bigWig and npz files, a bounded number open at a time."""

import numpy as np
import pyBigWig
import pytest

from epimpute.cli import main
from epimpute.errors import InputError
from epimpute.export import export_tracks
from epimpute.synthetic_compendium import pilot_pattern, synthesize


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    return synthesize(pilot_pattern(), folder / "p.zarr",
                      contigs={"c1": 25 * 3000 + 10, "c2": 25 * 500}, seed=0)


def test_export_all_as_npz_in_small_groups_equals_the_store(store, tmp_path):
    keys = [t.key for t in store.tracks]
    paths = export_tracks(store, keys, tmp_path, output_format="npz", max_open=4)
    assert [p.name for p in paths] == [k.replace(":", ".") + ".npz" for k in keys]
    for row, path in enumerate(paths):
        with np.load(path) as arrays:
            for contig in store.contigs:
                np.testing.assert_array_equal(arrays[contig], store.read(contig, tracks=[row])[0])


def test_export_bigwig_holds_sinh_or_arcsinh(store, tmp_path):
    key = "E017:H3K4me3"
    row = store.track_index(key)
    assert main(["-q", "export", str(store.path), "--track", "E017:*", "--out",
                 str(tmp_path / "p")]) == 0
    assert len(list((tmp_path / "p").iterdir())) == 5
    assert main(["-q", "export", str(store.path), "--track", key, "--arcsinh", "--out",
                 str(tmp_path / "a")]) == 0
    stored = store.read("c1", tracks=[row])[0]
    with pyBigWig.open(str(tmp_path / "p" / "E017.H3K4me3.bw")) as bw:
        assert bw.chroms() == store.contigs
        values = np.array(bw.values("c1", 0, store.contigs["c1"]))
    np.testing.assert_allclose(values[::25], np.sinh(stored), rtol=1e-5, atol=1e-6)
    with pyBigWig.open(str(tmp_path / "a" / "E017.H3K4me3.bw")) as bw:
        np.testing.assert_allclose(np.array(bw.values("c1", 0, 25 * 3000))[::25], stored[:3000],
                                   rtol=1e-6)


def test_export_of_an_unknown_track_is_an_input_error(store, tmp_path, capsys):
    with pytest.raises(InputError, match="no track E003:H3K27ac"):
        export_tracks(store, ["E003:H3K27ac"], tmp_path)
    assert main(["-q", "export", str(store.path), "--track", "E999:*", "--out",
                 str(tmp_path)]) == 2
    assert "matches no track" in capsys.readouterr().err
