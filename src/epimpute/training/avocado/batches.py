"""Batches, losses and validation of Avocado's training runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from epimpute.models.avocado import Avocado, GenomeFactors
from epimpute.models.layout import Layout
from epimpute.training.avocado.positions import PositionData
from epimpute.training.loop import History, LoopSpec, RunSettings, fit

__all__ = ["Batch", "Epochs", "Trainable", "fit_loop", "hidden_entry_batches", "keep_last",
           "mean_error"]


class Trainable(nn.Module):
    """The network and one set of genome factors, trained together by :func:`fit`."""

    def __init__(self, network: Avocado, genome: GenomeFactors) -> None:
        super().__init__()
        self.network = network
        self.genome = genome


Batch = tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]
"""``(rows per scale, celltype, assay, value)`` of a batch of positions."""


class Epochs:
    """Batches of one epoch: every position once, in random order, one random track each.

    The track is drawn among all of ``data.values``' columns, avoiding the one a position
    hides for validation.
    """

    def __init__(self, data: PositionData, layout: Layout, *, batch_size: int,
                 generator: torch.Generator, device: torch.device) -> None:
        self.data = data
        self.batch_size = batch_size
        self.generator = generator
        self.device = device
        tracks = torch.tensor(layout.tracks, dtype=torch.long).reshape(-1, 2)
        self.track_celltype, self.track_assay = tracks[:, 0], tracks[:, 1]
        self.flat_values = data.values.reshape(-1)
        self.any_hidden = bool((data.hidden >= 0).any())
        self.epoch = -1

    def batch(self, positions: torch.Tensor, tracks: torch.Tensor) -> Batch:
        value = self.flat_values[positions * self.data.n_tracks + tracks]
        rows = [r.to(self.device) for r in self.data.scale_rows(positions)]
        return (rows, self.track_celltype[tracks].to(self.device),
                self.track_assay[tracks].to(self.device), value.to(self.device))

    def __call__(self, epoch: int) -> Iterator[tuple[Batch, int]]:
        self.epoch = epoch
        n = len(self.data)
        order = torch.randperm(n, generator=self.generator)
        n_columns = self.data.n_tracks
        for lo in range(0, n, self.batch_size):
            # Sorted positions give sorted factor rows, which makes the sparse gradients
            # cheap to build (see GenomeFactors); the order within a batch is irrelevant.
            positions = order[lo:lo + self.batch_size].sort().values
            uniform = torch.rand(len(positions), generator=self.generator)
            if self.any_hidden:
                hidden = self.data.hidden[positions].long()
                has_hidden = hidden >= 0
                choices = n_columns - has_hidden.long()
                draw = torch.minimum((uniform * choices).long(), choices - 1)
                tracks = draw + (has_hidden & (draw >= hidden)).long()
            else:
                tracks = torch.clamp((uniform * n_columns).long(), max=n_columns - 1)
            yield self.batch(positions, tracks), len(positions)


def _squared_error(model: Trainable, batch: Batch) -> torch.Tensor:
    """``(N,)`` squared error of the model's prediction (the mean of its members)."""
    rows, celltype, assay, value = batch
    predicted = model.network(model.genome(rows), celltype, assay)
    return (predicted.float() - value) ** 2


def _member_loss(model: Trainable, batch: Batch) -> torch.Tensor:
    """Training loss: the mean over members of each member's own mean squared error, so
    every member gets the gradient of its own error (members share no parameter)."""
    rows, celltype, assay, value = batch
    predicted = model.network.member_outputs(model.genome(rows), celltype, assay)
    return ((predicted.float() - value) ** 2).mean()


def mean_error(model: Trainable, batches: Sequence[Batch]) -> Callable[[], float]:
    """Mean squared error over fixed batches (validation)."""
    count = sum(len(batch[3]) for batch in batches)

    def validate() -> float:
        total = sum(float(_squared_error(model, batch).sum()) for batch in batches)
        return total / max(count, 1)

    return validate


def hidden_entry_batches(epochs: Epochs, *, batch_size: int) -> list[Batch]:
    """The entries hidden in blocks, as batches."""
    positions = torch.nonzero(epochs.data.hidden >= 0).squeeze(1)
    tracks = epochs.data.hidden[positions].long()
    return [epochs.batch(positions[lo:lo + batch_size], tracks[lo:lo + batch_size])
            for lo in range(0, len(positions), batch_size)]


def keep_last(epochs: Epochs) -> Callable[[], float]:
    """A 'validation' that improves every epoch, so :func:`fit` keeps the last one."""
    return lambda: -float(epochs.epoch + 1)



def fit_loop(
    model: Trainable,
    optimizer: torch.optim.Optimizer,
    epochs: Epochs,
    validate: Callable[[], float],
    *,
    max_epochs: int,
    patience: int,
    settings: RunSettings,
    checkpoint: Path | None,
    description: str,
) -> History:
    """Train ``model`` with the generic loop on ``epochs``, the members' loss and
    ``validate``."""
    spec = LoopSpec(
        batches=epochs,
        loss=lambda batch: _member_loss(model, batch),
        validate=validate,
        random_state=(epochs.generator.get_state, epochs.generator.set_state),
    )
    return fit(model, optimizer, spec, max_epochs=max_epochs, patience=patience,
               settings=settings, checkpoint=checkpoint, amp=False, description=description)

