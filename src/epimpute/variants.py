"""Variant effects of a sequence model: each mark predicted with the reference and the
alternative allele, in one cell type, at the variant's model bin (``epimpute variants``)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from epimpute.errors import InputError
from epimpute.io.atomic import atomic_file, check_not_input
from epimpute.io.genome import Genome
from epimpute.models.seqcell import (
    SeqcellImputer,
    coarsen_tracks,
    model_bin,
    n_outputs,
    reach,
)
from epimpute.store import Store

BASES = set("ACGT")


@dataclass(frozen=True)
class Variant:
    """One VCF row: 1-based ``pos``, single-base ``ref`` and ``alt``."""

    chrom: str
    pos: int
    id: str
    ref: str
    alt: str
    line: int


def read_vcf(path: Path) -> list[Variant]:
    """Single-base substitutions of a VCF (plain text; ``#`` lines and a leading
    ``CHROM POS ...`` header skipped); InputError naming the line of a malformed row or
    another kind of variant."""
    variants = []
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot be read as a VCF ({error})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if not variants and fields[:2] == ["CHROM", "POS"]:
            continue  # a header without '#' (the truth tables of synth-sequence)
        if len(fields) < 5 or not fields[1].isdigit() or int(fields[1]) < 1:
            raise InputError(f"{path}:{number}: expected CHROM POS ID REF ALT (POS 1-based)")
        ref, alt = fields[3].upper(), fields[4].upper()
        if ref not in BASES or alt not in BASES or ref == alt:
            raise InputError(f"{path}:{number}: only single-base substitutions are scored "
                             f"(REF {fields[3]!r}, ALT {fields[4]!r})")
        variants.append(Variant(fields[0], int(fields[1]), fields[2], ref, alt, number))
    if not variants:
        raise InputError(f"{path}: no variant rows")
    return variants


MODES = ("centred", "full")


def full_window(imputer: SeqcellImputer) -> int:
    """Output model bins of a ``full``-mode window: every bin within the network's reach of
    the variant's bin (``2 * reach + 1``)."""
    return 2 * reach(imputer.config) + 1


def score_variants(imputer: SeqcellImputer, genome: Genome, store: Store,
                   variants: list[Variant], cell_type: str, *, mode: str = "centred",
                   stride: int = 16, progress: bool = False) -> list[dict[str, object]]:
    """One row per variant: status (``ok``, or why it was not scored) and, per mark, the
    prediction (arcsinh) with REF and ALT and their difference.

    ``centred``: at the variant's model bin, in a window centred on it. ``full``: the mean
    over the :func:`full_window` output bins of windows placed so that the variant's bin is
    output bin ``0, stride, 2 * stride, ...`` of the window (whole model bins, so the pools
    keep their phase), averaged over those placements. The cell type's accessibility (local
    window and global panel) is read from ``store`` and is the same for both alleles, so the
    effect is the sequence's alone; so is, for a model with ``average="observed"``, the
    observed mean of the marks over the training cell types other than ``cell_type``. A
    model with ``variant_mask`` sees no accessibility within ``variant_mask`` model bins of
    the variant's bin (with either allele): what it predicts there comes from the sequence,
    the accessibility around and the panel.
    """
    if mode not in MODES:
        raise InputError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise InputError(f"--stride must be a whole number of model bins >= 1, got {stride!r}")
    layout = imputer.layout
    if cell_type not in layout.biosamples:
        raise InputError(f"cell type '{cell_type}' has no accessibility track in {store.path}")
    biosample = layout.biosamples.index(cell_type)
    row = store.track_index(layout.key(biosample, imputer.assay))
    if row is None:
        raise InputError(f"cell type '{cell_type}' has no "
                         f"{layout.assays[imputer.assay]} track in {store.path}")
    columns = imputer.output_columns(cell_type)
    width = 1 if mode == "centred" else full_window(imputer)
    offsets = [0] if mode == "centred" else list(range(0, width, stride))
    panel = torch.from_numpy(imputer.panel_input(biosample))[None]
    groups = None
    if imputer.config.average == "observed":
        groups = imputer.compendium_rows(biosample, store.track_index, where=str(store.path))
    rows = []
    for variant in tqdm(variants, desc="variants", disable=not progress):
        result: dict[str, object] = {"CHROM": variant.chrom, "POS": variant.pos,
                                     "ID": variant.id, "REF": variant.ref, "ALT": variant.alt}
        if variant.chrom not in store.contigs:
            rows.append({**result, "status": f"contig {variant.chrom!r} not in the store"})
            continue
        found = genome.fetch(variant.chrom, variant.pos - 1, variant.pos).upper()
        if found != variant.ref:
            rows.append({**result, "status": f"REF mismatch: the genome has {found}"})
            continue
        predicted = _allele_means(imputer, genome, store, variant, row, panel,
                                  width=width, offsets=offsets, groups=groups)
        result["status"] = "ok"
        for mark, j in columns:
            result[f"{mark}:ref"] = float(predicted[0, j])
            result[f"{mark}:alt"] = float(predicted[1, j])
            result[f"{mark}:effect"] = float(predicted[1, j] - predicted[0, j])
        rows.append(result)
    return rows


