"""Generated compendia at the shapes of real ones, written straight into a store.

Where :mod:`epimpute.synthetic` draws a few tracks bump by bump, this module builds the
signal of thousands of tracks as a low-rank product, one bin chunk at a time, so an
ENCODE-sized compendium (3,814 tracks) of millions of bins is written in minutes with
memory that does not grow with the genome's length or the number of tracks.

Observation patterns
--------------------
- ``pilot``: 5 Roadmap epigenomes (E003, E017, E065, E116, E117) x 5 core marks, all observed.
- ``roadmap``: 127 epigenomes (E001..E127) x 24 assays, 1,028 tracks. The five core marks
  (H3K4me1, H3K4me3, H3K27me3, H3K36me3, H3K9me3) are observed everywhere; H3K27ac in 98,
  H3K9ac in 62 and DNase in 53 epigenomes; the 16 rarer assays in 6-24 each, drawn from 24
  "deeply profiled" epigenomes. Which epigenomes carry an assay is a permutation drawn
  from ``numpy.random.default_rng([seed, 1])``, so the pattern is fixed by the seed.
- a manifest (TSV with ``Biosample`` and ``Assay`` columns, such as ENCODE2018-Core): its
  observed (biosample, assay) pairs exactly. A biosample is named ``INDEX_NAME`` when
  there is a ``Biosample Index`` column (names repeat: ENCODE has five livers), passed
  through :func:`safe_name`; assays are shortened by :func:`short_assay`.

Signal model
------------
Genes (TSS, strand, 2-40 kb body), enhancers, CTCF sites and heterochromatin blocks are
placed along each contig. Every element has an activity per biosample: constitutive,
lineage-wide (biosamples are split into lineages) or specific to one biosample, with a
log-normal height per biosample. An element *channel* (TSS peak, strand-specific TSS and
gene-body signal, narrow and wide enhancer peaks, polycomb domains over inactive genes,
poised promoters, heterochromatin, CTCF sites) has a profile along the bins (bumps of a
given width, plateaus or 5'-3' ramps), so the channel's noise-free intensity is

    S_channel = P_channel (bins x elements) @ A_channel (elements x biosamples),

and an assay responds to channels with fixed weights (``R``: assay x channel; known marks
follow :mod:`epimpute.synthetic`, other assays get weights by their family, TF weights
drawn from a generator seeded by the name's CRC32). A track's observed value is
``depth * mean * Gamma(4, 1/4) + Exp(0.4)`` on the ``-log10 p`` scale, stored as arcsinh.
Noise of bin chunk ``c`` of contig ``k`` and biosample group ``g`` comes from
``default_rng([seed, 2, k, c, g])``, so output does not depend on the order of work.
"""

from __future__ import annotations

import csv
import multiprocessing
import re
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from epimpute.errors import InputError
from epimpute.io.atomic import publish_dir
from epimpute.store.store import CHUNK_BINS, Store, StoreWriter, Track, create_store

CHANNELS = ("tss", "tss_plus", "tss_minus", "body_plus", "body_minus", "enh_narrow",
            "enh_wide", "polycomb", "poised", "heterochromatin", "ctcf")
_C = {name: i for i, name in enumerate(CHANNELS)}

PILOT_BIOSAMPLES = ("E003", "E017", "E065", "E116", "E117")
PILOT_ASSAYS = ("H3K4me3", "H3K27me3", "H3K36me3", "H3K9me3", "H3K4me1")
ROADMAP_COUNTS = {
    "H3K4me1": 127, "H3K4me3": 127, "H3K27me3": 127, "H3K36me3": 127, "H3K9me3": 127,
    "H3K27ac": 98, "H3K9ac": 62, "DNase": 53, "H3K4me2": 24, "H3K79me2": 24, "H2A.Z": 20,
    "H4K20me1": 20, "H3K79me1": 10, "H3K18ac": 10, "H3K23ac": 8, "H3K4ac": 8, "H2BK5ac": 8,
    "H2BK120ac": 8, "H2BK12ac": 8, "H2BK15ac": 8, "H2BK20ac": 6, "H3K14ac": 6,
    "H3K56ac": 6, "H2AK5ac": 6,
}
_BIOSAMPLE_GROUP = 16
"""Biosamples whose tracks are drawn together (bounds memory per step)."""


