"""The inputs of sequence models beyond the store: the genome and the accessibility panel.

A seqcell model directory records the genome's path and a checksum of its contig names
and lengths (``config.json`` ``config.panel.genome``); imputing checks a genome against it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from epimpute.errors import InputError
from epimpute.io.genome import Genome, check_contigs, open_genome
from epimpute.models.seqcell import SeqcellImputer, SequenceSource
from epimpute.store import Store


def contig_checksum(genome: Genome) -> str:
    """sha256 of the genome's contig names and lengths (sorted by name)."""
    text = json.dumps(sorted(genome.contigs.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def genome_record(genome: Genome) -> dict[str, Any]:
    """What a model directory records of its genome."""
    return {"path": str(Path(genome.path).resolve()), "contig_sha256": contig_checksum(genome)}


def open_store_genome(path: Path | None, store: Store, *, model: str = "seqcell") -> Genome:
    """Open ``path`` and check its contigs against ``store``; InputError when there is none."""
    if path is None:
        raise InputError(f"the {model} model reads DNA sequence: give --genome FASTA/2bit")
    genome = open_genome(path)
    try:
        check_contigs(genome, store.contigs)
    except InputError:
        genome.close()
        raise
    return genome


def sequence_source(genome: Genome) -> SequenceSource:
    """One-hot windows of ``genome`` (N padding outside contigs)."""
    return lambda contig, start, end: genome.one_hot(contig, start, end)


def panel_values(store: Store, row: int, contigs: Sequence[str], bins: Sequence[int],
                 step: int) -> np.ndarray:
    """Mean of store row ``row`` over the ``step`` store bins of each panel model bin."""
    out = np.zeros(len(bins), dtype=np.float32)
    contigs, bins = list(contigs), np.asarray(bins, dtype=np.int64)
    for contig in dict.fromkeys(contigs):
        where = np.flatnonzero(np.array(contigs) == contig)
        lo, hi = int(bins[where].min()) * step, (int(bins[where].max()) + 1) * step
        values = store.read(contig, lo, hi, tracks=[row])[0]
        for i in where:
            first = int(bins[i]) * step - lo
            out[i] = values[first: first + step].mean()
    return out


def prepare_imputation(imputer: SeqcellImputer, store: Store, genome_path: Path | None) -> Genome:
    """Open the genome (``genome_path`` or the recorded one), check it against the model and
    ``store``, add the store's cell types with an accessibility track to the model's inputs
    and set their panel values. Returns the genome (close it when done)."""
    record = imputer.config.panel["genome"]
    path = Path(genome_path) if genome_path is not None else Path(record["path"])
    if genome_path is None and not path.exists():
        raise InputError(f"the model's genome {path} is not there: give --genome")
    genome = open_store_genome(path, store)
    if contig_checksum(genome) != record["contig_sha256"]:
        genome.close()
        raise InputError(f"{path}: its contigs differ from those of the genome the model was "
                         f"trained with ({record['path']})")
    layout = imputer.layout
    assay = layout.assays[imputer.assay]
    keys = [t.key for t in store.tracks if t.assay == assay]
    new = [k for k in keys if k not in set(layout.keys)]
    if new:
        imputer.layout = layout.extended([*layout.keys, *new], excluded=layout.excluded)
    panel = imputer.config.panel
    for key in keys:
        row = store.track_index(key)
        assert row is not None
        values = panel_values(store, row, panel["contigs"], panel["bins"], imputer.store_bins)
        imputer.set_panel(imputer.layout.index_of(key)[0], values)
    imputer.use_sequence(sequence_source(genome))
    return genome
