"""seqcell: histone marks of a cell type from DNA sequence and the cell type's accessibility.

A dilated residual CNN reads one-hot DNA and works at 125 bp (5 store bins of 25 bp: three
max-pools of 5 keep model bins aligned with store bins exactly, so no store bin is split
between two model bins). Two heads follow Enformer Celltyping: an *average* head predicts
each mark's mean over the training cell types from sequence alone; a *difference* head
predicts the cell type's deviation from it from the trunk features, a LOCAL accessibility
embedding (the cell type's ATAC/DNase around the bin) and a GLOBAL one (its accessibility at a
fixed panel of sites, through an MLP that scales and shifts the features, FiLM). The
prediction is average + difference, repeated over the 5 store bins of each model bin.

With ``average="observed"`` the base of the prediction is instead the *observed* mean of
the mark over the training cell types (their tracks, read at imputation; the target cell
type's own tracks never enter it), and the difference head also reads that mean of every
mark around the bin (the *compendium* embedding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from epimpute.errors import InputError
from epimpute.models.base import Imputer
from epimpute.models.layout import Layout
from epimpute.models.motif_stem import MotifStem

SequenceSource = Callable[[str, int, int], np.ndarray]
"""``(contig, start_bp, end_bp) -> (4, end - start)`` one-hot float32 (zeros outside)."""
ACCESSIBILITY_ASSAYS = ("ATAC", "DNase", "ATAC-seq", "DNase-seq")
TASKS = ("marks", "accessibility")
STEM_ACTIVATIONS = ("gelu", "relu", "exp")
AVERAGES = ("sequence", "observed")


@dataclass
class SeqcellConfig:
    """Architecture of seqcell.

    Attributes
    ----------
    stem_channels, stem_kernel
        First convolution over the one-hot bases (1 bp).
    stem_motifs
        Known motifs read beside the learnt stem filters (JASPAR matrix IDs or the names of
        :data:`epimpute.motifs.JASPAR_IDS`): two fixed filters each, the motif's log-odds
        on either strand, with learnt biases (:mod:`epimpute.models.motif_stem`); training
        loads them. Empty: learnt filters only.
    motif_width
        Kernel of the motif filters; set by training (the longest motif, made odd).
    stem_activation
        Activation of the stem's (pooled) output: ``gelu``, ``relu`` or ``exp`` (the
        exponential, which favours filters that respond to whole motifs, after Koo and
        Ploenzke 2021; its input is capped at 10). Later layers use GELU.
    channels, conv_kernel
        Width of the network after the stem, and the kernel of the convolution after each
        pool.
    pools
        Max-pool sizes; their product is the model bin in bp and must be a multiple of the
        store's bin size (5 x 5 x 5 = 125 bp = 5 bins of 25 bp).
    dilations
        Dilated residual blocks (kernel 3) of the trunk, at model-bin resolution.
    cell_dilations
        Dilated residual blocks of the difference head after the accessibility embeddings.
    context
        Model bins of sequence and accessibility read on each side of predicted bins; at
        least :func:`reach`, so that a bin's prediction is the same in any window.
    global_sites
        Size of the global accessibility panel (most variable accessible sites).
    global_dim
        Width of the global embedding.
    dropout
        Dropout in the residual branches.
    accessibility
        The accessibility assay (``"auto"``: the first of ATAC, DNase, ATAC-seq, DNase-seq in
        the store).
    task
        ``marks``: a cell type's histone marks from sequence and its accessibility (both
        heads). ``accessibility``: the accessibility of each training cell type from
        sequence alone, one output per cell type (the DNA trunk and the average head only;
        trained on one cell type's track, a single-task model).
    average
        The base the difference is added to (``marks`` task). ``sequence``: the average
        head's prediction from sequence. ``observed``: the mean of the mark over the
        training cell types' observed tracks (all but the target cell type's), which the
        difference head also reads around each bin; imputing then needs those tracks.
    variant_mask
        Model bins on each side of a variant's bin whose accessibility variant scoring
        hides from the network (under the alternative allele it is unknown, and the
        reference's would tell the network the answer for REF only). Above 0 the local
        embedding reads a second, *known* channel, and training hides spans of this
        half-width (``SeqcellTrainingConfig.mask_rate``); 0: nothing is hidden.
    """

    stem_channels: int = 32
    stem_kernel: int = 15
    stem_motifs: tuple[str, ...] = ()
    motif_width: int = 0
    stem_activation: str = "gelu"
    channels: int = 64
    conv_kernel: int = 5
    pools: tuple[int, ...] = (5, 5, 5)
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    cell_dilations: tuple[int, ...] = (1, 2, 4, 8)
    context: int = 160
    global_sites: int = 256
    global_dim: int = 16
    dropout: float = 0.1
    accessibility: str = "auto"
    task: str = "marks"
    average: str = "sequence"
    variant_mask: int = 0
    panel: dict[str, Any] = field(default_factory=dict)
    """Set by training: ``contigs``, ``bins`` (model bins), ``mean`` of the panel sites,
    ``assay`` (the accessibility assay), ``marks`` (assays predicted), ``outputs`` (the cell
    types of the ``accessibility`` task's outputs), ``genome`` and, with
    ``average="observed"``, ``cells`` (the training cell types)."""


def model_bin(config: SeqcellConfig) -> int:
    """Model bin in bp: the product of the pools."""
    return int(np.prod(config.pools))


def n_outputs(config: SeqcellConfig) -> int:
    """Outputs of a trained model: its marks, or its cell types (``accessibility`` task)."""
    key = "outputs" if config.task == "accessibility" else "marks"
    return len(config.panel[key])


def receptive_field(config: SeqcellConfig) -> int:
    """Receptive field in bp of one model bin of the DNA trunk, from the layer sizes."""
    field_bp, jump = max(config.stem_kernel, config.motif_width), 1
    for pool in config.pools:
        field_bp += (pool - 1) * jump
        jump *= pool
        field_bp += (config.conv_kernel - 1) * jump
    return field_bp + sum(2 * d * jump for d in config.dilations)


def reach(config: SeqcellConfig) -> int:
    """Model bins on each side of a bin that its prediction can depend on: half the trunk's
    receptive field (rounded up, plus one for the bin's own width), the difference head's
    dilations and the kernels of the local accessibility embedding (9 and 5, those of the
    compendium embedding too); the trunk's alone for the ``accessibility`` task."""
    trunk = -(-receptive_field(config) // (2 * model_bin(config))) + 1
    if config.task == "accessibility":
        return trunk
    return trunk + sum(config.cell_dilations) + 4 + 2


class _ChannelNorm(nn.LayerNorm):
    """Layer norm over the channels of each position (no statistic across positions, so a
    bin's output never depends on the length or placement of the window)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class _Exp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x.clamp(max=10.0))


def _activation(name: str) -> nn.Module:
    if name not in STEM_ACTIVATIONS:
        raise InputError(f"seqcell stem_activation must be one of "
                         f"{', '.join(STEM_ACTIVATIONS)}, got {name!r}")
    return {"gelu": nn.GELU, "relu": nn.ReLU, "exp": _Exp}[name]()


class _Residual(nn.Module):
    def __init__(self, channels: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            _ChannelNorm(channels), nn.GELU(),
            nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation),
            _ChannelNorm(channels), nn.GELU(), nn.Conv1d(channels, channels, 1),
            nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


class Seqcell(nn.Module):
    """The network: arrays in, arrays out.

    ``n_marks`` outputs: the marks, or the cell types of the ``accessibility`` task (whose
    network has no accessibility embeddings and no difference head).
    """

    def __init__(self, config: SeqcellConfig, n_marks: int) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        stem: nn.Module = (
            MotifStem(config.stem_channels, config.stem_kernel, len(config.stem_motifs),
                      config.motif_width) if config.stem_motifs else
            nn.Conv1d(4, config.stem_channels, config.stem_kernel,
                      padding=config.stem_kernel // 2))
        layers: list[nn.Module] = [stem]
        width = config.stem_channels + 2 * len(config.stem_motifs)
        for i, pool in enumerate(config.pools):
            activation = _activation(config.stem_activation) if i == 0 else nn.GELU()
            layers += [nn.MaxPool1d(pool), activation,
                       nn.Conv1d(width, c, config.conv_kernel, padding=config.conv_kernel // 2)]
            width = c
        layers += [_Residual(c, d, config.dropout) for d in config.dilations]
        self.trunk = nn.Sequential(*layers)
        self.average_head = nn.Sequential(nn.GELU(), nn.Conv1d(c, n_marks, 1))
        if config.task == "accessibility":
            return
        self.local = nn.Sequential(nn.Conv1d(2 if config.variant_mask else 1, c, 9, padding=4),
                                   nn.GELU(), nn.Conv1d(c, c, 5, padding=2))
        self.global_mlp = nn.Sequential(nn.Linear(config.global_sites, 64), nn.GELU(),
                                        nn.Linear(64, config.global_dim), nn.GELU(),
                                        nn.Linear(config.global_dim, 2 * c))
        self.cell_tower = nn.Sequential(*[_Residual(c, d, config.dropout)
                                          for d in config.cell_dilations])
        self.difference_head = nn.Sequential(nn.GELU(), nn.Conv1d(c, n_marks, 1))
        if config.average == "observed":  # the marks' observed mean around the bin
            self.compendium = nn.Sequential(nn.Conv1d(n_marks, c, 9, padding=4), nn.GELU(),
                                            nn.Conv1d(c, c, 5, padding=2))

    def forward(self, sequence: torch.Tensor, accessibility: torch.Tensor,
                panel: torch.Tensor, compendium: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 4, N * bin)`` one-hot, ``(B, N)`` accessibility (NaN: hidden, with
        ``variant_mask``), ``(B, K)`` panel values and
        (``average="observed"`` only) ``(B, marks, N)`` observed means of the marks ->
        average head and difference, each ``(B, marks, N)`` (difference 0 in the
        ``accessibility`` task, which reads neither ``accessibility`` nor ``panel``)."""
        features = self.trunk(sequence)
        average = self.average_head(features)
        if self.config.task == "accessibility":
            return average, torch.zeros_like(average)
        local = accessibility.unsqueeze(1)
        if self.config.variant_mask:  # NaN: hidden; the second channel says what is known
            known = ~torch.isnan(local)
            local = torch.cat([torch.where(known, local, 0.0), known.to(local.dtype)], dim=1)
        cell = features + self.local(local)
        if self.config.average == "observed":
            if compendium is None:
                raise ValueError("average='observed' needs the observed means of the marks")
            cell = cell + self.compendium(compendium)
        scale, shift = self.global_mlp(panel).unsqueeze(-1).chunk(2, dim=1)
        cell = self.cell_tower(cell * (1 + scale) + shift)
        return average, self.difference_head(cell)

    def predict(self, sequence: torch.Tensor, accessibility: torch.Tensor,
                panel: torch.Tensor, compendium: torch.Tensor | None = None) -> torch.Tensor:
        """The prediction ``(B, marks, N)``: the base (the average head's output, or with
        ``average="observed"`` the observed means ``compendium``) plus the difference."""
        average, difference = self(sequence, accessibility, panel, compendium)
        if self.config.average == "observed":
            assert compendium is not None
            return compendium + difference
        return average + difference


class SeqcellImputer(Imputer):
    """seqcell as an :class:`Imputer`: a cell type's accessibility track is its only input
    (with ``average="observed"``, also the training cell types' mark tracks other than its
    own, see :meth:`compendium_rows`).

    Before imputing, :meth:`use_sequence` attaches the genome and :meth:`set_panel` each
    cell type's accessibility at the panel sites (see :mod:`epimpute.seqcell_inputs`).
    """

    name = "seqcell"

    def __init__(self, layout: Layout, network: Seqcell, *, tile_bins: int = 1024) -> None:
        super().__init__(layout)
        self.network = network.eval()
        self.config = network.config
        self.tile_bins = tile_bins
        self.assay = layout.assays.index(self.config.panel["assay"])
        self.marks = [layout.assays.index(m) for m in self.config.panel["marks"]]
        self.outputs: list[str] = list(self.config.panel.get("outputs", []))
        self._sequence: SequenceSource | None = None
        self._panel: dict[int, np.ndarray] = {}

    @property
    def context_bins(self) -> int:
        return (self.config.context + 1) * self.store_bins

    @property
    def store_bins(self) -> int:
        """Store bins per model bin."""
        return model_bin(self.config) // self.layout.bin_size

    def use_sequence(self, sequence: SequenceSource) -> None:
        """Attach the source of one-hot sequence."""
        self._sequence = sequence

    def set_panel(self, biosample: int, values: np.ndarray) -> None:
        """Accessibility of ``biosample`` at the panel sites (``(K,)``, arcsinh)."""
        self._panel[biosample] = np.asarray(values, dtype=np.float32)

    def panel_input(self, biosample: int) -> np.ndarray:
        """The global-embedding input of a cell type: panel values minus the training mean."""
        if biosample not in self._panel:
            raise InputError(f"no accessibility panel for cell type "
                             f"'{self.layout.biosamples[biosample]}'")
        return self._panel[biosample] - np.asarray(self.config.panel["mean"], dtype=np.float32)

    def output_columns(self, cell_type: str) -> list[tuple[str, int]]:
        """``(assay, output index)`` of what the network predicts for ``cell_type``: every
        mark, or (``accessibility`` task) the cell type's own accessibility output."""
        if self.config.task != "accessibility":
            return [(m, j) for j, m in enumerate(self.config.panel["marks"])]
        if cell_type not in self.outputs:
            raise InputError(f"this model predicts the {self.config.panel['assay']} of "
                             f"{', '.join(self.outputs)} from sequence; not of '{cell_type}'")
        return [(self.config.panel["assay"], self.outputs.index(cell_type))]

    def impute_region(self, signal: np.ndarray, available: np.ndarray,
                      targets: Sequence[tuple[int, int]], *, contig: str,
                      start: int) -> np.ndarray:
        if self._sequence is None:
            raise InputError("seqcell needs the genome: give --genome")
        margin, step = self.context_bins, self.store_bins
        length = signal.shape[1] - 2 * margin
        rows = {key: i for i, key in enumerate(self.layout.keys)}
        out = np.empty((len(targets), length), dtype=np.float32)
        by_biosample: dict[int, list[int]] = {}
        if self.config.task == "accessibility":
            return self._impute_accessibility(targets, contig, start, length)
        for i, (biosample, assay) in enumerate(targets):
            if assay == self.assay:
                raise InputError(f"seqcell predicts marks from accessibility; it cannot impute "
                                 f"{self.layout.key(biosample, assay)}")
            by_biosample.setdefault(biosample, []).append(i)
        first, last = start // step, -(-(start + length) // step)
        for biosample, members in by_biosample.items():
            key = self.layout.key(biosample, self.assay)
            row = rows.get(key)
            if row is None or not available[row]:
                raise InputError(f"cell type '{self.layout.biosamples[biosample]}' has no "
                                 f"{self.layout.assays[self.assay]} track: seqcell needs it")
            # store bins [first*step - C*step, ...) start at this offset of ``signal``
            offset = first * step - (start - margin) - self.config.context * step
            coarse = _coarsen(signal[row, max(offset, 0):], step, offset)
            compendium = None
            if self.config.average == "observed":
                groups = self.compendium_rows(
                    biosample, lambda k: rows[k] if k in rows and available[rows[k]] else None,
                    where="the store")
                compendium = np.stack([_coarsen(signal[g].mean(axis=0)[max(offset, 0):],
                                                step, offset) for g in groups])
            predicted = self._predict(contig, first, last, coarse, self.panel_input(biosample),
                                      compendium)
            fine = np.repeat(predicted, step, axis=1)[:, start - first * step:][:, :length]
            for i in members:
                out[i] = fine[self.marks.index(targets[i][1])]
        return out

    def compendium_rows(self, biosample: int, row_of: Callable[[str], int | None], *,
                        where: str) -> list[list[int]]:
        """``average="observed"``: per mark, the rows (``row_of`` a track key; None where
        absent) of the tracks whose mean is the base of ``biosample``'s prediction: those of
        the training cell types other than ``biosample``. InputError naming a mark none of
        whose tracks ``where`` holds."""
        own, trained = self.layout.biosamples[biosample], set(self.layout.keys)
        groups = []
        for mark in self.config.panel["marks"]:
            keys = [f"{c}:{mark}" for c in self.config.panel["cells"]
                    if c != own and f"{c}:{mark}" in trained]
            found = [row for row in map(row_of, keys) if row is not None]
            if not found:
                raise InputError(
                    f"this seqcell model (average 'observed') adds {own}'s difference to the "
                    f"mean {mark} of the training cell types; {where} holds none of "
                    f"{', '.join(keys) or 'their tracks'}: give a store with them")
            groups.append(found)
        return groups

    def _impute_accessibility(self, targets: Sequence[tuple[int, int]], contig: str,
                              start: int, length: int) -> np.ndarray:
        """The ``accessibility`` task: targets are training cell types' accessibility."""
        step = self.store_bins
        first, last = start // step, -(-(start + length) // step)
        columns = []
        for biosample, assay in targets:
            if assay != self.assay:
                raise InputError(f"this model predicts accessibility only, not "
                                 f"{self.layout.key(biosample, assay)}")
            columns.append(self.output_columns(self.layout.biosamples[biosample])[0][1])
        unused = np.zeros(last - first + 2 * self.config.context, dtype=np.float32)
        predicted = self._predict(contig, first, last, unused, np.zeros(0, dtype=np.float32))
        fine = np.repeat(predicted, step, axis=1)[:, start - first * step:][:, :length]
        return fine[columns]

    def _predict(self, contig: str, first: int, last: int, coarse: np.ndarray,
                 panel: np.ndarray, compendium: np.ndarray | None = None) -> np.ndarray:
        """``(marks, last - first)`` predictions; ``coarse`` (and ``compendium``, the observed
        means of the marks) start ``context`` bins before."""
        assert self._sequence is not None
        c, size = self.config.context, model_bin(self.config)
        device = next(self.network.parameters()).device
        result = np.empty((n_outputs(self.config), last - first), dtype=np.float32)
        panel_t = torch.from_numpy(panel)[None].to(device)
        for lo in range(first, last, self.tile_bins):
            hi = min(lo + self.tile_bins, last)
            seq = self._sequence(contig, (lo - c) * size, (hi + c) * size)
            acc = coarse[lo - first: hi - first + 2 * c]
            observed = None if compendium is None else torch.from_numpy(
                compendium[:, lo - first: hi - first + 2 * c])[None].to(device)
            with torch.no_grad():
                total = self.network.predict(torch.from_numpy(seq)[None].to(device),
                                             torch.from_numpy(acc)[None].to(device),
                                             panel_t, observed)
            total = total[0, :, c: c + hi - lo].float().cpu().numpy()
            result[:, lo - first: hi - first] = total
        return result

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.network.state_dict()

    @classmethod
    def from_state(cls, layout: Layout, config: dict[str, Any],
                   state: dict[str, torch.Tensor]) -> SeqcellImputer:
        values = dict(config)
        for name in ("pools", "dilations", "cell_dilations", "stem_motifs"):
            if name in values:
                values[name] = tuple(values[name])
        settings = SeqcellConfig(**values)
        network = Seqcell(settings, n_outputs(settings))
        network.load_state_dict(state)
        return cls(layout, network)

    def to(self, device: torch.device) -> SeqcellImputer:
        self.network.to(device)
        return self


def _coarsen(values: np.ndarray, step: int, offset: int) -> np.ndarray:
    """Means of consecutive groups of ``step`` bins; a negative ``offset`` pads zeros first."""
    if offset < 0:
        values = np.concatenate([np.zeros(-offset, dtype=np.float32), values])
    n = len(values) // step
    return values[: n * step].reshape(n, step).mean(axis=1).astype(np.float32)


def coarsen_tracks(values: np.ndarray, step: int) -> np.ndarray:
    """``(T, n * step)`` store bins -> ``(T, n)`` model bins (means)."""
    n = values.shape[1] // step
    return values[:, : n * step].reshape(len(values), n, step).mean(axis=2)


def accessibility_assay(assays: Sequence[str], wanted: str) -> str:
    """The accessibility assay among ``assays``; InputError when there is none."""
    names = ACCESSIBILITY_ASSAYS if wanted == "auto" else (wanted,)
    for name in names:
        if name in assays:
            return name
    raise InputError(f"seqcell needs an accessibility assay ({', '.join(names)}); the store "
                     f"has {', '.join(assays)}")
