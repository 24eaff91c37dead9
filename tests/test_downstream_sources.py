"""Imputation folders and genome factors of a trained Avocado model as feature sources, and
the generated genes the demo's labels come from."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from epimpute import api
from epimpute.cli import main
from epimpute.downstream.sources import FactorsSource, PredictionSource, open_source
from epimpute.errors import InputError
from epimpute.synthetic import SyntheticSpec, generate

CONFIG = {
    "model": {"preset": "small", "celltype_factors": 4, "assay_factors": 3,
              "genome_factors": [3, 4, 5], "hidden": [16]},
    "training": {"batch_size": 2000, "max_epochs": 1, "stage2_max_epochs": 1,
                 "stage1_max_bins": 6000, "stage1_block_bins": 2000},
}


@pytest.fixture(scope="module")
def avocado(small_compendium, tmp_path_factory):
    store, _ = small_compendium
    folder = tmp_path_factory.mktemp("downstream-avocado")
    config = folder / "config.json"
    config.write_text(json.dumps(CONFIG))
    model_dir = api.train(store, folder / "model", model="avocado", config=config, seed=1,
                          device="cpu")
    keys = [store.tracks[0].key, store.tracks[3].key]
    api.impute(model_dir, store, folder / "imputed", targets=keys, format="npz", device="cpu")
    for contig in store.contigs:
        api.factors(model_dir, folder / f"{contig}.npz", chrom=contig)
    return store, folder, keys


def test_imputation_folder_means_equal_numpy_means(avocado):
    store, folder, keys = avocado
    source = open_source("imputed", [folder / "imputed"])
    assert isinstance(source, PredictionSource)
    assert source.columns == keys and source.contigs == store.contigs
    start, end = np.array([0, 1010, 299_990]), np.array([30, 5000, 300_000])
    got = source.means("chrA", start, end)
    for j, key in enumerate(keys):
        with np.load(folder / "imputed" / f"{key.replace(':', '.')}.npz") as saved:
            values = saved["chrA"]
        expected = [values[0:2].mean(), values[40:200].mean(), values[11_999:12_000].mean()]
        np.testing.assert_allclose(got[:, j], expected, rtol=1e-5)


def test_factors_files_of_two_contigs_make_one_source(avocado):
    store, folder, _ = avocado
    source = open_source("factors", [folder / "chrA.npz", folder / "chrB.npz"])
    assert isinstance(source, FactorsSource) and len(source.columns) == 3 * 12
    assert source.contigs == store.contigs
    with np.load(folder / "chrB.npz") as saved:
        factors = saved["factors"]
    got = source.means("chrB", np.array([500]), np.array([2500]))
    np.testing.assert_allclose(got[0], factors[20:100].mean(axis=0), rtol=1e-5)
    with pytest.raises(InputError, match="a second factors file of chrA"):
        open_source("factors", [folder / "chrA.npz", folder / "chrA.npz"])


def test_measured_imputed_and_factor_features_side_by_side_on_tiles(avocado, tmp_path):
    store, folder, _ = avocado
    # label each 2-kb tile by the mean of the first observed track
    labels = tmp_path / "tiles.tsv"
    rows = []
    for contig, length in store.contigs.items():
        values = store.read(contig, tracks=[0])[0]
        for lo in range(0, length, 2000):
            rows.append((f"{contig}:{lo}-{min(lo + 2000, length)}",
                         float(values[lo // 25:(lo + 2000) // 25].mean())))
    pd.DataFrame(rows).to_csv(labels, sep="\t", header=False, index=False)
    out = tmp_path / "t.tsv"
    status = main(["-q", "downstream", "--tile", "2000", "--labels", str(labels),
                   "--split", "block", "--block", "4000", "--folds", "3",
                   "--feature", f"measured={store.path}",
                   "--feature", f"imputed={folder / 'imputed'}",
                   "--feature", f"factors={folder / 'chrA.npz'}",
                   "--feature", f"factors={folder / 'chrB.npz'}", "--out", str(out)])
    assert status == 0
    table = pd.read_csv(out, sep="\t")
    pooled = table[table["fold"] == "all"].set_index(["feature_set", "metric"])["value"]
    assert table.groupby("feature_set")["n_features"].first().to_dict() == {
        "measured": len(store.tracks), "imputed": 2, "factors": 36}
    # the label is a measured column's mean: with some 75 training tiles per fold the
    # booster recovers it roughly, the briefly trained model's outputs far less
    assert pooled["measured", "pearson"] > 0.5
    assert pooled["measured", "pearson"] > max(pooled["imputed", "pearson"],
                                               pooled["factors", "pearson"])
    assert (table.loc[table["fold"] == "all", "n_test"] == 250).all()  # 150 + 100 tiles


def test_generated_genes_are_marked_at_their_tss_when_active():
    spec = SyntheticSpec(n_cell_types=3, contigs={"chrA": 2_000_000}, seed=2)
    compendium = generate(spec)
    genes = compendium.genes
    assert len(set(genes.ids)) == len(genes.ids) == genes.active.shape[0]
    assert ((genes.start < genes.end) & (genes.end <= 2_000_000)).all()
    tss = np.where(genes.strand > 0, genes.start, genes.end - 1) // spec.bin_size
    for ci, cell in enumerate(compendium.cell_types):
        k4 = compendium.signal[(cell, "H3K4me3")]["chrA"][np.clip(tss, 0, None)]
        on = genes.active[:, ci]
        assert 0 < on.sum() < on.size and k4[on].mean() > 3 * k4[~on].mean()
