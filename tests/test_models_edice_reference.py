"""The eDICE forward pass against a plain dense computation of the same model.

``dense_reference`` below builds the full biosample x assay grid, runs both encoders over
every item, concatenates [biosample token, assay token, assay mean] per target and runs
the decoder on it, and takes each target's assay mean as an explicit softmax over the
biosamples where the assay is available: the straightforward reading of the model that
the network's factorised, active-items-only forward must reproduce.
"""

import pytest
import torch

from epimpute.models.edice import Edice, EdiceConfig
from epimpute.models.layout import Layout


def dense_reference(net: Edice, features, available, targets):
    config = net.config
    layout = net.layout
    n, _, n_features = features.shape
    tb, ta = net.track_biosample, net.track_assay
    if config.standardize:
        features = (features - net.pair_mean[tb, ta][:, None]) / net.pair_sd[tb, ta][:, None]
    n_b, n_a = layout.n_biosamples, layout.n_assays
    grid = torch.zeros(n, n_b, n_a, n_features)
    present = torch.zeros(n, n_b, n_a, dtype=torch.bool)
    for t in range(len(tb)):
        grid[:, tb[t], ta[t]] = features[:, t] * available[:, t, None]
        present[:, tb[t], ta[t]] = available[:, t]
    bios_tokens = net.biosample_encoder(grid, present.sum(2))
    assay_tokens = net.assay_encoder(grid.transpose(1, 2), present.sum(1))
    out = torch.zeros(n, targets.shape[1])
    for i in range(n):
        for j, (b, a) in enumerate(targets[i].tolist()):
            parts = [bios_tokens[i, b], assay_tokens[i, a]]
            where = present[i, :, a]
            if config.assay_mean_input:
                if config.similarity_weighted_mean:
                    q = net.mean_query(bios_tokens[i, b])
                    k = net.mean_key(bios_tokens[i])
                    logits = (k @ q) / config.d_model ** 0.5
                else:
                    logits = torch.zeros(n_b)
                logits = logits.masked_fill(~where, float("-inf"))
                w = torch.nan_to_num(logits.softmax(0), nan=0.0)
                mean = (w[:, None] * grid[i, :, a]).sum(0)
                parts.append(mean)
            decoded = net.decoder(torch.cat(parts))
            value = decoded[0]
            if config.residual:
                centre = mean[config.windows.index(1)]
                if config.gain:
                    centre = centre * (1 + decoded[1])
                value = value + centre
            if config.standardize:
                value = net.pair_mean[b, a] + net.pair_sd[b, a] * value
            out[i, j] = value
    return out


@pytest.fixture
def layout():
    # biosample "d" and assay "K9" have no input track; several pairs are missing
    return Layout.from_keys(["a:K4", "a:K27", "b:K4", "b:K36", "c:K27", "c:K36", "e:K4"],
                            bin_size=25, biosamples=["a", "b", "c", "d", "e"],
                            assays=["K4", "K27", "K36", "K9"])


def trained_looking(layout, config, seed=0):
    """A network with non-trivial weights everywhere (as after training)."""
    torch.manual_seed(seed)
    net = Edice(layout, config)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
        if config.standardize:
            mean = torch.rand(layout.n_biosamples, layout.n_assays)
            sd = 0.5 + torch.rand(layout.n_biosamples, layout.n_assays)
            net.set_pair_statistics(mean.numpy(), sd.numpy(), (mean > 0).numpy())
    return net.eval()


CONFIGS = {
    "default": {},
    "uniform mean": {"similarity_weighted_mean": False},
    "no gain": {"gain": False},
    "published": {"windows": (1,), "assay_mean_input": False, "residual": False,
                  "standardize": False},
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_forward_equals_the_dense_reference(layout, name):
    config = EdiceConfig(d_model=16, n_heads=2, feedforward=24, decoder_hidden=(32, 16),
                         windows=CONFIGS[name].get("windows", (1, 3, 9)),
                         **{k: v for k, v in CONFIGS[name].items() if k != "windows"})
    net = trained_looking(layout, config)
    generator = torch.Generator().manual_seed(3)
    n = 12
    features = torch.randn(n, 7, len(config.windows), generator=generator)
    available = torch.rand(n, 7, generator=generator) > 0.35
    available[:, 0] = True
    # targets include the track-less biosample d and assay K9, and repeated pairs
    targets = torch.tensor([[3, 0], [0, 2], [4, 3], [1, 1], [0, 2], [2, 0]])
    targets = targets.expand(n, -1, -1)
    with torch.no_grad():
        expected = dense_reference(net, features, available, targets)
        got = net(features, available, targets)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        # only some biosamples and assays active: the same values for what is asked
        few = torch.tensor([[0, 0], [1, 0]]).expand(n, -1, -1)
        sparse = available.clone()
        sparse[:, 3:] = False
        assert net._active_items(sparse, few) is not None
        torch.testing.assert_close(net(features, sparse, few),
                                   dense_reference(net, features, sparse, few),
                                   rtol=1e-5, atol=1e-5)


def test_decoding_only_valid_targets_gives_the_same_values_and_zeros_elsewhere(layout):
    config = EdiceConfig(d_model=16, n_heads=2, feedforward=24, decoder_hidden=(32,),
                         windows=(1, 3))
    net = trained_looking(layout, config)
    features = torch.randn(9, 7, 2)
    available = torch.ones(9, 7, dtype=torch.bool)
    available[:, 2] = False
    targets = torch.tensor([[1, 0], [0, 1], [4, 2]]).expand(9, -1, -1)
    valid = torch.rand(9, 3, generator=torch.Generator().manual_seed(0)) > 0.4
    with torch.no_grad():
        every = net(features, available, targets)
        some = net(features, available, targets, valid)
    torch.testing.assert_close(some[valid], every[valid], rtol=1e-6, atol=1e-6)
    assert torch.equal(some[~valid], torch.zeros(int((~valid).sum())))


def test_decoding_in_chunks_gives_the_same_values(layout, monkeypatch):
    from epimpute.models import edice

    config = EdiceConfig(d_model=16, n_heads=2, feedforward=24, decoder_hidden=(32,),
                         windows=(1, 3))
    net = trained_looking(layout, config)
    features = torch.randn(10, 7, 2)
    available = torch.rand(10, 7, generator=torch.Generator().manual_seed(1)) > 0.3
    targets = torch.tensor([[1, 0], [0, 1], [4, 2], [3, 3]]).expand(10, -1, -1)
    with torch.no_grad():
        whole = net(features, available, targets)
        monkeypatch.setattr(edice, "DECODE_CHUNK_VALUES", 32 * 3)  # 3 pairs at a time
        torch.testing.assert_close(net(features, available, targets), whole,
                                   rtol=1e-6, atol=1e-6)
