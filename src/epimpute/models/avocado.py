"""Avocado: multi-scale deep tensor factorization of the epigenome.

Avocado (Schreiber et al., Genome Biology 2020) treats a compendium as a three-way tensor
(cell type x assay x genomic position) and learns one vector per cell type, one per assay
and, for every position, genome factors at several resolutions. A small network decodes
the signal of any (cell type, assay) pair at a position from the concatenation of the
three. The model reads no signal when it imputes: everything it knows about a position is
in that position's genome factors, so it can only impute positions it was trained on.

Shape contract
--------------
For ``N`` (position, cell type, assay) triples:

- genome features ``(N, G)``: for bin ``p`` of a contig, the concatenation of
  ``tables[k][p // scales[k]]`` over the scales, ``G = sum(genome_factors)``;
- ``celltype`` ``(N,)`` and ``assay`` ``(N,)`` long indices into the
  :class:`~epimpute.models.layout.Layout`'s biosamples and assays;
- output ``(N,)`` signal on the arcsinh scale.

With 25-bp bins the default scales ``(1, 10, 200)`` are 25 bp, 250 bp and 5 kb: ten
neighbouring bins share a 250-bp factor vector and two hundred share a 5-kb one.

The network keeps the cell-type and assay embeddings and the decoder; the genome factors of
each contig are a separate :class:`GenomeFactors` module, so a genome-wide model never
needs more than one contig's factors in memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
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
    "decode_features",
    "genome_features",
]

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "celltype_factors": 32,
        "assay_factors": 256,
        "genome_factors": (25, 40, 45),
        "hidden": (2048, 2048),
    },
    "small": {
        "celltype_factors": 32,
        "assay_factors": 24,
        "genome_factors": (10, 20, 30),
        "hidden": (128,),
    },
}
"""Sizes of the published model (``paper``) and of the authors' CPU tutorial (``small``)."""

SMALL_PRESET_BELOW_TRACKS = 100
"""With ``preset="auto"``, compendia with fewer input tracks than this get ``small``."""


@dataclass
class AvocadoConfig:
    """Hyperparameters of :class:`Avocado`.

    Sizes left at ``None`` come from the preset. ``preset="auto"`` picks ``"small"`` for
    compendia of fewer than :data:`SMALL_PRESET_BELOW_TRACKS` input tracks and ``"paper"``
    otherwise (see :meth:`resolve`); a saved model always records concrete sizes.

    Attributes
    ----------
    preset
        ``"auto"``, ``"paper"`` (32 cell-type, 256 assay, 25 / 40 / 45 genome factors,
        2 x 2048 hidden units) or ``"small"`` (32, 24, 10 / 20 / 30, 1 x 128).
    celltype_factors, assay_factors
        Embedding sizes of cell types (biosamples) and assays.
    genome_factors
        Factors per position at each scale.
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
    """

    preset: str = "auto"
    celltype_factors: int | None = None
    assay_factors: int | None = None
    genome_factors: tuple[int, ...] | None = None
    scales: tuple[int, ...] = (1, 10, 200)
    hidden: tuple[int, ...] | None = None
    dropout: float = 0.5
    celltype_dropout: float = 0.0

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
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.celltype_dropout < 1.0:
            raise ValueError("dropout and celltype_dropout must be in [0, 1)")

    @property
    def is_resolved(self) -> bool:
        """Whether every size is set (a network can be built)."""
        return None not in (self.celltype_factors, self.assay_factors, self.genome_factors,
                            self.hidden)

    def resolve(self, n_tracks: int) -> "AvocadoConfig":
        """A copy with the preset chosen and every size left at ``None`` filled in.

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
        """``G``: genome features per bin, all scales together."""
        return sum(self._resolved().genome_factors)

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
    ``[r * scales[k], (r + 1) * scales[k])``. During training on a set of regions the rows
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
        self.scales = config.scales
        self.sparse = sparse
        self.tables = nn.ModuleList(
            skip_init(nn.Embedding, int(n), size) for n, size in zip(rows, config.genome_factors)
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
        """``G``: features per bin."""
        return sum(table.embedding_dim for table in self.tables)

    def forward(self, rows: Sequence[torch.Tensor]) -> torch.Tensor:
        """Features of ``N`` positions given their ``(N,)`` row at each scale: ``(N, G)``."""
        if self.sparse and torch.is_grad_enabled():
            parts = [_GatherRows.apply(table.weight, r) for table, r in zip(self.tables, rows)]
        else:
            parts = [table.weight.index_select(0, r) for table, r in zip(self.tables, rows)]
        return torch.cat(parts, dim=1)

    def span(self, start: int, end: int) -> torch.Tensor:
        """Features of contig bins ``start .. end`` (end exclusive): ``(end - start, G)``."""
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
        return torch.cat(parts, dim=1)

    def parameter_count(self) -> int:
        """Number of learnt values (all scales)."""
        return sum(table.weight.numel() for table in self.tables)


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
    """Zero whole rows with probability ``p`` (scaling the rest by ``1 / (1 - p)``)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = (torch.rand(x.shape[0], 1, device=x.device) >= self.p).to(x.dtype)
        return x * keep.mul_(1.0 / (1.0 - self.p))