@dataclass(frozen=True)
class Pattern:
    """Which (biosample, assay) pairs of a compendium are observed.

    Attributes
    ----------
    biosamples, assays
        Names, in order.
    observed
        ``(n_biosamples, n_assays)`` bool.
    """

    biosamples: tuple[str, ...]
    assays: tuple[str, ...]
    observed: np.ndarray

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Observed ``(biosample, assay)`` pairs, biosample-major."""
        b, a = np.nonzero(self.observed)
        return [(self.biosamples[i], self.assays[j]) for i, j in zip(b, a)]


def safe_name(name: str) -> str:
    """A biosample or assay name usable in track keys and file names (``[A-Za-z0-9_+-]``)."""
    return re.sub(r"[^A-Za-z0-9_+\-]+", "_", name.strip()).strip("_") or "unnamed"


def short_assay(name: str) -> str:
    """ENCODE assay label to a short name.

    ``ChIP-seq_H3K27ac_signal_p-value`` -> ``H3K27ac``, ``DNase-seq_read-depth_normalized_signal``
    -> ``DNase``, ``total_RNA-seq_plus_strand_signal_of_all_reads`` -> ``total-RNA-plus``.
    """
    short = name
    for suffix in ("_signal_p-value", "_signal_of_all_reads", "_read-depth_normalized_signal",
                   "_signal"):
        if short.endswith(suffix):
            short = short[: -len(suffix)]
            break
    short = short.removeprefix("ChIP-seq_")
    short = short.replace("_plus_strand", "-plus").replace("_minus_strand", "-minus")
    short = short.replace("-seq", "").replace("_", "-")
    return safe_name(short)


def pattern_from_manifest(path: Path) -> Pattern:
    """The observation pattern of a manifest TSV with ``Biosample`` and ``Assay`` columns.

    Raises
    ------
    InputError
        If the file is missing, lacks the columns, or has an empty field.
    """
    path = Path(path)
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    except FileNotFoundError:
        raise InputError(f"{path}: manifest not found") from None
    if not rows or not {"Biosample", "Assay"} <= set(rows[0]):
        raise InputError(f"{path}: expected a TSV with 'Biosample' and 'Assay' columns")
    pairs = []
    for line, row in enumerate(rows, start=2):
        raw_b, raw_a = (row.get("Biosample") or "").strip(), (row.get("Assay") or "").strip()
        if not raw_b or not raw_a:
            raise InputError(f"{path}, row {line}: empty Biosample or Assay")
        index = (row.get("Biosample Index") or "").strip()
        biosample = safe_name(f"{index}_{raw_b}" if index else raw_b)
        pairs.append((biosample, short_assay(raw_a)))
    biosamples = tuple(dict.fromkeys(b for b, _ in pairs))
    assays = tuple(sorted({a for _, a in pairs}))
    observed = np.zeros((len(biosamples), len(assays)), dtype=bool)
    b_index = {b: i for i, b in enumerate(biosamples)}
    a_index = {a: j for j, a in enumerate(assays)}
    for b, a in pairs:
        observed[b_index[b], a_index[a]] = True
    return Pattern(biosamples, assays, observed)


def roadmap_pattern(seed: int = 0) -> Pattern:
    """The built-in Roadmap-like 127 x 24 pattern (1,028 tracks; see the module docstring)."""
    rng = np.random.default_rng([seed, 1])
    biosamples = tuple(f"E{i:03d}" for i in range(1, 128))
    assays = tuple(ROADMAP_COUNTS)
    observed = np.zeros((len(biosamples), len(assays)), dtype=bool)
    deep = rng.permutation(len(biosamples))[:24]
    for j, count in enumerate(ROADMAP_COUNTS.values()):
        pool = rng.permutation(len(biosamples)) if count > 24 else rng.permutation(deep)
        observed[pool[:count], j] = True
    return Pattern(biosamples, assays, observed)


def pilot_pattern() -> Pattern:
    """The 5 x 5 pilot pattern, every track observed."""
    return Pattern(PILOT_BIOSAMPLES, PILOT_ASSAYS,
                   np.ones((len(PILOT_BIOSAMPLES), len(PILOT_ASSAYS)), dtype=bool))


def resolve_pattern(like: str, *, seed: int = 0) -> Pattern:
    """``pilot``, ``roadmap`` or the path of a manifest TSV."""
    if like == "pilot":
        return pilot_pattern()
    if like == "roadmap":
        return roadmap_pattern(seed)
    return pattern_from_manifest(Path(like))


_MARKS = {
    "H3K4me3": {"tss": 1.0, "poised": 1.0}, "H3K27ac": {"tss": 0.5, "enh_narrow": 1.0},
    "H3K4me1": {"enh_wide": 1.0, "tss": 0.1}, "H3K36me3": {"body_plus": 1.0, "body_minus": 1.0},
    "H3K27me3": {"polycomb": 1.0}, "H3K9me3": {"heterochromatin": 1.0},
    "H3K9me2": {"heterochromatin": 0.6, "polycomb": 0.2},
    "H3K79me2": {"body_plus": 0.8, "body_minus": 0.8, "tss": 0.3},
    "H3K79me1": {"body_plus": 0.6, "body_minus": 0.6},
    "H4K20me1": {"body_plus": 0.7, "body_minus": 0.7},
    "H3K4me2": {"tss": 0.7, "enh_narrow": 0.5, "poised": 0.5},
    "EZH2": {"polycomb": 0.8}, "SUZ12": {"polycomb": 0.8}, "EZH2phosphoT487": {"polycomb": 0.5},
    "CTCF": {"ctcf": 1.0}, "RAD21": {"ctcf": 0.8, "enh_narrow": 0.1},
    "SMC3": {"ctcf": 0.8, "enh_narrow": 0.1},
    "POLR2A": {"tss": 0.8, "body_plus": 0.2, "body_minus": 0.2},
    "DNase": {"tss": 0.6, "enh_narrow": 0.6, "ctcf": 0.4},
    "ATAC": {"tss": 0.7, "enh_narrow": 0.5, "ctcf": 0.3},
}


def assay_response(assay: str) -> np.ndarray:
    """``(len(CHANNELS),)`` weights with which ``assay`` reads the element channels."""
    weights = np.zeros(len(CHANNELS))
    strand = "plus" if assay.endswith("-plus") else "minus" if assay.endswith("-minus") else ""
    known = _MARKS.get(assay)
    if known is None and assay.startswith("POLR2A"):
        known = _MARKS["POLR2A"]
    if known is not None:
        for channel, w in known.items():
            weights[_C[channel]] = w
    elif "RNA" in assay and strand:
        weights[_C[f"body_{strand}"]] = 1.5
        weights[_C[f"tss_{strand}"]] = 0.5 if "small" in assay or "micro" in assay else 0.1
    elif strand:  # CAGE, RAMPAGE: capped 5' ends
        weights[_C[f"tss_{strand}"]] = 2.0
    elif re.fullmatch(r"H[234][A-Z0-9.]*(ac|Z|A)", assay) or assay in ("H2AFZ", "H3F3A"):
        weights[_C["tss"]], weights[_C["enh_narrow"]] = 0.6, 0.6
    else:  # a transcription factor: its own mix of promoters, enhancers and CTCF sites
        rng = np.random.default_rng(zlib.crc32(assay.encode()))
        mix = rng.dirichlet([2.0, 2.0, 0.5])
        for channel, w in zip(("tss", "enh_narrow", "ctcf"), mix):
            weights[_C[channel]] = 1.2 * w
    return weights


@dataclass
class _Elements:
    """One channel's elements on a contig: support, profile shape and activity."""

    lo: np.ndarray
    hi: np.ndarray
    centre: np.ndarray
    width: np.ndarray
    """Bump half-width in bins; 0 for plateaus, +-1 for ramps rising toward 3' (strand)."""
    activity: np.ndarray
    """``(n_elements, n_biosamples)`` float32 height."""

    def profile(self, start: int, end: int) -> tuple[sparse.csr_matrix, np.ndarray]:
        """``(end - start, k)`` profile of the ``k`` elements touching bins ``start..end``,
        and their rows."""
        rows = np.flatnonzero((self.lo < end) & (self.hi > start))
        lo = np.maximum(self.lo[rows], start)
        hi = np.minimum(self.hi[rows], end)
        lengths = hi - lo
        owner = np.repeat(np.arange(rows.size), lengths)
        first = np.repeat(lo - np.cumsum(lengths) + lengths, lengths)
        bins = np.arange(owner.size) + first
        width = self.width[rows][owner].astype(np.float64)
        centre = self.centre[rows][owner]
        offset = (bins - centre).astype(np.float64)
        values = np.ones(owner.size)
        bump = width > 1
        values[bump] = np.exp(-0.5 * (offset[bump] / width[bump]) ** 2)
        span = np.maximum(self.hi[rows] - self.lo[rows] - 1, 1)[owner]
        along = (bins - self.lo[rows][owner]) / span
        values[width == 1] = 1.0 + 3.0 * along[width == 1]
        values[width == -1] = 4.0 - 3.0 * along[width == -1]
        matrix = sparse.csr_matrix((values, (bins - start, owner)),
                                   shape=(end - start, rows.size))
        return matrix, rows


