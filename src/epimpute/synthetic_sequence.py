"""A generator of accessibility and histone tracks on real DNA, with known truth.

The genome is real sequence (by default the non-N part of hg19 chr22 below 22 Mb); the
transcription-factor (TF) motifs are real JASPAR matrices (:mod:`epimpute.motifs`). What the
cell types do with that sequence follows a fixed grammar, so every peak and every variant
effect has a known cause. ``docs/sequence.md`` describes the grammar in full; in short:

- Every cell type has a set of active TFs: the ubiquitous ones (all cell types), those of
  its lineage (cell type ``i`` is in lineage ``i % n_lineages``) and one of its own.
- Candidate sites are the FIMO matches (p below ``site_p``) of TFs active somewhere, at
  least ``min_spacing`` bp apart (the strongest match wins) and away from promoters. The
  shares of ubiquitous, lineage and cell-type-specific sites are ``peak_shares``; under the
  default ``site_rule`` ``"strongest"`` each TF's sites are its strongest candidates (a
  role's count split evenly among its TFs) and a site's height rises with how far its
  p-value lies below its TF's cutoff (the weakest site's p-value), so the sequence decides
  where the peaks are and how high; ``"random"`` draws the sites at random among the
  candidates, with heights independent of the match (:mod:`epimpute.synthetic_sites`).
  A site is accessible exactly in the cell types where its TF is active.
- Promoters are CpG-island-like windows of the sequence (GC >= 55 %, CpG observed/expected
  >= 0.65 over >= 500 bp; no hg19 gene table is used), each the TSS of a gene with a random
  strand and body; genes are constitutive, lineage- or cell-type-specific.
- Marks follow accessibility and genes as in :mod:`epimpute.synthetic`: accessibility at
  sites and active promoters; narrow H3K4me3 at active (weakly at poised) promoters; H3K27ac
  at active promoters and accessible enhancer sites; broader H3K4me1 at those sites;
  H3K36me3 over active gene bodies; H3K27me3 over repressed genes. Insulator sites (CTCF)
  are accessible but carry no enhancer marks.
- Variants: single-base substitutions that break the motif of a site (its match falls
  out of the site rule in the alternative allele) or make a new site (a match of a TF
  reaches the rule), each checked by rescanning both alleles. The true effect per cell
  type and mark is the change of the noise-free signal (arcsinh scale) at the variant's bin.

Observed signal is the noise-free mean times gamma noise (shape 4) plus an exponential
background (mean 0.4), on the ``-log10 p`` scale, as in :mod:`epimpute.synthetic`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from epimpute.errors import InputError
from epimpute.io.atomic import atomic_file
from epimpute.io.genome import one_hot
from epimpute.motifs import jaspar_motifs, scan
from epimpute.synthetic import _activity, _bump, _plateau
from epimpute.synthetic_sites import (
    SITE_RULES,
    VARIANT_GC,
    choose_sites,
    plant_variants,
    site_heights,
)

__all__ = ["HISTONE_MARKS", "SequenceCompendium", "SequenceSpec", "cpg_islands", "generate",
           "write_store"]

HISTONE_MARKS = ("H3K4me3", "H3K27ac", "H3K4me1", "H3K36me3", "H3K27me3")


@dataclass
class SequenceSpec:
    """The grammar's settings (defaults: the documented generator on hg19 chr22)."""

    n_cell_types: int = 6
    contig: str = "22"
    start: int = 16_050_000
    end: int = 22_000_000
    bin_size: int = 25
    accessibility: str = "ATAC"
    ubiquitous: tuple[str, ...] = ("CTCF", "SP1", "NRF1", "ZNF143", "NFYB")
    lineages: tuple[tuple[str, ...], ...] = (("GATA1::TAL1", "SPI1", "RUNX1"),
                                             ("HNF4A", "HNF1A", "FOXA2"))
    specific: tuple[str, ...] = ("POU5F1::SOX2", "TP53", "REST", "CEBPB", "MAX::MYC",
                                 "TEAD1", "EBF1", "NR3C1")
    insulators: tuple[str, ...] = ("CTCF",)
    site_p: float = 1e-4
    sites_per_mb: float = 150.0
    peak_shares: tuple[float, float, float] = (0.3, 0.35, 0.35)
    min_spacing: int = 500
    site_rule: str = "strongest"
    n_variants: int = 40
    variant_gc: str = "any"
    """``any``: each variant's substitution is the one that most moves its match, whatever
    its GC change; ``balanced``: one that keeps the GC content where it crosses the site
    rule, else the ``any`` one only in pairs of a break and a create of the same GC change
    (:mod:`epimpute.synthetic_sites`). Only the variants differ; the tracks are the same."""
    seed: int = 0

    def check(self) -> None:
        """Raise :class:`InputError` on settings the grammar cannot follow."""
        if not 2 <= self.n_cell_types <= len(self.specific):
            raise InputError(f"n_cell_types must be between 2 and {len(self.specific)} (one "
                             f"specific TF each), got {self.n_cell_types}")
        if self.bin_size <= 0 or self.start % self.bin_size or self.end % self.bin_size:
            raise InputError(f"start and end must be multiples of the bin size "
                             f"{self.bin_size}, got {self.start} and {self.end}")
        if not 0 <= self.start < self.end:
            raise InputError(f"need 0 <= start < end, got {self.start} and {self.end}")
        if len(self.peak_shares) != 3 or min(self.peak_shares) < 0 or \
                abs(sum(self.peak_shares) - 1) > 1e-6:
            raise InputError(f"peak_shares must be 3 shares summing to 1, got {self.peak_shares}")
        if self.accessibility not in ("ATAC", "DNase"):
            raise InputError(f"accessibility must be 'ATAC' or 'DNase', got {self.accessibility!r}")
        if self.site_rule not in SITE_RULES:
            raise InputError(f"site_rule must be one of {', '.join(SITE_RULES)}, got "
                             f"{self.site_rule!r}")
        if self.variant_gc not in VARIANT_GC:
            raise InputError(f"variant_gc must be one of {', '.join(VARIANT_GC)}, got "
                             f"{self.variant_gc!r}")
        if not 0 < self.site_p < 1:
            raise InputError(f"site_p must be in (0, 1), got {self.site_p}")

    def active(self) -> list[set[str]]:
        """The active TFs of each cell type."""
        n = len(self.lineages)
        return [set(self.ubiquitous) | set(self.lineages[i % n]) | {self.specific[i]}
                for i in range(self.n_cell_types)]

    def role(self, tf: str) -> str:
        if tf in self.ubiquitous:
            return "ubiquitous"
        return "lineage" if any(tf in group for group in self.lineages) else "specific"


