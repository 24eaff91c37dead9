"""Imputation windows on a real two-process Dask cluster, and a scheduler that is not there."""

import json

import numpy as np
import pytest
from test_imputation import TINY, holey_pattern

from epimpute import api
from epimpute.cli import main
from epimpute.imputation import RECORD_FILE
from epimpute.store import Store
from epimpute.synthetic_compendium import synthesize


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask")
    store = synthesize(holey_pattern(6, 4, 0.4, seed=7), folder / "in.zarr",
                       contigs={"c1": 25 * 5000, "c2": 25 * 1700}, seed=7)
    (folder / "tiny.json").write_text(json.dumps(TINY))
    api.train(store, folder / "edice", model="edice", config=folder / "tiny.json",
              device="cpu", seed=0)
    return folder, store


def test_two_workers_write_the_same_store_as_one_process(model):
    folder, store = model
    common = {"missing": True, "format": "zarr", "chunk_bins": 1024, "device": "cpu",
              "precision": "fp32"}
    here = Store.open(api.impute(folder / "edice", store, folder / "here.zarr", **common)[0])
    dask = Store.open(api.impute(folder / "edice", store, folder / "dask.zarr", workers=2,
                                 **common)[0])
    assert dask.tracks == here.tracks and len(here.tracks) >= 3
    for contig in store.contigs:
        np.testing.assert_array_equal(dask.read(contig), here.read(contig))
        assert np.abs(here.read(contig)).sum() > 0


def test_npz_files_through_dask_equal_the_store(model):
    folder, store = model
    key = Store.open(folder / "here.zarr").tracks[0].key
    paths = api.impute(folder / "edice", store, folder / "files", targets=[key],
                       format="npz", chunk_bins=1024, device="cpu", precision="fp32",
                       workers=1)
    here = Store.open(folder / "here.zarr")
    with np.load(paths[0]) as arrays:
        np.testing.assert_array_equal(arrays["c2"], here.read("c2", tracks=[0])[0])
    # the files and the record of what was imputed, nothing else (no scratch store)
    assert sorted(p.name for p in (folder / "files").iterdir()) == sorted([paths[0].name,
                                                                            RECORD_FILE])


def test_unreachable_scheduler_exits_2_with_a_message(model, capsys):
    folder, store = model
    code = main(["-q", "impute", str(folder / "edice"), str(store.path), "--missing",
                 "--format", "zarr", "--out", str(folder / "never.zarr"),
                 "--scheduler", "tcp://127.0.0.1:9"])
    assert code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err
    assert not (folder / "never.zarr").exists()
    assert not (folder / ".never.zarr.partial").exists()
