"""eDICE: attention over cell types and over assays, decoded per (cell type, assay) pair.

Shape contract
--------------
Inputs at a batch of ``N`` bins: ``features`` ``(N, T, F)`` for the ``T`` input tracks of a
:class:`~epimpute.models.layout.Layout` (``F`` multi-scale window means per track, see
:mod:`epimpute.models.features`), ``available`` ``(N, T)`` bool saying which tracks are
inputs at each bin, and ``targets`` ``(N, K, 2)`` long ``(biosample, assay)`` pairs to
decode. Output: ``(N, K)`` predicted signal (arcsinh scale).

At each bin a biosample's token is its vector of available assay features (absent ones 0),
passed through a linear layer whose output is divided by the number of available assays,
a ReLU, plus the biosample's learned embedding; assays get tokens the same way across
biosamples. Attention blocks run over the biosample tokens and, separately, over the assay
tokens. A biosample (or assay) with nothing available at a bin is never a key in attention,
so it cannot change any other token; it still reads the others as a query, which is how a
biosample with no data at all gets a representation to decode from.

Only *active* biosamples and assays are computed: those with an available input track in
the batch or named by a target. Inactive ones could not change any output, so leaving them
out changes nothing; it makes a model extended with new biosamples or assays (see
:mod:`epimpute.training.extend`) compute exactly what the original model did when the new
items have no inputs and are not asked for, and it saves work on large compendia.

With ``shared_tissue_embedding`` a biosample ``tissue@individual``'s embedding is the sum of
a tissue embedding and an individual embedding, so a new individual of known tissues needs
only its own embedding.

An MLP decodes each target from [biosample token, assay token]; by default (beyond the
published model) it also reads the target assay's features averaged over the biosamples
where it is available, weighted by token similarity to the target biosample, and predicts
a correction to that average's centre bin. With ``standardize`` (default) every track is
read and predicted in units of its own sd around its own mean; a never-measured pair's
mean and sd are estimated as biosample factor x assay factor
(:mod:`epimpute.models.track_scale`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from epimpute.models.layout import Layout
from epimpute.models.spread import (
    SPREAD_LEVEL_GROUPS,
    gaussian_widths,
    spread_group,
    upgrade_spread_state,
)

DECODE_CHUNK_VALUES = 1 << 19
"""Hidden-layer values (pairs x width) the decoder computes at a time: small enough that a
chunk's activations stay in a core's cache, large enough that the loop costs little."""
SPREAD_HIDDEN = 64
"""Width of the hidden layer of the spread head (``uncertainty``)."""
LOG_VARIANCE_LIMIT = 12.0
"""Predicted log-variances are clamped to +- this (sd ratios of about e^6 either way)."""


@dataclass
class EdiceConfig:
    """Hyperparameters of :class:`Edice`.

    The defaults are sized for compendia from a dozen to a few thousand tracks on a CPU:
    the published sizes (``d_model=256``, decoder ``(2048, 2048)``, dropout 0.3) were chosen
    for ~1,000 tracks and over-fit small compendia; see ``docs/models.md``.
    """

    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    feedforward: int = 128
    decoder_hidden: tuple[int, ...] = (256, 256)
    dropout: float = 0.1
    """Dropout in the decoder MLP (the attention blocks have none: the masking already
    regularises them)."""
    windows: tuple[int, ...] = (1, 3, 9, 27, 81, 243)
    """Odd widths (bins) of the centred window means used as each track's input features;
    ``(1,)`` is the published single-bin model."""
    assay_mean_input: bool = True
    """Also decode from the target assay's mean features over the available biosamples."""
    residual: bool = True
    """Predict a correction to the target assay's mean over the available biosamples
    (needs window 1 and ``assay_mean_input``). The published model has neither option."""
    gain: bool = True
    """With ``residual`` (no effect without): the decoder also predicts a multiplicative
    gain on that mean (prediction = correction + (1 + gain) x mean), so a biosample whose
    signal is stronger or weaker than the others' in every assay can be decoded as such."""
    similarity_weighted_mean: bool = True
    """Make that mean a weighted one: weights from attention of the target biosample's token
    over the tokens of the biosamples where the assay is available (uniform at start)."""
    standardize: bool = True
    """Read and predict every track on its own scale, (signal - mean) / sd, and put a
    prediction back with its pair's mean and sd: measured for tracks the model was
    trained on, estimated for other pairs by :mod:`epimpute.models.track_scale`
    (biosample factor x assay factor). Not in the published model."""
    uncertainty: bool = False
    """Also predict a spread: a per-pair log-variance of a Gaussian around the prediction
    on the model's (standardised) scale, from a small head that reads the decoder's last
    hidden layer without passing gradients back into it, so the mean is trained exactly as
    without it. Not in the published model (see ``docs/uncertainty.md``)."""
    shared_tissue_embedding: bool = False
    """A biosample ``tissue@individual`` gets the sum of a tissue embedding (shared by every
    individual) and an individual embedding (shared by every tissue) instead of one of its
    own; biosamples without ``@`` share the individual ``""``."""

    def __post_init__(self) -> None:
        self.windows = tuple(int(w) for w in self.windows)
        self.decoder_hidden = tuple(int(h) for h in self.decoder_hidden)
        if self.d_model % self.n_heads:
            raise ValueError("d_model must be a multiple of n_heads")
        if any(w < 1 or w % 2 == 0 for w in self.windows):
            raise ValueError("windows must be odd positive widths")
        if self.residual and (1 not in self.windows or not self.assay_mean_input):
            raise ValueError("residual needs window 1 and assay_mean_input")


