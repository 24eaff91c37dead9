"""Motif libraries for seqcell's ``stem_motifs`` in ``benchmarks/sequence.py --motifs``.

All from the JASPAR release of :data:`epimpute.motifs.JASPAR_RELEASE` packaged with pyjaspar:

- ``generator``: the 19 matrices pinned in :data:`epimpute.motifs.JASPAR_IDS`, the 17 that
  synth-sequence's default grammar plants and the two it leaves unused (EBF1, NR3C1);
- ``decoys``: 45 CORE vertebrate matrices (latest versions, at most 21 columns) of factors
  that are none of those (nor part of their dimers), drawn with seed 0 from the sorted IDs;
- ``library``: ``generator`` and ``decoys``, 64 matrices;
- ``versions``: for each pinned factor the latest *other* JASPAR version of its matrix
  (POU5F1::SOX2 has none: SOX2's matrix instead), and the decoys: the grammar's factors
  as a database would hold them when the matrix a genome follows is not the one it lists.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np

from epimpute.motifs import JASPAR_IDS, JASPAR_RELEASE

LIBRARIES = ("generator", "decoys", "library", "versions")
N_DECOYS = 45
MAX_COLUMNS = 21
SOX2 = "MA0143.5"


@cache
def _database():
    from pyjaspar import jaspardb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jaspardb(release=JASPAR_RELEASE)


@cache
def decoys() -> tuple[str, ...]:
    """The 45 decoy matrix IDs (see the module); drawn once per process."""
    taken = {n.upper() for n in JASPAR_IDS} | {p.upper() for n in JASPAR_IDS for p in n.split("::")}
    pool = sorted(m.matrix_id for m in _database().fetch_motifs(collection="CORE",
                                                                tax_group=["vertebrates"])
                  if m.length <= MAX_COLUMNS and m.name.upper() not in taken
                  and not any(p in taken for p in m.name.upper().split("::")))
    return tuple(sorted(np.random.default_rng(0).choice(pool, N_DECOYS, replace=False).tolist()))


def other_versions() -> list[str]:
    """For each pinned factor, the latest other version of its matrix (see the module)."""
    versions: dict[str, list[str]] = {}
    for motif in _database().fetch_motifs(collection=["CORE", "UNVALIDATED"],
                                          tax_group=["vertebrates"], all_versions=True):
        versions.setdefault(motif.matrix_id.split(".")[0], []).append(motif.matrix_id)
    chosen = []
    for pinned in JASPAR_IDS.values():
        others = [m for m in versions.get(pinned.split(".")[0], []) if m != pinned]
        chosen.append(max(others, key=lambda m: int(m.split(".")[1])) if others else SOX2)
    return chosen


def stem_motifs(library: str) -> list[str]:
    """The matrix IDs of a library of :data:`LIBRARIES`."""
    if library == "generator":
        return list(JASPAR_IDS.values())
    if library == "decoys":
        return list(decoys())
    if library == "library":
        return [*JASPAR_IDS.values(), *decoys()]
    if library == "versions":
        return [*other_versions(), *decoys()]
    raise ValueError(f"unknown motif library {library!r}; choose from {', '.join(LIBRARIES)}")