def _activity(rng: np.random.Generator, n: int, lineage: np.ndarray,
              shares: tuple[float, float, float], height: np.ndarray) -> np.ndarray:
    """Constitutive / lineage / specific activity times a log-normal height per biosample."""
    n_bios = lineage.size
    kind = rng.choice(3, size=n, p=shares)
    on = np.zeros((n, n_bios), dtype=bool)
    on[kind == 0] = True
    pick = rng.integers(lineage.max() + 1, size=n)
    on[kind == 1] = lineage[None, :] == pick[kind == 1, None]
    rows = np.flatnonzero(kind == 2)
    on[rows, rng.integers(n_bios, size=rows.size)] = True
    scale = rng.lognormal(0.0, 0.25, size=(n, n_bios))
    return (on * scale * height[:, None]).astype(np.float32)


def _bumps(centre: np.ndarray, half_width: int, activity: np.ndarray, n_bins: int) -> _Elements:
    width = np.full(centre.size, half_width)
    return _Elements(np.clip(centre - 3 * half_width, 0, n_bins),
                     np.clip(centre + 3 * half_width + 1, 0, n_bins), centre, width, activity)


def _draw_contig(rng: np.random.Generator, n_bins: int, bin_size: int, lineage: np.ndarray
                 ) -> list[_Elements]:
    """The elements of every channel on one contig, in :data:`CHANNELS` order."""
    mb = n_bins * bin_size / 1e6
    n_genes, n_enh = max(1, int(20 * mb)), max(1, int(60 * mb))
    n_ctcf, n_het = max(1, int(40 * mb)), max(1, int(3 * mb))
    tss = rng.integers(0, n_bins, n_genes)
    body = (rng.uniform(2_000, 40_000, n_genes) / bin_size).astype(np.int64)
    strand = rng.choice([-1, 1], n_genes)
    gene_h = rng.gamma(4.0, 6.0, n_genes)
    gene = _activity(rng, n_genes, lineage, (0.4, 0.35, 0.25), gene_h)
    g_lo = np.clip(np.where(strand > 0, tss, tss - body), 0, n_bins)
    g_hi = np.clip(np.where(strand > 0, tss + body, tss), 0, n_bins)
    plus, minus = (strand > 0)[:, None], (strand < 0)[:, None]
    active = gene > 0
    partly = active.any(axis=1, keepdims=True) & ~active.all(axis=1, keepdims=True)
    repressed = (partly & ~active).astype(np.float32)
    enh = rng.integers(0, n_bins, n_enh)
    enh_act = _activity(rng, n_enh, lineage, (0.25, 0.45, 0.3), rng.gamma(3.0, 4.0, n_enh))
    ctcf = rng.integers(0, n_bins, n_ctcf)
    ctcf_act = _activity(rng, n_ctcf, lineage, (0.85, 0.1, 0.05), rng.gamma(5.0, 3.0, n_ctcf))
    het_lo = rng.integers(0, n_bins, n_het)
    het_hi = np.minimum(het_lo + (rng.uniform(20_000, 120_000, n_het) / bin_size).astype(int),
                        n_bins)
    het_act = 4.0 * _activity(rng, n_het, lineage, (0.8, 0.0, 0.2), np.ones(n_het))
    ramp = strand.astype(np.int64)
    return [
        _bumps(tss, 25, gene, n_bins),
        _bumps(tss, 10, gene * plus, n_bins),
        _bumps(tss, 10, gene * minus, n_bins),
        _Elements(g_lo, g_hi, tss, ramp, ((gene > 0) & plus).astype(np.float32)),
        _Elements(g_lo, g_hi, tss, ramp, ((gene > 0) & minus).astype(np.float32)),
        _bumps(enh, 20, enh_act, n_bins),
        _bumps(enh, 60, 0.5 * enh_act, n_bins),
        _Elements(np.clip(g_lo - 100, 0, n_bins), np.clip(g_hi + 100, 0, n_bins), tss,
                  np.zeros(n_genes, dtype=np.int64), 3.0 * repressed),
        _bumps(tss, 20, 0.25 * gene_h[:, None] * repressed * partly, n_bins),
        _Elements(het_lo, het_hi, het_lo, np.zeros(n_het, dtype=np.int64), het_act),
        _bumps(ctcf, 8, ctcf_act, n_bins),
    ]


