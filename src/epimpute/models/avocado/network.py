"""The Avocado network: cell-type and assay embeddings and the per-member decoder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn

from epimpute.models.avocado.config import AvocadoConfig
from epimpute.models.avocado.layers import (
    FastDropout,
    MemberLinear,
    RowDropout,
    check_member,
)
from epimpute.models.growth import grow_rows
from epimpute.models.layout import Layout

__all__ = ["GRID_ROWS", "Avocado"]

GRID_ROWS = 8192
"""(pair, position) rows decoded at once at imputation: with 2,048 hidden units each layer's
buffer of a tile holds 64 MB per member in fp32, 32 MB in bf16 (larger tiles were no faster,
see ``docs/avocado.md``)."""


class Avocado(nn.Module):
    """Cell-type and assay embeddings and the decoder (see the module docstring).

    ``celltype.weight`` is ``(C, M * c)`` and ``assay.weight`` ``(A, M * a)``, member-major;
    ``decoder`` is a sequence of :class:`MemberLinear` layers with ReLU (and dropout) between
    them, the first reading ``[celltype, assay, genome]`` of its member.

    Parameters
    ----------
    layout
        Biosamples and assays the embeddings are for.
    config
        A resolved configuration.
    """

    def __init__(self, layout: Layout, config: AvocadoConfig) -> None:
        super().__init__()
        config = config._resolved()
        self.layout = layout
        self.config = config
        members = config.members
        self.celltype = nn.Embedding(layout.n_biosamples, members * config.celltype_factors)
        self.assay = nn.Embedding(layout.n_assays, members * config.assay_factors)
        for table in (self.celltype, self.assay):
            nn.init.uniform_(table.weight, -0.05, 0.05)
        width = config.celltype_factors + config.assay_factors + config.n_genome_features
        layers: list[nn.Module] = []
        for hidden in config.hidden:
            layers += [MemberLinear(members, width, hidden), nn.ReLU()]
            if config.dropout > 0:
                layers.append(FastDropout(config.dropout))
            width = hidden
        layers.append(MemberLinear(members, width, 1))
        self.decoder = nn.Sequential(*layers)
        self.celltype_dropout = RowDropout(config.celltype_dropout)

    @property
    def members(self) -> int:
        """``M``: ensemble members."""
        return self.config.members

    def forward(self, genome: torch.Tensor, celltype: torch.Tensor, assay: torch.Tensor
                ) -> torch.Tensor:
        """Signal of ``N`` triples: the mean of :meth:`member_outputs`.

        Parameters
        ----------
        genome
            ``(N, M * G)`` genome features of each position.
        celltype, assay
            ``(N,)`` long indices.

        Returns
        -------
        torch.Tensor
            ``(N,)`` predicted arcsinh signal.
        """
        return self.member_outputs(genome, celltype, assay).mean(0)

    def member_outputs(self, genome: torch.Tensor, celltype: torch.Tensor,
                       assay: torch.Tensor) -> torch.Tensor:
        """Each member's signal of ``N`` triples: ``(M, N)`` (arguments as :meth:`forward`)."""
        hidden = self._first_layer(genome, celltype, assay)
        return self.decoder[1:](hidden).squeeze(-1)

    def _member_columns(self, table: torch.Tensor) -> torch.Tensor:
        """``(R, M * k)`` member-major rows as ``(M, R, k)``."""
        return table.view(table.shape[0], self.members, -1).transpose(0, 1)

    def _pair_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """First-layer contributions of every cell type ``(M, C, H)`` and every assay
        ``(M, A, H)``."""
        weight = self.decoder[0].weight
        n_cell, n_assay = self.config.celltype_factors, self.config.assay_factors
        return (torch.bmm(self._member_columns(self.celltype.weight),
                          weight[:, :, :n_cell].transpose(1, 2)),
                torch.bmm(self._member_columns(self.assay.weight),
                          weight[:, :, n_cell:n_cell + n_assay].transpose(1, 2)))

    def _genome_part(self, genome: torch.Tensor) -> torch.Tensor:
        """First-layer contribution (with the bias) of ``(N, M * G)`` features: ``(M, N, H)``."""
        first = self.decoder[0]
        n_pair = self.config.celltype_factors + self.config.assay_factors
        return torch.baddbmm(first.bias.unsqueeze(1), self._member_columns(genome),
                             first.weight[:, :, n_pair:].transpose(1, 2))

    def _first_layer(self, genome: torch.Tensor, celltype: torch.Tensor, assay: torch.Tensor
                     ) -> torch.Tensor:
        """The first linear layer of every member on ``[celltype, assay, genome]``,
        ``(M, N, H)``, without building the concatenation: the cell-type and assay parts
        are projected once per table row."""
        by_celltype, by_assay = self._pair_tables()
        projected = self._genome_part(genome)
        by_position = by_celltype.index_select(1, celltype)
        if self.training and self.config.celltype_dropout > 0:
            by_position = self.celltype_dropout(by_position)
        projected = projected + by_position
        return projected.add_(by_assay.index_select(1, assay))

    def decode_pairs(self, genome: torch.Tensor, targets: torch.Tensor, *,
                     dtype: torch.dtype | None = None) -> torch.Tensor:
        """Signal of ``K`` (cell type, assay) pairs at ``L`` positions (mean of the members).

        Equivalent to :meth:`forward` on every (position, pair) combination, but the first
        layer is factorised: its genome part is computed once per position, its cell-type
        and assay parts once per pair, and they are summed.

        Parameters
        ----------
        genome
            ``(L, M * G)`` genome features.
        targets
            ``(K, 2)`` long ``(celltype, assay)`` pairs.
        dtype
            Precision of the hidden layers in evaluation mode without gradients (e.g.
            ``torch.bfloat16``); the first layer's parts are computed in the precision of
            ``genome`` and rounded to ``dtype`` before they are summed (a sum of two bf16
            tensors runs about 4 x faster than one of fp32 tensors into bf16). ``None``:
            the precision of ``genome``.

        Returns
        -------
        torch.Tensor
            ``(K, L)`` predicted arcsinh signal (float32 when ``dtype`` is given).
        """
        weight = self.decoder[0].weight
        n_cell = self.config.celltype_factors
        n_pair = n_cell + self.config.assay_factors
        # Only the targets' rows are projected, so a pair's output does not depend on how
        # many cell types and assays the model has (extending a model keeps it exact).
        pair_part = (
            torch.bmm(self._member_columns(self.celltype.weight[targets[:, 0]]),
                      weight[:, :, :n_cell].transpose(1, 2))
            + torch.bmm(self._member_columns(self.assay.weight[targets[:, 1]]),
                        weight[:, :, n_cell:n_pair].transpose(1, 2)))       # (M, K, H)
        genome_part = self._genome_part(genome)                              # (M, L, H)
        if torch.is_grad_enabled() or self.training:
            hidden = genome_part.unsqueeze(1) + pair_part.unsqueeze(2)       # (M, K, L, H)
            return self.decoder[1:](hidden).squeeze(-1).mean(0)
        return self._decode_grid(genome_part, pair_part, dtype or genome_part.dtype)

    def _decode_grid(self, genome_part: torch.Tensor, pair_part: torch.Tensor,
                     dtype: torch.dtype) -> torch.Tensor:
        """Evaluation-mode decoder on every (pair, position) of ``(M, K, H)`` pair and
        ``(M, L, H)`` genome parts, the hidden layers in ``dtype``: ``(K, L)``.

        The ``(pair, position)`` grid is decoded in tiles of about :data:`GRID_ROWS` rows,
        each layer writing into buffers reused from tile to tile, so memory stays bounded
        whatever ``K`` and ``L`` are, and no tile pays for fresh pages. Each layer's
        weights are cast to ``dtype`` and laid out ``(M, in, out)`` contiguously once per
        call (bf16 matrix kernels are several times faster on that layout than on a
        transposed view).
        """
        members, n_pairs, width = pair_part.shape
        n_bins = genome_part.shape[1]
        genome_part, pair_part = genome_part.to(dtype), pair_part.to(dtype)
        bins_per_tile = max(1, min(n_bins, GRID_ROWS))
        pairs_per_tile = max(1, min(n_pairs, GRID_ROWS // bins_per_tile))
        linears = [(layer.bias.to(dtype).unsqueeze(1),
                    layer.weight.to(dtype).transpose(1, 2).contiguous())
                   for layer in self.decoder[1:] if isinstance(layer, MemberLinear)]
        rows = pairs_per_tile * bins_per_tile
        first = genome_part.new_empty((members, rows, width), dtype=dtype)
        buffers = [genome_part.new_empty((members, rows, weight.shape[2]), dtype=dtype)
                   for _, weight in linears]
        out = genome_part.new_empty((n_pairs, n_bins), dtype=torch.float32)
        for k0 in range(0, n_pairs, pairs_per_tile):
            k1 = min(k0 + pairs_per_tile, n_pairs)
            for l0 in range(0, n_bins, bins_per_tile):
                l1 = min(l0 + bins_per_tile, n_bins)
                n = (k1 - k0) * (l1 - l0)
                hidden = first[:, :n]
                torch.add(genome_part[:, l0:l1].unsqueeze(1), pair_part[:, k0:k1].unsqueeze(2),
                          out=hidden.view(members, k1 - k0, l1 - l0, width))
                for (bias, weight), buffer in zip(linears, buffers):
                    hidden.relu_()
                    hidden = torch.baddbmm(bias, hidden, weight, out=buffer[:, :n])
                out[k0:k1, l0:l1] = hidden.view(members, k1 - k0, l1 - l0).mean(
                    0, dtype=torch.float32)
        return out

    def member(self, m: int) -> Avocado:
        """Member ``m`` alone, as a one-member copy (its own embedding columns and
        decoder slice, in this network's training mode)."""
        check_member(m, self.members)
        config = replace(self.config, members=1)
        with torch.random.fork_rng(devices=[]):  # initial values are overwritten
            single = Avocado(self.layout, config)
        n_cell, n_assay = config.celltype_factors, config.assay_factors
        state = {}
        for name, value in self.state_dict().items():
            if name == "celltype.weight":
                value = value[:, m * n_cell:(m + 1) * n_cell]
            elif name == "assay.weight":
                value = value[:, m * n_assay:(m + 1) * n_assay]
            elif name.startswith("decoder."):
                value = value[m:m + 1]
            state[name] = value.clone()
        single.load_state_dict(state)
        return single.train(self.training)

    def grown(self, layout: Layout, new_biosamples: Sequence[int], new_assays: Sequence[int],
              *, seed: int = 0) -> tuple[Avocado, dict[str, torch.Tensor]]:
        """A copy for ``layout`` (this network's biosamples and assays first, in their rows)
        with new cell-type and assay rows.

        Parameters
        ----------
        layout
            The extended layout.
        new_biosamples, new_assays
            Rows of ``layout`` whose factors are new (appended, or never trained); they
            start at the mean of the trained rows.
        seed
            Seeds the (overwritten) initial values of the copy.

        Returns
        -------
        tuple
            The grown network and, for the parameters that have new rows
            (``celltype.weight``, ``assay.weight``), a bool mask of those entries.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            grown = Avocado(layout, self.config)
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        masks = {}
        for name, n_rows, new_rows in (("celltype.weight", layout.n_biosamples, new_biosamples),
                                       ("assay.weight", layout.n_assays, new_assays)):
            state[name], masks[name] = grow_rows(state[name], n_rows, new_rows)
        grown.load_state_dict(state)
        return grown, masks
