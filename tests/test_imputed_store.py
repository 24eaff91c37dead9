"""Output stores: layout, resuming an interrupted imputation, refusing to clobber."""

import numpy as np
import pytest
from test_imputation import holey_pattern

from epimpute import api
from epimpute.errors import InputError
from epimpute.imputed_store import DONE_DIR, TRACK_BLOCK, WindowWriter, partial_path
from epimpute.store import Store
from epimpute.synthetic_compendium import synthesize


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume")
    store = synthesize(holey_pattern(5, 3, 0.5, seed=4), folder / "in.zarr",
                       contigs={"c1": 25 * 4000, "c2": 25 * 1500}, seed=4)
    api.train(store, folder / "average", model="average")
    return folder, store


def test_output_store_holds_the_targets_in_track_blocks(model):
    folder, store = model
    keys = ["b0:H3K4me3", "b3:H3K27ac"]
    out = api.impute(folder / "average", store, folder / "two.zarr", targets=keys,
                     format="zarr", chunk_bins=1000)[0]
    imputed = Store.open(out)
    assert [t.key for t in imputed.tracks] == keys
    assert imputed.contigs == store.contigs and imputed.transform == "arcsinh"
    assert not (out / DONE_DIR).exists() and not partial_path(out).exists()
    import zarr

    assert zarr.open_array(out / "signal" / "c1", mode="r").chunks == (min(2, TRACK_BLOCK), 1000)
    with pytest.raises(InputError, match="already exists"):
        api.impute(folder / "average", store, out, targets=keys, format="zarr")


def test_resume_skips_finished_windows_and_gives_the_same_store(model, monkeypatch):
    folder, store = model
    whole = Store.open(api.impute(folder / "average", store, folder / "whole.zarr",
                                  missing=True, format="zarr", chunk_bins=1000)[0])
    n_windows = 4 + 2  # c1: 4,000 bins; c2: 1,500 bins
    calls = []
    original = WindowWriter.__call__

    def failing(self, window):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(window)
        return original(self, window)

    monkeypatch.setattr(WindowWriter, "__call__", failing)
    out = folder / "resumed.zarr"
    with pytest.raises(KeyboardInterrupt):
        api.impute(folder / "average", store, out, missing=True, format="zarr",
                   chunk_bins=1000)
    partial = partial_path(out)
    assert not out.exists() and len(list((partial / DONE_DIR).iterdir())) == 3
    with pytest.raises(InputError, match="--resume"):
        api.impute(folder / "average", store, out, missing=True, format="zarr",
                   chunk_bins=1000)
    with pytest.raises(InputError, match="differs in window_bins"):
        api.impute(folder / "average", store, out, missing=True, format="zarr",
                   chunk_bins=2000, resume=True)
    calls.clear()
    monkeypatch.setattr(WindowWriter, "__call__",
                        lambda self, w: calls.append(w) or original(self, w))
    api.impute(folder / "average", store, out, missing=True, format="zarr",
               chunk_bins=1000, resume=True)
    assert len(calls) == n_windows - 3
    resumed = Store.open(out)
    assert resumed.tracks == whole.tracks
    for contig in store.contigs:
        np.testing.assert_array_equal(resumed.read(contig), whole.read(contig))
