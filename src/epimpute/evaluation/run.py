"""``evaluate``: score imputed tracks of one or more models against a truth store, write a report.

The work is done in two passes over the genome, contig by contig:

1. *context*: for each assay with a scored track, every observed track of that assay is read
   once (one at a time) to get, per bin, the specificity count (cell types with an observed
   peak) and the cross-cell-type variance (for ``msevar``); these and the region coverage
   arrays are kept in a scratch folder as ``.npy`` files, memory-mapped when read back;
2. *scoring*: for each scored track and model, a :class:`~epimpute.evaluation.scoring.TrackScorer`
   is fed the observed and imputed contigs in turn.

So memory holds one contig of a few tracks plus the full-pass arrays of the one track being
scored, never the compendium. The report is written to a temporary folder beside ``out``
and renamed into place at the end, so ``out`` is never left half-written.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from epimpute.errors import InputError
from epimpute.evaluation.accumulators import RunningVariance
from epimpute.evaluation.calibration import CALIBRATION_COLUMNS, CoverageCounter
from epimpute.evaluation.loci import error_loci, specific_peak_locus
from epimpute.evaluation.peaks import (
    DEFAULT_PEAK_PARAMS,
    PeakParams,
    call_peaks,
    peak_mask,
)
from epimpute.evaluation.regions import (
    RegionSet,
    enhancer_coverage,
    gene_coverage,
    promoter_coverage,
    read_enhancers,
    read_genes,
    tss_classes,
)
from epimpute.evaluation.report import (
    METRICS_COLUMNS,
    Evaluation,
    is_report,
    write_report,
)
from epimpute.evaluation.scoring import TrackScorer, TrackScores
from epimpute.evaluation.sources import (
    PredictionDir,
    TruthSource,
    open_truth,
    read_truth,
)
from epimpute.evaluation.stats import (
    bootstrap_intervals,
    group_tests,
    paired_model_tests,
)
from epimpute.evaluation.strata import Strata
from epimpute.evaluation.summary import summarize
from epimpute.intervals import CURVE_LEVELS
from epimpute.io.atomic import check_destination, publish_dir
from epimpute.io.trackkey import spread_key

__all__ = ["evaluate"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Target:
    """One observed track to score."""

    key: str
    row: int
    biosample: str
    assay: str
    models: tuple[str, ...]
    contigs: tuple[str, ...]


def evaluate(  # noqa: PLR0913 - keyword-only options, one per command-line option
    truth: str | os.PathLike[str] | TruthSource,
    predictions: Mapping[str, str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    genes: str | os.PathLike[str] | None = None,
    enhancers: str | os.PathLike[str] | None = None,
    targets: Sequence[str] | None = None,
    progress: bool = False,
    peak_params: PeakParams = DEFAULT_PEAK_PARAMS,
    block_size: int = 1_000_000,
    bootstrap: int = 1000,
    seed: int = 0,
    full_pass: bool = True,
    plots: bool = True,
    plot_metrics: Sequence[str] | None = None,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Score every predicted track that has an observed truth, and write the report.

    Parameters
    ----------
    truth
        The truth store (path or opened :class:`epimpute.store.Store`).
    predictions
        Model name to its prediction folder (``{cell}.{assay}.npz`` or ``.bw`` files; a
        predicted sd ``{cell}.{assay}.sd.*`` beside one adds its interval coverage).
    out
        Report folder to create (see :mod:`epimpute.evaluation.report` for its files).
    genes
        Genes BED (chrom, start, end, id, score, strand; may be gzipped) for ``mseprom`` and
        ``msegene`` and the distance-to-TSS strata (``tss<1kb`` ... ``tss>=100kb``: ``mse``
        and ``gwcorr``); regions on contigs outside the store are ignored.
    enhancers
        Enhancers BED (BED12 or BED3+, may be gzipped) for ``mseenh``.
    targets
        Track keys ``CELL:ASSAY`` to score; default: every observed track that at least
        one model predicted. Each target must be predicted by every model.
    progress
        Show a progress bar on stderr.
    peak_params
        Peak-calling thresholds for observed and imputed peaks.
    block_size
        Genomic block length in bp for the bootstrap.
    bootstrap
        Block-bootstrap resamples (0 skips the bootstrap).
    seed
        Seed of the bootstrap.
    full_pass
        Compute the metrics that need the whole track at once (ranks, top 1%).
    plots
        Draw the PNG figures.
    plot_metrics
        Metrics to draw per-assay and specificity figures of (default: every metric).
    overwrite
        Replace ``out`` if it is a report folder written by epimpute (never another folder,
        an input or the current directory).

    Returns
    -------
    pandas.DataFrame
        The long metrics table (columns ``model, cell_type, assay, metric, value, stratum``).

    Raises
    ------
    InputError
        On a missing or malformed input, no track to score, or an existing ``out``.
    """
    out = Path(out)
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise InputError(f"--bootstrap: the number of resamples must be 0 or more, "
                         f"got {bootstrap!r}")
    truth_path = Path(truth) if isinstance(truth, (str, os.PathLike)) else getattr(truth, "path", None)
    destination = {
        "kind": "report", "is_own": is_report, "overwrite": overwrite,
        "inputs": [Path(p) for p in predictions.values()] + ([truth_path] if truth_path else []),
    }
    check_destination(out, **destination)
    if not predictions:
        raise InputError("no predictions given: pass at least one NAME=DIR")
    for name in predictions:
        if not name or any(c in name for c in "\t\n="):
            raise InputError(f"model name {name!r} must be non-empty without tabs, newlines or '='")
    started = time.time()
    store = open_truth(truth)
    bin_size = int(store.bin_size)
    sources = {name: PredictionDir(path, name=name) for name, path in predictions.items()}
    plan = _plan(store, sources, targets)
    gene_set = read_genes(genes) if genes is not None else None
    enhancer_set = read_enhancers(enhancers) if enhancers is not None else None
    for regions in (gene_set, enhancer_set):
        if regions is not None and not any(c in regions.by_contig for t in plan for c in t.contigs):
            log.warning("%s: no region lies on a scored contig", regions.path)

    with publish_dir(out, **destination) as scratch:
        work = scratch / "work"
        work.mkdir()
        assay_rows = _assay_rows(store, {t.assay for t in plan})
        _write_context(
            store, plan, assay_rows, work, peak_params=peak_params, genes=gene_set, enhancers=enhancer_set
        )
        evaluation = _score(
            store,
            sources,
            plan,
            assay_rows,
            work,
            options=_Options(peak_params, max(1, block_size // bin_size), bootstrap, seed,
                             full_pass),
            progress=progress,
        )
        evaluation.info = {
            "truth": str(truth) if isinstance(truth, (str, os.PathLike)) else repr(truth),
            "predictions": {name: str(path) for name, path in predictions.items()},
            "genes": None if genes is None else str(genes),
            "enhancers": None if enhancers is None else str(enhancers),
            "targets": None if targets is None else list(targets),
            "tracks_scored": len(plan),
            "bin_size": bin_size,
            "peak_cutoff_log10p": peak_params.cutoff,
            "peak_min_length": peak_params.min_length,
            "peak_max_gap": peak_params.max_gap,
            "block_size": block_size,
            "bootstrap": bootstrap,
            "seed": seed,
            "full_pass": full_pass,
            "seconds": round(time.time() - started, 1),
        }
        shutil.rmtree(work)
        write_report(scratch, evaluation, plots=plots, plot_metrics=plot_metrics)
    log.info("scored %d track(s) for %d model(s) into %s", len(plan), len(sources), out)
    for note in summarize(evaluation.metrics)[1]:
        log.warning("%s", note)
    return evaluation.metrics


def _plan(
    store: TruthSource, sources: Mapping[str, PredictionDir], targets: Sequence[str] | None
) -> list[_Target]:
    tracks = list(store.tracks)
    row_of = {t.key: i for i, t in enumerate(tracks)}
    if targets is not None:
        keys = list(dict.fromkeys(targets))
        for key in keys:
            if key not in row_of:
                raise InputError(
                    f"target {key!r}: the truth has no observed track with this key (CELL:ASSAY)"
                )
            for source in sources.values():
                if source.file_for(key) is None:
                    raise InputError(
                        f"{source.path}: no prediction for target {key!r} (model {source.name!r})"
                    )
    else:
        found = {name: set(source.keys(row_of)) for name, source in sources.items()}
        keys = [t.key for t in tracks if any(t.key in f for f in found.values())]
        if not keys:
            folders = ", ".join(str(s.path) for s in sources.values())
            raise InputError(
                f"none of the prediction folders ({folders}) holds a track observed in the truth; "
                "files must be named CELL.ASSAY.npz or CELL.ASSAY.bw"
            )
    store_contigs = [c for c in store.contigs if store.n_bins(c) > 0]
    plan = []
    for key in keys:
        models = tuple(name for name, source in sources.items() if source.file_for(key) is not None)
        per_model = {name: sources[name].contigs(key) for name in models}
        common = [c for c in store_contigs if all(c in have for have in per_model.values())]
        if not common:
            raise InputError(f"track {key!r}: no contig of the truth is in every model's prediction file")
        for name, have in per_model.items():
            missing = [c for c in store_contigs if c not in have]
            if missing:
                log.warning(
                    "%s: track %s lacks %d contig(s) (e.g. %s); scoring the contigs all models share",
                    sources[name].path,
                    key,
                    len(missing),
                    missing[0],
                )
        lacking = [name for name in sources if name not in models]
        if lacking:
            log.warning("track %s has no prediction from %s; comparisons of the models use only "
                        "the tracks every model predicted", key, ", ".join(lacking))
        track = tracks[row_of[key]]
        plan.append(_Target(key, row_of[key], track.biosample, track.assay, models, tuple(common)))
    return plan


def _assay_rows(store: TruthSource, assays: set[str]) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = {a: [] for a in sorted(assays)}
    for i, track in enumerate(store.tracks):
        if track.assay in rows:
            rows[track.assay].append(i)
    return rows


def _context_path(work: Path, kind: str, contig: str, assay: str = "") -> Path:
    """Scratch file of one per-bin context array; names are safe for any contig or assay."""
    digest = hashlib.sha1(f"{assay}\0{contig}".encode()).hexdigest()[:16]
    return work / f"{kind}.{digest}.npy"


def _write_context(
    store: TruthSource,
    plan: Sequence[_Target],
    assay_rows: Mapping[str, list[int]],
    work: Path,
    *,
    peak_params: PeakParams,
    genes: RegionSet | None,
    enhancers: RegionSet | None,
) -> None:
    bin_size = int(store.bin_size)
    lengths = store.contigs
    used: dict[str, set[str]] = {assay: set() for assay in assay_rows}
    for target in plan:
        used[target.assay].update(target.contigs)
    for contig in [c for c in lengths if any(c in u for u in used.values())]:
        n = store.n_bins(contig)
        if genes is not None:
            np.save(
                _context_path(work, "prom", contig),
                promoter_coverage(genes, contig, n_bins=n, bin_size=bin_size),
            )
            np.save(
                _context_path(work, "gene", contig), gene_coverage(genes, contig, n_bins=n, bin_size=bin_size)
            )
            np.save(_context_path(work, "tss", contig),
                    tss_classes(genes, contig, n_bins=n, bin_size=bin_size))
        if enhancers is not None:
            np.save(
                _context_path(work, "enh", contig),
                enhancer_coverage(enhancers, contig, n_bins=n, bin_size=bin_size),
            )
        for assay, rows in assay_rows.items():
            if contig not in used[assay]:
                continue
            variance = RunningVariance(n)
            counts = np.zeros(n, dtype=np.uint16)
            for row in rows:
                values = read_truth(store, contig, row)
                variance.update(values)
                peaks = call_peaks(
                    values, bin_size=bin_size, length=lengths[contig], contig=contig, params=peak_params
                )
                counts += peak_mask(peaks, n_bins=n, bin_size=bin_size)
            np.save(_context_path(work, "count", contig, assay), counts)
            np.save(_context_path(work, "var", contig, assay), variance.variance().astype(np.float32))


def _assay_cells(store: TruthSource, assay: str) -> list[str]:
    return [t.biosample for t in store.tracks if t.assay == assay]


def _load(path: Path) -> NDArray | None:  # type: ignore[type-arg]
    return np.load(path, mmap_mode="r") if path.exists() else None


@dataclass(frozen=True)
class _Options:
    peak_params: PeakParams
    block_bins: int
    n_boot: int
    seed: int
    full_pass: bool


def _score(
    store: TruthSource,
    sources: Mapping[str, PredictionDir],
    plan: Sequence[_Target],
    assay_rows: Mapping[str, list[int]],
    work: Path,
    *,
    options: _Options,
    progress: bool,
) -> Evaluation:
    from tqdm.auto import tqdm

    bin_size = int(store.bin_size)
    lengths = store.contigs
    metric_rows: list[tuple[str, str, str, str, float, str]] = []
    strata_rows: list[tuple[str, str, str, int]] = []
    coverage_rows: list[tuple] = []
    intervals, differences, loci = [], [], []
    assays_with_locus: set[str] = set()
    bar = tqdm(total=sum(len(t.models) for t in plan), disable=not progress, unit="track", desc="scoring")
    for target_index, target in enumerate(plan):
        scores: dict[str, TrackScores] = {}
        for model in target.models:
            scorer = TrackScorer(
                n_cell_types=len(assay_rows[target.assay]),
                bin_size=bin_size,
                params=options.peak_params,
                block_bins=options.block_bins,
                full_pass=options.full_pass,
            )
            sd_key = spread_key(target.key)  # a predicted sd beside the track: coverage
            counter = (CoverageCounter(Strata(len(assay_rows[target.assay])),
                                       widths=sources[model].interval_widths(target.key,
                                                                             CURVE_LEVELS))
                       if sources[model].file_for(sd_key) is not None else None)
            for contig in target.contigs:
                truth, size = read_truth(store, contig, target.row), lengths[contig]
                predicted = sources[model].read(target.key, contig, length=size, bin_size=bin_size)
                specificity = _load(_context_path(work, "count", contig, target.assay))
                if counter is not None:
                    sd = sources[model].read(sd_key, contig, length=size, bin_size=bin_size)
                    counter.update(truth, predicted, sd, specificity)
                scorer.update(
                    truth,
                    predicted,
                    contig=contig,
                    length=size,
                    specificity=specificity,
                    variance=_load(_context_path(work, "var", contig, target.assay)),
                    promoters=_load(_context_path(work, "prom", contig)),
                    genes=_load(_context_path(work, "gene", contig)),
                    enhancers=_load(_context_path(work, "enh", contig)),
                    tss=_load(_context_path(work, "tss", contig)),
                )
            if counter is not None:
                coverage_rows += [(model, target.biosample, target.assay, *row)
                                  for row in counter.rows()]
            scores[model] = result = scorer.result()
            for stratum, values in result.values.items():
                metric_rows += [
                    (model, target.biosample, target.assay, m, v, stratum) for m, v in values.items()
                ]
            bar.update()
        first = next(iter(scores.values()))
        strata_rows += [(target.biosample, target.assay, s, n) for s, n in first.sizes.items()]
        if options.n_boot > 0:
            rng = np.random.default_rng([options.seed, target_index])
            track_intervals, track_differences = bootstrap_intervals(scores, n_boot=options.n_boot, rng=rng)
            for frame, bucket in ((track_intervals, intervals), (track_differences, differences)):
                bucket.append(frame.assign(cell_type=target.biosample, assay=target.assay))
        def counts_of(contig: str, assay: str = target.assay) -> NDArray | None:  # type: ignore[type-arg]
            return _load(_context_path(work, "count", contig, assay))

        if target.assay not in assays_with_locus:
            locus = specific_peak_locus(store, sources, target, counts_of,
                                        n_cells=len(_assay_cells(store, target.assay)),
                                        bin_size=bin_size, params=options.peak_params)
            if locus is not None:
                loci.append(locus)
                assays_with_locus.add(target.assay)
        spread_models = [m for m in target.models
                         if sources[m].file_for(spread_key(target.key)) is not None]
        if spread_models and not any(locus.bands for locus in loci):
            loci += error_loci(store, sources[spread_models[0]], target, counts_of,
                               bin_size=bin_size, params=options.peak_params)
    bar.close()
    metrics = pd.DataFrame(metric_rows, columns=METRICS_COLUMNS)
    return Evaluation(
        metrics=metrics,
        strata=pd.DataFrame(strata_rows, columns=["cell_type", "assay", "stratum", "n_bins"]),
        group_tests=group_tests(metrics),
        paired_tests=paired_model_tests(metrics),
        intervals=_front(intervals, ["model", "cell_type", "assay"]),
        differences=_front(differences, ["model_a", "model_b", "cell_type", "assay"]),
        loci=loci,
        calibration=pd.DataFrame(coverage_rows, columns=CALIBRATION_COLUMNS),
    )


def _front(frames: list[pd.DataFrame], first: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=first)
    frame = pd.concat(frames, ignore_index=True)
    return frame[first + [c for c in frame.columns if c not in first]]