class SetAttentionBlock(nn.Module):
    """Pre-norm multi-head self-attention + feed-forward over a set of tokens.

    ``tokens`` ``(N, S, d)``, ``keys_present`` ``(N, S)`` bool; returns ``(N, S, d)``.
    Tokens with ``keys_present`` False are queries only.
    """

    def __init__(self, d_model: int, n_heads: int, feedforward: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm_attention = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.project = nn.Linear(d_model, d_model)
        self.norm_feedforward = nn.LayerNorm(d_model)
        self.feedforward = nn.Sequential(
            nn.Linear(d_model, feedforward), nn.ReLU(), nn.Linear(feedforward, d_model),
        )

    def forward(self, tokens: torch.Tensor, keys_present: torch.Tensor) -> torch.Tensor:
        n, s, d = tokens.shape
        q, k, v = self.qkv(self.norm_attention(tokens)).chunk(3, dim=-1)
        shape = (n, s, self.n_heads, d // self.n_heads)
        q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
        scores = scores.masked_fill(~keys_present[:, None, None, :], float("-inf"))
        attended = scores.softmax(dim=-1) @ v
        attended = attended.transpose(1, 2).reshape(n, s, d)
        tokens = tokens + self.project(attended)
        return tokens + self.feedforward(self.norm_feedforward(tokens))


class _AxisEncoder(nn.Module):
    """Tokens for one axis (biosamples or assays) from the features along the other.

    ``groups`` (biosample axis with ``shared_tissue_embedding``): ``(tissue, individual)``
    index of every item; its embedding is then the sum of one row of each table.
    """

    def __init__(self, n_items: int, n_other: int, n_features: int, config: EdiceConfig,
                 *, groups: tuple[Sequence[int], Sequence[int]] | None = None) -> None:
        super().__init__()
        self.n_features = n_features
        self.encode = nn.Linear(n_other * n_features, config.d_model)
        if groups is None:
            self.embedding = nn.Embedding(n_items, config.d_model)
        else:
            tissue, individual = (torch.as_tensor(g, dtype=torch.long) for g in groups)
            self.tissue_embedding = nn.Embedding(int(tissue.max()) + 1, config.d_model)
            self.individual_embedding = nn.Embedding(int(individual.max()) + 1, config.d_model)
            self.register_buffer("item_tissue", tissue, persistent=False)
            self.register_buffer("item_individual", individual, persistent=False)
        self.blocks = nn.ModuleList(
            SetAttentionBlock(config.d_model, config.n_heads, config.feedforward)
            for _ in range(config.n_layers)
        )
        self.norm = nn.LayerNorm(config.d_model)

    def item_embedding(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """``(items, d)`` identity embeddings of ``items`` (all when ``None``)."""
        if not hasattr(self, "tissue_embedding"):
            weight = self.embedding.weight
            return weight if items is None else weight.index_select(0, items)
        tissue, individual = self.item_tissue, self.item_individual
        if items is not None:
            tissue, individual = tissue[items], individual[items]
        return self.tissue_embedding(tissue) + self.individual_embedding(individual)

    def forward(self, grid: torch.Tensor, counts: torch.Tensor, *,
                items: torch.Tensor | None = None,
                others: torch.Tensor | None = None) -> torch.Tensor:
        """``grid`` ``(N, items, other, F)``, ``counts`` ``(N, items)`` available per item.

        ``items`` and ``others`` name the (active) items of each axis that ``grid`` holds, in
        order; ``None`` means all of them.
        """
        n, n_items = counts.shape
        flat = grid.reshape(n, n_items, -1)
        if others is None:
            encoded = self.encode(flat)
        else:
            columns = (others.unsqueeze(1) * self.n_features
                       + torch.arange(self.n_features, device=others.device)).reshape(-1)
            encoded = F.linear(flat, self.encode.weight.index_select(1, columns),
                               self.encode.bias)
        encoded = encoded / counts.clamp(min=1).unsqueeze(-1).to(encoded.dtype)
        tokens = F.relu(encoded) + self.item_embedding(items)
        present = counts > 0
        for block in self.blocks:
            tokens = block(tokens, present)
        return self.norm(tokens)


def biosample_groups(biosamples: Sequence[str]) -> tuple[list[int], list[int]]:
    """``(tissue, individual)`` index of every biosample ``tissue[@individual]``.

    Tissues and individuals are numbered in order of first appearance, so appending
    biosamples (as extending a model does) never renumbers the existing ones.
    """
    tissues: dict[str, int] = {}
    individuals: dict[str, int] = {}
    tissue, individual = [], []
    for name in biosamples:
        t, _, i = name.partition("@")
        tissue.append(tissues.setdefault(t, len(tissues)))
        individual.append(individuals.setdefault(i, len(individuals)))
    return tissue, individual


class Edice(nn.Module):
    """eDICE network for one :class:`Layout` (see the module docstring for shapes)."""

    def __init__(self, layout: Layout, config: EdiceConfig) -> None:
        super().__init__()
        self.layout = layout
        self.config = config
        n_features = len(config.windows)
        groups = biosample_groups(layout.biosamples) if config.shared_tissue_embedding else None
        self.biosample_encoder = _AxisEncoder(layout.n_biosamples, layout.n_assays, n_features,
                                              config, groups=groups)
        self.assay_encoder = _AxisEncoder(layout.n_assays, layout.n_biosamples, n_features, config)
        layers: list[nn.Module] = []
        width = 2 * config.d_model + (n_features if config.assay_mean_input else 0)
        for hidden in config.decoder_hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(config.dropout)]
            width = hidden
        layers.append(nn.Linear(width, 2 if config.gain and config.residual else 1))
        self.decoder = nn.Sequential(*layers)
        spread_width = width + (n_features if config.assay_mean_input else 0) + 1
        if config.similarity_weighted_mean:
            self.mean_query = nn.Linear(config.d_model, config.d_model, bias=False)
            self.mean_key = nn.Linear(config.d_model, config.d_model, bias=False)
            nn.init.zeros_(self.mean_query.weight)
        tracks = torch.tensor(layout.tracks, dtype=torch.long).reshape(-1, 2)
        self.register_buffer("track_biosample", tracks[:, 0].clone(), persistent=False)
        self.register_buffer("track_assay", tracks[:, 1].clone(), persistent=False)
        if config.standardize:
            # Identity until training measures the tracks (see set_pair_statistics).
            shape = (layout.n_biosamples, layout.n_assays)
            self.register_buffer("pair_mean", torch.zeros(shape))
            self.register_buffer("pair_sd", torch.ones(shape))
            self.register_buffer("pair_measured", torch.zeros(shape, dtype=torch.bool))
        if config.uncertainty:
            # Drawn from a copy of the random state, which is then put back: every other
            # parameter and every later draw (dropout) is what it is without the head.
            with torch.random.fork_rng(devices=[]):
                self.spread_head = nn.Sequential(nn.Linear(spread_width, SPREAD_HIDDEN),
                                                 nn.ReLU(), nn.Linear(SPREAD_HIDDEN, 1))
            # Calibration tables (models.spread), row 0 for pairs with measured statistics,
            # row 1 for estimated ones: sd factors per assay and level group, the groups'
            # edges (infinite until calibration: one group), interval half-widths.
            self.register_buffer("spread_scale",
                                 torch.ones(2, layout.n_assays, SPREAD_LEVEL_GROUPS))
            self.register_buffer("spread_edges", torch.full(
                (layout.n_assays, SPREAD_LEVEL_GROUPS - 1), float("inf")))
            self.register_buffer("spread_widths", gaussian_widths().repeat(
                2, layout.n_assays, 1))

    def set_pair_statistics(self, mean: np.ndarray, sd: np.ndarray, measured: np.ndarray
                            ) -> None:
        """Set the ``(biosamples, assays)`` means and sds tracks are standardised with."""
        for name, value in (("pair_mean", mean), ("pair_sd", sd), ("pair_measured", measured)):
            buffer = getattr(self, name)
            buffer.copy_(torch.as_tensor(np.asarray(value), dtype=buffer.dtype))

    def target_sd(self, targets: torch.Tensor) -> torch.Tensor:
        """``(...)`` sd of each ``(biosample, assay)`` pair in ``targets`` ``(..., 2)``; 1
        without ``standardize`` (so a loss divided by it is the loss on the model's scale)."""
        if not self.config.standardize:
            return torch.ones(targets.shape[:-1], device=targets.device)
        return self.pair_sd[targets[..., 0], targets[..., 1]]

    def output_sd(self, log_variance: torch.Tensor, targets: torch.Tensor,
                  predicted: torch.Tensor) -> torch.Tensor:
        """Calibrated sd, on the output (arcsinh) scale, of the predictions ``predicted``
        ``(...)`` of ``targets`` ``(..., 2)`` whose log-variances (model scale) are
        ``log_variance`` ``(...)``: the factor depends on the assay, on whether the pair's
        statistics are measured, and on the predicted value's level group."""
        self._require_spread()
        assay = targets[..., 1]
        estimated = self._pair_kind(targets)
        group = spread_group(self.spread_edges[assay], predicted.float())
        scale = self.spread_scale[estimated, assay, group] * self.target_sd(targets)
        return scale * torch.exp(0.5 * log_variance.float())

    def interval_widths(self, targets: torch.Tensor) -> torch.Tensor:
        """``(..., len(CURVE_LEVELS))`` half-widths, in units of the calibrated sd, of the
        central intervals of the predictions of ``targets`` ``(..., 2)``."""
        self._require_spread()
        return self.spread_widths[self._pair_kind(targets), targets[..., 1]]

    def _require_spread(self) -> None:
        if not self.config.uncertainty:
            raise ValueError("this network predicts no spread (uncertainty is off)")

    def _pair_kind(self, targets: torch.Tensor) -> torch.Tensor:
        """Calibration row of each pair: 0 if its statistics are measured, 1 if estimated."""
        if not self.config.standardize:
            return torch.zeros_like(targets[..., 1])
        return (~self.pair_measured[targets[..., 0], targets[..., 1]]).long()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        upgrade_spread_state(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(
        self, features: torch.Tensor, available: torch.Tensor, targets: torch.Tensor,
        valid: torch.Tensor | None = None, *, spread: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Predict ``targets`` ``(N, K, 2)``; with ``valid`` ``(N, K)`` bool only the true
        entries are decoded (the others come back 0), which saves the padding's cost.

        With ``spread`` (``uncertainty`` models) also return the ``(N, K)`` predicted
        log-variances on the model's scale (see :meth:`output_sd`)."""
        n, k = targets.shape[:2]
        active = self._active_items(available, targets)
        track_biosample, track_assay = self.track_biosample, self.track_assay
        local_targets = targets
        bios_items = assay_items = None
        if active is None:
            n_bios, n_assays = self.layout.n_biosamples, self.layout.n_assays
            local_biosample, local_assay = track_biosample, track_assay
        else:
            bios_items, assay_items, kept = active
            n_bios, n_assays = len(bios_items), len(assay_items)
            features, available = features[:, kept], available[:, kept]
            track_biosample, track_assay = track_biosample[kept], track_assay[kept]
            device = bios_items.device
            bios_index = torch.full((self.layout.n_biosamples,), -1, device=device)
            bios_index[bios_items] = torch.arange(n_bios, device=device)
            assay_index = torch.full((self.layout.n_assays,), -1, device=device)
            assay_index[assay_items] = torch.arange(n_assays, device=device)
            local_biosample = bios_index[track_biosample]
            local_assay = assay_index[track_assay]
            local_targets = torch.stack([bios_index[targets[..., 0]],
                                         assay_index[targets[..., 1]]], dim=-1)
        if self.config.standardize:
            pair = (track_biosample, track_assay)
            features = ((features - self.pair_mean[pair].unsqueeze(-1))
                        / self.pair_sd[pair].unsqueeze(-1))
        n_features = features.shape[-1]
        cell = local_biosample * n_assays + local_assay
        grid = features.new_zeros(n, n_bios * n_assays, n_features)
        grid[:, cell] = features * available.unsqueeze(-1).to(features.dtype)
        grid = grid.reshape(n, n_bios, n_assays, n_features)
        present = available.new_zeros(n, n_bios * n_assays)
        present[:, cell] = available
        present = present.reshape(n, n_bios, n_assays)
        biosample_tokens = self.biosample_encoder(grid, present.sum(2), items=bios_items,
                                                  others=assay_items)
        assay_tokens = self.assay_encoder(grid.transpose(1, 2), present.sum(1),
                                          items=assay_items, others=bios_items)
        if valid is None:  # the decoded entries, flattened
            rows = torch.arange(n, device=targets.device).repeat_interleave(k)
            picked = local_targets.reshape(-1, 2)
            chosen = targets.reshape(-1, 2)
        else:
            rows, columns = torch.nonzero(valid, as_tuple=True)
            picked = local_targets[rows, columns]
            chosen = targets[rows, columns]
        if spread:
            self._require_spread()
        predicted, log_variance = self._decode(biosample_tokens, assay_tokens, grid, present,
                                               rows, picked[:, 0], picked[:, 1], spread=spread)
        if self.config.standardize:
            predicted = (self.pair_mean[chosen[:, 0], chosen[:, 1]]
                         + self.pair_sd[chosen[:, 0], chosen[:, 1]] * predicted)
        outputs = [predicted] + ([log_variance] if spread else [])
        if valid is None:
            shaped = [o.reshape(n, k) for o in outputs]
        else:
            shaped = []
            for values in outputs:
                full = values.new_zeros(n, k)
                full[rows, columns] = values
                shaped.append(full)
        return tuple(shaped) if spread else shaped[0]

    def _decode(self, biosample_tokens: torch.Tensor, assay_tokens: torch.Tensor,
                grid: torch.Tensor, present: torch.Tensor, rows: torch.Tensor,
                bios: torch.Tensor, assay: torch.Tensor, *, spread: bool = False,
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(M,)`` predictions (model scale) for the pairs ``(bios, assay)`` at bins
        ``rows`` (all ``(M,)``, active-item indices), and with ``spread`` their
        log-variances (else None).

        The decoder's first layer is linear on [biosample token, assay token, assay mean],
        so its biosample and assay parts are computed once per bin and item and summed per
        pair: the same result as the concatenation, without a per-pair copy of the tokens.
        """
        first = self.decoder[0]
        d = self.config.d_model
        weight = first.weight
        # The bias goes in with a product, so the sums stay in autocast's dtype.
        # (bin, item) rows, flattened: a pair picks its rows with one index_select each.
        per_biosample = torch.addmm(first.bias, biosample_tokens.flatten(0, 1),
                                    weight[:, :d].T)
        per_assay = assay_tokens.flatten(0, 1) @ weight[:, d:2 * d].T
        n_bios, n_assays = biosample_tokens.shape[1], assay_tokens.shape[1]
        means = (self._assay_means(grid, present, biosample_tokens)
                 if self.config.assay_mean_input else None)
        # Pairs go through the MLP in chunks small enough to stay in cache.
        step = max(1, DECODE_CHUNK_VALUES // max(first.out_features, 1))
        out, spreads = [], []
        for lo in range(0, len(rows), step):
            r, b, a = rows[lo:lo + step], bios[lo:lo + step], assay[lo:lo + step]
            hidden = (per_biosample.index_select(0, r * n_bios + b)
                      + per_assay.index_select(0, r * n_assays + a))
            if means is not None:
                picked_mean = means[r, b, a]
                hidden = torch.addmm(hidden, picked_mean, weight[:, 2 * d:].T)
            last = self.decoder[1:-1](hidden)
            decoded = self.decoder[-1](last)
            predicted = decoded[:, 0]
            if self.config.residual:
                centre = picked_mean[:, self.config.windows.index(1)]
                if self.config.gain:
                    centre = centre * (1 + decoded[:, 1])
                predicted = predicted + centre
            out.append(predicted)
            if spread:  # reads the mean's computation, never trains it
                read = [last, predicted.unsqueeze(1)] + ([picked_mean] if means is not None else [])
                joined = torch.cat([t.detach().to(last.dtype) for t in read], 1)
                log_variance = self.spread_head(joined)
                spreads.append(log_variance[:, 0].clamp(-LOG_VARIANCE_LIMIT, LOG_VARIANCE_LIMIT))
        empty = per_biosample.new_zeros(0)
        return (torch.cat(out) if out else empty,
                (torch.cat(spreads) if spreads else empty) if spread else None)

    def _active_items(
        self, available: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Biosamples and assays with an available track in the batch or named by a target,
        and the input tracks lying in both; ``None`` when every item is active."""
        used = available.any(0)
        bios = torch.zeros(self.layout.n_biosamples, dtype=torch.bool, device=used.device)
        assays = torch.zeros(self.layout.n_assays, dtype=torch.bool, device=used.device)
        bios[self.track_biosample[used]] = True
        assays[self.track_assay[used]] = True
        bios[targets[..., 0].reshape(-1)] = True
        assays[targets[..., 1].reshape(-1)] = True
        if bool(bios.all()) and bool(assays.all()):
            return None
        kept = torch.nonzero(bios[self.track_biosample] & assays[self.track_assay]).squeeze(1)
        return (torch.nonzero(bios).squeeze(1), torch.nonzero(assays).squeeze(1), kept)

    def _assay_means(self, grid: torch.Tensor, present: torch.Tensor,
                     biosample_tokens: torch.Tensor) -> torch.Tensor:
        """``(N, B, A, F)``: for every biosample b and assay a, the mean features of a over
        the biosamples where it is available, uniform or weighted by token similarity to b
        (0 where a is available nowhere).

        The softmax over the biosamples having a is written as exp(logit - row max) summed
        against the grid, so all pairs cost one batched product per bin instead of a
        ``(pairs, B, F)`` gather.
        """
        n, n_bios, n_assays, n_features = grid.shape
        has = present.to(torch.float32)
        if self.config.similarity_weighted_mean:
            query = self.mean_query(biosample_tokens)
            keys = self.mean_key(biosample_tokens)
            logits = (query @ keys.transpose(1, 2)).float() * query.shape[-1] ** -0.5
            logits = logits - logits.max(dim=-1, keepdim=True).values
            weights = logits.exp()
        else:
            weights = has.new_ones(n, n_bios, n_bios)
        values = grid.float().reshape(n, n_bios, n_assays * n_features)
        with torch.autocast(grid.device.type, enabled=False):  # a mean, kept in fp32
            total = weights @ values
            norm = weights @ has
        means = total.reshape(n, n_bios, n_assays, n_features) / norm.clamp(
            min=torch.finfo(norm.dtype).tiny).unsqueeze(-1)
        return means.to(grid.dtype)


from epimpute.models.edice_imputer import EdiceImputer  # noqa: E402 - re-exported

__all__ = ["DECODE_CHUNK_VALUES", "Edice", "EdiceConfig", "EdiceImputer", "SetAttentionBlock",
           "biosample_groups"]
