"""The argument parser of the ``epimpute`` command: every subcommand and option."""


from __future__ import annotations

import argparse
from pathlib import Path

from epimpute import __version__
from epimpute.cli import commands as handlers


def _precision_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="auto (default): bf16 autocast on GPUs and on CPUs with native "
                             "bf16 (AVX512-BF16/AMX), fp32 elsewhere")


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
    p.set_defaults(run=handlers.ingest)

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
    p.set_defaults(run=handlers.train)

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
    p.set_defaults(run=handlers.extend)

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
    p.add_argument("--format", choices=["bigwig", "npz", "zarr"], default="bigwig",
                   help="one bigWig or npz file per track in the folder --out, or zarr: "
                        "--out is a store of the imputed tracks (arcsinh scale)")
    p.add_argument("--arcsinh", action="store_true",
                   help="bigWig values on the arcsinh scale instead of -log10 p")
    p.add_argument("--device", default="auto")
    p.add_argument("--overwrite", action="store_true",
                   help="replace imputations of the same tracks already in --out (zarr: an "
                        "earlier epimpute store)")
    p.add_argument("--chunk-bins", type=int, default=100_000, metavar="N",
                   help="bins imputed per window (fewer when many tracks; default 100000)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted imputation, skipping finished windows")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="run windows on a local Dask cluster of N processes")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run windows on a running Dask scheduler (tcp://host:8786)")
    _precision_option(p)
    p.add_argument("--genome", type=Path, metavar="FASTA",
                   help="reference genome of a seqcell model (default: the one it records)")
    p.add_argument("--uncertainty", action="store_true",
                   help="also write each track's predicted sd (arcsinh scale) beside it, "
                        "CELL.ASSAY.sd.bw/.npz (zarr: track CELL:ASSAY.sd); needs a model "
                        "trained with uncertainty")
    p.set_defaults(run=handlers.impute)

    p = commands.add_parser("suggest",
                            help="rank the tracks a store lacks by what measuring them would "
                                 "teach the model: which to measure next")
    p.add_argument("model_dir", type=Path, help="a trained eDICE model")
    p.add_argument("store", type=Path, help="store of the measured tracks")
    p.add_argument("--top", type=int, metavar="N", help="keep the N highest-ranked tracks")
    p.add_argument("--out", type=Path, metavar="TSV",
                   help="table to write (rank, cell_type, assay, score); default: print it")
    p.add_argument("--criterion", choices=("simulated", "retrained", "spread"),
                   default="simulated",
                   help="simulated: expected MSE drop of the cell type's other missing "
                        "tracks, by held-out simulation on donor cell types (default); "
                        "retrained: the same, retraining a model from scratch for every "
                        "simulated measurement (costly: up to 1 + candidates trainings per "
                        "donor); spread: the track's mean predicted sd (models with "
                        "uncertainty)")
    p.add_argument("--sample-bins", type=int, metavar="N",
                   help="bins the scores are taken over, in windows spread evenly over the "
                        "genome (default 50000 simulated and retrained, 200000 spread)")
    p.add_argument("--donors", type=int, metavar="N",
                   help="simulated / retrained: donor cell types per cell type, at most "
                        "(default 4 / 2)")
    p.add_argument("--retrain-epochs", type=int, metavar="N",
                   help="retrained: epochs per retraining (default: as many as the model "
                        "trained)")
    p.add_argument("--seed", type=int, default=0, help="retrained: seed of every retraining")
    p.add_argument("--device", default="auto")
    _precision_option(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing table")
    p.set_defaults(run=handlers.suggest)

    p = commands.add_parser("export", help="write tracks of a store as bigWig or npz files")
    p.add_argument("store", type=Path, help="any store (e.g. one written by impute --format "
                                            "zarr)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--track", action="append", dest="tracks", metavar="CELL:ASSAY",
                       help="a track to export (repeatable; shell patterns allowed)")
    which.add_argument("--all-tracks", action="store_true", help="every track of the store")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--format", choices=["bigwig", "npz"], default="bigwig")
    p.add_argument("--arcsinh", action="store_true",
                   help="bigWig values on the arcsinh scale instead of -log10 p")
    p.set_defaults(run=handlers.export)

    p = commands.add_parser("evaluate", help="score imputed tracks against a truth store")
    p.add_argument("--truth", type=Path, required=True, metavar="STORE",
                   help="store holding the observed tracks")
    p.add_argument("--pred", action="append", required=True, metavar="NAME=DIR",
                   help="a model's imputation folder (CELL.ASSAY.npz or .bw); repeatable")
    p.add_argument("--out", type=Path, required=True, metavar="REPORT_DIR")
    p.add_argument("--genes", type=Path, metavar="BED",
                   help="genes BED (chrom start end id score strand; .gz ok): mseprom, msegene, "
                        "distance-to-TSS strata")
    p.add_argument("--enhancers", type=Path, metavar="BED", help="enhancers BED: mseenh")
    p.add_argument("--target", action="append", dest="targets", metavar="CELL:ASSAY",
                   help="score only this track (repeatable)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="block-bootstrap resamples (0: none)")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.add_argument("--overwrite", action="store_true",
                   help="replace REPORT_DIR (only an epimpute report)")
    p.set_defaults(run=handlers.evaluate)

    p = commands.add_parser("factors",
                            help="export an avocado model's genome factors and embeddings")
    p.add_argument("model_dir", type=Path)
    p.add_argument("--chrom", required=True, help="contig whose factors to export")
    p.add_argument("--out", type=Path, required=True, help="output .npz file")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing factors file (only one written by epimpute)")
    p.set_defaults(run=handlers.factors)

    p = commands.add_parser("variants",
                            help="score single-base variants with a seqcell model: each mark "
                                 "with REF and ALT in one cell type")
    p.add_argument("model_dir", type=Path, help="the trained seqcell model")
    p.add_argument("store", type=Path, help="store with the cell type's accessibility track")
    p.add_argument("--vcf", type=Path, required=True, help="VCF of single-base substitutions")
    p.add_argument("--cell-type", required=True, help="cell type to score in")
    p.add_argument("--genome", type=Path, metavar="FASTA",
                   help="reference genome (default: the one the model records)")
    p.add_argument("--mode", choices=("centred", "full"), default="centred",
                   help="centred (default): the prediction at the variant's bin; full: the "
                        "mean over every bin within the network's reach, averaged over "
                        "window placements")
    p.add_argument("--stride", type=int, default=16, metavar="BINS",
                   help="full mode: model bins between two window placements (default 16)")
    p.add_argument("--out", type=Path, required=True, help="tab-separated table to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing table")
    p.set_defaults(run=handlers.variants)

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
    p.add_argument("--site-rule", choices=("strongest", "random"), default="strongest",
                   help="sites: each TF's strongest matches (default) or drawn at random "
                        "among the matches")
    p.add_argument("--variant-gc", choices=("any", "balanced"), default="any",
                   help="planted variants: the substitution that most moves the match "
                        "(default) or, balanced, ones whose GC change does not tell a break "
                        "from a create (same tracks)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing store (only an epimpute store)")
    p.set_defaults(run=handlers.synth_sequence)

    p = commands.add_parser("synth", help="generate a compendium shaped like a real one")
    p.add_argument("--like", required=True, metavar="MANIFEST|roadmap|pilot",
                   help="observation pattern: a manifest TSV (Biosample, Assay columns), "
                        "roadmap (127 x 24) or pilot (5 x 5)")
    p.add_argument("--bins", type=int, required=True, help="genome length in bins")
    p.add_argument("--out", type=Path, required=True, help="store to create")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bin-size", type=int, default=25, help="bin width in bp (default 25)")
    p.add_argument("--jobs", type=int, default=1, help="processes drawing chunks in parallel")
    p.set_defaults(run=handlers.synth)

    p = commands.add_parser("replicates",
                            help="draw negative-binomial replicate tracks of observed or "
                                 "imputed means into a store")
    p.add_argument("store", type=Path,
                   help="observed store: contigs, bin size, dispersion (and means without "
                        "--imputed)")
    p.add_argument("--target", action="append", default=[], dest="targets",
                   metavar="CELL:ASSAY", help="track to replicate (repeatable)")
    p.add_argument("--imputed", type=Path, metavar="DIR",
                   help="take the means from this imputation folder instead of the store")
    p.add_argument("--n", type=int, default=3, help="replicates per track (default 3)")
    p.add_argument("--scale", type=float, default=10.0,
                   help="pseudo-reads per bin for one unit of -log10 p (default 10)")
    p.add_argument("--block", type=int, default=40,
                   help="bins sharing one replicate fluctuation (default 40)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="replicate store to create")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing replicate store")
    p.set_defaults(run=handlers.replicates)

    p = commands.add_parser("differential",
                            help="differential peaks of two cell types from replicate stores "
                                 "(PyDESeq2)")
    p.add_argument("replicates", type=Path, nargs="+", help="replicate store(s)")
    p.add_argument("--cell-type", action="append", default=[], dest="cell_types",
                   metavar="CELL", help="the two cell types, the reference first (give twice)")
    p.add_argument("--assay", required=True)
    p.add_argument("--fdr", type=float, default=0.05,
                   help="significance threshold on padj (default 0.05)")
    p.add_argument("--peaks", type=Path, metavar="BED",
                   help="test these regions instead of peaks called on the replicates")
    p.add_argument("--out", type=Path, required=True, metavar="PREFIX",
                   help="writes PREFIX.tsv (all peaks) and PREFIX.bed (significant ones)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier result")
    p.set_defaults(run=handlers.differential)

    p = commands.add_parser("compare",
                            help="peak-shape Wasserstein distances of two cell types, observed "
                                 "vs imputed")
    p.add_argument("--truth", type=Path, required=True, metavar="STORE")
    p.add_argument("--imputed", type=Path, required=True, metavar="DIR",
                   help="imputation folder with both cell types' tracks")
    p.add_argument("--cell-type", action="append", default=[], dest="cell_types",
                   metavar="CELL", help="the two cell types (give twice)")
    p.add_argument("--assay", required=True)
    p.add_argument("--out", type=Path, required=True, metavar="TSV")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier table")
    p.set_defaults(run=handlers.compare)

    p = commands.add_parser("downstream",
                            help="cross-validate a predictor of gene or region labels on "
                                 "features of stores, imputations or genome factors")
    p.add_argument("--feature", action="append", default=[], dest="features", required=True,
                   metavar="NAME=PATH",
                   help="a feature set (repeatable): store, imputation folder, factors .npz "
                        "(repeat NAME for one file per contig) or .npy matrix (row names "
                        "in X.rows.txt, else the labels' order)")
    p.add_argument("--genes", type=Path, metavar="BED",
                   help="one row per gene: chrom start end id [score strand] (.gz ok)")
    p.add_argument("--tile", type=int, metavar="BP", help="one row per tile of BP bp instead")
    p.add_argument("--region", choices=["promoter", "body", "both"], default="promoter",
                   help="gene windows (default promoter: TSS +/- --promoter bp)")
    p.add_argument("--promoter", type=int, default=2000, metavar="BP",
                   help="promoter half width (default 2000)")
    p.add_argument("--flank", type=int, default=0, metavar="K",
                   help="also K flanking windows of the same width on each side")
    p.add_argument("--labels", type=Path, metavar="TSV", help="id<TAB>value per row")
    p.add_argument("--positives", type=Path, metavar="BED",
                   help="positive regions instead: rows overlapping one are 1, others 0")
    p.add_argument("--task", choices=["auto", "regression", "classification"], default="auto")
    p.add_argument("--split", choices=["chrom", "block"], default="chrom",
                   help="folds by chromosome or by --block bp blocks (default chrom)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--block", type=int, default=1_000_000, metavar="BP",
                   help="block size, and least test-to-training distance with --split block")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, metavar="TSV",
                   help="metrics table to write")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing table (only one written by epimpute)")
    p.set_defaults(run=handlers.downstream)

    p = commands.add_parser("demo", help="run ingest, train, impute and scoring on an example")
    p.add_argument("--out", type=Path, default=Path("epimpute-demo"),
                   help="folder for the demo's files (default ./epimpute-demo)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the generated data and of training (default 0)")
    p.set_defaults(run=handlers.demo)
    return parser
