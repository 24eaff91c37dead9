"""Track keys ``CELL[@INDIVIDUAL]:ASSAY``: parsing, name rules and output file names.

A name (cell type, individual or assay) is made of ASCII letters, digits and the
characters ``_ - . +`` and does not start with ``.``; so a name can never be a path, a
hidden file or ``..``, and keys split unambiguously at ``@`` and ``:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from epimpute.errors import InputError

__all__ = ["NAME_RULE", "SPREAD_SUFFIX", "NamedTrack", "TrackKey", "check_name", "is_spread_key",
           "output_path", "spread_key"]

NAME_RULE = "letters, digits and _ - . + only, not starting with '.'"
_NAME = re.compile(r"[A-Za-z0-9_+\-][A-Za-z0-9_.+\-]*")
SPREAD_SUFFIX = ".sd"
"""Appended to the assay of an imputed track to name the track of its predicted sd:
``CELL:ASSAY`` -> ``CELL:ASSAY.sd``, file ``CELL.ASSAY.sd.bw`` beside ``CELL.ASSAY.bw``."""


def check_name(value: str, *, what: str) -> str:
    """Return ``value`` if it is a valid name, else raise an InputError naming ``what``."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InputError(f"{what} {value!r} is not a valid name ({NAME_RULE})")
    return value


@dataclass(frozen=True)
class TrackKey:
    """The identity of a track: cell type, assay and optional individual.

    ``str(key)`` is ``cell@individual:assay`` (``cell:assay`` without an individual).
    Construction validates every name (:func:`check_name`).
    """

    cell_type: str
    assay: str
    individual: str = ""

    def __post_init__(self) -> None:
        check_name(self.cell_type, what="cell type")
        check_name(self.assay, what="assay")
        if self.individual:
            check_name(self.individual, what="individual")

    @classmethod
    def parse(cls, text: str) -> TrackKey:
        """Parse ``CELL[@INDIVIDUAL]:ASSAY``; InputError on a malformed key or name."""
        biosample, sep, assay = str(text).rpartition(":")
        if not sep or not biosample or not assay:
            raise InputError(f"'{text}' is not a track key of the form CELL:ASSAY")
        cell, at, individual = biosample.partition("@")
        if at and not individual:
            raise InputError(f"'{text}': empty individual after '@'")
        try:
            return cls(cell, assay, individual)
        except InputError as error:
            raise InputError(f"track key '{text}': {error}") from None

    @classmethod
    def of(cls, biosample: str, assay: str) -> TrackKey:
        """The key of ``assay`` in ``biosample`` (``cell`` or ``cell@individual``)."""
        return cls.parse(f"{biosample}:{assay}")

    @staticmethod
    def split(text: str) -> tuple[str, str]:
        """``(biosample, assay)`` of a key, the names checked."""
        key = TrackKey.parse(text)
        return key.biosample, key.assay

    @property
    def biosample(self) -> str:
        """``cell_type``, or ``cell_type@individual`` when there is an individual."""
        return f"{self.cell_type}@{self.individual}" if self.individual else self.cell_type

    def __str__(self) -> str:
        return f"{self.biosample}:{self.assay}"

    def file_name(self, suffix: str) -> str:
        """``BIOSAMPLE.ASSAY`` + ``suffix`` (e.g. ``.bw``), the name of the track's output."""
        return f"{self.biosample}.{self.assay}{suffix}"


class NamedTrack:
    """Mixin for records with ``cell_type``, ``assay`` and ``individual`` fields: their key."""

    cell_type: str
    assay: str
    individual: str

    @property
    def track_key(self) -> TrackKey:
        """The track's identity (names checked)."""
        return TrackKey(self.cell_type, self.assay, self.individual)

    @property
    def biosample(self) -> str:
        """``cell_type``, or ``cell_type@individual`` when there is an individual."""
        return self.track_key.biosample

    @property
    def key(self) -> str:
        """Track key ``biosample:assay``."""
        return str(self.track_key)


def output_path(folder: Path, key: str | TrackKey, suffix: str) -> Path:
    """The file of track ``key`` in ``folder``; it always lies directly in ``folder``."""
    key = key if isinstance(key, TrackKey) else TrackKey.parse(key)
    folder = Path(folder)
    path = folder / key.file_name(suffix)
    if path.parent != folder or path.name in (".", ".."):  # the name rule makes this unreachable
        raise InputError(f"track {key}: output name {path.name!r} leaves {folder}")
    return path


def spread_key(key: str | TrackKey) -> str:
    """The key of the sd track of ``key``: ``CELL:ASSAY`` -> ``CELL:ASSAY.sd``."""
    key = key if isinstance(key, TrackKey) else TrackKey.parse(key)
    return str(TrackKey(key.cell_type, key.assay + SPREAD_SUFFIX, key.individual))


def is_spread_key(key: str | TrackKey) -> bool:
    """Whether ``key`` names a predicted-sd track (its assay ends in ``.sd``)."""
    key = key if isinstance(key, TrackKey) else TrackKey.parse(key)
    return key.assay.endswith(SPREAD_SUFFIX)
