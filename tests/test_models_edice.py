import numpy as np
import pytest
import torch

from epimpute.models.edice import Edice, EdiceConfig, EdiceImputer
from epimpute.models.layout import Layout

TINY = EdiceConfig(d_model=16, n_heads=2, feedforward=32, decoder_hidden=(32,),
                   windows=(1, 3, 9))


def make_network(layout, config=TINY, seed=0):
    torch.manual_seed(seed)
    return Edice(layout, config).eval()


@pytest.fixture
def layout():
    # biosample "d" has no input track at all
    return Layout.from_keys(["a:K4", "a:K27", "b:K4", "b:K36", "c:K27", "c:K36"],
                            bin_size=25, biosamples=["a", "b", "c", "d"])


def test_output_shape(layout):
    net = make_network(layout)
    features = torch.rand(5, 6, 3)
    available = torch.ones(5, 6, dtype=torch.bool)
    targets = torch.tensor([[0, 2], [3, 1], [1, 0]]).expand(5, -1, -1)
    assert net(features, available, targets).shape == (5, 3)


def test_unavailable_tracks_have_no_influence(layout):
    net = make_network(layout)
    features = torch.rand(8, 6, 3)
    available = torch.ones(8, 6, dtype=torch.bool)
    available[:, 1] = False
    targets = torch.tensor([[0, 1], [3, 0]]).expand(8, -1, -1)
    before = net(features, available, targets)
    features[:, 1] = torch.rand(8, 3) * 100
    assert torch.equal(before, net(features, available, targets))


def test_biosample_without_data_does_not_change_other_predictions(layout):
    """Biosample 'd' has no inputs: it is never a key in attention, so its embedding
    cannot change what is imputed for the others."""
    net = make_network(layout)
    features = torch.rand(8, 6, 3)
    available = torch.ones(8, 6, dtype=torch.bool)
    targets = torch.tensor([[0, 2], [1, 1], [2, 0]]).expand(8, -1, -1)
    before = net(features, available, targets)
    with torch.no_grad():
        net.biosample_encoder.embedding.weight[3] += 5.0
    assert torch.equal(before, net(features, available, targets))
    # ...while d itself can still be imputed
    own = net(features, available, torch.tensor([[3, 0]]).expand(8, -1, -1))
    assert torch.isfinite(own).all()


def test_prediction_of_a_bin_does_not_depend_on_its_batch(layout):
    net = make_network(layout)
    features = torch.rand(64, 6, 3)
    available = torch.rand(64, 6) > 0.3
    available[:, 0] = True
    targets = torch.tensor([[3, 2], [1, 1]]).expand(64, -1, -1)
    whole = net(features, available, targets)
    parts = torch.cat([net(features[i:i + 7], available[i:i + 7], targets[i:i + 7])
                       for i in range(0, 64, 7)])
    torch.testing.assert_close(whole, parts, rtol=1e-5, atol=1e-6)


def test_residual_prediction_starts_from_the_assay_mean(layout):
    """With the decoder's last layer zeroed, the output is the mean of the target assay
    over the biosamples where it is available (the average baseline)."""
    net = make_network(layout)
    with torch.no_grad():
        net.decoder[-1].weight.zero_()
        net.decoder[-1].bias.zero_()
    features = torch.rand(4, 6, 3)
    available = torch.ones(4, 6, dtype=torch.bool)
    # assays sort as K27, K36, K4; K4 is observed in a (row 0) and b (row 2)
    out = net(features, available, torch.tensor([[[3, 2]]]).expand(4, -1, -1))
    torch.testing.assert_close(out[:, 0], (features[:, 0, 0] + features[:, 2, 0]) / 2)