class Avocado(nn.Module):
    """Cell-type and assay embeddings and the decoder (see the module docstring).

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
        self.celltype = nn.Embedding(layout.n_biosamples, config.celltype_factors)
        self.assay = nn.Embedding(layout.n_assays, config.assay_factors)
        for table in (self.celltype, self.assay):
            nn.init.uniform_(table.weight, -0.05, 0.05)
        width = config.celltype_factors + config.assay_factors + config.n_genome_features
        layers: list[nn.Module] = []
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            if config.dropout > 0:
                layers.append(FastDropout(config.dropout))
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.decoder = nn.Sequential(*layers)
        self.celltype_dropout = _RowDropout(config.celltype_dropout)

    def forward(self, genome: torch.Tensor, celltype: torch.Tensor, assay: torch.Tensor
                ) -> torch.Tensor:
        """Signal of ``N`` triples.

        Parameters
        ----------
        genome
            ``(N, G)`` genome features of each position.
        celltype, assay
            ``(N,)`` long indices.

        Returns
        -------
        torch.Tensor
            ``(N,)`` predicted arcsinh signal.
        """
        hidden = self._first_layer(genome, celltype, assay)
        return self.decoder[1:](hidden).squeeze(1)

    def _pair_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """First-layer contributions of every cell type ``(C, H)`` and every assay ``(A, H)``."""
        weight = self.decoder[0].weight
        n_cell, n_assay = self.config.celltype_factors, self.config.assay_factors
        return (self.celltype.weight @ weight[:, :n_cell].T,
                self.assay.weight @ weight[:, n_cell:n_cell + n_assay].T)

    def _first_layer(self, genome: torch.Tensor, celltype: torch.Tensor, assay: torch.Tensor
                     ) -> torch.Tensor:
        """The first linear layer on ``[celltype, assay, genome]`` without building the
        concatenation: the cell-type and assay parts are projected once per table row."""
        first = self.decoder[0]
        n_pair = self.config.celltype_factors + self.config.assay_factors
        by_celltype, by_assay = self._pair_tables()
        projected = torch.addmm(first.bias, genome, first.weight[:, n_pair:].T)
        by_position = F.embedding(celltype, by_celltype)
        if self.training and self.config.celltype_dropout > 0:
            by_position = self.celltype_dropout(by_position)
        projected = projected + by_position
        return projected.add_(F.embedding(assay, by_assay))

    def decode_pairs(self, genome: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Signal of ``K`` (cell type, assay) pairs at ``L`` positions.

        Equivalent to :meth:`forward` on every (position, pair) combination, but the first
        layer's genome part is computed once for all pairs.

        Parameters
        ----------
        genome
            ``(L, G)`` genome features.
        targets
            ``(K, 2)`` long ``(celltype, assay)`` pairs.

        Returns
        -------
        torch.Tensor
            ``(K, L)`` predicted arcsinh signal.
        """
        first = self.decoder[0]
        n_cell = self.config.celltype_factors
        n_pair = n_cell + self.config.assay_factors
        # Only the targets' rows are projected, so a pair's output does not depend on how
        # many cell types and assays the model has (extending a model keeps it exact).
        pair_part = (self.celltype.weight[targets[:, 0]] @ first.weight[:, :n_cell].T
                     + self.assay.weight[targets[:, 1]] @ first.weight[:, n_cell:n_pair].T
                     + first.bias)
        genome_part = genome @ first.weight[:, n_pair:].T
        hidden = genome_part.unsqueeze(0) + pair_part.unsqueeze(1)
        if torch.is_grad_enabled():
            return self.decoder[1:](hidden).squeeze(-1)
        for layer in self.decoder[1:]:  # in place where possible: this is memory-bound
            hidden = hidden.relu_() if isinstance(layer, nn.ReLU) else layer(hidden)
        return hidden.squeeze(-1)


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
    """Genome features of contig bins ``start .. end`` as a ``(end - start, G)`` float32 array.

    Columns are the factors of each scale in order (e.g. 25 bp, then 250 bp, then 5 kb).
    """
    with torch.no_grad():
        return factors.span(start, end).float().cpu().numpy()


def decode_features(network: Avocado, genome: np.ndarray, targets: Sequence[tuple[int, int]]
                    ) -> np.ndarray:
    """Impute from exported genome features: ``(L, G)`` features -> ``(K, L)`` signal.

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
