"""Build a store from a sample sheet of bigWig, bedGraph and array files.

Ingestion runs in two phases. Planning reads only headers (bigWig contig sizes, array
shapes) and checks that the inputs agree, so most mistakes are reported before any signal
is read. Then each track is streamed one store chunk of bins at a time (3.3 Mbp at 25 bp
bins), checked, arcsinh-transformed and written to its own row of the store, one track per
worker process; a worker's memory does not grow with the contig's length. The store is built under a
temporary sibling name and moved into place with one rename only when every track has been
written (:func:`epimpute.io.atomic.publish_dir`); the rename fails if a store appeared at
the destination meanwhile, so of two ingests into one folder only one succeeds. On any
error, or SIGTERM under the command line, the temporary folder is removed; one left by a
killed process is removed by the next ingest into the same folder.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from epimpute.errors import InputError
from epimpute.io import arrays, bedgraph, bigwig
from epimpute.io.atomic import check_destination, publish_dir
from epimpute.io.binning import n_bins
from epimpute.io.chromsizes import read_chrom_sizes
from epimpute.io.samplesheet import SampleSpec, check_samples, read_sample_sheet
from epimpute.store.store import (
    CHUNK_BINS,
    Store,
    StoreWriter,
    Track,
    create_store,
    is_store,
)

__all__ = ["ingest"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Source:
    """One input file of a track and the store contigs to take from it."""

    path: str
    kind: str
    chrom: str = ""  # contig named in the sheet (arrays)
    contigs: tuple[str, ...] = ()  # contigs to read (bigWig, arrays); bedGraph: all found


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs to write one track's row."""

    row: int
    key: str
    sources: tuple[_Source, ...]


@dataclass(frozen=True)
class _Plan:
    contigs: dict[str, int]
    tracks: list[Track]
    jobs: list[_Job]
    restricted: bool  # whether the contigs were narrowed by ``chroms``


def ingest(
    samples: str | os.PathLike[str] | Sequence[SampleSpec],
    out: str | os.PathLike[str],
    *,
    chrom_sizes: Mapping[str, int] | str | os.PathLike[str] | None = None,
    chroms: Sequence[str] | None = None,
    bin_size: int = 25,
    transformed: bool = False,
    jobs: int = 1,
    overwrite: bool = False,
    progress: bool = False,
) -> Store:
    """Bin, check and transform signal tracks into a new store.

    The store's contigs are those of ``chrom_sizes`` (in its order) or, without it, every
    contig of the bigWig headers and array files (in natural order: chr2 before chr10),
    narrowed to ``chroms``. A track whose file has no data for a contig stores zeros there.
    Rows follow the order of first appearance in the sheet; rows of one array track (one per
    contig) make one track.

    Parameters
    ----------
    samples
        A sample sheet path, or specs as returned by
        :func:`epimpute.io.samplesheet.read_sample_sheet`.
    out
        Store folder to create.
    chrom_sizes
        Contig sizes (a mapping or a sizes file). Without them, sizes come from the bigWig
        headers, and contigs found only in array files get ``n_bins * bin_size``; bedGraph
        inputs then need at least one bigWig.
    chroms
        Ingest only these contigs (store order follows the sizes).
    bin_size
        Bin width in bases.
    transformed
        The inputs are already on the arcsinh scale; store them as they are.
    jobs
        Tracks processed in parallel. Above 1, worker processes are spawned, so a script
        calling this needs the usual ``if __name__ == "__main__":`` guard.
    overwrite
        Replace an existing store at ``out`` (only an epimpute store); the old one stays in
        place until the new one is complete.
    progress
        Show a progress bar over tracks (on stderr).

    Returns
    -------
    Store
        The new store, opened.

    Raises
    ------
    InputError
        If ``out`` exists (without ``overwrite``), the sheet or a file is bad, files disagree
        on a contig's size, a requested contig is unknown, or a value is NaN, infinite or
        negative. Nothing is left at ``out`` or in a temporary folder.
    """
    out = Path(out)
    if isinstance(chroms, str):
        chroms = [chroms]
    n_bins(1, bin_size)  # validates bin_size
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InputError(f"jobs must be a positive integer, got {jobs!r}")
    sheet = [Path(samples)] if isinstance(samples, (str, os.PathLike)) else []
    if sheet:
        specs = read_sample_sheet(samples)
    else:
        specs = list(samples)
        check_samples(specs)
    destination = {"kind": "store", "is_own": is_store, "overwrite": overwrite,
                   "inputs": [s.path for s in specs] + sheet}
    check_destination(out, **destination)
    plan = _plan(specs, _sizes_argument(chrom_sizes), chroms=chroms, bin_size=bin_size)
    with publish_dir(out, **destination) as tmp:
        create_store(tmp, tracks=plan.tracks, contigs=plan.contigs, bin_size=bin_size)
        _run(plan, tmp, bin_size=bin_size, transformed=transformed, jobs=jobs,
             progress=progress)
    log.info("ingested %d tracks over %d contigs into %s", len(plan.tracks), len(plan.contigs), out)
    return Store.open(out)


