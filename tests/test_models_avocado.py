from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from epimpute.errors import InputError
from epimpute.models.avocado import (
    PRESETS,
    Avocado,
    AvocadoConfig,
    AvocadoImputer,
    GenomeFactors,
    MemberLinear,
    decode_features,
    genome_features,
)
from epimpute.models.layout import Layout

LAYOUT = Layout.from_keys(["c1:a1", "c1:a2", "c2:a1", "c3:a2", "c3:a3"], bin_size=25)
TINY = AvocadoConfig(celltype_factors=3, assay_factors=4, genome_factors=(2, 3, 4),
                     scales=(1, 10, 200), hidden=(8, 6), members=1, celltype_dropout=0.0)
ENSEMBLE = replace(TINY, members=3)


def seeded(seed=0, config=TINY, n_bins=1000):
    torch.manual_seed(seed)
    network = Avocado(LAYOUT, config)
    factors = GenomeFactors.for_contig(n_bins, config)
    for table in factors.tables:
        torch.nn.init.normal_(table.weight)
    return network, factors


def test_presets_resolve_by_compendium_size():
    assert AvocadoConfig().resolve(25).hidden == PRESETS["small"]["hidden"]
    paper = AvocadoConfig().resolve(3814)
    assert (paper.preset, paper.genome_factors, paper.hidden) == ("paper", (25, 40, 45),
                                                                  (2048, 2048))
    mixed = AvocadoConfig(preset="small", hidden=(64,)).resolve(5000)
    assert mixed.hidden == (64,) and mixed.assay_factors == 24 and mixed.preset == "small"
    assert mixed.n_genome_features == 60
    assert (mixed.members, mixed.celltype_dropout, mixed.n_genome_columns) == (3, 0.25, 180)
    assert (paper.members, paper.celltype_dropout) == (1, 0.0)
    assert AvocadoConfig(members=2, celltype_dropout=0.1).resolve(25).members == 2
    with pytest.raises(ValueError, match="members"):
        AvocadoConfig(members=0)
    with pytest.raises(ValueError, match="resolve"):
        Avocado(LAYOUT, AvocadoConfig())
    with pytest.raises(ValueError, match="scales"):
        AvocadoConfig(genome_factors=(1, 2), scales=(1, 10, 200))


def test_coarse_factors_are_shared_by_neighbouring_bins():
    _, factors = seeded()
    features = factors.span(0, 1000)
    assert features.shape == (1000, 9)
    coarse = features[:, 2:5].detach()
    assert torch.equal(coarse[0], coarse[9]) and not torch.equal(coarse[9], coarse[10])
    fine = features[:, :2].detach()
    assert not torch.equal(fine[0], fine[1])
    assert torch.equal(features[:, 5:][0], features[:, 5:][199])


def test_span_matches_row_lookup():
    _, factors = seeded(n_bins=1234)
    bins = torch.arange(187, 1234)
    rows = [torch.div(bins, s, rounding_mode="floor") for s in TINY.scales]
    with torch.no_grad():
        assert torch.equal(factors.span(187, 1234), factors(rows))
    with pytest.raises(IndexError):
        factors.span(1200, 1235)


def test_decode_pairs_equals_forward_on_every_pair():
    network, factors = seeded()
    network.eval()
    genome = factors.span(100, 400).detach()
    pairs = torch.tensor([[0, 0], [2, 2], [1, 2]])
    with torch.no_grad():
        grid = network.decode_pairs(genome, pairs)
        for k, (c, a) in enumerate(pairs.tolist()):
            single = network(genome, torch.full((300,), c), torch.full((300,), a))
            torch.testing.assert_close(grid[k], single)


