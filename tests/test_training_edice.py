
import numpy as np
import pytest
import torch

from epimpute.models.edice import EdiceConfig
from epimpute.training.edice import EdiceTrainingConfig, train_edice
from epimpute.training.loop import RunSettings

TINY = EdiceConfig(d_model=16, n_heads=2, feedforward=32, decoder_hidden=(32,),
                   windows=(1, 3, 9))
QUICK = EdiceTrainingConfig(batch_size=256, epoch_bins=2048, max_epochs=3, patience=5,
                            validation_max_bins=2000, block_bins=2000)


def weights(imputer):
    return {k: v.clone() for k, v in imputer.state_dict().items()}


@pytest.mark.slow
def test_same_seed_same_weights_on_cpu(small_compendium):
    store, _ = small_compendium
    runs = [train_edice(store, config=TINY, training=QUICK,
                        settings=RunSettings(seed=7, device="cpu"))[0] for _ in range(2)]
    a, b = (weights(r) for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = weights(train_edice(store, config=TINY, training=QUICK,
                                settings=RunSettings(seed=8, device="cpu"))[0])
    assert not all(torch.equal(a[k], other[k]) for k in a)


def test_training_does_not_change_global_torch_rng(small_compendium):
    store, _ = small_compendium
    state = torch.get_rng_state()
    train_edice(store, config=TINY, training=QUICK, settings=RunSettings(seed=1, device="cpu"))
    assert torch.equal(state, torch.get_rng_state())


def test_resume_continues_to_the_same_weights(small_compendium, tmp_path):
    """Stopping after 2 epochs and resuming for the 3rd gives exactly the straight run."""
    store, _ = small_compendium
    straight, history = train_edice(store, config=TINY, training=QUICK,
                                    settings=RunSettings(seed=3, device="cpu"),
                                    checkpoint=tmp_path / "a.pt")
    assert len(history.epochs) == 3
    two = EdiceTrainingConfig(**{**QUICK.__dict__, "max_epochs": 2})
    train_edice(store, config=TINY, training=two, settings=RunSettings(seed=3, device="cpu"),
                checkpoint=tmp_path / "b.pt")
    # the checkpoint says it stopped at max epochs; a longer budget continues it
    state = torch.load(tmp_path / "b.pt", weights_only=True)
    state["history"]["stopped_because"] = ""
    torch.save(state, tmp_path / "b.pt")
    resumed, resumed_history = train_edice(
        store, config=TINY, training=QUICK,
        settings=RunSettings(seed=3, device="cpu", resume=True), checkpoint=tmp_path / "b.pt")
    assert len(resumed_history.epochs) == 3
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed_history.epochs[-1]["validation"] == history.epochs[-1]["validation"]


def test_time_budget_stops_training(small_compendium):
    store, _ = small_compendium
    long = EdiceTrainingConfig(**{**QUICK.__dict__, "max_epochs": 1000})
    _, history = train_edice(store, config=TINY, training=long,
                             settings=RunSettings(seed=0, device="cpu", max_minutes=0.0))
    assert history.stopped_because == "time budget"
    assert len(history.epochs) == 1
    assert np.isfinite(history.best_validation)


def test_masked_loss_is_measured_in_each_target_tracks_sd():
    """With standardisation an error of one sd costs the same on a strong track as on a
    weak one."""
    from epimpute.models.edice import Edice
    from epimpute.models.layout import Layout
    from epimpute.training.edice import masked_loss, measure_pair_statistics

    layout = Layout.from_keys(["a:K4", "a:K27", "b:K4", "b:K27"], bin_size=25)
    torch.manual_seed(0)
    net = Edice(layout, EdiceConfig(d_model=8, n_heads=2, feedforward=8, decoder_hidden=(8,),
                                    windows=(1,))).eval()
    values = np.random.default_rng(0).gamma(2.0, 0.3, size=(200, 4)) * [1, 5, 2, 3]
    measure_pair_statistics(net, values, estimate_all=True)
    features = torch.rand(10, 4, 1)
    truth = torch.rand(10, 4)
    targets = torch.tensor([[1, 2]]).expand(10, -1)
    available = torch.ones(10, 4, dtype=torch.bool)
    available[:, [1, 2]] = False
    valid = torch.ones(10, 2, dtype=torch.bool)
    loss = masked_loss(net, (features, truth, available, targets, valid))
    pairs = torch.tensor([layout.tracks[1], layout.tracks[2]])
    predicted = net(features, available, pairs.expand(10, -1, -1))
    sd = torch.tensor([values[:, 1].std(), values[:, 2].std()], dtype=torch.float32)
    expected = (((predicted - truth[:, [1, 2]]) / sd) ** 2).mean()
    torch.testing.assert_close(loss, expected)


def _batches(n_biosamples, n_assays, config):
    from epimpute.models.edice import Edice
    from epimpute.models.layout import Layout
    from epimpute.training.data import BinTable
    from epimpute.training.edice import _EdiceBatches

    keys = [f"b{b}:a{a}" for b in range(n_biosamples) for a in range(n_assays)]
    network = Edice(Layout.from_keys(keys, bin_size=25), TINY)
    table = BinTable(np.zeros((256, len(keys), 3), np.float32),
                     np.zeros((256, len(keys)), np.float32))
    batches = _EdiceBatches(table, network, config, torch.Generator().manual_seed(0),
                            torch.device("cpu"))
    return network, list(batches(0))


def test_small_compendia_draw_exactly_the_masks_of_all_tracks():
    from epimpute.training.masking import sample_masks

    config = EdiceTrainingConfig(batch_size=64, epoch_bins=128)
    _, drawn = _batches(5, 4, config)
    generator = torch.Generator().manual_seed(0)
    torch.randperm(256, generator=generator)
    for batch, _ in drawn:
        expected = sample_masks(64, 20, max_masked=5, generator=generator,
                                track_biosample=torch.arange(5).repeat_interleave(4))
        for got, want in zip(batch[2:], expected):
            assert torch.equal(got, want)


def test_large_compendia_train_each_batch_on_drawn_context_biosamples():
    config = EdiceTrainingConfig(batch_size=64, epoch_bins=256, context_biosamples=3,
                                 max_masked_tracks=2)
    network, drawn = _batches(10, 4, config)
    contexts = set()
    for batch, _ in drawn:
        available, targets, valid = batch[2:]
        used = available.any(0)
        used[targets[valid]] = True
        biosamples = set(network.track_biosample[used].tolist())
        assert len(biosamples) == 3
        assert targets.shape[1] == 2 and valid.sum(1).max() <= 2
        contexts.add(tuple(sorted(biosamples)))
    assert len(contexts) == 4  # a new draw for each of the 4 batches