def _sizes_argument(
    chrom_sizes: Mapping[str, int] | str | os.PathLike[str] | None,
) -> tuple[dict[str, int], str] | None:
    """The given contig sizes and a name for them in messages."""
    if chrom_sizes is None:
        return None
    if isinstance(chrom_sizes, (str, os.PathLike)):
        return read_chrom_sizes(chrom_sizes), str(chrom_sizes)
    sizes = {}
    for name, size in chrom_sizes.items():
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise InputError(f"chrom_sizes: {name!r} has length {size!r}")
        sizes[str(name)] = int(size)
    if not sizes:
        raise InputError("chrom_sizes is empty")
    return sizes, "chrom_sizes"


def _plan(
    specs: list[SampleSpec],
    given: tuple[dict[str, int], str] | None,
    *,
    chroms: Sequence[str] | None,
    bin_size: int,
) -> _Plan:
    """Work out contigs, tracks and per-track jobs from the headers of the inputs."""
    # contig -> (length, where the length came from)
    known: dict[str, tuple[int, str]] = {}
    if given is not None:
        known.update({c: (n, given[1]) for c, n in given[0].items()})
    headers = _bigwig_headers(specs, known, add=given is None)
    wanted = None if chroms is None else set(chroms)
    lengths = _array_lengths(specs, known, given, wanted=wanted, bin_size=bin_size)
    if any(s.kind == "bedgraph" for s in specs) and given is None and not headers:
        first = next(s for s in specs if s.kind == "bedgraph")
        raise InputError(
            f"bedGraph input {first.path} needs contig sizes: pass chrom_sizes "
            "(--chrom-sizes FILE) or include a bigWig track"
        )

    order = list(known) if given is not None else sorted(known, key=_natural_key)
    if chroms is not None:
        missing = [c for c in chroms if c not in known]
        if missing:
            raise InputError(f"contig(s) {', '.join(missing)} not found in any input's sizes")
        order = [c for c in order if c in wanted]
    if not order:
        raise InputError("no contigs to ingest")
    contigs = {c: known[c][0] for c in order}
    tracks, jobs = _tracks_and_jobs(specs, contigs, headers, lengths)
    return _Plan(contigs, tracks, jobs, restricted=wanted is not None)


def _bigwig_headers(
    specs: list[SampleSpec], known: dict[str, tuple[int, str]], *, add: bool
) -> dict[Path, dict[str, int]]:
    """Read every bigWig header and check it against ``known`` sizes (added to if ``add``)."""
    headers: dict[Path, dict[str, int]] = {}
    for spec in specs:
        if spec.kind == "bigwig" and spec.path not in headers:
            headers[spec.path] = bigwig.chrom_sizes(spec.path)
    for path, header in headers.items():
        for contig, length in header.items():
            if contig in known and known[contig][0] != length:
                size, where = known[contig]
                raise InputError(
                    f"contig {contig!r} is {length} bp in {path} but {size} bp in {where} "
                    "(different assemblies?)"
                )
            if add:
                known.setdefault(contig, (length, str(path)))
    return headers


def _array_lengths(
    specs: list[SampleSpec],
    known: dict[str, tuple[int, str]],
    given: tuple[dict[str, int], str] | None,
    *,
    wanted: set[str] | None,
    bin_size: int,
) -> dict[SampleSpec, dict[str, int]]:
    """Check array lengths against the known sizes; add contigs only arrays have to known."""
    lengths: dict[SampleSpec, dict[str, int]] = {}
    array_only: dict[str, tuple[int, str]] = {}  # contig -> (bins, first file)
    for spec in specs:
        if spec.kind != "array":
            continue
        lengths[spec] = arrays.array_lengths(spec.path, chrom=spec.chrom or None)
        for contig, bins in lengths[spec].items():
            if wanted is not None and contig not in wanted:
                continue
            if contig in known:
                size, where = known[contig]
                expected = n_bins(size, bin_size)
                if bins != expected:
                    raise InputError(
                        f"{spec.path}: {contig} has {bins} bins, but {size} bp (from {where}) "
                        f"at bin size {bin_size} needs {expected}"
                    )
            elif given is not None:
                raise InputError(f"{spec.path}: contig {contig!r} is not in {given[1]}")
            elif contig in array_only and array_only[contig][0] != bins:
                other_bins, other = array_only[contig]
                raise InputError(
                    f"{spec.path}: {contig} has {bins} bins, but {other} has {other_bins}; "
                    "arrays of one contig must have equal length"
                )
            else:
                array_only.setdefault(contig, (bins, str(spec.path)))
    for contig, (bins, path) in array_only.items():
        known[contig] = (bins * bin_size, path)
    return lengths


