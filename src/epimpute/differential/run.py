"""``epimpute differential``: differential peaks of two cell types from replicate stores.

Writes ``OUT.tsv`` (every consensus peak: chrom, start, end, baseMean, log2FC, pvalue,
padj) and ``OUT.bed`` (the peaks with ``padj < fdr``: chrom, start, end), each under a
temporary name renamed into place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from epimpute.differential.calls import (
    PeakTable,
    consensus_peaks,
    deseq_table,
    merge_intervals,
    peak_counts,
)
from epimpute.differential.replicates import replicate_settings
from epimpute.errors import InputError
from epimpute.io.atomic import atomic_file, check_destination
from epimpute.io.bed import read_bed
from epimpute.store import Store

__all__ = ["TSV_COLUMNS", "DifferentialResult", "differential", "read_differential"]

TSV_COLUMNS = ("chrom", "start", "end", "baseMean", "log2FC", "pvalue", "padj")


@dataclass(frozen=True)
class DifferentialResult:
    """What :func:`differential` wrote.

    Attributes
    ----------
    tsv, bed
        The table of all peaks and the BED of the significant ones.
    n_peaks, n_significant
        Their numbers of rows.
    """

    tsv: Path
    bed: Path
    n_peaks: int
    n_significant: int


def differential(
    replicates: Sequence[Path],
    out: Path,
    *,
    cell_types: Sequence[str],
    assay: str,
    fdr: float = 0.05,
    peaks: Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> DifferentialResult:
    """Call differential peaks of ``assay`` between two cell types.

    Parameters
    ----------
    replicates
        Replicate stores written by ``epimpute replicates`` (one holding both cell types, or
        one each); all of one bin size, contigs and scale.
    out
        Output prefix: ``OUT.tsv`` and ``OUT.bed`` are written.
    cell_types
        The two cell types; ``log2FC`` is ``log2(second / first)``.
    assay
        The assay compared.
    fdr
        Peaks with ``padj < fdr`` are significant (and DESeq2 filters at that rate).
    peaks
        BED of the regions to test (overlapping or touching ones merged) instead of consensus peaks
        called on the replicates: e.g. the same regions for observed and imputed replicates.
    overwrite
        Replace an earlier result at ``OUT``.
    progress
        Show a progress bar.

    Returns
    -------
    DifferentialResult
    """
    if len(cell_types) != 2 or cell_types[0] == cell_types[1]:
        raise InputError(f"give two different cell types, got {list(cell_types)}")
    if not 0 < fdr < 1:
        raise InputError(f"--fdr must be in (0, 1), got {fdr!r}")
    if not replicates:
        raise InputError("give at least one replicate store")
    stores = [Store.open(p) for p in replicates]
    scales = {replicate_settings(s)["scale"] for s in stores}
    first = stores[0]
    for s in stores[1:]:
        if s.contigs != first.contigs or s.bin_size != first.bin_size:
            raise InputError(f"{s.path}: contigs or bin size differ from those of {first.path} "
                             f"({s.bin_size} bp {dict(s.contigs)} vs {first.bin_size} bp "
                             f"{dict(first.contigs)})")
    if len(scales) != 1:
        raise InputError(f"the replicate stores were drawn with different scales {sorted(scales)}")
    scale = scales.pop()
    rows = {c: [(s, i) for s in stores for i, t in enumerate(s.tracks)
                if t.cell_type == c and t.assay == assay] for c in cell_types}
    for c, found in rows.items():
        if not found:
            known = sorted({t.cell_type for s in stores for t in s.tracks if t.assay == assay})
            raise InputError(f"no replicates of {c}:{assay} in {', '.join(map(str, replicates))} "
                             f"(cell types with {assay}: {', '.join(known) or 'none'})")
        if len(found) < 2:
            raise InputError(f"{c}:{assay} has 1 replicate; the test needs at least 2")
    out = Path(out)
    tsv, bed = out.with_name(out.name + ".tsv"), out.with_name(out.name + ".bed")
    inputs = [s.path for s in stores] + ([Path(peaks)] if peaks is not None else [])
    for path in (tsv, bed):
        check_destination(path, kind="differential result", is_own=_is_own, overwrite=overwrite,
                          inputs=inputs)
    given = None if peaks is None else _read_regions(Path(peaks), first.contigs)
    tables = []
    for contig in tqdm(list(first.contigs), desc="differential", unit="contig",
                       disable=not progress):
        values = {c: np.concatenate([s.read(contig, tracks=[i]) for s, i in rows[c]])
                  for c in cell_types}
        if given is None:
            regions = consensus_peaks([values[c].mean(axis=0) / scale for c in cell_types],
                                      bin_size=first.bin_size, length=first.contigs[contig],
                                      contig=contig)
        else:
            regions = given[contig]
        counts = np.concatenate([peak_counts(values[c], regions, bin_size=first.bin_size)
                                 for c in cell_types])
        labels = [c for c in cell_types for _ in rows[c]]
        table = deseq_table(counts, labels, first=cell_types[0], second=cell_types[1], fdr=fdr)
        table.insert(0, "end", regions.end)
        table.insert(0, "start", regions.start)
        table.insert(0, "chrom", contig)
        tables.append(table)
    result = pd.concat(tables, ignore_index=True)[list(TSV_COLUMNS)]
    significant = result[result["padj"] < fdr]
    with atomic_file(tsv) as tmp:
        result.to_csv(tmp, sep="\t", index=False, float_format="%.6g", na_rep="NA")
    with atomic_file(bed) as tmp:
        significant[["chrom", "start", "end"]].to_csv(tmp, sep="\t", index=False, header=False)
    return DifferentialResult(tsv, bed, len(result), len(significant))


def _read_regions(path: Path, contigs: dict[str, int]) -> dict[str, PeakTable]:
    """The BED's regions per contig of the store, sorted, overlapping or touching ones merged."""
    bed = read_bed(path, what="regions")
    for row in bed.itertuples():
        if row.chrom not in contigs:
            raise InputError(f"{path}: line {row.line}: contig {row.chrom!r} is not in the "
                             f"replicate stores ({', '.join(contigs)})")
        if row.end > contigs[row.chrom] or row.end == row.start:
            raise InputError(f"{path}: line {row.line}: region {row.start}-{row.end} is empty "
                             f"or ends past {row.chrom} ({contigs[row.chrom]} bp)")
    return {c: merge_intervals(c, bed.loc[bed["chrom"] == c, "start"].to_numpy(),
                               bed.loc[bed["chrom"] == c, "end"].to_numpy()) for c in contigs}


def read_differential(path: Path) -> pd.DataFrame:
    """Read an ``OUT.tsv`` written by :func:`differential` (InputError if it is not one)."""
    if not _is_own(Path(path)):
        raise InputError(f"{path}: not a table written by epimpute differential")
    return pd.read_csv(path, sep="\t", na_values=["NA"])


def _is_own(path: Path) -> bool:
    """A table whose header is ours, or a BED next to one."""
    if path.suffix == ".bed":
        path = path.with_suffix(".tsv")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().rstrip("\n").split("\t") == list(TSV_COLUMNS)
    except OSError:
        return False
