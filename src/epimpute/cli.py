"""The ``epimpute`` command: parses arguments, calls :mod:`epimpute.api`, prints results."""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Sequence

from epimpute import __version__
from epimpute.errors import EpimputeError, InputError, Terminated
from epimpute.provenance import recording_command

log = logging.getLogger("epimpute")


def _ingest(args: argparse.Namespace) -> None:
    from epimpute.api import ingest

    store = ingest(args.samples, args.out, chrom_sizes=args.chrom_sizes,
                   chroms=args.chroms.split(",") if args.chroms else None,
                   bin_size=args.bin_size, transformed=args.transformed, jobs=args.jobs,
                   overwrite=args.overwrite, progress=not args.quiet)
    bins = sum(store.n_bins(c) for c in store.contigs)
    print(f"wrote {store.path}: {len(store.tracks)} tracks, {len(store.biosamples)} cell types, "
          f"{len(store.assays)} assays, {len(store.contigs)} contigs, {bins:,} bins of "
          f"{store.bin_size} bp")


def _precision_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="auto (default): bf16 autocast on GPUs and on CPUs with native "
                             "bf16 (AVX512-BF16/AMX), fp32 elsewhere")


def _train(args: argparse.Namespace) -> None:
    from epimpute.api import train

    out = train(args.store, args.out, model=args.model, config=args.config,
                exclude=args.exclude, seed=args.seed, device=args.device,
                max_minutes=args.max_minutes, resume=args.resume, precision=args.precision,
                progress=not args.quiet, genome=args.genome)
    print(f"saved {args.model} model to {out}")


def _extend(args: argparse.Namespace) -> None:
    from epimpute.api import extend

    out = extend(args.model_dir, args.store, args.out, mode=args.mode, config=args.config,
                 exclude=args.exclude, seed=args.seed, device=args.device,
                 max_minutes=args.max_minutes, precision=args.precision,
                 progress=not args.quiet, probe_share=args.probe_share)
    print(f"saved the extended model ({args.mode}) to {out}")


def _impute(args: argparse.Namespace) -> None:
    from epimpute.api import impute

    paths = impute(args.model_dir, args.store, args.out, targets=args.targets,
                   missing=args.missing, format=args.format,
                   arcsinh=args.arcsinh, device=args.device, precision=args.precision,
                   overwrite=args.overwrite, progress=not args.quiet, genome=args.genome)
    for path in paths:
        print(path)


def _evaluate(args: argparse.Namespace) -> None:
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
    print(f"report: {Path(args.out) / 'report.html'}")


def _variants(args: argparse.Namespace) -> None:
    from epimpute.api import variants

    out = variants(args.model_dir, args.store, args.out, vcf=args.vcf, cell_type=args.cell_type,
                   genome=args.genome, overwrite=args.overwrite, progress=not args.quiet)
    print(f"wrote {out}")


def _factors(args: argparse.Namespace) -> None:
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


def _demo(args: argparse.Namespace) -> None:
    from epimpute.demo import run_demo

    print(run_demo(args.out, seed=args.seed, progress=not args.quiet).text())


