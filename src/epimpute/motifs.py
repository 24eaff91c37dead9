"""Transcription-factor motifs from JASPAR (through ``pyjaspar``) and FIMO-style scanning
(through ``memelite``).

``pyjaspar`` ships the JASPAR releases as sqlite files inside the package, so loading a
motif reads a local file and never the network. Motifs are pinned by matrix ID (name and
version) in :data:`JASPAR_IDS`, from the release :data:`JASPAR_RELEASE`, so a generated
compendium does not change when a newer JASPAR release becomes the package's default.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from epimpute.errors import InputError

__all__ = ["JASPAR_IDS", "JASPAR_RELEASE", "Motif", "consensus", "jaspar_library",
           "jaspar_motifs", "scan"]

JASPAR_RELEASE = "JASPAR2026"
# Well-known vertebrate CORE motifs, name -> matrix ID in JASPAR_RELEASE.
JASPAR_IDS = {
    "CTCF": "MA0139.2", "SP1": "MA0079.5", "NRF1": "MA0506.3", "ZNF143": "MA0088.3",
    "NFYB": "MA0502.3", "GATA1::TAL1": "MA0140.3", "SPI1": "MA0080.7", "RUNX1": "MA0002.3",
    "HNF4A": "MA0114.5", "HNF1A": "MA0046.3", "FOXA2": "MA0047.4",
    "POU5F1::SOX2": "MA0142.1", "TP53": "MA0106.3", "REST": "MA0138.3", "CEBPB": "MA0466.4",
    "MAX::MYC": "MA0059.2", "TEAD1": "MA0090.4", "EBF1": "MA0154.5", "NR3C1": "MA0113.4",
}


_MATRIX_ID = re.compile(r"MA\d{4}\.\d+")


@dataclass(frozen=True)
class Motif:
    """A position probability matrix.

    Attributes
    ----------
    name
        Transcription factor: a key of :data:`JASPAR_IDS`, or JASPAR's name for motifs
        given by matrix ID.
    matrix_id
        JASPAR matrix ID with version.
    pwm
        Shape ``(4, length)``: probabilities of A, C, G, T at each position (columns sum to 1).
    """

    name: str
    matrix_id: str
    pwm: np.ndarray

    @property
    def length(self) -> int:
        return int(self.pwm.shape[1])


@cache
def _load(matrix_id: str, release: str) -> tuple[str, np.ndarray]:
    from pyjaspar import jaspardb

    with warnings.catch_warnings():  # an unknown ID: pyjaspar warns, the error below says it
        warnings.simplefilter("ignore")
        record = jaspardb(release=release).fetch_motif_by_id(matrix_id)
    if record is None:
        raise InputError(f"JASPAR {release} has no matrix {matrix_id}")
    counts = np.array([record.counts[base] for base in "ACGT"], dtype=np.float64)
    return str(record.name), counts / counts.sum(axis=0, keepdims=True)


def jaspar_motifs(names: Sequence[str], *, release: str = JASPAR_RELEASE) -> list[Motif]:
    """The JASPAR motifs of the named factors (names of :data:`JASPAR_IDS`, any case).

    Raises
    ------
    InputError
        If a name is not in :data:`JASPAR_IDS`.
    """
    upper = {name.upper(): name for name in JASPAR_IDS}
    motifs = []
    for name in names:
        key = upper.get(name.upper())
        if key is None:
            raise InputError(f"no JASPAR motif pinned for {name!r}; known: "
                             f"{', '.join(JASPAR_IDS)}")
        _, pwm = _load(JASPAR_IDS[key], release)
        motifs.append(Motif(key, JASPAR_IDS[key], pwm.copy()))
    return motifs


def jaspar_library(entries: Sequence[str], *, release: str = JASPAR_RELEASE) -> list[Motif]:
    """Motifs given by JASPAR matrix ID with version (``MA0139.2``) or by a name of
    :data:`JASPAR_IDS`, in the order given.

    Raises
    ------
    InputError
        On an entry that is neither, a matrix ID the release lacks, or a repeated motif.
    """
    motifs = []
    for entry in entries:
        if _MATRIX_ID.fullmatch(entry):
            name, pwm = _load(entry, release)
            motifs.append(Motif(name, entry, pwm.copy()))
        else:
            motifs.extend(jaspar_motifs([entry], release=release))
    ids = [m.matrix_id for m in motifs]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise InputError(f"motifs given twice: {', '.join(repeated)}")
    return motifs


def consensus(motif: Motif) -> str:
    """The most probable base at each position (the best-scoring sequence)."""
    return "".join("ACGT"[i] for i in motif.pwm.argmax(axis=0))


def scan(motifs: Sequence[Motif], x: np.ndarray, *, threshold: float) -> pd.DataFrame:
    """Matches of each motif on both strands with a FIMO p-value below ``threshold``.

    Scores are log2 odds against a uniform background (pseudocount 1e-4) and p-values come
    from the exact score distribution, as in MEME's FIMO (memelite's implementation).
    Positions that are not A, C, G or T (all-zero columns) score 0.

    Parameters
    ----------
    motifs
        The motifs (distinct names).
    x
        One-hot sequence, shape ``(4, length)``, or a batch ``(n, 4, length)``.
    threshold
        p-value threshold, in ``(0, 1)``.

    Returns
    -------
    pandas.DataFrame
        One row per match: ``tf``, ``sequence`` (index in the batch), ``start``, ``end``
        (0-based, half-open), ``strand`` (``+``/``-``), ``score``, ``p_value``; sorted by
        sequence, start, tf and strand.
    """
    from memelite import fimo

    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    batch = np.asarray(x, dtype=np.float32)
    batch = batch[None] if batch.ndim == 2 else batch
    columns = ["tf", "sequence", "start", "end", "strand", "score", "p_value"]
    if not motifs or batch.shape[-1] == 0:
        return pd.DataFrame(columns=columns)
    hits = fimo({m.name: m.pwm for m in motifs}, batch, threshold=threshold)
    frames = [h.rename(columns={"motif_name": "tf", "sequence_name": "sequence",
                                "p-value": "p_value"})[columns] for h in hits if len(h)]
    if not frames:
        return pd.DataFrame(columns=columns)
    table = pd.concat(frames, ignore_index=True)
    table = table.astype({"tf": str, "sequence": np.int64, "start": np.int64, "end": np.int64})
    return table.sort_values(["sequence", "start", "tf", "strand"], ignore_index=True)
