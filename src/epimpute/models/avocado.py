"""Avocado: multi-scale deep tensor factorization of the epigenome.

Avocado (Schreiber et al., Genome Biology 2020) treats a compendium as a three-way tensor
(cell type x assay x genomic position) and learns one vector per cell type, one per assay
and, for every position, genome factors at several resolutions. A small network decodes
the signal of any (cell type, assay) pair at a position from the concatenation of the
three. The model reads no signal when it imputes: everything it knows about a position is
in that position's genome factors, so it can only impute positions it was trained on.

Shape contract
--------------
For ``N`` (position, cell type, assay) triples and ``M`` ensemble members:

- genome features ``(N, M * G)``: for bin ``p`` of a contig, member by member, the
  concatenation of that member's columns of ``tables[k][p // scales[k]]`` over the scales,
  ``G = sum(genome_factors)`` (member-major: member ``m`` owns columns
  ``m * G .. (m + 1) * G``);
- ``celltype`` ``(N,)`` and ``assay`` ``(N,)`` long indices into the
  :class:`~epimpute.models.layout.Layout`'s biosamples and assays;
- output ``(N,)`` signal on the arcsinh scale: the mean of the members' outputs
  (:meth:`Avocado.member_outputs` gives each member's ``(M, N)``).

With 25-bp bins the default scales ``(1, 10, 200)`` are 25 bp, 250 bp and 5 kb: ten
neighbouring bins share a 250-bp factor vector and two hundred share a 5-kb one.

The network keeps the cell-type and assay embeddings and the decoder; the genome factors of
each contig are a separate :class:`GenomeFactors` module, so a genome-wide model never
needs more than one contig's factors in memory.

Ensemble members
----------------
With ``members = M`` the model is ``M`` independently initialised Avocado models trained
side by side on the same batches: member ``m`` owns columns ``m * c .. (m + 1) * c`` of the
cell-type table (``c`` factors per member; likewise the assay table and every scale's
genome table) and slice ``m`` of every decoder layer's ``(M, out, in)`` weights. No
parameter is shared, so the training loss (the mean of the members' squared errors)
gives each member exactly the gradient of its own error. Imputations of (cell type,
assay) pairs never seen in training vary from one initialisation to the next; the mean of
the members varies much less (``docs/avocado.md``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils import skip_init

from epimpute.errors import InputError
from epimpute.models.base import ContigLoader, Imputer
from epimpute.models.layout import Layout

__all__ = [
    "PRESETS",
    "SMALL_PRESET_BELOW_TRACKS",
    "Avocado",
    "AvocadoConfig",
    "AvocadoImputer",
    "GenomeFactors",
    "MemberLinear",
    "decode_features",
    "genome_features",
]

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "celltype_factors": 32,
        "assay_factors": 256,
        "genome_factors": (25, 40, 45),
        "hidden": (2048, 2048),
        "celltype_dropout": 0.0,
        "members": 1,
    },
    "small": {
        "celltype_factors": 32,
        "assay_factors": 24,
        "genome_factors": (10, 20, 30),
        "hidden": (128,),
        "celltype_dropout": 0.25,
        "members": 3,
    },
}
"""Sizes of the published model (``paper``) and of the authors' CPU tutorial (``small``);
``small`` adds three ensemble members and cell-type dropout, which small compendia need
(see ``docs/avocado.md``)."""

SMALL_PRESET_BELOW_TRACKS = 100
"""With ``preset="auto"``, compendia with fewer input tracks than this get ``small``."""


@dataclass
class AvocadoConfig:
    """Hyperparameters of :class:`Avocado`.

    Settings left at ``None`` come from the preset. ``preset="auto"`` picks ``"small"`` for
    compendia of fewer than :data:`SMALL_PRESET_BELOW_TRACKS` input tracks and ``"paper"``
    otherwise (see :meth:`resolve`); a saved model always records concrete values.

    Attributes
    ----------
    preset
        ``"auto"``, ``"paper"`` (32 cell-type, 256 assay, 25 / 40 / 45 genome factors,
        2 x 2048 hidden units, one member, no cell-type dropout) or ``"small"`` (32, 24,
        10 / 20 / 30, 1 x 128, three members, cell-type dropout 0.25).
    celltype_factors, assay_factors
        Embedding sizes of cell types (biosamples) and assays, per member.
    genome_factors
        Factors per position at each scale, per member.
    scales
        Bins that share one factor vector at each scale; ``(1, 10, 200)`` is 25 bp, 250 bp
        and 5 kb with 25-bp bins.
    hidden
        Widths of the ReLU hidden layers of the decoder.
    dropout
        Dropout after each hidden layer (training only). The published model has none;
        together with weight decay it is what keeps imputations of (cell type, assay) pairs
        never seen in training close to the data (see ``docs/avocado.md``).
    celltype_dropout
        Probability, per training example, of removing the cell type's contribution to the
        first layer (the rest scaled up to match), so the decoder also learns what an assay
        looks like regardless of cell type.
    members
        Independently initialised models trained side by side (see the module docstring);
        the model predicts their mean. Every table and the decoder are ``members`` times
        as large, and training and imputation cost about ``members`` times as much.
    """

    preset: str = "auto"
    celltype_factors: int | None = None
    assay_factors: int | None = None
    genome_factors: tuple[int, ...] | None = None
    scales: tuple[int, ...] = (1, 10, 200)
    hidden: tuple[int, ...] | None = None
    dropout: float = 0.5
    celltype_dropout: float | None = None
    members: int | None = None

    def __post_init__(self) -> None:
        if self.preset not in ("auto", *PRESETS):
            raise ValueError(f"preset must be auto, {' or '.join(PRESETS)}, got {self.preset!r}")
        self.scales = tuple(int(s) for s in self.scales)
        if self.genome_factors is not None:
            self.genome_factors = tuple(int(n) for n in self.genome_factors)
        if self.hidden is not None:
            self.hidden = tuple(int(h) for h in self.hidden)
        if not self.scales or any(s < 1 for s in self.scales):
            raise ValueError("scales must be positive numbers of bins")
        if self.genome_factors is not None and len(self.genome_factors) != len(self.scales):
            raise ValueError(f"genome_factors has {len(self.genome_factors)} sizes but there "
                             f"are {len(self.scales)} scales")
        if self.celltype_dropout is not None:
            self.celltype_dropout = float(self.celltype_dropout)
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= (self.celltype_dropout or 0.0) < 1.0:
            raise ValueError("dropout and celltype_dropout must be in [0, 1)")
        if self.members is not None:
            if isinstance(self.members, bool) or int(self.members) != self.members \
                    or self.members < 1:
                raise ValueError(f"members must be a positive whole number, got "
                                 f"{self.members!r}")
            self.members = int(self.members)

    @property
    def is_resolved(self) -> bool:
        """Whether every setting is set (a network can be built)."""
        return None not in (self.celltype_factors, self.assay_factors, self.genome_factors,
                            self.hidden, self.celltype_dropout, self.members)

    def resolve(self, n_tracks: int) -> "AvocadoConfig":
        """A copy with the preset chosen and every setting left at ``None`` filled in.

        Parameters
        ----------
        n_tracks
            Number of tracks the model is trained on (chooses the preset under ``"auto"``).
        """
        preset = self.preset
        if preset == "auto":
            preset = "small" if n_tracks < SMALL_PRESET_BELOW_TRACKS else "paper"
        values = {k: v for k, v in PRESETS[preset].items() if getattr(self, k) is None}
        if "genome_factors" in values and len(values["genome_factors"]) != len(self.scales):
            raise ValueError(f"the {preset} preset has {len(values['genome_factors'])} genome "
                             f"scales; give genome_factors for the {len(self.scales)} scales")
        return replace(self, preset=preset, **values)

    @property
    def n_genome_features(self) -> int:
        """``G``: genome features per bin and member, all scales together."""
        return sum(self._resolved().genome_factors)

    @property
    def n_genome_columns(self) -> int:
        """``M * G``: genome features per bin, all members together."""
        return self._resolved().members * self.n_genome_features

    def genome_values_per_bin(self) -> float:
        """Learnt genome-factor values per bin: ``M * sum(factors[k] / scales[k])``."""
        config = self._resolved()
        return config.members * sum(f / s for f, s in zip(config.genome_factors, config.scales))

    def _resolved(self) -> "AvocadoConfig":
        if not self.is_resolved:
            raise ValueError("the configuration has unset sizes; call resolve() first")
        return self


def scale_rows(n_bins: int, scales: Sequence[int]) -> list[int]:
    """Rows of each scale's table for a contig of ``n_bins`` bins."""
    return [-(-n_bins // s) for s in scales]


class _GatherRows(torch.autograd.Function):
    """``weight[rows]`` whose gradient is a coalesced sparse tensor over the distinct rows.

    Rows that arrive sorted (as training batches do) are deduplicated in linear time and,
    when all distinct, their gradient is passed on without any scatter.
    """

    @staticmethod
    def forward(ctx: Any, weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        in_order = bool((rows[1:] >= rows[:-1]).all()) if rows.numel() > 1 else True
        if in_order:
            unique, inverse = torch.unique_consecutive(rows, return_inverse=True)
        else:
            unique, inverse = torch.unique(rows, sorted=True, return_inverse=True)
        ctx.save_for_backward(unique, inverse)
        ctx.shape = weight.shape
        ctx.passthrough = in_order and unique.numel() == rows.numel()
        return weight.index_select(0, rows)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        unique, inverse = ctx.saved_tensors
        if ctx.passthrough:
            values = grad.contiguous()
        else:
            values = grad.new_zeros(unique.numel(), grad.shape[1]).index_add_(0, inverse, grad)
        sparse = torch.sparse_coo_tensor(unique.unsqueeze(0), values, ctx.shape,
                                         is_coalesced=True, check_invariants=False)
        return sparse, None


class GenomeFactors(nn.Module):
    """Genome factors of one stretch of genome: one table per scale.

    For a contig, row ``r`` of table ``k`` holds the factors of bins
    ``[r * scales[k], (r + 1) * scales[k])``: ``members * genome_factors[k]`` values, member
    by member. During training on a set of regions the rows
    are numbered compactly instead (see :mod:`epimpute.training.avocado`).

    Parameters
    ----------
    rows
        Rows of each table.
    config
        A resolved configuration (sizes and scales).
    sparse
        Produce sparse gradients (only the rows a batch touches), for training.
    n_bins
        Bins of the contig the factors cover (``rows[0] * scales[0]`` when not given);
        recorded so imputation can check a region lies inside the contig.
    initialise
        Draw initial values (uniform in +-0.05, from torch's global generator); without it
        the tables are left uninitialised, to be loaded.
    """

    def __init__(self, rows: Sequence[int], config: AvocadoConfig, *, sparse: bool = False,
                 n_bins: int | None = None, initialise: bool = True) -> None:
        super().__init__()
        config = config._resolved()
        if len(rows) != len(config.scales):
            raise ValueError("one row count per scale is needed")
        self.config = config
        self.scales = config.scales
        self.members = config.members
        self.sparse = sparse
        self.tables = nn.ModuleList(
            skip_init(nn.Embedding, int(n), config.members * size)
            for n, size in zip(rows, config.genome_factors)
        )
        if initialise:
            for table in self.tables:
                nn.init.uniform_(table.weight, -0.05, 0.05)
        n_bins = int(rows[0]) * self.scales[0] if n_bins is None else int(n_bins)
        self.register_buffer("n_bins", torch.tensor(n_bins, dtype=torch.long))

    @classmethod
    def for_contig(cls, n_bins: int, config: AvocadoConfig, *, sparse: bool = False,
                   initialise: bool = True) -> "GenomeFactors":
        """Factors of a whole contig of ``n_bins`` bins."""
        return cls(scale_rows(n_bins, config.scales), config, sparse=sparse, n_bins=n_bins,
                   initialise=initialise)

    @property
    def size(self) -> int:
        """``M * G``: features per bin, all members together."""
        return sum(table.embedding_dim for table in self.tables)

    def _by_member(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """Per-scale ``(N, M * f_k)`` blocks to member-major ``(N, M * G)`` features."""
        if self.members == 1:
            return torch.cat(parts, dim=1)
        n = parts[0].shape[0]
        return torch.cat([p.view(n, self.members, -1) for p in parts], dim=2).view(n, -1)

    def forward(self, rows: Sequence[torch.Tensor]) -> torch.Tensor:
        """Features of ``N`` positions given their ``(N,)`` row at each scale:
        ``(N, M * G)``, member-major."""
        if self.sparse and torch.is_grad_enabled():
            parts = [_GatherRows.apply(table.weight, r) for table, r in zip(self.tables, rows)]
        else:
            parts = [table.weight.index_select(0, r) for table, r in zip(self.tables, rows)]
        return self._by_member(parts)

    def span(self, start: int, end: int) -> torch.Tensor:
        """Features of contig bins ``start .. end`` (end exclusive): ``(end - start, M * G)``,
        member-major."""
        if not 0 <= start <= end <= int(self.n_bins):
            raise IndexError(f"bins {start}..{end} are outside 0..{int(self.n_bins)}")
        parts = []
        for table, scale in zip(self.tables, self.scales):
            if scale == 1:
                parts.append(table.weight[start:end])
                continue
            first, last = start // scale, -(-end // scale)
            block = table.weight[first:last].repeat_interleave(scale, dim=0)
            parts.append(block[start - first * scale:end - first * scale])
        return self._by_member(parts)

    def parameter_count(self) -> int:
        """Number of learnt values (all scales and members)."""
        return sum(table.weight.numel() for table in self.tables)

    def member(self, m: int) -> "GenomeFactors":
        """Member ``m``'s factors alone, as a one-member copy."""
        _check_member(m, self.members)
        config = replace(self.config, members=1)
        part = GenomeFactors([t.num_embeddings for t in self.tables], config,
                             n_bins=int(self.n_bins), initialise=False)
        with torch.no_grad():
            for table, size, source in zip(part.tables, config.genome_factors, self.tables):
                table.weight.copy_(source.weight[:, m * size:(m + 1) * size])
        return part


class FastDropout(nn.Module):
    """Dropout whose mask comes from random 16-bit integers.

    Same behaviour as :class:`torch.nn.Dropout` (each value zeroed with probability ``p``,
    the rest scaled by ``1 / (1 - p)``, identity in eval mode), with ``p`` rounded to a
    multiple of 1/65536; drawing 16 random bits per value instead of a Bernoulli variate
    makes it several times faster on CPUs, where dropout would otherwise cost a quarter
    of Avocado's training time. Uses torch's global generator, as ``nn.Dropout`` does.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError("dropout probability must be in [0, 1)")
        self.p = p
        self.threshold = round(p * 65536) - 32768

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        n = x.numel()
        bits = torch.randint(-2**31, 2**31, ((n + 1) // 2,), dtype=torch.int32,
                             device=x.device).view(torch.int16)[:n].view(x.shape)
        keep = (bits >= self.threshold).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class _RowDropout(nn.Module):
    """Zero whole rows (vectors along the last dimension) with probability ``p``, scaling
    the rest by ``1 / (1 - p)``."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = (torch.rand(*x.shape[:-1], 1, device=x.device) >= self.p).to(x.dtype)
        return x * keep.mul_(1.0 / (1.0 - self.p))


class MemberLinear(nn.Module):
    """One linear layer per ensemble member: ``(M, ..., in) -> (M, ..., out)``.

    ``weight`` is ``(M, out, in)`` and ``bias`` ``(M, out)``; slice ``m`` is initialised like
    a :class:`torch.nn.Linear` (members in turn, weight then bias), so a one-member layer
    draws exactly what ``nn.Linear`` draws.
    """

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(members, out_features))
        with torch.no_grad():
            for m in range(members):
                layer = skip_init(nn.Linear, in_features, out_features)
                layer.reset_parameters()
                self.weight[m].copy_(layer.weight)
                self.bias[m].copy_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1, x.shape[-1])
        out = torch.baddbmm(self.bias.unsqueeze(1), flat, self.weight.transpose(1, 2))
        return out.view(*x.shape[:-1], out.shape[-1])

    def extra_repr(self) -> str:
        members, out_features, in_features = self.weight.shape
        return f"members={members}, in_features={in_features}, out_features={out_features}"


def _check_member(m: int, members: int) -> None:
    if not 0 <= m < members:
        raise IndexError(f"member {m} of a model with {members} member(s)")


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
        self.celltype_dropout = _RowDropout(config.celltype_dropout)

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

    def decode_pairs(self, genome: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Signal of ``K`` (cell type, assay) pairs at ``L`` positions (mean of the members).

        Equivalent to :meth:`forward` on every (position, pair) combination, but the first
        layer's genome part is computed once for all pairs.

        Parameters
        ----------
        genome
            ``(L, M * G)`` genome features.
        targets
            ``(K, 2)`` long ``(celltype, assay)`` pairs.

        Returns
        -------
        torch.Tensor
            ``(K, L)`` predicted arcsinh signal.
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
        hidden = genome_part.unsqueeze(1) + pair_part.unsqueeze(2)           # (M, K, L, H)
        if torch.is_grad_enabled():
            return self.decoder[1:](hidden).squeeze(-1).mean(0)
        for layer in self.decoder[1:]:  # in place where possible: this is memory-bound
            hidden = hidden.relu_() if isinstance(layer, nn.ReLU) else layer(hidden)
        return hidden.squeeze(-1).mean(0)

    def member(self, m: int) -> "Avocado":
        """Member ``m`` alone, as a one-member copy (its own embedding columns and
        decoder slice, in this network's training mode)."""
        _check_member(m, self.members)
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


class AvocadoImputer(Imputer):
    """Imputes regions from a trained :class:`Avocado` network and per-contig genome factors.

    The genome factors are held per contig, either in memory (right after training) or
    fetched one contig at a time through a loader (after loading from a model folder);
    only the contig being imputed is kept.

    Parameters
    ----------
    network
        The trained network.
    genome
        Contig name to its trained :class:`GenomeFactors` (may be empty when a loader is
        attached later with :meth:`use_contig_loader`).
    batch_bins
        Bins decoded at once during imputation.
    """

    name = "avocado"

    def __init__(self, network: Avocado, genome: Mapping[str, GenomeFactors] | None = None,
                 *, batch_bins: int = 4096) -> None:
        super().__init__(network.layout)
        self.network = network
        self.batch_bins = batch_bins
        self._genome: dict[str, GenomeFactors] = dict(genome or {})
        self._loader: ContigLoader | None = None
        self._loadable: tuple[str, ...] = ()
        self._cached: tuple[str, GenomeFactors] | None = None

    # -- genome factors ---------------------------------------------------------------------

    @property
    def contigs(self) -> tuple[str, ...]:
        """Contigs with fitted genome factors (the only ones that can be imputed)."""
        return tuple(self._genome) + tuple(c for c in self._loadable if c not in self._genome)

    def genome_factors(self, contig: str) -> GenomeFactors:
        """The genome factors of ``contig`` (loaded on demand; the last one is cached).

        Raises
        ------
        InputError
            If the model has no factors for ``contig``.
        """
        if contig in self._genome:
            return self._genome[contig]
        if self._cached is not None and self._cached[0] == contig:
            return self._cached[1]
        if contig not in self._loadable or self._loader is None:
            fitted = ", ".join(self.contigs) or "none"
            raise InputError(
                f"the avocado model has no genome factors for contig '{contig}' (fitted "
                f"contigs: {fitted}); Avocado can only impute positions it was trained on")
        factors = _factors_from_state(self._loader(contig), self.network.config)
        device = next(self.network.parameters()).device
        factors.to(device)
        self._cached = (contig, factors)
        return factors

    def state_contigs(self) -> tuple[str, ...]:
        return self.contigs

    def contig_state_dict(self, contig: str) -> dict[str, torch.Tensor]:
        factors = self.genome_factors(contig)
        return {k: v.detach().cpu() for k, v in factors.state_dict().items()}

    def use_contig_loader(self, contigs: Sequence[str], load: ContigLoader) -> None:
        self._loadable = tuple(contigs)
        self._loader = load
        self._cached = None

    # -- imputation -------------------------------------------------------------------------

    def impute_region(
        self,
        signal: np.ndarray,
        available: np.ndarray,
        targets: Sequence[tuple[int, int]],
        *,
        contig: str,
        start: int,
    ) -> np.ndarray:
        """Impute ``targets`` over bins ``start .. start + L`` of ``contig``.

        ``signal`` only gives the region's length ``L``: Avocado reads no input signal, so
        ``available`` is ignored too. Raises :class:`~epimpute.errors.InputError` when the
        model was not trained on ``contig`` or the region runs past the fitted bins.
        """
        n_bins = signal.shape[1]
        factors = self.genome_factors(contig)
        if start < 0 or start + n_bins > int(factors.n_bins):
            raise InputError(
                f"bins {start}..{start + n_bins} of contig '{contig}' lie outside the "
                f"{int(factors.n_bins)} bins the avocado model was trained on")
        device = next(self.network.parameters()).device
        pairs = torch.as_tensor(np.asarray(targets, dtype=np.int64).reshape(-1, 2), device=device)
        out = np.empty((len(pairs), n_bins), dtype=np.float32)
        was_training = self.network.training
        self.network.eval()
        try:
            with torch.inference_mode():
                for lo in range(0, n_bins, self.batch_bins):
                    hi = min(lo + self.batch_bins, n_bins)
                    genome = factors.span(start + lo, start + hi)
                    out[:, lo:hi] = self.network.decode_pairs(genome, pairs).float().cpu().numpy()
        finally:
            self.network.train(was_training)
        return out

    # -- saving -----------------------------------------------------------------------------

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.network.config)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.network.state_dict().items()}

    @classmethod
    def from_state(
        cls, layout: Layout, config: dict[str, Any], state: dict[str, torch.Tensor]
    ) -> "AvocadoImputer":
        if config.get("members") is None:  # saved before ensembles: one member
            config = {**config, "members": 1}
            state = {k: v.unsqueeze(0) if k.startswith("decoder.") else v
                     for k, v in state.items()}
        with torch.random.fork_rng(devices=[]):  # initial values are overwritten anyway
            network = Avocado(layout, AvocadoConfig(**config))
        network.load_state_dict(state)
        return cls(network)

    def to(self, device: torch.device) -> "AvocadoImputer":
        self.network.to(device)
        for factors in self._genome.values():
            factors.to(device)
        if self._cached is not None:
            self._cached[1].to(device)
        return self


def _factors_from_state(state: dict[str, torch.Tensor], config: AvocadoConfig) -> GenomeFactors:
    """Rebuild a contig's :class:`GenomeFactors` from its state_dict."""
    try:
        rows = [int(state[f"tables.{k}.weight"].shape[0]) for k in range(len(config.scales))]
        factors = GenomeFactors(rows, config, n_bins=int(state["n_bins"]), initialise=False)
        factors.load_state_dict(state)
    except (KeyError, RuntimeError) as error:
        raise InputError(f"genome factors do not match the model's configuration ({error})"
                         ) from None
    return factors


def genome_features(factors: GenomeFactors, start: int, end: int) -> np.ndarray:
    """Genome features of contig bins ``start .. end``: ``(end - start, M * G)`` float32.

    Columns are member by member, and within a member the factors of each scale in order
    (e.g. 25 bp, then 250 bp, then 5 kb).
    """
    with torch.no_grad():
        return factors.span(start, end).float().cpu().numpy()


def decode_features(network: Avocado, genome: np.ndarray, targets: Sequence[tuple[int, int]]
                    ) -> np.ndarray:
    """Impute from exported genome features: ``(L, M * G)`` features -> ``(K, L)`` signal.

    This is what :meth:`AvocadoImputer.impute_region` computes, starting from the array
    written by ``epimpute factors`` instead of the model's own tables.
    """
    was_training = network.training
    network.eval()
    try:
        with torch.inference_mode():
            device = next(network.parameters()).device
            pairs = torch.as_tensor(np.asarray(targets, dtype=np.int64).reshape(-1, 2),
                                    device=device)
            features = torch.as_tensor(genome, dtype=torch.float32, device=device)
            return network.decode_pairs(features, pairs).cpu().numpy()
    finally:
        network.train(was_training)
