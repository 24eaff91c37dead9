"""Training seqcell on random windows of a store and its genome."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from epimpute.errors import InputError
from epimpute.hardware import resolve_device
from epimpute.io.genome import Genome
from epimpute.models.motif_stem import motif_width
from epimpute.models.seqcell import (
    AVERAGES,
    TASKS,
    Seqcell,
    SeqcellConfig,
    SeqcellImputer,
    accessibility_assay,
    coarsen_tracks,
    model_bin,
    n_outputs,
    reach,
)
from epimpute.motifs import jaspar_library
from epimpute.seqcell_inputs import genome_record, panel_values
from epimpute.store import Store
from epimpute.training.data import genome_blocks, split_blocks, store_layout
from epimpute.training.loop import History, LoopSpec, RunSettings, fit

log = logging.getLogger(__name__)
KEEP = ("best", "last")


@dataclass
class SeqcellTrainingConfig:
    """How seqcell is trained.

    Attributes
    ----------
    batch_size, crop
        Windows per step, and model bins predicted (and scored) per window.
    learning_rate, weight_decay
        AdamW settings.
    max_epochs, patience, steps_per_epoch
        Stop after ``max_epochs`` of ``steps_per_epoch`` steps or ``patience`` epochs
        without a better validation loss.
    block_bins
        Store bins per genomic block (a multiple of the store bins of a model bin); blocks
        without accessibility signal are skipped.
    max_train_bins
        Store bins of blocks held in memory (with their sequence) for training and validation.
    validation_fraction, validation_windows
        Share of the blocks held out, and windows of them scored each epoch.
    panel_spacing
        Least distance in model bins between two sites of the global panel.
    mask_rate
        Models with ``variant_mask``: share of training windows in which ``crop // 16``
        spans of ``2 x variant_mask + 1`` model bins of accessibility are hidden (the
        network learns to predict there from sequence, the surroundings and the panel).
    reverse_complement
        Share of training windows read on the other strand (sequence reverse-complemented,
        accessibility and targets reversed); 0 keeps every window as it is.
    peak_rate
        Share of training windows placed so that their crop holds a *peak*: a model bin
        where some training cell type's accessibility is in the top 2 % of the training
        blocks' bins (chosen uniformly among the peaks, at a uniform place in the crop);
        the others, and every validation window, are placed uniformly. 0: all uniform.
    keep
        The weights kept: ``best``, those of the epoch of least validation loss; ``last``,
        those at the end of training (the validation loss can rise while the trunk learns
        motifs: a motif detector first predicts peaks at matches that are not sites).
    """

    batch_size: int = 8
    crop: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    max_epochs: int = 20
    patience: int = 4
    steps_per_epoch: int = 50
    block_bins: int = 20_000
    max_train_bins: int = 2_000_000
    validation_fraction: float = 0.1
    validation_windows: int = 64
    panel_spacing: int = 8
    mask_rate: float = 0.5
    reverse_complement: float = 0.0
    peak_rate: float = 0.0
    keep: str = "best"


@dataclass
class _Block:
    contig: str
    sequence: np.ndarray  # (4, (n + 2C) * bin) int8
    accessibility: np.ndarray  # (cells, n + 2C)
    marks: np.ndarray  # (cells, marks, n)
    observed: np.ndarray  # (cells, marks) bool
    average: np.ndarray  # (marks, n)
    compendium: np.ndarray | None = None  # (cells, marks, n + 2C) leave-one-out means


def train_seqcell(
    store: Store,
    *,
    config: SeqcellConfig,
    training: SeqcellTrainingConfig,
    settings: RunSettings,
    exclude: tuple[str, ...] | list[str] = (),
    checkpoint: Path | None = None,
    genome: Genome | None = None,
) -> tuple[SeqcellImputer, History]:
    """Train seqcell on the non-excluded tracks of ``store`` and the sequence of ``genome``.

    Training cell types are those with an accessibility track and a mark among the inputs;
    each window is one cell type's accessibility and sequence in, its marks out. In the
    ``accessibility`` task, every cell type with an accessibility track among the inputs is
    an output, and each window is sequence in, all of their accessibility out.

    With ``average="observed"``, a window of cell type i adds the difference to the mean of
    each mark over the OTHER training cell types observing it (leave-one-out, as imputing a
    cell type whose tracks are not in the mean); each mark needs two training cell types.
    The average head is still fitted to the mean of all of them (its sequence path stays,
    and its loss keeps shaping the trunk); the other term is on observed mean + difference.
    """
    if genome is None:
        raise InputError("the seqcell model reads DNA sequence: give --genome FASTA/2bit")
    if config.task not in TASKS:
        raise InputError(f"seqcell task must be one of {', '.join(TASKS)}, got {config.task!r}")
    if config.average not in AVERAGES:
        raise InputError(f"seqcell average must be one of {', '.join(AVERAGES)}, got "
                         f"{config.average!r}")
    if isinstance(config.variant_mask, bool) or not isinstance(config.variant_mask, int) \
            or config.variant_mask < 0 or not 0.0 <= training.mask_rate <= 1.0:
        raise InputError(f"seqcell: variant_mask must be a whole number of model bins >= 0 "
                         f"and mask_rate in [0, 1], got {config.variant_mask!r} and "
                         f"{training.mask_rate!r}")
    if training.keep not in KEEP:
        raise InputError(f"seqcell: keep must be one of {', '.join(KEEP)}, got "
                         f"{training.keep!r}")
    for name in ("reverse_complement", "peak_rate"):
        value = getattr(training, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0.0 <= value <= 1.0:
            raise InputError(f"seqcell: {name} must be a share in [0, 1], got {value!r}")
    observed_base = config.average == "observed"
    if observed_base and config.task != "marks":
        raise InputError("seqcell: average 'observed' applies to the marks task only")
    layout = store_layout(store, exclude=exclude)
    assay = accessibility_assay(layout.assays, config.accessibility)
    keys = set(layout.keys)
    by_sequence = config.task == "accessibility"
    if by_sequence:
        marks: list[str] = []
        cells = [b for b in layout.biosamples if f"{b}:{assay}" in keys]
    else:
        marks = [a for a in layout.assays
                 if a != assay and any(k.endswith(f":{a}") for k in keys)]
        cells = [b for b in layout.biosamples if f"{b}:{assay}" in keys
                 and any(f"{b}:{m}" in keys for m in marks)]
        if not marks or len(cells) < 2:
            raise InputError(f"{store.path}: seqcell needs at least two cell types with "
                             f"{assay} and a histone mark among the training tracks")
        few = [m for m in marks if sum(f"{b}:{m}" in keys for b in cells) < 2]
        if observed_base and few:
            raise InputError(f"{store.path}: seqcell with average 'observed' needs each mark "
                             f"in at least two training cell types (with {assay}); "
                             f"{', '.join(few)} has fewer")
    size = model_bin(config)
    if size % store.bin_size or training.block_bins % (size // store.bin_size):
        raise InputError(f"the model bin ({size} bp) must be a whole number of store bins and "
                         f"block_bins a multiple of them ({store.bin_size}-bp bins)")
    step = size // store.bin_size
    motifs = jaspar_library(config.stem_motifs) if config.stem_motifs else []
    if motifs:
        config = replace(config, motif_width=motif_width([m.length for m in motifs]))
    if config.context < reach(config):
        raise InputError(f"seqcell: context ({config.context} model bins) must be at least "
                         f"the network's reach on each side ({reach(config)})")
    rng = np.random.default_rng(settings.seed)
    acc_rows = [int(store.track_index(f"{b}:{assay}")) for b in cells]
    blocks = _signal_blocks(store, acc_rows, training, rng)
    train_blocks, validation_blocks = split_blocks(
        blocks, max_bins=training.max_train_bins + 1,
        validation_fraction=training.validation_fraction, rng=rng)
    if not train_blocks or not validation_blocks:
        raise InputError(f"{store.path}: too little accessibility signal to train seqcell "
                         f"(lower block_bins)")
    if by_sequence:  # no accessibility input: an empty panel, one "cell" of all outputs
        panel, values = {"contigs": [], "bins": []}, np.zeros((1, 0), dtype=np.float32)
    else:
        panel = _choose_panel(store, acc_rows, train_blocks, step, config.global_sites,
                              training.panel_spacing)
        values = np.stack([panel_values(store, r, panel["contigs"], panel["bins"], step)
                           for r in acc_rows])
    panel["mean"] = values.mean(axis=0).tolist()
    config = replace(config, panel={**panel, "assay": assay, "marks": marks,
                                    "outputs": cells if by_sequence else [],
                                    "genome": genome_record(genome),
                                    **({"cells": cells} if observed_base else {})})
    panels = torch.from_numpy(values - values.mean(axis=0))
    n_windows = 1 if by_sequence else len(cells)  # whose tracks a window can be drawn of

    def load(block):
        return _load_block(store, genome, block, cells, assay, marks, config, step)
    train_data = [load(b) for b in tqdm(train_blocks, desc="loading", disable=not settings.progress)]
    validation_data = [load(b) for b in validation_blocks]
    peaks = peak_bins(train_data, by_sequence=by_sequence) if training.peak_rate else None
    device = resolve_device(settings.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        network = Seqcell(config, n_outputs(config))
        if motifs:
            network.trunk[0].set_motifs([m.pwm for m in motifs])
        network = network.to(device)
        optimizer = torch.optim.AdamW(network.parameters(), lr=training.learning_rate,
                                      weight_decay=training.weight_decay)
        generator = torch.Generator().manual_seed(settings.seed + 1)

        def batches(epoch: int) -> Iterator[tuple[tuple[torch.Tensor, ...], int]]:
            for _ in range(training.steps_per_epoch):
                picks = _draw(train_data, training, n_windows, generator, peaks)
                batch = _batch(train_data, picks, panels, config.context, training.crop,
                               size, device)
                if training.reverse_complement:
                    batch = other_strand(batch, training.reverse_complement, generator)
                if config.variant_mask:
                    hide_spans(batch[1], config, training, generator)
                yield batch, training.batch_size * training.crop * step

        fixed = torch.Generator().manual_seed(settings.seed + 2)
        validation_picks = [_draw(validation_data, training, n_windows, fixed)
                            for _ in range(max(1, training.validation_windows
                                               // training.batch_size))]

        def validate() -> float:
            losses = [float(_loss(network, _batch(validation_data, p, panels, config.context,
                                                  training.crop, size, device), config.context))
                      for p in validation_picks]
            return float(np.mean(losses))

        spec = LoopSpec(batches=batches, loss=lambda b: _loss(network, b, config.context),
                        validate=validate,
                        random_state=(generator.get_state, generator.set_state))
        history = fit(network, optimizer, spec, max_epochs=training.max_epochs,
                      patience=training.patience, settings=settings, checkpoint=checkpoint,
                      description="seqcell", keep_last=training.keep == "last")
    return SeqcellImputer(layout, network.cpu()), history


def _signal_blocks(store: Store, rows: list[int], training: SeqcellTrainingConfig,
                   rng: np.random.Generator) -> list[tuple[str, int, int]]:
    """Blocks (in genome order) with accessibility signal, up to ``max_train_bins``."""
    blocks = genome_blocks({c: store.n_bins(c) for c in store.contigs},
                           block_bins=training.block_bins)
    span = training.block_bins * max(1, 131_072 // training.block_bins)
    signal = set()
    for contig in store.contigs:  # read a span of blocks at a time, not block by block
        for lo in range(0, store.n_bins(contig), span):
            values = store.read(contig, lo, min(lo + span, store.n_bins(contig)), tracks=rows)
            for first in range(0, values.shape[1], training.block_bins):
                if np.any(values[:, first: first + training.block_bins]):
                    signal.add((contig, lo + first))
    kept, total = [], 0
    for i in rng.permutation(len(blocks)):
        if total >= training.max_train_bins:
            break
        contig, lo, hi = blocks[i]
        if (contig, lo) in signal:
            kept.append(blocks[i])
            total += hi - lo
    return sorted(kept, key=lambda b: (list(store.contigs).index(b[0]), b[1]))


def _choose_panel(store: Store, rows: list[int], blocks: list[tuple[str, int, int]],
                  step: int, k: int, spacing: int) -> dict:
    """The ``k`` accessible model bins of most variance across the training cell types, at
    least ``spacing`` model bins apart."""
    candidates = []
    for contig, lo, hi in blocks:
        coarse = coarsen_tracks(store.read(contig, lo, hi, tracks=rows), step)
        variance = coarse.var(axis=0)
        accessible = coarse.max(axis=0) > 0
        for j in np.flatnonzero(accessible & (variance > 0)):
            candidates.append((float(variance[j]), contig, lo // step + int(j)))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    chosen: list[tuple[str, int]] = []
    taken: dict[str, list[int]] = {}
    for _, contig, position in candidates:
        if len(chosen) == k:
            break
        if any(abs(position - p) < spacing for p in taken.get(contig, [])):
            continue
        taken.setdefault(contig, []).append(position)
        chosen.append((contig, position))
    if len(chosen) < k:
        raise InputError(f"{store.path}: only {len(chosen)} variable accessible sites for a "
                         f"global panel of {k} (lower global_sites)")
    return {"contigs": [c for c, _ in chosen], "bins": [p for _, p in chosen]}


def _load_block(store: Store, genome: Genome, block: tuple[str, int, int], cells: list[str],
                assay: str, marks: list[str], config: SeqcellConfig, step: int) -> _Block:
    contig, lo, hi = block
    c, size = config.context, model_bin(config)
    first, n = lo // step, (hi - lo) // step
    acc_rows = [int(store.track_index(f"{b}:{assay}")) for b in cells]
    observed = np.array([[store.track_index(f"{b}:{m}") is not None for m in marks]
                         for b in cells])
    mark_rows = [int(store.track_index(f"{cells[i]}:{marks[j]}"))
                 for i, j in zip(*np.nonzero(observed))]
    window = coarsen_tracks(store.read(contig, (first - c) * step, (first + n + c) * step,
                                       tracks=acc_rows + mark_rows), step)
    accessibility = window[: len(cells)]
    if config.task == "accessibility":  # targets: every cell type's accessibility
        targets = accessibility[None, :, c: c + n].astype(np.float32)
        return _Block(contig, _sequence_of(genome, contig, first, n, c, size),
                      np.zeros((1, n + 2 * c), dtype=np.float32), targets,
                      np.ones((1, len(cells)), dtype=bool), targets[0])
    values = np.zeros((len(cells), len(marks), n), dtype=np.float32)
    values[observed] = window[len(cells):, c: c + n]
    counts = np.maximum(observed.sum(axis=0), 1)[:, None]
    average = (values * observed[:, :, None]).sum(axis=0) / counts
    compendium = None
    if config.average == "observed":  # each cell type's mean of the others (>= 2 observe)
        wide = np.zeros((len(cells), len(marks), n + 2 * c), dtype=np.float64)
        wide[observed] = window[len(cells):]
        others = observed.sum(axis=0)[None, :, None] - observed[:, :, None]
        compendium = ((wide.sum(axis=0)[None] - wide) / others).astype(np.float32)
    return _Block(contig, _sequence_of(genome, contig, first, n, c, size),
                  accessibility.astype(np.float32), values, observed, average.astype(np.float32),
                  compendium)


def _sequence_of(genome: Genome, contig: str, first: int, n: int, context: int,
                size: int) -> np.ndarray:
    """int8 one-hot of model bins ``first - context .. first + n + context``."""
    return genome.one_hot(contig, (first - context) * size,
                          (first + n + context) * size).astype(np.int8)


def peak_bins(data: list[_Block], *, by_sequence: bool, share: float = 0.02
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(block, bin)`` of the model bins (of the blocks' predicted bins) where some
    training cell type's accessibility (``by_sequence``, the accessibility task: the
    targets) is in the top ``share`` of all of them."""
    tops = []
    for b in data:
        n = b.marks.shape[2]
        context = (b.accessibility.shape[1] - n) // 2
        values = b.average if by_sequence else b.accessibility[:, context: context + n]
        tops.append(values.max(axis=0))
    cut = np.quantile(np.concatenate(tops), 1.0 - share)
    where = [(i, j) for i, top in enumerate(tops) for j in np.flatnonzero(top > cut)]
    if not where:  # a flat signal: every bin ties
        where = [(i, j) for i, top in enumerate(tops) for j in range(len(top))]
    blocks, bins = zip(*where)
    return torch.tensor(blocks), torch.tensor(bins)