def test_gain_scales_the_assay_mean(layout):
    """With the last layer's weights zeroed and biases (c, s), the output is
    c + (1 + s) x the target assay's mean over the biosamples where it is available."""
    config = EdiceConfig(d_model=16, n_heads=2, feedforward=32, decoder_hidden=(32,),
                         windows=(1, 3, 9), gain=True)
    net = make_network(layout, config)
    with torch.no_grad():
        net.decoder[-1].weight.zero_()
        net.decoder[-1].bias.copy_(torch.tensor([0.25, 0.5]))
    features = torch.rand(4, 6, 3)
    available = torch.ones(4, 6, dtype=torch.bool)
    out = net(features, available, torch.tensor([[[3, 2]]]).expand(4, -1, -1))
    mean = (features[:, 0, 0] + features[:, 2, 0]) / 2
    torch.testing.assert_close(out[:, 0], 0.25 + 1.5 * mean)
    # without the residual there is no mean to scale, and no gain output
    plain = make_network(layout, EdiceConfig(**{**config.__dict__, "residual": False}))
    assert plain.decoder[-1].out_features == 1


def test_published_single_bin_form_is_available(layout):
    config = EdiceConfig(d_model=16, n_heads=2, feedforward=32, decoder_hidden=(32,),
                         windows=(1,), assay_mean_input=False, residual=False)
    net = make_network(layout, config)
    out = net(torch.rand(3, 6, 1), torch.ones(3, 6, dtype=torch.bool),
              torch.tensor([[[0, 0]]]).expand(3, -1, -1))
    assert out.shape == (3, 1)
    with pytest.raises(ValueError, match="residual"):
        EdiceConfig(windows=(3,), residual=True)


def test_imputer_region_matches_network_on_features(layout):
    net = make_network(layout)
    imputer = EdiceImputer(net, batch_bins=7)
    margin = imputer.context_bins
    rng = np.random.default_rng(0)
    signal = rng.random((6, 30 + 2 * margin)).astype(np.float32)
    available = np.array([True, True, False, True, True, True])
    out = imputer.impute_region(signal, available, [(3, 1), (0, 1)], contig="c", start=0)
    assert out.shape == (2, 30)
    # the centre bin of the region, computed by hand through the network
    from epimpute.models.features import window_means
    features = torch.from_numpy(window_means(signal, TINY.windows, margin=margin))
    direct = net(features[10:11], torch.from_numpy(available)[None],
                 torch.tensor([[[3, 1], [0, 1]]]))
    np.testing.assert_allclose(out[:, 10], direct[0].detach().numpy(), rtol=1e-5)


@pytest.mark.parametrize("reduced", [False, True])
def test_imputation_split_across_workers_matches_one_worker(layout, reduced):
    """With several torch threads a region is cut into parts on batch boundaries, run in
    parallel (each re-entering the caller's autocast): the same batches, the same values."""
    imputer = EdiceImputer(make_network(layout), batch_bins=8)
    margin = imputer.context_bins
    signal = np.random.default_rng(1).random((6, 61 + 2 * margin)).astype(np.float32)
    available = np.ones(6, dtype=bool)
    threads = torch.get_num_threads()
    results = []
    try:
        for n_threads in (1, 3):
            torch.set_num_threads(n_threads)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=reduced):
                results.append(imputer.impute_region(signal, available, [(3, 1), (0, 2)],
                                                     contig="c", start=0))
            assert torch.get_num_threads() == n_threads
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(results[0], results[1])
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not reduced):
        other = imputer.impute_region(signal, available, [(3, 1), (0, 2)], contig="c",
                                      start=0)
    assert not np.array_equal(other, results[0])


def test_only_active_items_are_computed_and_the_result_is_unchanged(layout):
    """Biosample 'd' has no input and is not a target: leaving it out of the computation
    gives what the full computation gives (with it as a query-only token)."""
    net = make_network(layout)
    features = torch.rand(6, 6, 3)
    available = torch.ones(6, 6, dtype=torch.bool)
    targets = torch.tensor([[0, 2], [2, 1]]).expand(6, -1, -1)
    assert net._active_items(available, targets) is not None
    sliced = net(features, available, targets)
    # the same with 'd' made active by asking for it as well
    both = net(features, available, torch.tensor([[0, 2], [2, 1], [3, 0]]).expand(6, -1, -1))
    assert torch.allclose(sliced, both[:, :2], atol=1e-6)
    bios, assays, kept = net._active_items(available, targets)
    assert bios.tolist() == [0, 1, 2] and assays.tolist() == [0, 1, 2]
    assert kept.tolist() == list(range(6))


