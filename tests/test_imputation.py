"""Imputation at scale: windows, identical outputs across window sizes and formats, few open
files however many targets."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from epimpute import api
from epimpute.imputation import RECORD_FILE, WINDOW_MEMORY, window_bins
from epimpute.store import Store
from epimpute.synthetic_compendium import Pattern, synthesize

TINY = {"model": {"d_model": 16, "n_heads": 2, "feedforward": 32, "decoder_hidden": [32],
                  "windows": [1, 3, 9]},
        "training": {"batch_size": 256, "epoch_bins": 1024, "max_epochs": 1,
                     "block_bins": 1000}}


def holey_pattern(n_biosamples: int, n_assays: int, keep: float, seed: int) -> Pattern:
    """A pattern where every assay is observed in at least two biosamples."""
    rng = np.random.default_rng(seed)
    observed = rng.random((n_biosamples, n_assays)) < keep
    observed[:2] = True
    return Pattern(tuple(f"b{i}" for i in range(n_biosamples)),
                   tuple(("H3K4me3", "H3K27ac", "H3K36me3", "H3K27me3", "H3K9me3",
                          "H3K4me1")[:n_assays]), observed)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale")
    store = synthesize(holey_pattern(6, 4, 0.6, seed=1), folder / "in.zarr",
                       contigs={"c1": 25 * 5000, "c2": 25 * 2100}, seed=1)
    (folder / "tiny.json").write_text(json.dumps(TINY))
    api.train(store, folder / "edice", model="edice", config=folder / "tiny.json",
              device="cpu", seed=0)
    api.train(store, folder / "average", model="average")
    return folder, store


def read_npz(folder: Path, keys: list[str]) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for key in keys:
        with np.load(folder / f"{key.replace(':', '.')}.npz") as arrays:
            out[key] = {name: arrays[name] for name in arrays.files}
    return out


def test_window_bins_bound_the_memory_of_a_window():
    assert window_bins(100_000, 10, 5) == 100_000
    bins = window_bins(100_000, 29_786, 3_814)
    assert bins % 256 == 0 and bins < 100_000
    assert 4 * (29_786 + 3_814) * bins <= WINDOW_MEMORY < 4 * (29_786 + 3_814) * (bins + 256)


@pytest.mark.parametrize("model", ["edice", "average"])
def test_output_is_identical_across_window_sizes_and_formats(models, model):
    folder, store = models
    runs = {}
    for chunk_bins, fmt in ((100_000, "npz"), (700, "npz"), (1024, "zarr")):
        out = folder / f"{model}-{chunk_bins}-{fmt}" / ("out.zarr" if fmt == "zarr" else "")
        paths = api.impute(folder / model, store, out, missing=True, format=fmt,
                           chunk_bins=chunk_bins, device="cpu", precision="fp32")
        runs[(chunk_bins, fmt)] = paths
    keys = [t.key for t in Store.open(runs[(1024, "zarr")][0]).tracks]
    assert len(keys) == (~store.observed_matrix()[2]).sum() > 3
    big = read_npz(runs[(100_000, "npz")][0].parent, keys)
    small = read_npz(runs[(700, "npz")][0].parent, keys)
    imputed = Store.open(runs[(1024, "zarr")][0])
    for row, key in enumerate(keys):
        for contig in ("c1", "c2"):
            np.testing.assert_array_equal(big[key][contig], small[key][contig])
            np.testing.assert_array_equal(big[key][contig],
                                          imputed.read(contig, tracks=[row])[0])


def test_average_of_a_missing_track_is_the_mean_of_its_assay(models):
    folder, store = models
    out = api.impute(folder / "average", store, folder / "avg.zarr", missing=True,
                     format="zarr", chunk_bins=3000)[0]
    imputed = Store.open(out)
    signal = store.read("c1")
    for row, track in enumerate(imputed.tracks):
        same = [i for i, t in enumerate(store.tracks) if t.assay == track.assay]
        np.testing.assert_allclose(imputed.read("c1", tracks=[row])[0],
                                   signal[same].mean(axis=0), rtol=1e-6)


LIMITED = """
import resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
from epimpute.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("fmt", ["bigwig", "npz"])
def test_impute_missing_with_more_targets_than_open_files_allowed(tmp_path, fmt):
    store = synthesize(holey_pattern(60, 6, 0.3, seed=2), tmp_path / "wide.zarr",
                       contigs={"c1": 25 * 3000}, seed=2)
    n_missing = int((~store.observed_matrix()[2]).sum())
    limit = 128
    assert n_missing > limit + 64
    api.train(store, tmp_path / "average", model="average")
    result = subprocess.run(
        [sys.executable, "-c", LIMITED, str(limit), "-q", "impute", str(tmp_path / "average"),
         str(store.path), "--missing", "--out", str(tmp_path / "out"), "--format", fmt],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    files = sorted(p.name for p in (tmp_path / "out").iterdir() if p.name != RECORD_FILE)
    assert len(files) == n_missing and (tmp_path / "out" / RECORD_FILE).is_file()
    assert all(name.endswith(".bw" if fmt == "bigwig" else ".npz") for name in files)
    # the same command without a limit of open files gives the same first file
    if fmt == "npz":
        first = (tmp_path / "out" / files[0])
        key = first.name[:-4].replace(".", ":", 1)
        api.impute(tmp_path / "average", store, tmp_path / "one", targets=[key],
                   format="npz")
        with np.load(first) as a, np.load(tmp_path / "one" / files[0]) as b:
            np.testing.assert_array_equal(a["c1"], b["c1"])