def synthesize(
    pattern: Pattern,
    out: Path,
    *,
    contigs: dict[str, int],
    bin_size: int = 25,
    seed: int = 0,
    chunk_bins: int = CHUNK_BINS,
    n_lineages: int | None = None,
    jobs: int = 1,
    on_progress: Callable[[int], None] | None = None,
) -> Store:
    """Write a generated compendium with ``pattern``'s observed tracks into a new store.

    Parameters
    ----------
    pattern
        Biosamples, assays and observed pairs (see :func:`resolve_pattern`).
    out
        Store folder to create (must not exist).
    contigs
        Contig name to length in bases.
    bin_size
        Bin width in bases.
    seed
        Everything (elements, activities, noise) follows from it.
    chunk_bins
        Bins generated per step; memory is a few times (tracks of 16 biosamples) x
        ``chunk_bins`` float32 values per process. With ``jobs > 1`` it must be a multiple
        of the store's chunk length (131,072), so processes never share a chunk.
    n_lineages
        Lineages the biosamples are split into; default ``max(2, round(sqrt(n) / 2))``.
    jobs
        Processes drawing chunks in parallel (the output does not depend on it).
    on_progress
        Called with the number of bins finished after each chunk.

    Returns
    -------
    Store
        The new store, opened for reading.
    """
    n_bios = len(pattern.biosamples)
    lineages = n_lineages or max(2, round(np.sqrt(n_bios) / 2))
    lineage = np.random.default_rng([seed, 0]).integers(lineages, size=n_bios)
    lineage[: min(lineages, n_bios)] = np.arange(min(lineages, n_bios))  # no lineage empty
    b_idx, a_idx = np.nonzero(pattern.observed)
    tracks = [Track(pattern.biosamples[b], pattern.assays[a]) for b, a in zip(b_idx, a_idx)]
    out = Path(out)
    if jobs > 1 and chunk_bins % CHUNK_BINS:
        raise InputError(f"with several jobs, chunk_bins must be a multiple of {CHUNK_BINS}")
    with publish_dir(out, kind="store", overwrite=None) as tmp:
        writer = create_store(tmp, tracks=tracks, contigs=contigs, bin_size=bin_size)
        _fill(writer, pattern, seed=seed, chunk_bins=chunk_bins, lineage=lineage, jobs=jobs,
              on_progress=on_progress)
    return Store.open(out)