def _allele_means(imputer: SeqcellImputer, genome: Genome, store: Store, variant: Variant,
                  row: int, panel: torch.Tensor, *, width: int, offsets: list[int],
                  groups: list[list[int]] | None = None, windows_per_pass: int = 4
                  ) -> np.ndarray:
    """``(2, marks)``: the prediction with REF and with ALT, averaged over the ``width``
    output bins of each window and over the windows (the variant's bin at each offset).
    ``groups``: per mark, the store rows whose mean is the observed base (see
    :meth:`SeqcellImputer.compendium_rows`), or None (the average head's base)."""
    context, size, step = imputer.config.context, model_bin(imputer.config), imputer.store_bins
    k = (variant.pos - 1) // size
    first = k - (width - 1) - context  # model bin where the span of every window starts
    span = 2 * (width - 1) + 1 + 2 * context
    reference = genome.one_hot(variant.chrom, first * size, (first + span) * size)
    alternative = reference.copy()
    offset = variant.pos - 1 - first * size
    alternative[:, offset] = 0.0
    alternative[{"A": 0, "C": 1, "G": 2, "T": 3}[variant.alt], offset] = 1.0
    accessibility = coarsen_tracks(store.read(variant.chrom, first * step,
                                              (first + span) * step, tracks=[row]), step)[0]
    hidden = imputer.config.variant_mask  # the variant's own accessibility: unknown
    if hidden:
        centre = width - 1 + context  # the variant's model bin in the span
        accessibility[max(centre - hidden, 0): centre + hidden + 1] = np.nan
    compendium = None
    if groups is not None:
        compendium = np.stack([coarsen_tracks(store.read(
            variant.chrom, first * step, (first + span) * step, tracks=g).mean(
                axis=0, keepdims=True), step)[0] for g in groups]).astype(np.float32)
    length = width + 2 * context
    total = np.zeros((2, n_outputs(imputer.config)), dtype=np.float64)
    network = imputer.network.eval()
    for lo in range(0, len(offsets), windows_per_pass):
        starts = [width - 1 - o for o in offsets[lo: lo + windows_per_pass]]
        sequence = np.stack([allele[:, s * size: (s + length) * size] for s in starts
                             for allele in (reference, alternative)])
        local = np.stack([accessibility[s: s + length] for s in starts for _ in range(2)])
        observed = None if compendium is None else torch.from_numpy(np.stack(
            [compendium[:, s: s + length] for s in starts for _ in range(2)]))
        with torch.no_grad():
            predicted = network.predict(torch.from_numpy(sequence), torch.from_numpy(local),
                                        panel.repeat(len(sequence), 1), observed)
        means = predicted[:, :, context: context + width].mean(dim=2)
        total += means.double().numpy().reshape(len(starts), 2, -1).sum(axis=0)
    return total / len(offsets)


def write_table(rows: list[dict[str, object]], marks: list[str], out: Path) -> Path:
    """Tab-separated table of :func:`score_variants` rows, written atomically."""
    columns = ["CHROM", "POS", "ID", "REF", "ALT", "status"] + [
        f"{m}:{part}" for m in marks for part in ("ref", "alt", "effect")]
    with atomic_file(out) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, delimiter="\t", restval="",
                                lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.5g}" if isinstance(v, float) else v
                             for k, v in row.items()})
    return out


def variants(model_dir: Path, store: Path | Store, out: Path, *, vcf: Path,
             cell_type: str, genome: Path | None = None, mode: str = "centred",
             stride: int = 16, overwrite: bool = False, progress: bool = False) -> Path:
    """Score the single-base substitutions of a VCF with a seqcell model in one cell type.

    Parameters
    ----------
    model_dir
        A trained seqcell model.
    store
        Store holding the cell type's accessibility track.
    out
        Tab-separated table to write: CHROM POS ID REF ALT, ``status`` (``ok``, a REF
        mismatch with the genome, or a contig the store lacks), then per mark
        ``MARK:ref``, ``MARK:alt`` and ``MARK:effect`` (alt - ref, arcsinh) at the
        variant's 125 bp model bin (``centred``) or averaged over windows (``full``).
    vcf
        VCF of single-base substitutions (1-based POS).
    cell_type
        The cell type to score in.
    genome
        Reference genome; None: the one the model records.
    mode
        ``centred``: the prediction at the variant's model bin. ``full``: the mean over the
        ``2 * reach + 1`` output bins a variant can change, of windows placed so that the
        variant's bin is their output bin 0, ``stride``, ``2 * stride``, ..., averaged.
    stride
        Model bins between two placements of the window in ``full`` mode.
    overwrite
        Replace an existing ``out``.
    progress
        Show a progress bar on stderr.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    InputError
        On a model other than seqcell, a malformed VCF, a genome whose contigs differ from
        the store's or the model's, a cell type without accessibility, or an existing ``out``.
    """
    from epimpute.model_dir import load_model
    from epimpute.seqcell_inputs import prepare_imputation

    model_dir, out, vcf = Path(model_dir), Path(out), Path(vcf)
    if mode not in MODES:
        raise InputError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    store = store if isinstance(store, Store) else Store.open(store)
    check_not_input(out, kind="variant table", inputs=[model_dir, store.path, vcf])
    if out.exists() and not overwrite:
        raise InputError(f"{out} exists; give --overwrite to replace it")
    imputer = load_model(model_dir)
    if not isinstance(imputer, SeqcellImputer):
        raise InputError(f"{model_dir}: variant scoring needs a seqcell model, not "
                         f"{imputer.name}")
    rows_in = read_vcf(vcf)
    reference = prepare_imputation(imputer, store, genome)
    try:
        rows = score_variants(imputer, reference, store, rows_in, cell_type, mode=mode,
                              stride=stride, progress=progress)
    finally:
        reference.close()
    marks = [name for name, _ in imputer.output_columns(cell_type)]
    return write_table(rows, marks, out)
