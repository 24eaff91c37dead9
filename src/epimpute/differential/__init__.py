"""Imputed tracks in differential analysis: simulated negative-binomial replicates
(:func:`replicates`), differential peaks between two cell types with PyDESeq2
(:func:`differential`) and peak-shape Wasserstein distances, observed vs imputed
(:func:`compare`)."""

from epimpute.differential.replicates import replicates
from epimpute.differential.run import differential
from epimpute.differential.shapes import compare

__all__ = ["compare", "differential", "replicates"]
