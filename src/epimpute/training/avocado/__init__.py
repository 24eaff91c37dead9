"""Training Avocado in two stages, as in the paper.

Stage 1 trains every parameter (cell-type and assay embeddings, decoder, genome factors) on
a region set: the whole store when it is small (at most ``stage1_max_bins`` bins), else the
regions of a BED file or randomly drawn blocks. Stage 2 freezes the embeddings and the
decoder and fits the genome factors of each contig in turn, holding one contig's factors
in memory and saving them before moving on. Contigs that stage 1 covered whole keep their
stage-1 factors.

An epoch is one pass over the positions of the region set (or contig) in random order,
with one observed track drawn at random for each position (the paper's definition).

Stopping rule: before training, a ``validation_fraction`` of the region set, in blocks of
``validation_block_bins`` bins (5 kb by default, the coarsest scale), has one observed
track hidden per block. Those (position, track) entries are never trained on; the epoch
with the lowest mean squared error on them is kept, and training stops after ``patience``
epochs without improvement. The rule never looks at tracks excluded from training, and
hiding whole blocks of a track (not scattered bins) makes the check resemble imputing an
unseen track: no factor at any scale has seen that track there. Every step size is
multiplied by ``lr_decay`` when the error stalls (:mod:`~epimpute.training.avocado.plateau`).

Regularisation: dropout in the decoder and weight decay on the decoder and embeddings keep
the model from treating the (cell type, assay) pairs it is trained on as special cases,
which is what otherwise makes imputations of unseen pairs drift (``docs/avocado.md``).

Ensemble members (``AvocadoConfig.members``) are trained side by side on the same batches,
each on its own squared error; validation and the stopping rule score their mean.
"""

from epimpute.training.avocado.config import AvocadoTrainingConfig
from epimpute.training.avocado.positions import (
    PositionData,
    compact_factors,
    load_positions,
    whole_contig_factors,
)
from epimpute.training.avocado.regions import stage1_blocks
from epimpute.training.avocado.stages import (
    fit_contig,
    train_avocado,
    train_stage1,
)
from epimpute.training.optim import LazyAdam

__all__ = [
    "AvocadoTrainingConfig",
    "LazyAdam",
    "PositionData",
    "compact_factors",
    "fit_contig",
    "load_positions",
    "stage1_blocks",
    "train_avocado",
    "train_stage1",
    "whole_contig_factors",
]
