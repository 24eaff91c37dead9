"""How Avocado is trained: :class:`AvocadoTrainingConfig`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AvocadoTrainingConfig"]


@dataclass
class AvocadoTrainingConfig:
    """How Avocado is trained.

    Attributes
    ----------
    batch_size
        Positions per optimiser step.
    learning_rate
        Adam step size of the decoder and the cell-type and assay embeddings.
    genome_learning_rate
        Adam step size of the genome factors. A 25-bp factor is updated in one step per
        epoch (a 250-bp one in about 10, a 5-kb one in most), so it gets a larger step than
        the parameters every step updates.
    weight_decay
        Decoupled weight decay of the decoder and the cell-type / assay embeddings. It keeps
        the decoder from turning the (cell type, assay) pairs it has seen into special cases,
        which is what makes imputations of unseen pairs go astray.
    max_epochs, patience
        Stage 1: at most ``max_epochs``; stop after ``patience`` epochs without a better
        validation error.
    lr_decay, lr_decay_patience
        Multiply every step size by ``lr_decay`` after ``lr_decay_patience`` epochs without
        a better validation error (``1.0``: constant step sizes).
    stage2_max_epochs, stage2_patience
        The same for each contig in stage 2.
    validation_fraction, validation_block_bins
        Share of the positions, in blocks of this many bins, where one track is hidden from
        training to choose the epoch (both stages).
    stage1_bed
        BED file of the stage-1 regions (overrides the default choice).
    stage1_max_bins
        Without a BED file, stage 1 trains on the whole store when it has at most this many
        bins, else on random blocks of ``stage1_block_bins`` bins adding up to it.
    stage1_block_bins
        Size of the random stage-1 blocks.
    stage2_contigs
        Contigs to fit in stage 2 (``None``: every contig of the store not covered whole by
        stage 1). Positions on other contigs cannot be imputed.
    refit_stage1_contigs
        Also refit in stage 2 the contigs that stage 1 covered whole.
    """

    batch_size: int = 10_000
    learning_rate: float = 1e-3
    genome_learning_rate: float = 1e-2
    weight_decay: float = 3.0
    max_epochs: int = 200
    patience: int = 6
    lr_decay: float = 0.5
    lr_decay_patience: int = 2
    stage2_max_epochs: int = 100
    stage2_patience: int = 6
    validation_fraction: float = 0.05
    validation_block_bins: int = 200
    stage1_bed: str | None = None
    stage1_max_bins: int = 4_000_000
    stage1_block_bins: int = 20_000
    stage2_contigs: tuple[str, ...] | None = None
    refit_stage1_contigs: bool = False

    def __post_init__(self) -> None:
        if self.stage2_contigs is not None:
            self.stage2_contigs = tuple(str(c) for c in self.stage2_contigs)
        if self.batch_size < 1:
            raise ValueError("batch_size must be positive")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be in [0, 1)")