def _tracks_and_jobs(
    specs: list[SampleSpec],
    contigs: dict[str, int],
    headers: dict[Path, dict[str, int]],
    lengths: dict[SampleSpec, dict[str, int]],
) -> tuple[list[Track], list[_Job]]:
    """One track per (cell_type, assay, individual), in order of first appearance."""
    grouped: dict[tuple[str, str, str], list[SampleSpec]] = {}
    for spec in specs:
        grouped.setdefault((spec.cell_type, spec.assay, spec.individual), []).append(spec)
    tracks, jobs = [], []
    for row, members in enumerate(grouped.values()):
        first = members[0]
        paths = list(dict.fromkeys(str(s.path) for s in members))
        track = Track(first.cell_type, first.assay, first.individual, source=";".join(paths))
        sources = []
        for spec in members:
            if spec.kind == "bigwig":
                present = tuple(c for c in contigs if c in headers[spec.path])
            elif spec.kind == "array":
                present = tuple(c for c in lengths[spec] if c in contigs)
            else:
                present = ()
            sources.append(_Source(str(spec.path), spec.kind, spec.chrom, present))
        _check_array_overlap(track, sources)
        tracks.append(track)
        jobs.append(_Job(row, track.key, tuple(sources)))
    return tracks, jobs


def _check_array_overlap(track: Track, sources: list[_Source]) -> None:
    """A contig may come from only one of a track's array files."""
    owner: dict[str, str] = {}
    for source in sources:
        for contig in source.contigs:
            if contig in owner:
                raise InputError(
                    f"track {track.key}: contig {contig!r} is in both {owner[contig]} and "
                    f"{source.path}"
                )
            owner[contig] = source.path


def _run(
    plan: _Plan,
    store_path: Path,
    *,
    bin_size: int,
    transformed: bool,
    jobs: int,
    progress: bool,
) -> None:
    """Write every track, in this process or in a pool of worker processes."""
    chroms = set(plan.contigs) if plan.restricted else None
    options = {
        "store_path": str(store_path),
        "contigs": plan.contigs,
        "chroms": chroms,
        "bin_size": bin_size,
        "transformed": transformed,
    }
    with tqdm(total=len(plan.jobs), unit="track", desc="ingest", disable=not progress) as bar:
        if jobs == 1 or len(plan.jobs) == 1:
            for job in plan.jobs:
                _ingest_track(job, **options)
                bar.update()
            return
        # spawn, not fork: the parent may hold zarr's event-loop thread
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=min(jobs, len(plan.jobs)), mp_context=context)
        try:
            futures = [pool.submit(_ingest_track, job, **options) for job in plan.jobs]
            for future in as_completed(futures):
                future.result()
                bar.update()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _ingest_track(
    job: _Job,
    *,
    store_path: str,
    contigs: dict[str, int],
    chroms: set[str] | None,
    bin_size: int,
    transformed: bool,
) -> str:
    """Stream one track's files into its row of the store (runs in a worker)."""
    writer = StoreWriter(store_path)
    for source in job.sources:
        for contig, first, values in _windows(source, contigs, chroms, bin_size):
            _check_values(source.path, contig, first, values, bin_size)
            if not transformed:
                np.arcsinh(values, out=values)
            writer.write(job.row, contig, values, start=first)
    return job.key


def _windows(
    source: _Source, contigs: dict[str, int], chroms: set[str] | None, bin_size: int
) -> Iterator[tuple[str, int, np.ndarray]]:
    """(contig, first bin, float32 bins) of one input file, one store chunk of bins at a time.

    Windows are the store's chunks, so each write fills whole chunks and memory is bounded
    by one chunk-row whatever the contig's length.
    """
    if source.kind == "bigwig":
        for contig in source.contigs:
            for first, values in bigwig.read_windows(
                source.path, contig, length=contigs[contig], bin_size=bin_size,
                window_bins=CHUNK_BINS,
            ):
                yield contig, first, values
    elif source.kind == "bedgraph":
        yield from bedgraph.read_windows(
            source.path, chrom_sizes=contigs, bin_size=bin_size, chroms=chroms,
            window_bins=CHUNK_BINS,
        )
    else:
        for contig in source.contigs:
            for first, values in arrays.read_windows(
                source.path, chrom=source.chrom or contig, window_bins=CHUNK_BINS
            ):
                yield contig, first, values


def _check_values(
    path: str, contig: str, first: int, values: np.ndarray, bin_size: int
) -> None:
    """Refuse NaN, infinite or negative bins (``first`` is the window's first bin)."""
    bad = np.flatnonzero(~(values >= 0))  # catches NaN, -inf and negatives
    if not bad.size:
        bad = np.flatnonzero(np.isinf(values))
    if bad.size:
        i = first + int(bad[0])
        raise InputError(
            f"{path}: {contig} bin {i} (bases {i * bin_size}-{(i + 1) * bin_size}) has the "
            f"value {values[i - first]}; signal must be finite and non-negative"
        )


def _natural_key(name: str) -> tuple[object, ...]:
    """Sort key putting chr2 before chr10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))
