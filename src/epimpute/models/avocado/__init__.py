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

from epimpute.models.avocado.config import (
    PRESETS,
    SMALL_PRESET_BELOW_TRACKS,
    AvocadoConfig,
)
from epimpute.models.avocado.genome_factors import GenomeFactors, scale_rows
from epimpute.models.avocado.imputer import (
    AvocadoImputer,
    decode_features,
    genome_features,
)
from epimpute.models.avocado.layers import FastDropout, MemberLinear
from epimpute.models.avocado.network import Avocado

__all__ = [
    "PRESETS",
    "SMALL_PRESET_BELOW_TRACKS",
    "Avocado",
    "AvocadoConfig",
    "AvocadoImputer",
    "FastDropout",
    "GenomeFactors",
    "MemberLinear",
    "decode_features",
    "genome_features",
    "scale_rows",
]
