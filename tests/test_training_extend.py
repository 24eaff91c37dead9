"""Extending trained models with new cell types and assays (freeze and finetune)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from epimpute import api
from epimpute.errors import InputError
from epimpute.model_dir import load_model, read_model_record
from epimpute.models.layout import Layout
from epimpute.store import Store, ingest
from epimpute.training.avocado import AvocadoTrainingConfig
from epimpute.training.edice import EdiceTrainingConfig
from epimpute.training.extend import (
    _grow_columns,
    _grow_rows,
    _phases,
    grow_edice,
    plan_extension,
)
from epimpute.training.loop import RunSettings

EDICE = {"model": {"d_model": 16, "n_heads": 2, "feedforward": 32, "decoder_hidden": [32],
                   "windows": [1, 3, 9]},
         "training": {"batch_size": 256, "epoch_bins": 2048, "max_epochs": 2, "patience": 5,
                      "validation_max_bins": 2000, "block_bins": 2000}}
AVOCADO = {"model": {"preset": "small", "hidden": [16], "genome_factors": [4, 4, 4]},
           "training": {"batch_size": 2000, "max_epochs": 2, "patience": 5}}
NEW_CELL, NEW_ASSAY = "cell4", "H3K27me3"


@pytest.fixture(scope="module")
def stores(small_compendium, tmp_path_factory):
    """The full store, and a base store without cell4 and without H3K27me3."""
    full, _ = small_compendium
    folder = tmp_path_factory.mktemp("extend")
    sheet = pd.read_csv(full.path.parent / "arrays" / "samples.tsv", sep="\t")
    sheet["path"] = [str(full.path.parent / "arrays" / p) for p in sheet["path"]]
    base = sheet[(sheet.cell_type != NEW_CELL) & (sheet.assay != NEW_ASSAY)]
    base.to_csv(folder / "base.tsv", sep="\t", index=False)
    base_store = ingest(folder / "base.tsv", folder / "base.zarr", bin_size=25,
                        chrom_sizes=full.contigs)
    return full, base_store, folder


def config_file(folder, name, values):
    path = folder / f"{name}.json"
    path.write_text(json.dumps(values))
    return path


@pytest.fixture(scope="module")
def edice_models(stores):
    full, base, folder = stores
    conf = config_file(folder, "edice", EDICE)
    api.train(base, folder / "edice-base", model="edice", config=conf, device="cpu",
              precision="fp32", seed=1)
    api.extend(folder / "edice-base", full, folder / "edice-freeze", mode="freeze",
               device="cpu", precision="fp32", seed=2)
    return folder / "edice-base", folder / "edice-freeze"


def old_targets(base: Store) -> list[str]:
    return [t.key for t in base.tracks][:6]


def test_freeze_leaves_existing_imputations_bit_identical(stores, edice_models):
    _, base, folder = stores
    for name, model in zip(("old", "new"), edice_models):
        api.impute(model, base, folder / f"imputed-{name}", targets=old_targets(base),
                   format="npz", device="cpu", precision="fp32")
    for key in old_targets(base):
        name = key.replace(":", ".") + ".npz"
        with np.load(folder / "imputed-old" / name) as a, \
                np.load(folder / "imputed-new" / name) as b:
            for contig in a.files:
                assert np.array_equal(a[contig], b[contig]), (key, contig)


def test_freeze_trains_only_the_new_parameters(stores, edice_models):
    full, _, _ = stores
    base = load_model(edice_models[0])
    extended = load_model(edice_models[1])
    extension = plan_extension(base.layout, full)
    assert extended.layout.biosamples[:3] == base.layout.biosamples
    assert extended.layout.biosamples[3] == NEW_CELL
    assert extended.layout.assays[-1] == NEW_ASSAY
    grown, masks = grow_edice(base.network, extension)
    start, end = grown.state_dict(), extended.network.state_dict()
    assert set(masks) == {"biosample_encoder.encode.weight", "assay_encoder.encode.weight",
                          "assay_encoder.embedding.weight", "biosample_encoder.embedding.weight"}
    statistics = ("pair_mean", "pair_sd", "pair_measured")
    for name, value in start.items():
        mask = masks.get(name)
        if name in statistics:
            continue
        if mask is None:
            assert torch.equal(value, end[name]), name
        else:
            assert torch.equal(value[~mask], end[name][~mask]), name
            assert not torch.equal(value[mask], end[name][mask]), name
    # standardisation: the old statistics are kept, those of the new row and column set
    unset = torch.isnan(start["pair_mean"])
    assert unset[3].all() and unset[:, 3].all() and not unset[:3, :3].any()
    for name in statistics:
        assert torch.equal(start[name][~unset], end[name][~unset]), name
    assert not torch.isnan(end["pair_mean"]).any() and not torch.isnan(end["pair_sd"]).any()
    # the new embedding row is the 4th biosample and the 4th assay
    assert masks["biosample_encoder.embedding.weight"][:, 0].tolist() == [False] * 3 + [True]
    assert masks["assay_encoder.embedding.weight"][:, 0].tolist() == [False] * 3 + [True]
    record = read_model_record(edice_models[1])
    assert record["provenance"]["mode"] == "freeze"
    assert not (edice_models[1] / "checkpoint.pt").exists()


def test_finetune_probes_then_trains_everything(stores, edice_models):
    full, _, folder = stores
    out = api.extend(edice_models[0], full, folder / "edice-finetune", mode="finetune",
                     device="cpu", precision="fp32")
    record = read_model_record(out)
    assert record["training_config"]["learning_rate"] == pytest.approx(EDICE_LR)
    # max_epochs 2: one epoch of the new parameters alone, then one of everything
    assert [e["epoch"] for e in record["provenance"]["history"]["epochs"]] == [1, 2]
    base = load_model(edice_models[0]).network.state_dict()
    tuned = load_model(out).network.state_dict()
    assert not torch.equal(base["decoder.0.weight"], tuned["decoder.0.weight"])
    rows = tuned["biosample_encoder.embedding.weight"]
    assert not torch.equal(rows[:3], base["biosample_encoder.embedding.weight"])
    start = base["biosample_encoder.embedding.weight"].mean(0)
    assert not torch.equal(rows[3], start)  # the new row moved from its start


def test_finetune_without_probe_trains_everything_from_the_start(stores, edice_models):
    full, _, folder = stores
    out = api.extend(edice_models[0], full, folder / "edice-noprobe", mode="finetune",
                     device="cpu", precision="fp32", probe_share=0.0)
    record = read_model_record(out)
    assert record["provenance"]["probe_share"] == 0.0
    assert [e["epoch"] for e in record["provenance"]["history"]["epochs"]] == [1, 2]
    with pytest.raises(InputError, match="probe share"):
        api.extend(edice_models[0], full, folder / "edice-bad", mode="finetune",
                   probe_share=1.0)
    assert not (folder / "edice-bad").exists()


def finetune_phases(settings, training, probe_share):
    """(settings, training) of each phase of finetune; the first trains only new items."""
    phases = _phases("finetune", settings, training, probe_share, None)
    assert [p.new_items_only for p in phases] == [True] * (len(phases) - 1) + [False]
    return [(p.settings, p.training) for p in phases]


def test_finetune_phases_split_the_budget_and_slow_the_second():
    edice = EdiceTrainingConfig(max_epochs=60, learning_rate=1e-3)
    (s1, t1), (s2, t2) = finetune_phases(RunSettings(max_minutes=3.0), edice, 0.5)
    assert (s1.max_minutes, s2.max_minutes) == (1.5, 1.5)
    assert (t1.max_epochs, t2.max_epochs) == (30, 30)
    assert (t1.learning_rate, t2.learning_rate) == pytest.approx((1e-3, 1e-4))
    avocado = AvocadoTrainingConfig(max_epochs=1, learning_rate=1e-3, genome_learning_rate=1e-2)
    (s1, t1), (s2, t2) = finetune_phases(RunSettings(), avocado, 0.5)
    assert s1.max_minutes is None and s2.max_minutes is None
    assert (t1.max_epochs, t2.max_epochs) == (1, 1)  # at least one epoch each
    assert (t2.learning_rate, t2.genome_learning_rate) == pytest.approx((1e-4, 1e-3))
    assert t1.genome_learning_rate == pytest.approx(1e-2)
    # no probe: the whole budget trains everything
    [(s2, t2)] = finetune_phases(RunSettings(max_minutes=3.0), edice, 0.0)
    assert s2.max_minutes == 3.0 and t2.max_epochs == 60
    assert t2.learning_rate == pytest.approx(1e-4)


EDICE_LR = 1e-3


def test_grown_rows_and_columns_start_at_the_mean_of_the_trained_ones():
    old = torch.tensor([[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]])
    grown, mask = _grow_rows(old, 4, new_rows=[2, 3])  # row 2 was never trained
    assert grown.tolist() == [[1, 2], [3, 4], [2, 3], [2, 3]]
    assert mask[:, 0].tolist() == [False, False, True, True]
    weight = torch.arange(8.0).reshape(2, 4)  # d=2, two blocks of width 2
    grown, mask = _grow_columns(weight, 3, 2, new_blocks=[2])
    assert grown.tolist() == [[0, 1, 2, 3, 1, 2], [4, 5, 6, 7, 5, 6]]
    assert mask[0].tolist() == [False] * 4 + [True] * 2


def test_layout_extension_appends_and_keeps_old_inputs_first():
    old = Layout.from_keys(["b:K4", "a:K4", "a:K27"], bin_size=25)
    new = old.extended(["a:K4", "c:K9", "a:K27", "b:K4", "c:K4"], biosamples=["a", "b", "c"])
    assert new.biosamples == ("a", "b", "c") and new.assays == ("K27", "K4", "K9")
    assert new.keys == ["b:K4", "a:K4", "a:K27", "c:K9", "c:K4"]


def test_bad_extensions_are_input_errors(stores, edice_models):
    full, base, folder = stores
    with pytest.raises(InputError, match="nothing to extend"):
        api.extend(edice_models[0], base, folder / "x1", mode="freeze", device="cpu")
    with pytest.raises(InputError, match="unknown extension mode"):
        api.extend(edice_models[0], full, folder / "x2", mode="thaw")
    with pytest.raises(InputError, match="matches no track"):
        api.extend(edice_models[0], full, folder / "x3", exclude=["nobody@*:*"])
    with pytest.raises(InputError, match="exists and is not empty"):
        api.extend(edice_models[0], full, edice_models[1], device="cpu")
    assert not (folder / "x1").exists()


def test_exclude_patterns_expand_to_store_keys(stores):
    full, _, _ = stores
    keys = api.expand_keys(full, [f"{NEW_CELL}:*", "cell1:H3K4me3"])
    assert keys == [t.key for t in full.tracks if t.cell_type == NEW_CELL] + ["cell1:H3K4me3"]


@pytest.fixture(scope="module")
def avocado_base(stores):
    """An Avocado model trained on the base store."""
    _, base, folder = stores
    conf = config_file(folder, "avocado", AVOCADO)
    return api.train(base, folder / "avo-base", model="avocado", config=conf,
                     device="cpu", seed=1)


def test_avocado_freeze_keeps_old_tracks_and_trains_only_new_factors(stores, avocado_base):
    full, base, folder = stores
    api.extend(folder / "avo-base", full, folder / "avo-freeze", mode="freeze", device="cpu",
               seed=1, exclude=[next(t.key for t in full.tracks if t.cell_type == NEW_CELL)])
    old, new = load_model(folder / "avo-base"), load_model(folder / "avo-freeze")
    a, b = old.network.state_dict(), new.network.state_dict()
    for name in a:
        if name in ("celltype.weight", "assay.weight"):
            n = a[name].shape[0]
            assert torch.equal(a[name], b[name][:n]), name
            assert not torch.equal(b[name][n:], b[name][:n].mean(0).expand_as(b[name][n:]))
        else:
            assert torch.equal(a[name], b[name]), name
    for contig in full.contigs:
        fa, fb = old.contig_state_dict(contig), new.contig_state_dict(contig)
        assert all(torch.equal(fa[k], fb[k]) for k in fa)
    keys = old_targets(base)
    for name, model in (("old", "avo-base"), ("new", "avo-freeze")):
        api.impute(folder / model, base, folder / f"avo-{name}", targets=keys,
                   format="npz", device="cpu")
    for key in keys:
        file = key.replace(":", ".") + ".npz"
        with np.load(folder / "avo-old" / file) as x, np.load(folder / "avo-new" / file) as y:
            assert all(np.array_equal(x[c], y[c]) for c in x.files)


def test_avocado_finetune_moves_the_genome_factors(stores, avocado_base):
    full, _, folder = stores
    out = api.extend(avocado_base, full, folder / "avo-finetune", mode="finetune",
                     device="cpu", seed=1)
    record = read_model_record(out)
    assert [e["epoch"] for e in record["provenance"]["history"]["epochs"]][-1] > 1
    old, new = load_model(avocado_base), load_model(out)
    contig = next(iter(full.contigs))
    assert not torch.equal(old.contig_state_dict(contig)["tables.0.weight"],
                           new.contig_state_dict(contig)["tables.0.weight"])


def test_a_new_individual_of_known_tissues_gets_only_its_individual_embedding():
    from epimpute.models.edice import Edice, EdiceConfig
    from epimpute.training.extend import Extension

    config = EdiceConfig(d_model=8, n_heads=2, feedforward=16, decoder_hidden=(8,),
                         windows=(1,), shared_tissue_embedding=True)
    old = Layout.from_keys(["liver@A:K4", "lung@A:K4", "lung@A:K27"], bin_size=25)
    network = Edice(old, config)
    layout = old.extended(["liver@A:K4", "lung@A:K4", "lung@A:K27", "liver@B:K4"],
                          biosamples=["lung@B"])
    extension = Extension(layout, new_biosamples=(2, 3), new_assays=(), new_tracks=("x",))
    grown, masks = grow_edice(network, extension)
    tissue = masks["biosample_encoder.tissue_embedding.weight"]
    individual = masks["biosample_encoder.individual_embedding.weight"]
    assert not bool(tissue.any())
    assert individual[:, 0].tolist() == [False, True]
    weights = grown.state_dict()["biosample_encoder.individual_embedding.weight"]
    old_weights = network.state_dict()["biosample_encoder.individual_embedding.weight"]
    assert torch.equal(weights[0], old_weights[0])
    # B starts as a fresh identity (standard normal from the seed), not as a copy of A
    fresh = torch.randn((1, 8), generator=torch.Generator().manual_seed(0))[0]
    assert torch.equal(weights[1], fresh)
    # the assay encoder reads two new biosamples: two new column blocks of width 1
    assert masks["assay_encoder.encode.weight"][0].tolist() == [False, False, True, True]


def test_tissue_masking_hides_a_tissue_across_individuals():
    from epimpute.models.edice import Edice, EdiceConfig
    from epimpute.training.data import BinTable
    from epimpute.training.edice import EdiceTrainingConfig, _EdiceBatches

    layout = Layout.from_keys(["liver@A:K4", "liver@B:K4", "liver@B:K27", "lung@A:K4",
                               "lung@B:K27"], bin_size=25)
    network = Edice(layout, EdiceConfig(d_model=8, n_heads=2, feedforward=16,
                                        decoder_hidden=(8,), windows=(1,)))
    table = BinTable(np.zeros((64, 5, 1), np.float32), np.zeros((64, 5), np.float32))
    config = EdiceTrainingConfig(batch_size=64, epoch_bins=64, mask_biosample_probability=1.0,
                                 mask_unit="tissue")
    batches = _EdiceBatches(table, network, config, torch.Generator().manual_seed(0),
                            torch.device("cpu"))
    (batch, _), = list(batches(0))
    available = batch[2]
    hidden = {tuple(np.flatnonzero(~row.numpy())) for row in available}
    assert hidden == {(0, 1, 2), (3, 4)}  # all liver tracks, or all lung tracks


def test_extend_command_line(stores, edice_models, capsys):
    from epimpute.cli import main

    full, _, folder = stores
    status = main(["-q", "extend", str(edice_models[0]), str(full.path), "--out",
                   str(folder / "cli-freeze"), "--mode", "freeze", "--device", "cpu",
                   "--exclude", f"{NEW_CELL}:*", "--max-minutes", "0.05"])
    assert status == 0
    assert "saved the extended model (freeze)" in capsys.readouterr().out
    assert read_model_record(folder / "cli-freeze")["provenance"]["exclude"] == sorted(
        t.key for t in full.tracks if t.cell_type == NEW_CELL)
    status = main(["-q", "extend", str(folder / "nowhere"), str(full.path), "--out",
                   str(folder / "cli-x")])
    assert status == 2 and "no config.json" in capsys.readouterr().err
