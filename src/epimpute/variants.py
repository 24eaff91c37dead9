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
from epimpute.models.seqcell import SeqcellImputer, coarsen_tracks, model_bin
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
    """Single-base substitutions of a VCF (plain text; ``#`` lines skipped); InputError
    naming the line of a malformed row or another kind of variant."""
    variants = []
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot be read as a VCF ({error})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
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


def score_variants(imputer: SeqcellImputer, genome: Genome, store: Store,
                   variants: list[Variant], cell_type: str, *,
                   progress: bool = False) -> list[dict[str, object]]:
    """One row per variant: status (``ok``, or why it was not scored) and, per mark, the
    prediction (arcsinh) with REF and ALT and their difference at the variant's model bin.

    The cell type's accessibility (local window and global panel) is read from ``store``
    and is the same for both alleles, so the effect is the sequence's alone.
    """
    layout = imputer.layout
    if cell_type not in layout.biosamples:
        raise InputError(f"cell type '{cell_type}' has no accessibility track in {store.path}")
    biosample = layout.biosamples.index(cell_type)
    row = store.track_index(layout.key(biosample, imputer.assay))
    if row is None:
        raise InputError(f"cell type '{cell_type}' has no "
                         f"{layout.assays[imputer.assay]} track in {store.path}")
    marks = imputer.config.panel["marks"]
    context, size, step = imputer.config.context, model_bin(imputer.config), imputer.store_bins
    panel = torch.from_numpy(imputer.panel_input(biosample))[None]
    network = imputer.network.eval()
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
        k = (variant.pos - 1) // size
        lo = (k - context) * size
        reference = genome.one_hot(variant.chrom, lo, (k + context + 1) * size)
        alternative = reference.copy()
        offset = variant.pos - 1 - lo
        alternative[:, offset] = 0.0
        alternative[{"A": 0, "C": 1, "G": 2, "T": 3}[variant.alt], offset] = 1.0
        accessibility = coarsen_tracks(store.read(variant.chrom, (k - context) * step,
                                                  (k + context + 1) * step, tracks=[row]), step)
        with torch.no_grad():
            average, difference = network(torch.from_numpy(np.stack([reference, alternative])),
                                          torch.from_numpy(accessibility).repeat(2, 1),
                                          panel.repeat(2, 1))
        predicted = (average + difference)[:, :, context].numpy()
        result["status"] = "ok"
        for j, mark in enumerate(marks):
            result[f"{mark}:ref"] = float(predicted[0, j])
            result[f"{mark}:alt"] = float(predicted[1, j])
            result[f"{mark}:effect"] = float(predicted[1, j] - predicted[0, j])
        rows.append(result)
    return rows


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
             cell_type: str, genome: Path | None = None, overwrite: bool = False,
             progress: bool = False) -> Path:
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
        variant's 125 bp model bin.
    vcf
        VCF of single-base substitutions (1-based POS).
    cell_type
        The cell type to score in.
    genome
        Reference genome; None: the one the model records.
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
        rows = score_variants(imputer, reference, store, rows_in, cell_type, progress=progress)
    finally:
        reference.close()
    return write_table(rows, imputer.config.panel["marks"], out)
