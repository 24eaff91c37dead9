import numpy as np
import pytest
import torch

from epimpute.errors import InputError
from epimpute.model_dir import load_model, save_model
from epimpute.models.avocado import AvocadoConfig
from epimpute.training.avocado import (
    AvocadoTrainingConfig,
    LazyAdam,
    fit_contig,
    stage1_blocks,
    train_avocado,
)
from epimpute.training.data import input_rows
from epimpute.training.loop import RunSettings

TINY = AvocadoConfig(preset="small", celltype_factors=4, assay_factors=4,
                     genome_factors=(3, 4, 5), hidden=(16,))
QUICK = AvocadoTrainingConfig(batch_size=2000, max_epochs=2, patience=5, stage2_max_epochs=2)
# stage 1 on random 2,000-bin blocks (6,000 of the 20,000 bins), then stage 2 on each contig
PARTIAL = AvocadoTrainingConfig(**{**QUICK.__dict__, "stage1_max_bins": 6000,
                                   "stage1_block_bins": 2000})
CPU = RunSettings(seed=5, device="cpu")


def everything(imputer):
    state = dict(imputer.state_dict())
    for contig in imputer.state_contigs():
        state.update({f"{contig}/{k}": v for k, v in imputer.contig_state_dict(contig).items()})
    return state


def impute_all(imputer, store, contig):
    n = store.n_bins(contig)
    signal = np.zeros((len(imputer.layout.tracks), n), np.float32)
    pairs = [(b, a) for b in range(imputer.layout.n_biosamples)
             for a in range(imputer.layout.n_assays)]
    return imputer.impute_region(signal, np.ones(len(imputer.layout.tracks), bool), pairs,
                                 contig=contig, start=0)


def test_small_store_is_trained_whole_in_stage_one(small_compendium):
    store, _ = small_compendium
    imputer, history = train_avocado(store, config=TINY, training=QUICK, settings=CPU)
    assert set(imputer.contigs) == set(store.contigs)
    assert imputer.config_dict()["members"] == 3  # the small preset's ensemble, recorded
    assert {e["stage"] for e in history.epochs} == {1}
    assert history.best_epoch >= 1


def test_same_seed_same_model_on_cpu(small_compendium):
    store, _ = small_compendium
    a, b = (everything(train_avocado(store, config=TINY, training=PARTIAL, settings=CPU)[0])
            for _ in range(2))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = everything(train_avocado(store, config=TINY, training=PARTIAL,
                                     settings=RunSettings(seed=6, device="cpu"))[0])
    assert not all(torch.equal(a[k], other[k]) for k in a)


def test_training_leaves_global_torch_state_alone(small_compendium):
    store, _ = small_compendium
    state = torch.get_rng_state()
    train_avocado(store, config=TINY, training=QUICK, settings=CPU)
    assert torch.equal(state, torch.get_rng_state())


def test_stage_two_moves_only_the_genome_factors(small_compendium):
    store, _ = small_compendium
    imputer, _ = train_avocado(store, config=TINY, training=QUICK, settings=CPU)
    network = imputer.network
    before = {k: v.clone() for k, v in network.state_dict().items()}
    flags = [p.requires_grad for p in network.parameters()]
    factors, history = fit_contig(network, store, input_rows(store, []), "chrB",
                                  training=QUICK, settings=CPU, seed=11)
    assert len(history.epochs) == 2
    after = network.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [p.requires_grad for p in network.parameters()] == flags
    fresh = type(factors).for_contig(store.n_bins("chrB"), network.config)
    assert factors.tables[0].weight.shape == fresh.tables[0].weight.shape
    assert not torch.equal(factors.tables[0].weight.abs().max(), torch.tensor(0.05))


def test_stage_two_fits_every_contig_and_saving_keeps_predictions(small_compendium, tmp_path):
    store, _ = small_compendium
    (tmp_path / "run").mkdir()
    imputer, history = train_avocado(store, config=TINY, training=PARTIAL, settings=CPU,
                                     checkpoint=tmp_path / "run" / "checkpoint.pt")
    assert {e.get("contig") for e in history.epochs if e["stage"] == 2} == {"chrA", "chrB"}
    # finished contigs were written beside the checkpoint and left memory
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoint-genome").iterdir()) == [
        "chrA.pt", "chrB.pt"]
    expected = {c: impute_all(imputer, store, c) for c in store.contigs}
    model_dir = save_model(tmp_path / "model", imputer)
    assert sorted(p.name for p in (model_dir / "genome").iterdir()) == ["chrA.pt", "chrB.pt"]
    loaded = load_model(model_dir)
    for contig in store.contigs:
        np.testing.assert_array_equal(impute_all(loaded, store, contig), expected[contig])


