"""eDICE's predicted spread: it never changes the mean, and its intervals are calibrated."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from epimpute.imputation import WindowImputer, plan_windows, resolve_targets
from epimpute.intervals import CURVE_LEVELS, REPORTED_LEVELS, coverage
from epimpute.models.edice import Edice, EdiceConfig
from epimpute.models.layout import Layout
from epimpute.models.spread import spread_group
from epimpute.training.edice import EdiceTrainingConfig, masked_loss, train_edice
from epimpute.training.loop import RunSettings

TINY = EdiceConfig(d_model=16, n_heads=2, feedforward=32, decoder_hidden=(32,),
                   windows=(1, 3, 9))
SPREAD = replace(TINY, uncertainty=True)
QUICK = EdiceTrainingConfig(batch_size=256, epoch_bins=2048, max_epochs=3, patience=5,
                            validation_max_bins=2000, block_bins=2000)


@pytest.fixture
def layout():
    return Layout.from_keys(["a:K4", "a:K27", "b:K4", "b:K36", "c:K27", "c:K36"],
                            bin_size=25, biosamples=["a", "b", "c", "d"])


def networks(layout):
    torch.manual_seed(0)
    plain = Edice(layout, TINY).eval()
    torch.manual_seed(0)
    spread = Edice(layout, SPREAD).eval()
    return plain, spread


def test_the_spread_head_draws_nothing_the_mean_would_have_drawn(layout):
    plain, spread = networks(layout)
    features = torch.rand(6, 6, 3)
    available = torch.ones(6, 6, dtype=torch.bool)
    available[:, 2] = False
    targets = torch.tensor([[0, 2], [3, 1], [1, 0]]).expand(6, -1, -1)
    mean, log_variance = spread(features, available, targets, spread=True)
    assert torch.equal(plain(features, available, targets), mean)
    assert torch.equal(spread(features, available, targets), mean)
    assert log_variance.shape == (6, 3) and torch.isfinite(log_variance).all()
    # the next random draw (dropout in training) is also the same
    torch.manual_seed(5)
    Edice(layout, SPREAD)
    after_spread = torch.rand(3)
    torch.manual_seed(5)
    Edice(layout, TINY)
    assert torch.equal(after_spread, torch.rand(3))
    with pytest.raises(ValueError):
        plain(features, available, targets, spread=True)


def test_the_likelihood_term_trains_only_the_spread_head(layout):
    _, network = networks(layout)
    network.train()
    generator = torch.Generator().manual_seed(0)
    features = torch.rand(32, 6, 3, generator=generator)
    values = torch.rand(32, 6, generator=generator)
    available = torch.ones(32, 6, dtype=torch.bool)
    available[:, 1] = False
    targets = torch.full((32, 1), 1)
    valid = torch.ones(32, 1, dtype=torch.bool)
    batch = (features, values, available, targets, valid)
    grads = {}
    for spread in (False, True):
        network.zero_grad()
        torch.manual_seed(1)  # the same dropout draws
        masked_loss(network, batch, spread=spread).backward()
        grads[spread] = {n: None if p.grad is None else p.grad.clone()
                         for n, p in network.named_parameters()}
    for name, grad in grads[True].items():
        if name.startswith("spread_head"):
            assert grad is not None and grad.abs().sum() > 0
            assert grads[False][name] is None
        elif grads[False][name] is not None:
            assert torch.equal(grad, grads[False][name]), name


def test_output_sd_is_pair_sd_times_calibration_factor_times_predicted_spread(layout):
    _, network = networks(layout)
    sd = torch.ones(4, 3) * 2.0
    measured = torch.zeros(4, 3, dtype=torch.bool)
    measured[0, 1] = True
    network.set_pair_statistics(np.zeros((4, 3)), sd.numpy(), measured.numpy())
    network.spread_scale.copy_(torch.tensor([[1.0, 3.0, 1.0], [1.0, 5.0, 1.0]])[..., None])
    pairs = torch.tensor([[0, 1], [2, 1]])  # measured, estimated; assay 1
    got = network.output_sd(torch.log(torch.tensor([4.0, 4.0])), pairs, torch.zeros(2))
    # exp(0.5 log 4) = 2, times pair sd 2, times the factor 3 (measured) or 5 (estimated)
    torch.testing.assert_close(got, torch.tensor([12.0, 20.0]))


def test_the_factor_follows_the_level_group_of_the_predicted_value(layout):
    _, network = networks(layout)
    network.spread_edges.copy_(torch.tensor([[0.5, 1.0, 2.0, 4.0]]).repeat(3, 1))
    network.spread_scale.copy_(torch.arange(1.0, 6.0).repeat(2, 3, 1))  # group g -> g + 1
    pairs = torch.tensor([[0, 1]]).repeat(6, 1)
    predicted = torch.tensor([0.0, 0.5, 0.9, 1.5, 3.0, 10.0])  # groups 0 1 1 2 3 4
    got = network.output_sd(torch.zeros(6), pairs, predicted)
    torch.testing.assert_close(got, torch.tensor([1.0, 2.0, 2.0, 3.0, 4.0, 5.0]))


def test_factors_saved_with_one_group_per_assay_load_as_one_group(layout):
    _, network = networks(layout)
    state = network.state_dict()
    state["spread_scale"] = torch.tensor([[1.0, 3.0, 1.0], [1.0, 5.0, 1.0]])
    del state["spread_edges"]
    _, loaded = networks(layout)
    loaded.load_state_dict(state)
    assert torch.isinf(loaded.spread_edges).all()
    got = loaded.output_sd(torch.zeros(2), torch.tensor([[0, 1], [0, 1]]),
                           torch.tensor([0.0, 100.0]))
    torch.testing.assert_close(got, torch.tensor([5.0, 5.0]))  # nothing measured: row 1


def test_group_factors_recover_each_groups_error_scale():
    from epimpute.training.calibration import MIN_RATIOS, fit_group_factors

    rng = np.random.default_rng(0)
    scales = np.array([0.5, 1.0, 2.0, 3.0, 1.0])
    groups = np.repeat(np.arange(5), [20_000, 20_000, 20_000, 20_000, MIN_RATIOS - 1])
    ratios = np.abs(rng.normal(size=groups.size)) * scales[groups]  # Gaussian errors, sd 1
    factors = fit_group_factors(ratios, groups, fallback=7.0)
    np.testing.assert_allclose(factors[:4], scales[:4], rtol=0.04)
    assert factors[4] == 7.0  # too few values: the fallback


def test_interval_widths_are_the_quantiles_of_the_calibrated_errors():
    from epimpute.intervals import CURVE_LEVELS, half_width
    from epimpute.training.calibration import MIN_RATIOS, interval_widths

    rng = np.random.default_rng(1)
    ratios = np.abs(rng.laplace(0, 1 / np.sqrt(2), 200_000))  # Laplace errors of sd 1
    expected = [-np.log(1 - p) / np.sqrt(2) for p in CURVE_LEVELS]
    np.testing.assert_allclose(interval_widths(ratios), expected, rtol=0.03)
    assert interval_widths(ratios[:MIN_RATIOS - 1]) == [half_width(p) for p in CURVE_LEVELS]


def test_training_with_uncertainty_leaves_every_mean_weight_bit_identical(small_compendium):
    store, _ = small_compendium
    settings = RunSettings(seed=7, device="cpu")
    plain, plain_history = train_edice(store, config=TINY, training=QUICK, settings=settings)
    spread, spread_history = train_edice(store, config=SPREAD, training=QUICK,
                                         settings=settings)
    a, b = plain.state_dict(), spread.state_dict()
    assert set(b) - set(a) == {"spread_scale", "spread_edges", "spread_widths",
                               "spread_head.0.weight", "spread_head.0.bias",
                               "spread_head.2.weight", "spread_head.2.bias"}
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [e["validation"] for e in plain_history.epochs] == \
        [e["validation"] for e in spread_history.epochs]
    scale = b["spread_scale"]
    assert torch.isfinite(scale).all() and (scale > 0).all() and not torch.all(scale == 1)


def test_calibrated_intervals_cover_never_seen_tracks_near_nominal(small_compendium):
    """The compendium's held-back tracks were never inputs or targets: their statistics
    are estimated, and their calibrated intervals cover the truth near the nominal rates,
    closer than the raw (uncalibrated) spread does."""
    store, truth = small_compendium
    long = replace(QUICK, max_epochs=6, validation_max_bins=20_000)
    imputer, _ = train_edice(store, config=SPREAD, training=long,
                             settings=RunSettings(seed=0, device="cpu"))
    targets = resolve_targets(imputer, store, targets=sorted(truth))
    work = WindowImputer(imputer, store, targets, spread=True)
    ratios, raw = [], []
    scale = imputer.network.spread_scale.clone()
    reported = [CURVE_LEVELS.index(p) for p in REPORTED_LEVELS]
    widths = imputer.interval_widths([t.pair for t in targets])[:, reported]
    inside, count = np.zeros(len(REPORTED_LEVELS)), 0
    for window in plan_windows(store, list(store.contigs), 100_000):
        block = work(window)
        observed = np.stack([truth[t.key][window.contig][window.lo:window.hi]
                             for t in targets])
        mean, sd = block[:len(targets)], block[len(targets):]
        assert (sd > 0).all()
        ratios.append((np.abs(observed - mean) / sd).ravel())
        inside += ((np.abs(observed - mean) / sd)[:, :, None] <= widths[:, None, :]).sum((0, 1))
        count += mean.size
        edges = imputer.network.spread_edges
        for i, t in enumerate(targets):  # undo the calibration factor of each bin
            group = spread_group(edges[t.pair[1]], torch.from_numpy(mean[i])).numpy()
            factor = scale[1, t.pair[1]].numpy()[group]
            raw.append(np.abs(observed[i] - mean[i]) / (sd[i] / factor))
    calibrated = coverage(np.concatenate(ratios), REPORTED_LEVELS)  # Gaussian intervals
    uncalibrated = coverage(np.concatenate(raw), REPORTED_LEVELS)
    gaps = np.abs(calibrated - np.array(REPORTED_LEVELS))
    assert gaps.max() < 0.1, calibrated
    assert gaps.max() < np.abs(uncalibrated - np.array(REPORTED_LEVELS)).max()
    shaped = np.abs(inside / count - np.array(REPORTED_LEVELS))  # the measured shape's
    assert shaped.max() < 0.1, inside / count


def test_an_extended_model_keeps_its_spread_and_grows_its_factors(small_compendium, tmp_path):
    """Extending with a new cell type and assay (freeze): the spread head and the old
    means are kept, the calibration factors grow to the new assay and are refitted."""
    import json

    import pandas as pd

    from epimpute import api
    from epimpute.model_dir import load_model
    from epimpute.store import ingest

    full, _ = small_compendium
    sheet = pd.read_csv(full.path.parent / "arrays" / "samples.tsv", sep="\t")
    sheet["path"] = [str(full.path.parent / "arrays" / p) for p in sheet["path"]]
    sheet[(sheet.cell_type != "cell4") & (sheet.assay != "H3K27me3")].to_csv(
        tmp_path / "base.tsv", sep="\t", index=False)
    base = ingest(tmp_path / "base.tsv", tmp_path / "base.zarr", bin_size=25,
                  chrom_sizes=full.contigs)
    config = {"model": {"d_model": 16, "n_heads": 2, "feedforward": 32, "decoder_hidden": [32],
                        "windows": [1, 3, 9], "uncertainty": True},
              "training": {"batch_size": 256, "epoch_bins": 2048, "max_epochs": 2,
                           "validation_max_bins": 2000, "block_bins": 2000}}
    (tmp_path / "c.json").write_text(json.dumps(config))
    api.train(base, tmp_path / "base-model", model="edice", config=tmp_path / "c.json",
              device="cpu", precision="fp32", seed=1)
    api.extend(tmp_path / "base-model", full, tmp_path / "grown", mode="freeze", device="cpu",
               precision="fp32", seed=2)
    old, grown = load_model(tmp_path / "base-model"), load_model(tmp_path / "grown")
    assert grown.predicts_uncertainty
    assert grown.network.spread_scale.shape == (2, grown.layout.n_assays, 5) == (2, 4, 5)
    assert grown.network.spread_edges.shape == (4, 4)
    assert grown.network.spread_widths.shape == (2, 4, 11)
    for name, value in old.network.spread_head.state_dict().items():
        assert torch.equal(value, grown.network.spread_head.state_dict()[name])
    key = [t.key for t in base.tracks][0]
    paths = api.impute(tmp_path / "grown", full, tmp_path / "out", targets=[key, "cell4:H3K27me3"],
                       format="npz", device="cpu", precision="fp32", uncertainty=True)
    assert [p.name for p in paths][2:] == [f"{key.replace(':', '.')}.sd.npz",
                                          "cell4.H3K27me3.sd.npz"]
    assert all((np.load(p)["chrA"] > 0).all() for p in paths[2:])