def _synth_sequence(args: argparse.Namespace) -> None:
    from epimpute.api import synth_sequence

    store = synth_sequence(args.genome, args.out, cell_types=args.cell_types, seed=args.seed,
                           start=args.start, end=args.end, contig=args.contig,
                           accessibility=args.accessibility, overwrite=args.overwrite,
                           progress=not args.quiet)
    print(f"wrote {store.path}: {len(store.tracks)} tracks of {len(store.biosamples)} cell "
          f"types on {args.contig}; truth in {store.path / 'truth'}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``epimpute`` command."""
    parser = argparse.ArgumentParser(
        prog="epimpute",
        description="Impute unmeasured epigenomic signal tracks from a compendium.")
    parser.add_argument("--version", action="version", version=f"epimpute {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or log")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("ingest", help="bin bigWig/bedGraph/array tracks into a store")
    p.add_argument("samples", type=Path,
                   help="sample sheet (TSV): cell_type, assay, path[, individual][, chrom]")
    p.add_argument("--out", type=Path, required=True, help="store to create (e.g. data.zarr)")
    p.add_argument("--chrom-sizes", type=Path, help="two-column contig sizes file")
    p.add_argument("--chroms", help="comma-separated contigs to keep")
    p.add_argument("--bin-size", type=int, default=25, help="bin width in bp (default 25)")
    p.add_argument("--transformed", action="store_true",
                   help="values are already arcsinh-transformed")
    p.add_argument("--jobs", type=int, default=1, help="tracks ingested in parallel")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing store (only an epimpute store)")
    p.set_defaults(run=_ingest)

    p = commands.add_parser("train", help="train an imputation model on a store")
    p.add_argument("store", type=Path)
    p.add_argument("--model", default="edice",
                   help="average, edice, avocado, seqcell (default edice)")
    p.add_argument("--out", type=Path, required=True, help="model folder to write")
    p.add_argument("--config", type=Path,
                   help='JSON {"model": {...}, "training": {...}} of hyperparameters')
    p.add_argument("--exclude", action="append", default=[], metavar="CELL:ASSAY",
                   help="hide an observed track from training and inputs (repeatable; "
                        "shell patterns such as 'liver@B:*' allowed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--max-minutes", type=float, help="wall-clock training budget")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--genome", type=Path, metavar="FASTA",
                   help="reference genome (FASTA or 2bit) of the store; seqcell only")
    _precision_option(p)
    p.set_defaults(run=_train)

    p = commands.add_parser("extend",
                            help="add a store's new cell types, assays and individuals to a "
                                 "trained model")
    p.add_argument("model_dir", type=Path, help="the trained model")
    p.add_argument("store", type=Path, help="store with the old and the new tracks")
    p.add_argument("--out", type=Path, required=True, help="folder of the extended model")
    p.add_argument("--mode", choices=["freeze", "finetune"], default="freeze",
                   help="freeze: train only the new items' parameters (existing imputations "
                        "unchanged); finetune: train those first, then everything at a tenth "
                        "of the learning rate")
    p.add_argument("--probe-share", type=float, metavar="F",
                   help="finetune: share of the budget that trains only the new items' "
                        "parameters (default 0.5; 0 trains everything from the start)")
    p.add_argument("--config", type=Path,
                   help='JSON {"training": {...}} overriding the base model\'s training settings')
    p.add_argument("--exclude", action="append", default=[], metavar="CELL:ASSAY",
                   help="hide a track of the store (repeatable; shell patterns allowed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--max-minutes", type=float, help="wall-clock training budget")
    _precision_option(p)
    p.set_defaults(run=_extend)

    p = commands.add_parser("impute", help="impute tracks genome-wide with a trained model")
    p.add_argument("model_dir", type=Path)
    p.add_argument("store", type=Path)
    p.add_argument("--target", action="append", default=[], dest="targets",
                   metavar="CELL:ASSAY",
                   help="track to impute (repeatable); an observed one is left out of the "
                        "inputs (leave-one-out)")
    p.add_argument("--missing", action="store_true",
                   help="impute every cell type x assay the store lacks")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--format", choices=["bigwig", "npz"], default="bigwig")
    p.add_argument("--arcsinh", action="store_true",
                   help="bigWig values on the arcsinh scale instead of -log10 p")
    p.add_argument("--device", default="auto")
    p.add_argument("--overwrite", action="store_true",
                   help="replace imputations of the same tracks already in --out")
    _precision_option(p)
    p.add_argument("--genome", type=Path, metavar="FASTA",
                   help="reference genome of a seqcell model (default: the one it records)")
    p.set_defaults(run=_impute)

    p = commands.add_parser("evaluate", help="score imputed tracks against a truth store")
    p.add_argument("--truth", type=Path, required=True, metavar="STORE",
                   help="store holding the observed tracks")
    p.add_argument("--pred", action="append", required=True, metavar="NAME=DIR",
                   help="a model's imputation folder (CELL.ASSAY.npz or .bw); repeatable")
    p.add_argument("--out", type=Path, required=True, metavar="REPORT_DIR")
    p.add_argument("--genes", type=Path, metavar="BED",
                   help="genes BED (chrom start end id score strand; .gz ok): mseprom, msegene")
    p.add_argument("--enhancers", type=Path, metavar="BED", help="enhancers BED: mseenh")
    p.add_argument("--target", action="append", dest="targets", metavar="CELL:ASSAY",
                   help="score only this track (repeatable)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="block-bootstrap resamples (0: none)")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.add_argument("--overwrite", action="store_true",
                   help="replace REPORT_DIR (only an epimpute report)")
    p.set_defaults(run=_evaluate)

    p = commands.add_parser("factors",
                            help="export an avocado model's genome factors and embeddings")
    p.add_argument("model_dir", type=Path)
    p.add_argument("--chrom", required=True, help="contig whose factors to export")
    p.add_argument("--out", type=Path, required=True, help="output .npz file")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing factors file (only one written by epimpute)")
    p.set_defaults(run=_factors)

    p = commands.add_parser("variants",
                            help="score single-base variants with a seqcell model: each mark "
                                 "with REF and ALT in one cell type")
    p.add_argument("model_dir", type=Path, help="the trained seqcell model")
    p.add_argument("store", type=Path, help="store with the cell type's accessibility track")
    p.add_argument("--vcf", type=Path, required=True, help="VCF of single-base substitutions")
    p.add_argument("--cell-type", required=True, help="cell type to score in")
    p.add_argument("--genome", type=Path, metavar="FASTA",
                   help="reference genome (default: the one the model records)")
    p.add_argument("--out", type=Path, required=True, help="tab-separated table to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing table")
    p.set_defaults(run=_variants)

    p = commands.add_parser("synth-sequence",
                            help="generate ATAC and histone tracks with known truth on a real "
                                 "genome's sequence and JASPAR motifs")
    p.add_argument("--genome", type=Path, required=True,
                   help="FASTA (plain, gzip or bgzip) or 2bit, e.g. hg19 chr22")
    p.add_argument("--out", type=Path, required=True, help="store to create (e.g. seq.zarr)")
    p.add_argument("--cell-types", type=int, default=6, help="number of cell types (2-8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--contig", default="22", help="contig of the genome (default 22)")
    p.add_argument("--start", type=int, help="window start in bp (default 16,050,000)")
    p.add_argument("--end", type=int, help="window end in bp (default 22,000,000)")
    p.add_argument("--accessibility", choices=("ATAC", "DNase"), default="ATAC",
                   help="name of the accessibility assay (default ATAC)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing store (only an epimpute store)")
    p.set_defaults(run=_synth_sequence)

    p = commands.add_parser("demo", help="run ingest, train, impute and scoring on an example")
    p.add_argument("--out", type=Path, default=Path("epimpute-demo"),
                   help="folder for the demo's files (default ./epimpute-demo)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the generated data and of training (default 0)")
    p.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s: %(message)s")
    run: Callable[[argparse.Namespace], None] = args.run
    try:
        with _sigterm_raises(), recording_command([parser.prog, *argv]):
            run(args)
    except EpimputeError as error:
        print(f"epimpute {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # disk full, permissions, ...: the environment, not a bug
        print(f"epimpute {args.command}: error: {_describe(error)}", file=sys.stderr)
        return 2
    except Terminated:
        print("terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def _describe(error: OSError) -> str:
    """``PATH: reason`` of a failed system call."""
    reason = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        reason = "no space left on the device"
    where = error.filename if error.filename is not None else None
    return f"{where}: {reason}" if where else reason


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while the block runs, so that temporary files
    and folders are removed on the way out (only in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