def test_shared_tissue_embedding_is_the_sum_of_tissue_and_individual_rows():
    from epimpute.models.edice import biosample_groups

    bios = ["liver@A", "lung@A", "liver@B", "heart"]
    assert biosample_groups(bios) == ([0, 1, 0, 2], [0, 0, 1, 2])
    layout = Layout.from_keys(["liver@A:K4", "lung@A:K4", "liver@B:K27", "heart:K27"],
                              bin_size=25, biosamples=bios)
    config = EdiceConfig(d_model=16, n_heads=2, feedforward=32, decoder_hidden=(32,),
                         windows=(1,), shared_tissue_embedding=True)
    net = make_network(layout, config)
    encoder = net.biosample_encoder
    embedding = encoder.item_embedding()
    expected = encoder.tissue_embedding.weight[0] + encoder.individual_embedding.weight[1]
    assert torch.equal(embedding[2], expected)  # liver@B
    assert encoder.tissue_embedding.weight.shape[0] == 3
    assert encoder.individual_embedding.weight.shape[0] == 3  # A, B and ""
    out = net(torch.rand(4, 4, 1), torch.ones(4, 4, dtype=torch.bool),
              torch.tensor([[1, 1]]).expand(4, -1, -1))
    assert out.shape == (4, 1) and torch.isfinite(out).all()


def _standardised_network(layout, values):
    from epimpute.training.edice import measure_pair_statistics
    net = make_network(layout)
    measure_pair_statistics(net, values, estimate_all=True)
    return net


def test_pair_statistics_are_measured_for_inputs_and_estimated_for_the_rest(layout):
    rng = np.random.default_rng(1)
    values = rng.gamma(2.0, 0.3, size=(1000, 6)) * np.array([1, 2, 1, 3, 2, 3])
    net = _standardised_network(layout, values)
    for track, (b, a) in enumerate(layout.tracks):
        assert float(net.pair_mean[b, a]) == pytest.approx(values[:, track].mean(), rel=1e-6)
        assert float(net.pair_sd[b, a]) == pytest.approx(values[:, track].std(), rel=1e-6)
    measured = net.pair_measured.numpy()
    assert measured.sum() == 6
    assert torch.isfinite(net.pair_mean).all() and (net.pair_sd > 0).all()


def test_a_biosample_k_times_stronger_is_imputed_k_times_stronger(layout):
    """Standardisation: multiplying every track of biosample 'a' by k multiplies its
    measured statistics by k, and so its estimated ones (biosample factor x assay factor);
    inputs on each track's own scale are unchanged, so a's imputation of a pair it never
    measured (a:K36) is k times the original, and the others' are unchanged."""
    rng = np.random.default_rng(2)
    n = 64
    values = rng.gamma(2.0, 0.3, size=(500, 6)).astype(np.float32)
    features = torch.rand(n, 6, 3)
    available = torch.ones(n, 6, dtype=torch.bool)
    targets = torch.tensor([[0, 2], [1, 1], [2, 0]]).expand(n, -1, -1)
    k = 1.7
    of_a = torch.tensor([b == 0 for b, _ in layout.tracks])
    before = _standardised_network(layout, values)(features, available, targets)
    scaled_values = values * np.where(of_a.numpy(), k, 1.0).astype(np.float32)
    scaled_features = features * torch.where(of_a, k, 1.0)[None, :, None]
    after = _standardised_network(layout, scaled_values)(scaled_features, available, targets)
    torch.testing.assert_close(after[:, 0], k * before[:, 0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(after[:, 1:], before[:, 1:], rtol=1e-4, atol=1e-5)


def test_a_model_of_format_version_1_is_refused_with_a_clear_error(layout, tmp_path):
    import json

    from epimpute.errors import InputError
    from epimpute.model_dir import load_model, save_model

    save_model(tmp_path / "m", EdiceImputer(make_network(layout)))
    assert isinstance(load_model(tmp_path / "m"), EdiceImputer)
    config = tmp_path / "m" / "config.json"
    record = json.loads(config.read_text())
    assert record["format_version"] == 2
    config.write_text(json.dumps({**record, "format_version": 1}))
    with pytest.raises(InputError, match="format version 1 is not supported.*retrain"):
        load_model(tmp_path / "m")