@pytest.mark.parametrize("config", [TINY, ENSEMBLE], ids=["one", "three-members"])
@pytest.mark.parametrize("tile_rows", [7, 300, 10**6])
def test_decoding_in_tiles_is_decoding_at_once(config, tile_rows, monkeypatch):
    """Imputation decodes the (pair, position) grid in tiles of reused buffers; any tile size
    (here: partial tiles of both pairs and bins, one bin row, everything) gives the values
    of the whole grid decoded at once."""
    import epimpute.models.avocado.network as module

    network, factors = seeded(config=config)
    network.eval()
    genome = factors.span(100, 250).detach()
    pairs = torch.tensor([[0, 0], [2, 2], [1, 2], [0, 1]])
    with torch.no_grad():
        first = network._genome_part(genome).unsqueeze(1) + torch.stack(
            [network._pair_tables()[0][:, c] + network._pair_tables()[1][:, a]
             for c, a in pairs.tolist()], dim=1).unsqueeze(2)
        expected = network.decoder[1:](first).squeeze(-1).mean(0)
        monkeypatch.setattr(module, "GRID_ROWS", tile_rows)
        tiled = network.decode_pairs(genome, pairs)
        # matrix products of a few rows may round differently; whole tiles do not
        if tile_rows >= 300:
            assert torch.equal(tiled, expected)
        torch.testing.assert_close(tiled, expected, rtol=1e-6, atol=1e-6)


def plain_decoder(network, m, inputs):
    """Member ``m``'s decoder as the published MLP: Linear, ReLU, ..., Linear."""
    hidden = inputs
    layers = [layer for layer in network.decoder if isinstance(layer, MemberLinear)]
    for i, layer in enumerate(layers):
        hidden = torch.nn.functional.linear(hidden, layer.weight[m], layer.bias[m])
        if i < len(layers) - 1:
            hidden = hidden.relu()
    return hidden.squeeze(1)


def test_forward_is_the_decoder_on_the_concatenation():
    """The split first layer is only a speed-up of the published architecture."""
    network, factors = seeded()
    network.eval()
    genome = factors.span(0, 50).detach()
    celltype, assay = torch.randint(3, (50,)), torch.randint(3, (50,))
    with torch.no_grad():
        inputs = torch.cat([network.celltype(celltype), network.assay(assay), genome], dim=1)
        torch.testing.assert_close(network(genome, celltype, assay),
                                   plain_decoder(network, 0, inputs))


def test_one_member_layers_draw_what_linear_layers_draw():
    torch.manual_seed(3)
    ours = MemberLinear(1, 7, 5)
    torch.manual_seed(3)
    plain = torch.nn.Linear(7, 5)
    assert torch.equal(ours.weight[0], plain.weight) and torch.equal(ours.bias[0], plain.bias)
    x = torch.randn(1, 4, 7)
    torch.testing.assert_close(ours(x)[0], plain(x[0]))