@dataclass(frozen=True)
class _Job:
    """What a process needs to draw chunks of the store at ``path`` (picklable)."""

    path: str
    pattern: Pattern
    seed: int
    chunk_bins: int
    lineage: tuple[int, ...]

    def __hash__(self) -> int:
        return hash((self.path, self.seed, self.chunk_bins))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Job) and (self.path, self.seed, self.chunk_bins) == (
            other.path, other.seed, other.chunk_bins)


_DRAWN: dict[tuple[_Job, int], list[_Elements]] = {}
_WRITERS: dict[_Job, StoreWriter] = {}


def _fill(writer: StoreWriter, pattern: Pattern, *, seed: int, chunk_bins: int,
          lineage: np.ndarray, jobs: int, on_progress: Callable[[int], None] | None) -> None:
    """Draw and write every chunk of every contig of the store behind ``writer``."""
    store = writer.store
    job = _Job(str(store.path), pattern, seed, chunk_bins, tuple(int(x) for x in lineage))
    _WRITERS[job] = writer
    tasks = [(k, c) for k, contig in enumerate(store.contigs)
             for c in range(-(-store.n_bins(contig) // chunk_bins))]
    try:
        if jobs <= 1:
            for k, c in tasks:
                done = _write_chunk(job, k, c)
                if on_progress is not None:
                    on_progress(done)
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            for done in pool.map(_write_chunk, [job] * len(tasks), *zip(*tasks)):
                if on_progress is not None:
                    on_progress(done)
    finally:
        _WRITERS.pop(job, None)
        for key in [key for key in _DRAWN if key[0] == job]:
            del _DRAWN[key]


def _write_chunk(job: _Job, k: int, c: int) -> int:
    """Draw chunk ``c`` of contig number ``k`` and write it; returns its number of bins."""
    writer = _WRITERS.get(job)
    if writer is None:
        writer = _WRITERS[job] = StoreWriter(job.path)
    store, pattern, seed = writer.store, job.pattern, job.seed
    contig = list(store.contigs)[k]
    n_bins = store.n_bins(contig)
    channels = _DRAWN.get((job, k))
    if channels is None:
        _DRAWN.clear()  # one contig's elements at a time per process
        channels = _DRAWN[(job, k)] = _draw_contig(
            np.random.default_rng([seed, 4, k]), n_bins, store.bin_size, np.array(job.lineage))
    n_bios = len(pattern.biosamples)
    b_idx, a_idx = np.nonzero(pattern.observed)
    response = np.stack([assay_response(a) for a in pattern.assays]).astype(np.float32)
    depth = np.random.default_rng([seed, 3]).lognormal(0.0, 0.2, b_idx.size).astype(np.float32)
    lo = c * job.chunk_bins
    hi = min(lo + job.chunk_bins, n_bins)
    profiles = [ch.profile(lo, hi) for ch in channels]
    for g, first in enumerate(range(0, n_bios, _BIOSAMPLE_GROUP)):
        group = np.arange(first, min(first + _BIOSAMPLE_GROUP, n_bios))
        rows = np.flatnonzero(np.isin(b_idx, group))
        if rows.size == 0:
            continue
        local = b_idx[rows] - first
        weights = response[a_idx[rows]]  # (tracks, channels)
        mean = np.zeros((rows.size, hi - lo), dtype=np.float32)
        for i, ((matrix, members), ch) in enumerate(zip(profiles, channels)):
            used = weights[:, i] != 0
            if members.size and used.any():
                part = np.asarray(matrix @ ch.activity[members][:, group],
                                  dtype=np.float32).T  # (biosamples, bins)
                mean[used] += weights[used, i, None] * part[local[used]]
        rng = np.random.default_rng([seed, 2, k, c, g])
        noise = rng.standard_gamma(4.0, size=mean.shape, dtype=np.float32)
        values = depth[rows, None] * mean * noise * np.float32(0.25)
        values += rng.standard_exponential(size=mean.shape, dtype=np.float32) * 0.4
        np.arcsinh(values, out=values)
        writer.write_block(int(rows[0]), contig, values, start=lo)
    return hi - lo
