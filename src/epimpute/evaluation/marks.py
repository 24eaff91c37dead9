"""Group assays by the kind of mark: narrow vs broad, activating vs repressive.

The mark is recognised inside the assay name, so ``H3K27ac``, ``h3k27ac`` and
``ChIP-seq_H3K27ac_signal_p-value`` all name H3K27ac. Narrow and broad follow the ENCODE
histone ChIP-seq pipeline's classes; DNase-seq and ATAC-seq count as narrow. Marks outside
these tables are not grouped (None), and are left out of the group tests.
"""

from __future__ import annotations

import re

__all__ = ["GROUPINGS", "mark_of", "mark_role", "mark_shape"]

_NARROW = ("H2AFZ", "H2A.Z", "H3K27AC", "H3K4ME2", "H3K4ME3", "H3K9AC", "DNASE", "ATAC")
_BROAD = ("H3F3A", "H3K27ME3", "H3K36ME3", "H3K4ME1", "H3K79ME2", "H3K9ME1", "H3K9ME2", "H3K9ME3", "H4K20ME1")
_ACTIVATING = (
    "H2AFZ",
    "H2A.Z",
    "H3K27AC",
    "H3K4ME1",
    "H3K4ME2",
    "H3K4ME3",
    "H3K9AC",
    "H3K36ME3",
    "H3K79ME2",
    "H4K20ME1",
    "DNASE",
    "ATAC",
)
_REPRESSIVE = ("H3K27ME3", "H3K9ME3", "H3K9ME2")

_KNOWN = sorted(set(_NARROW + _BROAD + _ACTIVATING + _REPRESSIVE), key=len, reverse=True)
_PATTERN = re.compile(
    r"(?<![A-Z0-9])(" + "|".join(re.escape(m) for m in _KNOWN) + r")(?![0-9])", flags=re.IGNORECASE
)


def mark_of(assay: str) -> str | None:
    """The known mark named in ``assay`` (upper case, e.g. ``"H3K27AC"``), or None."""
    found = _PATTERN.search(assay)
    return found.group(1).upper() if found else None


def mark_shape(assay: str) -> str | None:
    """``"narrow"`` or ``"broad"`` for a known mark, else None."""
    mark = mark_of(assay)
    if mark in _NARROW:
        return "narrow"
    if mark in _BROAD:
        return "broad"
    return None


def mark_role(assay: str) -> str | None:
    """``"activating"`` or ``"repressive"`` for a known mark, else None."""
    mark = mark_of(assay)
    if mark in _ACTIVATING:
        return "activating"
    if mark in _REPRESSIVE:
        return "repressive"
    return None


GROUPINGS = {"shape": mark_shape, "role": mark_role}
"""Grouping name to the function giving an assay's group (None: not grouped)."""