def test_members_are_independent():
    """Member 0's error moves none of member 1's parameters: no parameter is shared."""
    network, factors = seeded(config=ENSEMBLE)
    rows = [torch.tensor([3, 5, 700]) // s for s in ENSEMBLE.scales]
    celltype, assay = torch.tensor([0, 1, 2]), torch.tensor([0, 2, 1])
    outputs = network.member_outputs(factors(rows), celltype, assay)
    assert outputs.shape == (3, 3)
    outputs[0].square().sum().backward()
    c, a = ENSEMBLE.celltype_factors, ENSEMBLE.assay_factors
    assert network.celltype.weight.grad[:, :c].abs().sum() > 0
    assert not network.celltype.weight.grad[:, c:].any()
    assert not network.assay.weight.grad[:, a:].any()
    for layer in network.decoder:
        if isinstance(layer, MemberLinear):
            assert layer.weight.grad[0].abs().sum() > 0
            assert not layer.weight.grad[1:].any() and not layer.bias.grad[1:].any()
    for table, size in zip(factors.tables, ENSEMBLE.genome_factors):
        assert table.weight.grad[:, :size].abs().sum() > 0
        assert not table.weight.grad[:, size:].any()


def test_prediction_is_the_mean_of_the_members_computed_alone():
    network, factors = seeded(config=ENSEMBLE)
    imputer = AvocadoImputer(network, {"chr1": factors})
    targets = [(0, 0), (1, 2), (2, 1)]
    ensemble = imputer.impute_region(np.zeros((5, 1000), np.float32), np.ones(5, bool),
                                     targets, contig="chr1", start=0)
    alone = []
    for m in range(3):
        member = AvocadoImputer(network.member(m), {"chr1": factors.member(m)})
        assert member.network.members == 1
        alone.append(member.impute_region(np.zeros((5, 1000), np.float32), np.ones(5, bool),
                                          targets, contig="chr1", start=0))
    assert not np.allclose(alone[0], alone[1])
    np.testing.assert_allclose(ensemble, np.mean(alone, axis=0), rtol=1e-5, atol=1e-6)
    network.eval()
    genome = factors.span(0, 40).detach()
    celltype, assay = torch.randint(3, (40,)), torch.randint(3, (40,))
    with torch.no_grad():
        single = [network.member(m)(factors.member(m).span(0, 40), celltype, assay)
                  for m in range(3)]
        torch.testing.assert_close(network(genome, celltype, assay),
                                   torch.stack(single).mean(0))


def test_models_of_an_older_format_are_refused():
    network, _ = seeded()
    imputer = AvocadoImputer(network)
    assert imputer.config_dict()["format_version"] == 2
    old = {k: v for k, v in asdict(TINY).items() if k != "members"}
    state = {k: v.squeeze(0) if k.startswith("decoder.") else v
             for k, v in network.state_dict().items()}
    with pytest.raises(InputError, match="avocado format 1; .* format 2 only"):
        AvocadoImputer.from_state(LAYOUT, old, state)
    loaded = AvocadoImputer.from_state(LAYOUT, imputer.config_dict(), imputer.state_dict())
    assert loaded.network.config == TINY


def test_a_grown_network_keeps_its_rows_and_starts_new_ones_at_the_mean():
    network, factors = seeded()
    layout = LAYOUT.extended([*LAYOUT.keys, "c4:a1", "c1:a4"], biosamples=[*LAYOUT.biosamples,
                                                                          "c4"])
    assert layout.biosamples[3] == "c4" and layout.assays[3] == "a4"
    grown, masks = network.grown(layout, [3], [3])
    old, new = network.state_dict(), grown.state_dict()
    for name in ("celltype.weight", "assay.weight"):
        assert torch.equal(new[name][:3], old[name])
        assert torch.equal(new[name][3], old[name].mean(0))
        assert masks[name][:, 0].tolist() == [False, False, False, True]
    assert all(torch.equal(old[k], new[k]) for k in old if k not in masks)
    genome = factors.span(0, 50).detach()
    pairs = torch.tensor([[0, 0], [2, 2]])
    with torch.no_grad():
        assert torch.equal(grown.eval().decode_pairs(genome, pairs),
                           network.eval().decode_pairs(genome, pairs))


def test_sparse_gradients_touch_only_the_rows_used():
    _, factors = seeded()
    sparse = GenomeFactors.for_contig(1000, TINY, sparse=True)
    sparse.load_state_dict(factors.state_dict())
    rows_25 = torch.tensor([3, 5, 5, 700])  # a repeat, in order
    rows = [rows_25, rows_25 // 10, rows_25 // 200]
    sparse(rows).sum().backward()
    grad = sparse.tables[0].weight.grad
    assert grad.is_sparse
    assert grad.coalesce().indices()[0].tolist() == [3, 5, 700]
    assert torch.equal(grad.to_dense()[5], torch.full((2,), 2.0))
    dense = GenomeFactors.for_contig(1000, TINY)
    dense.load_state_dict(factors.state_dict())
    dense(rows).sum().backward()
    for a, b in zip(sparse.tables, dense.tables):
        torch.testing.assert_close(a.weight.grad.to_dense(), b.weight.grad)


def test_imputer_uses_contig_and_start():
    network, factors = seeded()
    imputer = AvocadoImputer(network, {"chr1": factors})
    targets = [(0, 1), (2, 0)]
    whole = imputer.impute_region(np.zeros((5, 1000), np.float32), np.ones(5, bool), targets,
                                  contig="chr1", start=0)
    part = imputer.impute_region(np.zeros((5, 300), np.float32), np.ones(5, bool), targets,
                                 contig="chr1", start=650)
    assert whole.shape == (2, 1000) and whole.dtype == np.float32
    np.testing.assert_allclose(part, whole[:, 650:950], rtol=1e-5, atol=1e-6)


def test_imputation_reads_no_input_signal():
    network, factors = seeded()
    imputer = AvocadoImputer(network, {"chr1": factors})
    assert imputer.reads_signal is False
    noise = np.random.default_rng(0).normal(size=(5, 300)).astype(np.float32)
    outputs = [imputer.impute_region(signal, available, [(0, 1)], contig="chr1", start=100)
               for signal, available in ((noise, np.ones(5, bool)),
                                         (np.zeros_like(noise), np.zeros(5, bool)))]
    np.testing.assert_array_equal(*outputs)


def test_positions_never_trained_on_are_refused():
    network, factors = seeded()
    imputer = AvocadoImputer(network, {"chr1": factors})
    signal = np.zeros((5, 100), np.float32)
    with pytest.raises(InputError, match="no genome factors for contig 'chr2'.*chr1"):
        imputer.impute_region(signal, np.ones(5, bool), [(0, 0)], contig="chr2", start=0)
    with pytest.raises(InputError, match="outside the 1000 bins"):
        imputer.impute_region(signal, np.ones(5, bool), [(0, 0)], contig="chr1", start=950)


@pytest.mark.parametrize("config", [TINY, ENSEMBLE], ids=["one", "three-members"])
def test_contig_state_round_trip_through_a_loader(config):
    network, factors = seeded(config=config)
    imputer = AvocadoImputer(network, {"chr1": factors})
    saved = {"chr1": imputer.contig_state_dict("chr1")}
    assert imputer.state_contigs() == ("chr1",)
    loaded = AvocadoImputer.from_state(LAYOUT, imputer.config_dict(), imputer.state_dict())
    calls = []
    loaded.use_contig_loader(["chr1"], lambda c: calls.append(c) or saved[c])
    signal = np.zeros((5, 1000), np.float32)
    for _ in range(2):
        np.testing.assert_array_equal(
            loaded.impute_region(signal, np.ones(5, bool), [(1, 1)], contig="chr1", start=0),
            imputer.impute_region(signal, np.ones(5, bool), [(1, 1)], contig="chr1", start=0))
    assert calls == ["chr1"]  # the loaded contig is kept while it is being imputed


def test_contigs_whose_names_differ_only_by_a_leading_dot_are_saved_apart(tmp_path):
    from epimpute.model_dir import load_model, save_model

    network, x = seeded(seed=1)
    _, dotted = seeded(seed=2)
    imputer = AvocadoImputer(network, {"x": x, ".x": dotted})
    signal = np.zeros((5, 1000), np.float32)
    expected = {c: imputer.impute_region(signal, np.ones(5, bool), [(1, 1)], contig=c, start=0)
                for c in ("x", ".x")}
    assert not np.array_equal(expected["x"], expected[".x"])
    loaded = load_model(save_model(tmp_path / "model", imputer))
    for contig, values in expected.items():
        np.testing.assert_array_equal(
            loaded.impute_region(signal, np.ones(5, bool), [(1, 1)], contig=contig, start=0),
            values)


@pytest.mark.parametrize("config", [TINY, ENSEMBLE], ids=["one", "three-members"])
def test_exported_features_and_embeddings_reimpute_the_same_values(config):
    network, factors = seeded(config=config)
    imputer = AvocadoImputer(network, {"chr1": factors})
    features = genome_features(factors, 0, 1000)
    assert features.shape == (1000, config.n_genome_columns)
    targets = [(0, 0), (1, 2)]
    expected = imputer.impute_region(np.zeros((5, 1000), np.float32), np.ones(5, bool),
                                     targets, contig="chr1", start=0)
    np.testing.assert_allclose(decode_features(network, features, targets), expected,
                               rtol=1e-5, atol=1e-6)


def test_fast_dropout_behaves_like_dropout():
    from epimpute.models.avocado import FastDropout

    torch.manual_seed(0)
    layer = FastDropout(0.3)
    x = torch.ones(200_000)
    y = layer(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.7))
    assert torch.equal(layer.eval()(x), x)
    assert torch.equal(FastDropout(0.0).train()(x), x)


def test_fast_dropout_gradient_is_its_mask_scaled():
    from epimpute.models.avocado import FastDropout

    torch.manual_seed(1)
    x = torch.randn(1000, requires_grad=True)
    y = FastDropout(0.5)(x)
    y.sum().backward()
    kept = y.detach() != 0
    torch.testing.assert_close(x.grad, kept.float() * 2.0)
    torch.testing.assert_close(y.detach()[kept], 2.0 * x.detach()[kept])


def test_celltype_dropout_removes_the_cell_type_term_of_whole_examples():
    config = replace(ENSEMBLE, dropout=0.0, celltype_dropout=0.5)
    network, factors = seeded(config=config, n_bins=2000)
    genome = factors.span(0, 2000).detach()
    celltype, assay = torch.zeros(2000, dtype=torch.long), torch.zeros(2000, dtype=torch.long)
    with torch.no_grad():
        network.train()
        trained = network._first_layer(genome, celltype, assay)
        network.eval()
        full = network._first_layer(genome, celltype, assay)
        by_celltype, _ = network._pair_tables()
        term = by_celltype[:, :1]  # (members, 1, H)
        without = full - term
    dropped = torch.isclose(trained, without, atol=1e-6).all(dim=2)
    kept = torch.isclose(trained, without + 2 * term, atol=1e-6).all(dim=2)
    assert bool((dropped | kept).all()) and 0.4 < dropped.float().mean() < 0.6
    # each member draws its own examples to drop
    assert not torch.equal(dropped[0], dropped[1])


# the paper's first-layer widths (32 + 256 + 110 inputs), a narrower decoder
WIDE = AvocadoConfig(celltype_factors=32, assay_factors=256, genome_factors=(25, 40, 45),
                     scales=(1, 10, 200), hidden=(96, 64), members=2, celltype_dropout=0.0)


def test_factorised_first_layer_in_imputation_equals_the_plain_layer():
    """Imputation sums per-pair and per-bin first-layer parts; the published decoder applies
    one linear layer to the concatenated [cell type, assay, genome] input."""
    network, factors = seeded(config=WIDE)
    network.eval()
    genome = factors.span(0, 300).detach()
    pairs = torch.tensor([[0, 0], [2, 2], [1, 2], [0, 1]])
    n_genome = WIDE.n_genome_features
    with torch.no_grad():
        grid = network.decode_pairs(genome, pairs)
        for k, (c, a) in enumerate(pairs.tolist()):
            members = []
            for m in range(WIDE.members):
                cell = network.celltype.weight[c, m * 32:(m + 1) * 32]
                assay = network.assay.weight[a, m * 256:(m + 1) * 256]
                inputs = torch.cat([cell.expand(300, -1), assay.expand(300, -1),
                                    genome[:, m * n_genome:(m + 1) * n_genome]], dim=1)
                members.append(plain_decoder(network, m, inputs))
            torch.testing.assert_close(grid[k], torch.stack(members).mean(0), rtol=0, atol=1e-5)


def test_bf16_imputation_is_close_to_fp32_and_stays_float32():
    """Under a bf16 autocast (``--precision bf16``) the hidden layers run in bf16: values
    move by bf16 rounding (8-bit mantissa, about 0.4% per value), within 2% of the track's
    range here, and the output stays float32."""
    network, factors = seeded(config=WIDE, n_bins=2000)
    imputer = AvocadoImputer(network, {"chr1": factors})
    signal = np.zeros((len(LAYOUT.tracks), 1500), np.float32)
    available = np.ones(len(LAYOUT.tracks), bool)
    targets = [(0, 2), (1, 1), (2, 0)]
    exact = imputer.impute_region(signal, available, targets, contig="chr1", start=200)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reduced = imputer.impute_region(signal, available, targets, contig="chr1", start=200)
    assert AvocadoImputer.reduced_precision
    assert reduced.dtype == np.float32
    error = np.abs(reduced - exact)
    assert error.max() > 0  # bf16 was used
    spread = exact.max(axis=1) - exact.min(axis=1)
    assert (error.max(axis=1) <= 0.02 * spread).all()
    assert np.corrcoef(reduced.ravel(), exact.ravel())[0, 1] > 0.999