@dataclass
class SequenceCompendium:
    """Generated tracks and their truth.

    Attributes
    ----------
    signal, means
        ``{(cell_type, assay): float32 bins}`` over ``[start, end)``: observed and
        noise-free signal on the ``-log10 p`` scale.
    sites
        One row per site: ``start``, ``end`` (bp, 0-based, contig coordinates), ``tf``,
        ``role``, ``strand``, ``p_value``, ``height``, ``cells`` (comma-separated, where
        accessible).
    genes
        ``tss``, ``strand``, ``body`` (bp), ``cells`` (where active).
    variants
        ``CHROM``, ``POS`` (1-based), ``ID``, ``REF``, ``ALT``, ``TF``, ``KIND`` (``break``
        or ``create``), ``SITE_START``, ``SITE_END`` and one column per ``CELL:ASSAY``
        holding the true effect (arcsinh scale, alternative minus reference allele).
    """

    spec: SequenceSpec
    contig_length: int
    cell_types: list[str]
    assays: list[str]
    signal: dict[tuple[str, str], np.ndarray]
    means: dict[tuple[str, str], np.ndarray]
    sites: pd.DataFrame
    genes: pd.DataFrame
    variants: pd.DataFrame = field(repr=False)


def cpg_islands(x: np.ndarray, *, window: int = 500, gc: float = 0.55,
                ratio: float = 0.65) -> list[tuple[int, int]]:
    """CpG-island-like stretches: every ``window`` bp around them has GC fraction >= ``gc``
    and CpG observed/expected >= ``ratio`` (the criteria of Takai and Jones, 2002).

    Parameters
    ----------
    x
        One-hot sequence, shape ``(4, length)``.

    Returns
    -------
    list of (start, end)
        Half-open base ranges of the islands, in order.
    """
    length = x.shape[1]
    if length < window:
        return []
    c, g = x[1].astype(np.int64), x[2].astype(np.int64)
    cg = np.zeros(length, dtype=np.int64)
    cg[:-1] = c[:-1] * g[1:]

    def sums(v: np.ndarray) -> np.ndarray:
        total = np.concatenate([[0], np.cumsum(v)])
        return total[window:] - total[:-window]

    n_c, n_g, n_cg = sums(c), sums(g), sums(cg)
    expected = n_c * n_g / window
    good = ((n_c + n_g) >= gc * window) & (n_cg >= ratio * np.maximum(expected, 1e-9)) & \
        (n_cg > 0)
    covered = np.zeros(length + 1, dtype=np.int64)  # windows passing -> their bases
    starts = np.flatnonzero(good)
    np.add.at(covered, starts, 1)
    np.add.at(covered, starts + window, -1)
    inside = np.concatenate([[False], np.cumsum(covered)[:-1] > 0, [False]])
    edges = np.flatnonzero(np.diff(inside.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _site_table(kept: pd.DataFrame, spec: SequenceSpec, cells: list[str],
                cutoffs: dict[str, float], rng: np.random.Generator, draws: int | None = None
                ) -> tuple[pd.DataFrame, np.ndarray]:
    """The sites' table and per-cell-type factors; the random values are drawn for
    ``draws`` sites (default: as many as there are; at least that many), the first used."""
    n = len(kept) if draws is None else max(draws, len(kept))
    active = spec.active()
    on = np.array([[tf in a for a in active] for tf in kept["tf"]], dtype=bool).reshape(-1, len(cells))
    table = kept[["start", "end", "tf", "role", "strand", "p_value"]].copy()
    table[["start", "end"]] += spec.start
    table["height"] = site_heights(table, cutoffs, rng, draws=n)
    table["cells"] = [",".join(c for c, o in zip(cells, row) if o) for row in on]
    factors = rng.uniform(0.7, 1.3, (n, len(cells)))[: len(table)] * on
    return table, factors


def _genes(islands: list[tuple[int, int]], spec: SequenceSpec, cells: list[str],
           rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    lineage = np.arange(len(cells)) % len(spec.lineages)
    n = len(islands)
    tss = np.array([(a + b) // 2 for a, b in islands], dtype=np.int64) + spec.start
    on = _activity(n, lineage, rng, (0.4, 0.35, 0.25)) if n else np.zeros((0, len(cells)), bool)
    table = pd.DataFrame({"tss": tss, "strand": rng.choice(["+", "-"], n),
                          "body": rng.uniform(2_000, 40_000, n).astype(np.int64),
                          "height": rng.gamma(4.0, 6.0, n)})
    table["cells"] = [",".join(c for c, o in zip(cells, row) if o) for row in on]
    return table, on


def _site_marks(mu: dict[str, np.ndarray], centre: int, height: float, *, insulator: bool,
                accessibility: str) -> None:
    """Add one accessible site (centre in bins of ``mu``'s arrays) to the marks."""
    _bump(mu[accessibility], centre, 4, height)
    if not insulator:
        _bump(mu["H3K27ac"], centre, 12, 0.8 * height)
        _bump(mu["H3K4me1"], centre, 30, 0.5 * height)


def _cell_means(ci: int, spec: SequenceSpec, sites: pd.DataFrame, factors: np.ndarray,
                genes: pd.DataFrame, gene_on: np.ndarray, n_bins: int,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Noise-free signal of every track of cell type ``ci`` over the window's bins."""
    bp, acc = spec.bin_size, spec.accessibility
    mu = {a: np.zeros(n_bins) for a in (acc, *HISTONE_MARKS)}
    centres = ((sites["start"] + sites["end"]) // 2 - spec.start) // bp
    for i in np.flatnonzero(factors[:, ci]):
        _site_marks(mu, int(centres[i]), sites["height"].iat[i] * factors[i, ci],
                    insulator=sites["tf"].iat[i] in spec.insulators, accessibility=acc)
    for g in range(len(genes)):
        tss = int((genes["tss"].iat[g] - spec.start) // bp)
        body = max(1, int(genes["body"].iat[g] // bp))
        forward = genes["strand"].iat[g] == "+"
        lo = tss if forward else tss - body
        height = genes["height"].iat[g]
        if gene_on[g, ci]:
            _bump(mu[acc], tss, 6, 0.6 * height)
            _bump(mu["H3K4me3"], tss, 25, height)
            _bump(mu["H3K27ac"], tss, 30, 0.5 * height)
            ramp = np.linspace(1.0, 4.0, body)[:: 1 if forward else -1]
            if lo < 0:
                ramp = ramp[-lo:]
            _plateau(mu["H3K36me3"], lo, lo + body, ramp * rng.uniform(0.8, 1.2))
        elif not gene_on[g].all():
            _plateau(mu["H3K27me3"], lo - 100, lo + body + 100, 3.0)
            if gene_on[g].any():
                _bump(mu["H3K4me3"], tss, 20, 0.25 * height)
    return mu


def _effects(variants: list[dict], spec: SequenceSpec, cells: list[str], sites: pd.DataFrame,
             factors: np.ndarray, new_sites: pd.DataFrame, new_factors: np.ndarray,
             means: dict[tuple[str, str], np.ndarray]) -> pd.DataFrame:
    """The variant table with each variant's true effect per track."""
    acc, bp = spec.accessibility, spec.bin_size
    assays = [acc, *HISTONE_MARKS]
    rows = []
    for number, v in enumerate(variants, start=1):
        table, fac = (sites, factors) if v["kind"] == "break" else (new_sites, new_factors)
        site = table.iloc[v["site"]]
        b = v["pos"] // bp
        centre = ((site["start"] + site["end"]) // 2 - spec.start) // bp - b + 200
        row = {"CHROM": spec.contig, "POS": v["pos"] + spec.start + 1, "ID": f"var{number}",
               "REF": "ACGT"[v["ref"]], "ALT": "ACGT"[v["alt"]], "TF": v["tf"],
               "KIND": v["kind"], "SITE_START": int(site["start"]), "SITE_END": int(site["end"])}
        sign = -1.0 if v["kind"] == "break" else 1.0
        for ci, cell in enumerate(cells):
            local = {a: np.zeros(401) for a in assays}
            if fac[v["site"], ci]:
                _site_marks(local, int(centre), site["height"] * fac[v["site"], ci],
                            insulator=site["tf"] in spec.insulators, accessibility=acc)
            for assay in assays:
                ref = float(means[(cell, assay)][b])
                row[f"{cell}:{assay}"] = float(np.arcsinh(max(ref + sign * local[assay][200], 0))
                                               - np.arcsinh(ref))
        rows.append(row)
    columns = ["CHROM", "POS", "ID", "REF", "ALT", "TF", "KIND", "SITE_START", "SITE_END",
               *(f"{c}:{a}" for c in cells for a in assays)]
    return pd.DataFrame(rows, columns=columns)


def generate(sequence: str, spec: SequenceSpec, *, contig_length: int,
             progress: bool = False) -> SequenceCompendium:
    """Generate tracks over ``sequence``, the bases of ``[spec.start, spec.end)``.

    Parameters
    ----------
    sequence
        Bases of the window (soft-masked or not; ``N`` allowed).
    spec
        The grammar's settings.
    contig_length
        Length of ``spec.contig`` (the store's contig; bins outside the window stay 0).
    progress
        Show a progress bar over cell types.

    Returns
    -------
    SequenceCompendium
        Deterministic given ``spec.seed`` and the sequence.
    """
    from tqdm.auto import tqdm

    spec.check()
    if len(sequence) != spec.end - spec.start or spec.end > contig_length:
        raise InputError(f"the window {spec.contig}:{spec.start}-{spec.end} needs "
                         f"{spec.end - spec.start} bases within {contig_length}, got "
                         f"{len(sequence)}")
    rng = np.random.default_rng(spec.seed)
    cells = [f"cell{i + 1}" for i in range(spec.n_cell_types)]
    used = sorted(set().union(*spec.active()))
    motifs = {m.name: m for m in jaspar_motifs(used)}
    x = one_hot(sequence)
    islands = cpg_islands(x)
    loose = scan(list(motifs.values()), x, threshold=min(0.5, 5 * spec.site_p))
    strict = loose[loose["p_value"] < spec.site_p]
    promoters = sorted(int(p) for a, b in islands
                       for p in [*range(a, b, spec.min_spacing), b])  # sites stay clear
    n_wanted = round(spec.sites_per_mb * len(sequence) / 1e6)
    kept, cutoffs = choose_sites(strict, spec, rng, promoters, n_wanted, spec.role)
    sites, factors = _site_table(kept, spec, cells, cutoffs, rng)
    genes, gene_on = _genes(islands, spec, cells, rng)
    variants, created, reserve = plant_variants(x, spec, motifs, kept, loose, cutoffs,
                                                promoters, rng, spec.role)
    new_sites, new_factors = _site_table(created, spec, cells, cutoffs, rng, draws=reserve)
    n_bins = len(sequence) // spec.bin_size
    assays = [spec.accessibility, *HISTONE_MARKS]
    means, signal = {}, {}
    for ci, cell in enumerate(tqdm(cells, desc="cell types", disable=not progress)):
        mu = _cell_means(ci, spec, sites, factors, genes, gene_on, n_bins, rng)
        for assay in assays:
            means[(cell, assay)] = mu[assay].astype(np.float32)
            noisy = rng.gamma(4.0, 0.25, n_bins) * mu[assay] + rng.exponential(0.4, n_bins)
            signal[(cell, assay)] = noisy.astype(np.float32)
    table = _effects(variants, spec, cells, sites, factors, new_sites, new_factors, means)
    return SequenceCompendium(spec, contig_length, cells, assays, signal, means, sites,
                              genes.drop(columns="height"), table)


def write_store(compendium: SequenceCompendium, path: str | os.PathLike[str]) -> None:
    """Write the tracks (arcsinh) as a store at ``path`` and the truth as ``path/truth/*.tsv``.

    ``path`` must not exist or be empty (write into a temporary folder and publish it, as
    :func:`epimpute.api.synth_sequence` does).
    """
    from epimpute.store import Track, create_store

    spec, path = compendium.spec, Path(path)
    tracks = [Track(c, a, source=f"synth-sequence seed {spec.seed}")
              for c in compendium.cell_types for a in compendium.assays]
    writer = create_store(path, tracks=tracks, contigs={spec.contig: compendium.contig_length},
                          bin_size=spec.bin_size)
    for row, track in enumerate(tracks):
        values = np.arcsinh(compendium.signal[(track.cell_type, track.assay)])
        writer.write(row, spec.contig, values, start=spec.start // spec.bin_size)
    truth = path / "truth"
    truth.mkdir()
    for name, table in (("sites", compendium.sites), ("genes", compendium.genes),
                        ("variants", compendium.variants)):
        with atomic_file(truth / f"{name}.tsv") as tmp:
            table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
