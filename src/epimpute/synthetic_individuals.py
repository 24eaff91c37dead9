"""A generator of multi-individual, multi-tissue compendia with individual-specific peaks.

Public compendia with several individuals (EN-TEx: four donors, ~30 tissues each) are
what individual-specific imputation is for; this module makes small ones whose truth is
known, for tests and for ``benchmarks/transfer_individuals.py``.

Model
-----
Tissues play the part of :mod:`epimpute.synthetic`'s cell types (genes, enhancers and
heterochromatin, with constitutive, lineage and tissue-specific activity; the same mark
model). Every individual has every tissue, and a tissue's noise-free signal is shared by
all individuals, scaled by a per-(individual, tissue) factor. On top of it, each
individual carries planted peaks of its own, on the activating narrow marks (``H3K4me3``
and ``H3K27ac`` peaks, an ``H3K4me1`` shoulder), each spanning well over 150 bp:

- *genetic* peaks: present in every tissue of the individual, as a variant in a
  regulatory element would be;
- *tissue-restricted* peaks: present in one tissue of the individual only.

Each track gets its own gamma noise and exponential background, as in
:mod:`epimpute.synthetic`. Values are ``-log10 p``; :meth:`IndividualsCompendium.write`
writes one ``.npz`` per track and a sample sheet with ``cell_type`` (the tissue),
``individual``, ``assay`` and ``path`` columns, the form an EN-TEx sheet takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from epimpute.synthetic import SyntheticSpec, _bump, _draw_structure, _mark_means

__all__ = ["IndividualsCompendium", "IndividualsSpec", "generate_individuals"]

PEAK_MARKS = ("H3K4me3", "H3K27ac", "H3K4me1")


@dataclass
class IndividualsSpec:
    """Size and shape of a generated multi-individual compendium."""

    n_tissues: int = 5
    n_lineages: int = 2
    individuals: tuple[str, ...] = ("A", "B")
    contigs: dict[str, int] = field(default_factory=lambda: {"chrA": 1_000_000})
    assays: tuple[str, ...] = ("H3K4me3", "H3K27ac", "H3K4me1", "H3K36me3", "H3K27me3")
    bin_size: int = 25
    genes_per_mb: float = 20.0
    enhancers_per_mb: float = 60.0
    genetic_peaks_per_mb: float = 40.0
    """Peaks per Mb of an individual present in all its tissues."""
    tissue_peaks_per_mb: float = 20.0
    """Peaks per Mb of an individual present in one of its tissues."""
    scale_sd: float = 0.15
    """Standard deviation of the log of the per-(individual, tissue) intensity factor."""
    seed: int = 0


@dataclass
class IndividualsCompendium:
    """Generated signal of every tissue x individual x assay (``-log10 p`` scale).

    Attributes
    ----------
    signal
        ``{(tissue, individual, assay): {contig: float32 bins}}``.
    planted
        ``{(individual, tissue or "*"): {contig: int64 centre bins}}`` of the planted peaks
        ("*": the genetic peaks, in every tissue of the individual).
    """

    tissues: list[str]
    individuals: list[str]
    assays: list[str]
    contigs: dict[str, int]
    bin_size: int
    signal: dict[tuple[str, str, str], dict[str, np.ndarray]]
    planted: dict[tuple[str, str], dict[str, np.ndarray]]

    def write(self, folder: Path) -> Path:
        """Write every track as ``TISSUE@INDIVIDUAL.ASSAY.npz`` (one array per contig) and
        a sample sheet ``samples.tsv``; returns the sheet."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for (tissue, individual, assay), arrays in self.signal.items():
            path = folder / f"{tissue}@{individual}.{assay}.npz"
            np.savez(path, **arrays)
            rows.append({"cell_type": tissue, "individual": individual, "assay": assay,
                         "path": path.name})
        sheet = folder / "samples.tsv"
        pd.DataFrame(rows).to_csv(sheet, sep="\t", index=False)
        return sheet


def generate_individuals(spec: IndividualsSpec) -> IndividualsCompendium:
    """Generate a compendium following the module's model (deterministic given the seed)."""
    rng = np.random.default_rng(spec.seed)
    tissues = [f"tissue{i + 1}" for i in range(spec.n_tissues)]
    individuals = list(spec.individuals)
    assays = list(spec.assays)
    lineage = np.arange(spec.n_tissues) % spec.n_lineages
    layout = SyntheticSpec(n_cell_types=spec.n_tissues, n_lineages=spec.n_lineages,
                           bin_size=spec.bin_size, genes_per_mb=spec.genes_per_mb,
                           enhancers_per_mb=spec.enhancers_per_mb)
    signal: dict[tuple[str, str, str], dict[str, np.ndarray]] = {
        (t, i, a): {} for t in tissues for i in individuals for a in assays}
    planted: dict[tuple[str, str], dict[str, np.ndarray]] = {
        (i, t): {} for i in individuals for t in ["*", *tissues]}
    scale = np.exp(rng.normal(0.0, spec.scale_sd, (len(individuals), spec.n_tissues)))
    for contig, length in spec.contigs.items():
        n_bins = -(-length // spec.bin_size)
        structure = _draw_structure(rng, n_bins, length, layout, lineage)
        means = [_mark_means(structure, ti, n_bins, rng) for ti in range(spec.n_tissues)]
        for ii, individual in enumerate(individuals):
            n_genetic = max(1, int(spec.genetic_peaks_per_mb * length / 1e6))
            genetic = _peaks(rng, n_bins, n_genetic)
            planted[(individual, "*")][contig] = genetic[0]
            for ti, tissue in enumerate(tissues):
                n_own = max(1, int(spec.tissue_peaks_per_mb * length / 1e6))
                own = _peaks(rng, n_bins, n_own)
                planted[(individual, tissue)][contig] = own[0]
                mu = {a: means[ti][a] * scale[ii, ti] for a in means[ti]}
                for centres, heights in (genetic, own):
                    for centre, height in zip(centres, heights):
                        _bump(mu["H3K4me3"], centre, 15, height)
                        _bump(mu["H3K27ac"], centre, 20, 0.8 * height)
                        _bump(mu["H3K4me1"], centre, 50, 0.4 * height)
                for assay in assays:
                    noise = rng.gamma(4.0, 0.25, n_bins) * mu[assay]
                    values = noise + rng.exponential(0.4, n_bins)
                    signal[(tissue, individual, assay)][contig] = values.astype(np.float32)
    return IndividualsCompendium(tissues, individuals, assays, dict(spec.contigs),
                                 spec.bin_size, signal, planted)


def _peaks(rng: np.random.Generator, n_bins: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted centres and heights of ``count`` planted peaks."""
    centres = np.sort(rng.integers(0, n_bins, count))
    return centres, rng.gamma(4.0, 4.0, count)