def test_contigs_left_out_of_stage_two_cannot_be_imputed(small_compendium):
    store, _ = small_compendium
    training = AvocadoTrainingConfig(**{**PARTIAL.__dict__, "stage2_contigs": ("chrB",)})
    imputer, _ = train_avocado(store, config=TINY, training=training, settings=CPU)
    assert imputer.contigs == ("chrB",)
    with pytest.raises(InputError, match="no genome factors for contig 'chrA'"):
        impute_all(imputer, store, "chrA")


def test_excluded_tracks_are_not_trained_on(small_compendium):
    store, _ = small_compendium
    key = store.tracks[0].key
    imputer, _ = train_avocado(store, config=TINY, training=QUICK, settings=CPU, exclude=[key])
    assert key not in imputer.layout.keys and imputer.layout.excluded == (key,)


def test_resumed_stage_two_skips_finished_contigs(small_compendium, tmp_path):
    store, _ = small_compendium
    checkpoint = tmp_path / "checkpoint.pt"
    first, _ = train_avocado(store, config=TINY, training=PARTIAL, settings=CPU,
                             checkpoint=checkpoint)
    again, history = train_avocado(store, config=TINY, training=PARTIAL,
                                   settings=RunSettings(seed=5, device="cpu", resume=True),
                                   checkpoint=checkpoint)
    assert not [e for e in history.epochs if e["stage"] == 2]
    a, b = everything(first), everything(again)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_stage_one_bed_regions_are_widened_to_the_coarsest_scale(small_compendium, tmp_path):
    store, _ = small_compendium
    bed = tmp_path / "regions.bed"
    bed.write_text("chrA\t1000\t2000\nchrA\t1500\t9000\nchrB\t0\t100\n")
    config = AvocadoTrainingConfig(stage1_bed=str(bed))
    blocks = stage1_blocks(store, config, align=200, rng=np.random.default_rng(0))
    assert blocks == [("chrA", 0, 400), ("chrB", 0, 200)]
    bed.write_text("chrZ\t0\t100\n")
    with pytest.raises(InputError, match="regions.bed: line 1 names contig 'chrZ'"):
        stage1_blocks(store, config, align=200, rng=np.random.default_rng(0))


def test_lazy_adam_moves_only_touched_rows():
    table = torch.nn.Embedding(10, 3, sparse=True)
    start = table.weight.detach().clone()
    optimizer = LazyAdam(table.parameters(), lr=0.1)
    table(torch.tensor([2, 7, 7])).sum().backward()
    optimizer.step()
    moved = (table.weight.detach() != start).any(dim=1)
    assert moved.tolist() == [i in (2, 7) for i in range(10)]
    # a row's first update is a full step (per-row bias correction)
    torch.testing.assert_close((start - table.weight.detach())[2], torch.full((3,), 0.1),
                               rtol=1e-3, atol=1e-4)


def test_lazy_adam_on_dense_parameters_is_adamw():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)
    b.load_state_dict(a.state_dict())
    ours = LazyAdam(a.parameters(), lr=0.01, weight_decay=0.5)
    reference = torch.optim.AdamW(b.parameters(), lr=0.01, weight_decay=0.5)
    for _ in range(5):
        x = torch.randn(8, 4)
        for model, optimizer in ((a, ours), (b, reference)):
            optimizer.zero_grad()
            model(x).square().mean().backward()
            optimizer.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)


def test_step_sizes_halve_after_each_plateau():
    from epimpute.training.avocado.plateau import PlateauDecay

    errors = iter([3.0, 2.0, 2.0, 2.0, 1.0, 1.5, 1.0, 0.5])
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    validate = PlateauDecay(lambda: next(errors), optimizer, factor=0.5, patience=2)
    rates = []
    for _ in range(8):
        validate()
        rates.append(optimizer.param_groups[0]["lr"])
    # two calls without a new minimum (2.0 twice; 1.5 and 1.0 after 1.0) halve the rate
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]