def _draw(data: list[_Block], training: SeqcellTrainingConfig, n_cells: int,
          generator: torch.Generator,
          peaks: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[tuple[int, int, int]]:
    """``(block, first model bin, cell)`` of each window of a batch; with ``peaks``
    (:func:`peak_bins`), a share ``peak_rate`` of them with a peak in the crop."""
    picks = []
    sizes = torch.tensor([max(b.marks.shape[2] - training.crop, 0) + 1 for b in data],
                         dtype=torch.float64)
    for _ in range(training.batch_size):
        if peaks is not None and float(torch.rand(1, generator=generator)) < training.peak_rate:
            k = int(torch.randint(len(peaks[0]), (1,), generator=generator))
            block, peak = int(peaks[0][k]), int(peaks[1][k])
            place = int(torch.randint(training.crop, (1,), generator=generator))
            offset = min(max(peak - place, 0), int(sizes[block]) - 1)
        else:
            block = int(torch.multinomial(sizes, 1, generator=generator))
            offset = int(torch.randint(int(sizes[block]), (1,), generator=generator))
        cell = int(torch.randint(n_cells, (1,), generator=generator))
        picks.append((block, offset, cell))
    return picks


def hide_spans(accessibility: torch.Tensor, config: SeqcellConfig,
               training: SeqcellTrainingConfig, generator: torch.Generator) -> None:
    """Hide (set to NaN, in place) spans of ``2 x variant_mask + 1`` model bins of the
    ``(B, crop + 2 x context)`` accessibility of a batch: ``crop // 16`` spans centred in
    the crop, in a share ``mask_rate`` of its windows."""
    half, context = config.variant_mask, config.context
    for window in range(accessibility.shape[0]):
        if float(torch.rand(1, generator=generator)) >= training.mask_rate:
            continue
        for _ in range(max(1, training.crop // 16)):
            centre = context + int(torch.randint(training.crop, (1,), generator=generator))
            accessibility[window, centre - half: centre + half + 1] = float("nan")


def other_strand(batch: tuple[torch.Tensor, ...], rate: float,
                 generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """The batch with a share ``rate`` of its windows on the reverse strand: one-hot
    sequence (ACGT order) reversed and complemented, every per-bin tensor reversed (the
    window is symmetric about its crop, so the crop stays in place), the panel as it is."""
    sequence, accessibility, panel, *per_bin = batch
    flip = torch.rand(sequence.shape[0], generator=generator) < rate
    if not flip.any():
        return batch
    flip = flip.to(sequence.device)

    def turned(t: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        shape = (-1,) + (1,) * (t.dim() - 1)
        return torch.where(flip.view(shape), t.flip(dims), t)
    return (turned(sequence, (1, 2)), turned(accessibility, (1,)), panel,
            *(turned(t, (t.dim() - 1,)) for t in per_bin))


def _batch(data: list[_Block], picks: list[tuple[int, int, int]], panels: torch.Tensor,
           context: int, crop: int, size: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    sequence, accessibility, panel, marks, observed, average = [], [], [], [], [], []
    compendium = []
    for block, offset, cell in picks:
        b = data[block]
        width = min(crop, b.marks.shape[2] - offset)
        pad = crop - width
        seq = b.sequence[:, offset * size: (offset + width + 2 * context) * size]
        sequence.append(np.pad(seq, ((0, 0), (0, pad * size))).astype(np.float32))
        accessibility.append(np.pad(b.accessibility[cell, offset: offset + width + 2 * context],
                                    (0, pad)))
        panel.append(panels[cell])
        marks.append(np.pad(b.marks[cell, :, offset: offset + width], ((0, 0), (0, pad))))
        keep = np.zeros((b.marks.shape[1], crop), dtype=bool)
        keep[:, :width] = b.observed[cell][:, None]
        observed.append(keep)
        average.append(np.pad(b.average[:, offset: offset + width], ((0, 0), (0, pad))))
        if b.compendium is not None:
            compendium.append(np.pad(b.compendium[cell, :, offset: offset + width + 2 * context],
                                     ((0, 0), (0, pad))))
    tensors = (torch.from_numpy(np.stack(sequence)), torch.from_numpy(np.stack(accessibility)),
               torch.stack(panel), torch.from_numpy(np.stack(marks)),
               torch.from_numpy(np.stack(observed)), torch.from_numpy(np.stack(average)))
    if compendium:  # average "observed": the leave-one-out means, with the context
        tensors += (torch.from_numpy(np.stack(compendium)),)
    return tuple(t.to(device) for t in tensors)


def _loss(network: Seqcell, batch: tuple[torch.Tensor, ...], context: int) -> torch.Tensor:
    """MSE of the average head against the cross-cell-type mean plus MSE of the total (the
    base: the average head's output, or the leave-one-out observed mean); in the
    ``accessibility`` task, MSE of the (average head's) outputs against the tracks."""
    sequence, accessibility, panel, marks, observed, average, *rest = batch
    compendium = rest[0] if rest else None
    predicted_average, difference = network(sequence, accessibility, panel, compendium)
    crop = marks.shape[2]
    predicted_average = predicted_average[:, :, context: context + crop]
    if network.config.task == "accessibility":
        weight = observed.float()
        return (((predicted_average - marks) ** 2) * weight).sum() / weight.sum().clamp(min=1)
    base = predicted_average if compendium is None else compendium[:, :, context: context + crop]
    total = base + difference[:, :, context: context + crop]
    weight = observed.float()
    count = weight.sum().clamp(min=1)
    any_window = (observed.any(dim=1, keepdim=True)).float().expand_as(weight)
    average_loss = (((predicted_average - average) ** 2) * any_window).sum() / any_window.sum().clamp(min=1)
    return average_loss + (((total - marks) ** 2) * weight).sum() / count
