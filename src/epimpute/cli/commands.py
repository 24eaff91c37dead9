"""What each subcommand does: call :mod:`epimpute.api`, print the result."""


from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from epimpute.errors import InputError


def ingest(args: argparse.Namespace) -> None:
    from epimpute.api import ingest

    store = ingest(args.samples, args.out, chrom_sizes=args.chrom_sizes,
                   chroms=args.chroms.split(",") if args.chroms else None,
                   bin_size=args.bin_size, transformed=args.transformed, jobs=args.jobs,
                   overwrite=args.overwrite, progress=not args.quiet)
    bins = sum(store.n_bins(c) for c in store.contigs)
    print(f"wrote {store.path}: {len(store.tracks)} tracks, {len(store.biosamples)} cell types, "
          f"{len(store.assays)} assays, {len(store.contigs)} contigs, {bins:,} bins of "
          f"{store.bin_size} bp")


def train(args: argparse.Namespace) -> None:
    from epimpute.api import train

    out = train(args.store, args.out, model=args.model, config=args.config,
                exclude=args.exclude, seed=args.seed, device=args.device,
                max_minutes=args.max_minutes, resume=args.resume, precision=args.precision,
                progress=not args.quiet, genome=args.genome)
    print(f"saved {args.model} model to {out}")


def extend(args: argparse.Namespace) -> None:
    from epimpute.api import extend

    out = extend(args.model_dir, args.store, args.out, mode=args.mode, config=args.config,
                 exclude=args.exclude, seed=args.seed, device=args.device,
                 max_minutes=args.max_minutes, precision=args.precision,
                 progress=not args.quiet, probe_share=args.probe_share)
    print(f"saved the extended model ({args.mode}) to {out}")


def impute(args: argparse.Namespace) -> None:
    from epimpute.api import impute

    paths = impute(args.model_dir, args.store, args.out, targets=args.targets,
                   missing=args.missing, format=args.format,
                   arcsinh=args.arcsinh, device=args.device, precision=args.precision,
                   chunk_bins=args.chunk_bins, resume=args.resume, workers=args.workers,
                   scheduler=args.scheduler, overwrite=args.overwrite, progress=not args.quiet,
                   genome=args.genome, uncertainty=args.uncertainty)
    _print_paths(paths)


def _print_paths(paths: Sequence[Path], limit: int = 20) -> None:
    for path in paths[:limit]:
        print(path)
    if len(paths) > limit:
        print(f"... and {len(paths) - limit} more files in {paths[0].parent}")


def suggest(args: argparse.Namespace) -> None:
    from epimpute.api import suggest

    table = suggest(args.model_dir, args.store, top=args.top, out=args.out,
                    criterion=args.criterion, sample_bins=args.sample_bins, donors=args.donors,
                    retrain_epochs=args.retrain_epochs, seed=args.seed, device=args.device,
                    precision=args.precision, overwrite=args.overwrite, progress=not args.quiet)
    if args.out is None:
        print(table.to_csv(sep="\t", index=False, float_format="%.6g"), end="")
    else:
        print(f"wrote {args.out}: {len(table)} tracks ranked")


def export(args: argparse.Namespace) -> None:
    from epimpute.api import export

    _print_paths(export(args.store, args.out, tracks=args.tracks, all_tracks=args.all_tracks,
                        format=args.format, arcsinh=args.arcsinh, progress=not args.quiet))


def evaluate(args: argparse.Namespace) -> None:
    from epimpute.api import evaluate

    predictions: dict[str, Path] = {}
    for item in args.pred:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--pred '{item}': expected NAME=DIR")
        if name in predictions:
            raise InputError(f"--pred: the model name '{name}' is given twice")
        predictions[name] = Path(path)
    table = evaluate(args.truth, predictions, args.out, genes=args.genes,
                     enhancers=args.enhancers, targets=args.targets, bootstrap=args.bootstrap,
                     plots=not args.no_plots, overwrite=args.overwrite,
                     progress=not args.quiet)
    from epimpute.evaluation.summary import summarize

    summary, notes = summarize(table, names=("mse", "gwcorr", "mse1obs"))
    for metric, rows in summary.groupby("metric", sort=False):
        print(f"{metric}: " + ", ".join(f"{m} {v:.4f}" for m, v in zip(rows["model"], rows["mean"])))
    for note in notes:
        print(f"note: {note}")
    import pandas as pd

    from epimpute.evaluation.calibration import summarize_coverage

    coverage = summarize_coverage(pd.read_csv(Path(args.out) / "calibration.tsv", sep="\t"))
    for row in coverage[coverage["stratum"] == "all"].itertuples(index=False):
        print(f"coverage of the central 50/80/95% intervals: {row.model} {row.cover50:.3f} / "
              f"{row.cover80:.3f} / {row.cover95:.3f}")
    print(f"report: {Path(args.out) / 'report.html'}")


