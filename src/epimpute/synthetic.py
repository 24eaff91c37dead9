"""A generator of small, realistic-looking compendia (the demo's data, and test data).

Model of the genome
-------------------
Each contig carries genes (a TSS, a body of 2-40 kb and a strand) and enhancers. Every
gene and enhancer has an activity pattern over the cell types: *constitutive* (active in
all), *lineage* (active in the cell types of one lineage; cell types are split into
lineages that share structure) or *specific* (active in one cell type).

Marks, as ``-log10 p`` signal
-----------------------------
- ``H3K4me3`` (narrow, activating): ~1.5 kb peaks at the TSS of active genes, weaker at
  inactive lineage genes (poised promoters).
- ``H3K27ac`` (narrow, activating): peaks at active enhancers and active TSSs.
- ``H3K4me1`` (broad-ish, activating): wider shoulders around active enhancers.
- ``H3K36me3`` (broad, activating): over the bodies of active genes, rising toward 3'.
- ``H3K27me3`` (broad, repressive): domains over inactive non-constitutive genes.
- ``H3K9me3`` (broad, repressive): heterochromatin blocks, mostly shared by all cell types.

The observed value at a bin is the mark's intensity times gamma noise (shape 4) plus an
exponential background (mean 0.4); what a cell type "has" is stored on the ``-log10 p``
scale and transformed with arcsinh by ``epimpute ingest`` as real data would be.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ASSAYS = ("H3K4me3", "H3K27ac", "H3K4me1", "H3K36me3", "H3K27me3", "H3K9me3")


@dataclass
class SyntheticSpec:
    """Size and shape of a generated compendium."""

    n_cell_types: int = 6
    n_lineages: int = 2
    contigs: dict[str, int] = field(default_factory=lambda: {"chrA": 1_500_000,
                                                             "chrB": 1_000_000})
    assays: tuple[str, ...] = ASSAYS
    bin_size: int = 25
    genes_per_mb: float = 20.0
    enhancers_per_mb: float = 60.0
    missing_fraction: float = 0.3
    seed: int = 0


@dataclass
class SyntheticGenes:
    """The generated genes: bp coordinates (0-based, end exclusive, clipped to the contig),
    strand (+1 / -1; the TSS is ``start`` on +1 and ``end - 1`` on -1), which cell types
    each is active in (columns in :attr:`SyntheticCompendium.cell_types` order) and its
    promoter signal height when active."""

    ids: list[str]
    chrom: np.ndarray
    start: np.ndarray
    end: np.ndarray
    strand: np.ndarray
    active: np.ndarray
    height: np.ndarray


@dataclass
class SyntheticCompendium:
    """Generated signal (``-log10 p`` scale) of every cell type x assay, and which is missing.

    Attributes
    ----------
    signal
        ``{(cell_type, assay): {contig: float32 bins}}`` for every combination.
    missing
        Combinations held back: present in ``signal`` as truth, absent from the inputs.
    """

    cell_types: list[str]
    assays: list[str]
    contigs: dict[str, int]
    bin_size: int
    signal: dict[tuple[str, str], dict[str, np.ndarray]]
    missing: list[tuple[str, str]]
    genes: SyntheticGenes | None = None

    @property
    def observed(self) -> list[tuple[str, str]]:
        return [k for k in self.signal if k not in set(self.missing)]


def _activity(n_items: int, lineage: np.ndarray, rng: np.random.Generator,
              shares: tuple[float, float, float]) -> np.ndarray:
    """``(n_items, n_cells)`` bool: constitutive, lineage or cell-specific activity."""
    n_cells = lineage.size
    kind = rng.choice(3, size=n_items, p=shares)
    active = np.zeros((n_items, n_cells), dtype=bool)
    active[kind == 0] = True
    chosen_lineage = rng.integers(lineage.max() + 1, size=n_items)
    active[kind == 1] = lineage[None, :] == chosen_lineage[kind == 1, None]
    chosen_cell = rng.integers(n_cells, size=n_items)
    rows = np.flatnonzero(kind == 2)
    active[rows, chosen_cell[rows]] = True
    return active


def _bump(track: np.ndarray, centre: int, half_width: int, height: float) -> None:
    lo, hi = max(0, centre - 3 * half_width), min(track.size, centre + 3 * half_width + 1)
    x = np.arange(lo, hi) - centre
    track[lo:hi] += height * np.exp(-0.5 * (x / max(half_width, 1)) ** 2)


def _plateau(track: np.ndarray, lo: int, hi: int, level: float | np.ndarray) -> None:
    lo, hi = max(0, lo), min(track.size, hi)
    if hi > lo:
        track[lo:hi] += level if np.isscalar(level) else np.asarray(level)[: hi - lo]


@dataclass
class _Structure:
    """Genes, enhancers and heterochromatin blocks of one contig, and their activity."""

    tss: np.ndarray
    body: np.ndarray
    strand: np.ndarray
    gene_on: np.ndarray
    enh: np.ndarray
    enh_on: np.ndarray
    gene_height: np.ndarray
    enh_height: np.ndarray
    het_lo: np.ndarray
    het_len: np.ndarray
    het_shared: np.ndarray
    het_cell: np.ndarray


def _draw_structure(rng: np.random.Generator, n_bins: int, length: int, spec: SyntheticSpec,
                    lineage: np.ndarray) -> _Structure:
    """Genes, enhancers and heterochromatin of a contig of ``n_bins`` bins."""
    bp = spec.bin_size
    n_genes = max(1, int(spec.genes_per_mb * length / 1e6))
    n_enh = max(1, int(spec.enhancers_per_mb * length / 1e6))
    tss = rng.integers(0, n_bins, n_genes)
    body = (rng.uniform(2_000, 40_000, n_genes) / bp).astype(int)
    strand = rng.choice([-1, 1], n_genes)
    gene_on = _activity(n_genes, lineage, rng, (0.4, 0.35, 0.25))
    enh = rng.integers(0, n_bins, n_enh)
    enh_on = _activity(n_enh, lineage, rng, (0.25, 0.45, 0.3))
    gene_height = rng.gamma(4.0, 6.0, n_genes)
    enh_height = rng.gamma(3.0, 4.0, n_enh)
    n_het = max(1, int(3 * length / 1e6))
    het_lo = rng.integers(0, n_bins, n_het)
    het_len = (rng.uniform(20_000, 120_000, n_het) / bp).astype(int)
    het_shared = rng.random(n_het) < 0.8
    het_cell = rng.integers(lineage.size, size=n_het)
    return _Structure(tss, body, strand, gene_on, enh, enh_on, gene_height, enh_height,
                      het_lo, het_len, het_shared, het_cell)


def _mark_means(structure: _Structure, ci: int, n_bins: int, rng: np.random.Generator
                ) -> dict[str, np.ndarray]:
    """Noise-free intensity of every mark in cell type ``ci`` (``-log10 p`` scale)."""
    tss, body, strand, gene_on = structure.tss, structure.body, structure.strand, structure.gene_on
    enh, enh_on, gene_height, enh_height = (structure.enh, structure.enh_on,
                                            structure.gene_height, structure.enh_height)
    het_lo, het_len, het_shared, het_cell = (structure.het_lo, structure.het_len,
                                             structure.het_shared, structure.het_cell)
    n_genes, n_het = tss.size, het_lo.size
    mu = {a: np.zeros(n_bins) for a in ASSAYS}
    for g in range(n_genes):
        lo = tss[g] if strand[g] > 0 else tss[g] - body[g]
        hi = lo + body[g]
        if gene_on[g, ci]:
            _bump(mu["H3K4me3"], tss[g], 25, gene_height[g])
            _bump(mu["H3K27ac"], tss[g], 30, 0.5 * gene_height[g])
            ramp = np.linspace(1.0, 4.0, body[g])[:: strand[g]]
            _plateau(mu["H3K36me3"], lo, hi, ramp * rng.uniform(0.8, 1.2))
        elif not gene_on[g].all():
            _plateau(mu["H3K27me3"], lo - 100, hi + 100, 3.0)
            if gene_on[g].any():
                _bump(mu["H3K4me3"], tss[g], 20, 0.25 * gene_height[g])
    for e in np.flatnonzero(enh_on[:, ci]):
        _bump(mu["H3K27ac"], enh[e], 20, enh_height[e])
        _bump(mu["H3K4me1"], enh[e], 60, 0.5 * enh_height[e])
    for h in range(n_het):
        if het_shared[h] or het_cell[h] == ci:
            _plateau(mu["H3K9me3"], het_lo[h], het_lo[h] + het_len[h], 4.0)
    return mu


def generate(spec: SyntheticSpec) -> SyntheticCompendium:
    """Generate a compendium following the module's model (deterministic given the seed)."""
    rng = np.random.default_rng(spec.seed)
    cell_types = [f"cell{i + 1}" for i in range(spec.n_cell_types)]
    lineage = np.arange(spec.n_cell_types) % spec.n_lineages
    assays = list(spec.assays)
    signal: dict[tuple[str, str], dict[str, np.ndarray]] = {
        (c, a): {} for c in cell_types for a in assays}
    bp = spec.bin_size
    structures = {}
    for contig, length in spec.contigs.items():
        n_bins = -(-length // bp)
        structure = _draw_structure(rng, n_bins, length, spec, lineage)
        structures[contig] = structure
        for ci, cell in enumerate(cell_types):
            mu = _mark_means(structure, ci, n_bins, rng)
            for assay in assays:
                noise = rng.gamma(4.0, 0.25, n_bins) * mu[assay]
                values = noise + rng.exponential(0.4, n_bins)
                signal[(cell, assay)][contig] = values.astype(np.float32)
    missing = _choose_missing(cell_types, assays, spec.missing_fraction, rng)
    return SyntheticCompendium(cell_types, assays, dict(spec.contigs), bp, signal, missing,
                               _genes(structures, spec))


def _genes(structures: dict[str, _Structure], spec: SyntheticSpec) -> SyntheticGenes:
    """The genes of every contig's structure, in bp."""
    bp, parts = spec.bin_size, []
    for contig, st in structures.items():
        lo = np.where(st.strand > 0, st.tss, st.tss - st.body) * bp
        start = np.clip(lo, 0, spec.contigs[contig])
        end = np.clip(lo + st.body * bp, 1, spec.contigs[contig])
        parts.append((contig, start, np.maximum(end, start + 1), st))
    return SyntheticGenes(
        ids=[f"{c}.gene{i}" for c, start, _, _ in parts for i in range(start.size)],
        chrom=np.concatenate([np.full(start.size, c, dtype=object) for c, start, _, _ in parts]),
        start=np.concatenate([start for _, start, _, _ in parts]).astype(np.int64),
        end=np.concatenate([end for _, _, end, _ in parts]).astype(np.int64),
        strand=np.concatenate([st.strand for *_, st in parts]).astype(np.int8),
        active=np.concatenate([st.gene_on for *_, st in parts]),
        height=np.concatenate([st.gene_height for *_, st in parts]))


def _choose_missing(cell_types: list[str], assays: list[str], fraction: float,
                    rng: np.random.Generator) -> list[tuple[str, str]]:
    """Hide a fraction of tracks, keeping at least two tracks per cell type and per assay."""
    pairs = [(c, a) for c in cell_types for a in assays]
    wanted = int(round(fraction * len(pairs)))
    kept_cell = {c: len(assays) for c in cell_types}
    kept_assay = {a: len(cell_types) for a in assays}
    missing = []
    for i in rng.permutation(len(pairs)):
        c, a = pairs[i]
        if len(missing) == wanted:
            break
        if kept_cell[c] > 2 and kept_assay[a] > 2:
            missing.append((c, a))
            kept_cell[c] -= 1
            kept_assay[a] -= 1
    return sorted(missing)