def variants(args: argparse.Namespace) -> None:
    from epimpute.api import variants

    out = variants(args.model_dir, args.store, args.out, vcf=args.vcf, cell_type=args.cell_type,
                   genome=args.genome, mode=args.mode, stride=args.stride,
                   overwrite=args.overwrite, progress=not args.quiet)
    print(f"wrote {out}")


def factors(args: argparse.Namespace) -> None:
    import numpy as np

    from epimpute.api import factors

    out = factors(args.model_dir, args.out, chrom=args.chrom, overwrite=args.overwrite)
    with np.load(out) as saved:  # reads only the small arrays named below
        scale_bp = saved["factor_scale_bp"].tolist()
        members = int(saved["members"])
        scales = ", ".join(f"{bp} bp: {scale_bp.count(bp) // members}"
                           for bp in dict.fromkeys(scale_bp))
        per_member = f" ({members} members x {len(scale_bp) // members})" if members > 1 else ""
        print(f"wrote {out}: genome factors of {args.chrom}, {len(scale_bp)} per bin"
              f"{per_member} ({scales}); {len(saved['cell_types'])} cell-type and "
              f"{len(saved['assays'])} assay embeddings")


def synth(args: argparse.Namespace) -> None:
    from epimpute.api import synth

    store = synth(args.like, args.out, bins=args.bins, seed=args.seed, bin_size=args.bin_size,
                  jobs=args.jobs, progress=not args.quiet)
    print(f"wrote {store.path}: {len(store.tracks)} tracks, {len(store.biosamples)} biosamples "
          f"x {len(store.assays)} assays, {args.bins:,} bins of {store.bin_size} bp")

def replicates(args: argparse.Namespace) -> None:
    from epimpute.api import replicates

    out = replicates(args.store, args.out, targets=args.targets, imputed=args.imputed, n=args.n,
                     scale=args.scale, block=args.block, seed=args.seed,
                     overwrite=args.overwrite, progress=not args.quiet)
    print(f"wrote {out}: {args.n} replicates of {len(args.targets)} track(s)")


def differential(args: argparse.Namespace) -> None:
    from epimpute.api import differential

    result = differential(args.replicates, args.out, cell_types=args.cell_types,
                          assay=args.assay, fdr=args.fdr, peaks=args.peaks,
                          overwrite=args.overwrite,
                          progress=not args.quiet)
    print(f"{result.n_significant} of {result.n_peaks} peaks differential at FDR {args.fdr}: "
          f"{result.bed}; all peaks: {result.tsv}")


def compare(args: argparse.Namespace) -> None:
    from epimpute.api import compare

    result = compare(args.truth, args.imputed, args.out, cell_types=args.cell_types,
                     assay=args.assay, overwrite=args.overwrite, progress=not args.quiet)
    print(f"peak-shape Wasserstein distance, observed vs imputed: Spearman "
          f"{result.spearman:.4f} over {result.n_peaks} peaks; per peak: {result.tsv}")

def downstream(args: argparse.Namespace) -> None:
    from epimpute.api import downstream
    from epimpute.downstream.run import format_table

    table = downstream(args.out, features=args.features, genes=args.genes, tile=args.tile,
                       region=args.region, promoter=args.promoter, flank=args.flank,
                       labels=args.labels, positives=args.positives, task=args.task,
                       split=args.split, folds=args.folds, block=args.block, seed=args.seed,
                       overwrite=args.overwrite, progress=not args.quiet)
    print(format_table(table))
    print(f"wrote {args.out}")


def demo(args: argparse.Namespace) -> None:
    from epimpute.demo import run_demo

    print(run_demo(args.out, seed=args.seed, progress=not args.quiet).text())


def synth_sequence(args: argparse.Namespace) -> None:
    from epimpute.api import synth_sequence

    store = synth_sequence(args.genome, args.out, cell_types=args.cell_types, seed=args.seed,
                           start=args.start, end=args.end, contig=args.contig,
                           accessibility=args.accessibility, site_rule=args.site_rule,
                           variant_gc=args.variant_gc, overwrite=args.overwrite, progress=not args.quiet)
    print(f"wrote {store.path}: {len(store.tracks)} tracks of {len(store.biosamples)} cell "
          f"types on {args.contig}; truth in {store.path / 'truth'}")
