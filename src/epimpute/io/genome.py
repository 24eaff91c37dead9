"""Read a reference genome (FASTA or 2bit) and one-hot encode its sequence.

Formats
-------
- FASTA, uncompressed or bgzip-compressed: read through ``pyfaidx`` with its index
  (``.fai``, plus ``.gzi`` for bgzip). A missing index is built next to the file; where that
  folder is read-only the whole file is read into memory instead (below).
- FASTA compressed with plain gzip (not bgzip): gzip cannot be read at an offset, so the
  whole file is decompressed into memory once, one byte per base (about 3.1 GB for a whole
  human genome, 22 MB for a 22 Mb slice). For whole genomes convert it once with
  ``zcat genome.fa.gz | bgzip > genome.fa.bgz`` (bgzip is part of htslib/samtools).
- 2bit (UCSC): read through ``py2bit``.

Sequence comes back as it is stored, soft-masked (lowercase) repeats included;
:func:`one_hot` treats lowercase like uppercase. Coordinates are 0-based, half-open.
"""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from epimpute.errors import InputError

__all__ = ["Genome", "check_contigs", "contig_alias", "one_hot", "open_genome"]

log = logging.getLogger(__name__)

_TWOBIT_MAGIC = (0x1A412743).to_bytes(4, "little")
# Byte -> channel (A, C, G, T = 0..3); everything else (N, IUPAC codes, gaps) -> 4.
_CHANNEL = np.full(256, 4, dtype=np.uint8)
for _i, _base in enumerate("ACGT"):
    _CHANNEL[ord(_base)] = _i
    _CHANNEL[ord(_base.lower())] = _i


def one_hot(sequence: str | bytes, *, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """One-hot encode DNA as channels A, C, G, T.

    Lowercase (soft-masked) bases count as their uppercase base. ``N`` and every other
    character (IUPAC ambiguity codes such as ``R`` or ``Y``, ``-``) encode as all zeros, so
    they add nothing to a motif score or a convolution.

    Parameters
    ----------
    sequence
        The bases, as text or ASCII bytes.
    dtype
        Data type of the result.

    Returns
    -------
    numpy.ndarray
        Shape ``(4, len(sequence))``, the layout of ``torch.nn.Conv1d`` and of memelite.
    """
    raw = sequence.encode("ascii", "replace") if isinstance(sequence, str) else bytes(sequence)
    channel = _CHANNEL[np.frombuffer(raw, dtype=np.uint8)]
    table = np.eye(5, 4, dtype=dtype)  # row 4 (not a base) is all zeros
    return np.ascontiguousarray(table[channel].T)


class _Reader(Protocol):
    def contigs(self) -> dict[str, int]: ...

    def bases(self, contig: str, start: int, end: int) -> str: ...

    def close(self) -> None: ...


class Genome:
    """A reference genome opened with :func:`open_genome`; use it as a context manager.

    Attributes
    ----------
    path : pathlib.Path
        The genome file.
    contigs : dict[str, int]
        Contig name to length in bases, in file order.
    """

    def __init__(self, path: Path, reader: _Reader) -> None:
        self.path = path
        self._reader = reader
        self.contigs = reader.contigs()

    def fetch(self, contig: str, start: int, end: int) -> str:
        """The bases of ``[start, end)``; positions outside the contig read as ``N``.

        Raises
        ------
        InputError
            If the genome has no contig of that name (with a hint when ``chr`` differs).
        ValueError
            If ``end < start``.
        """
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        length = self.contigs.get(contig)
        if length is None:
            raise InputError(f"{self.path}: no contig {contig!r}{_alias_hint(contig, self.contigs)}")
        lo, hi = max(start, 0), min(end, length)
        inner = self._reader.bases(contig, lo, hi) if hi > lo else ""
        left = min(max(0, -start), end - start)
        return "N" * left + inner + "N" * (end - start - left - len(inner))

    def one_hot(self, contig: str, start: int, end: int, *,
                dtype: np.dtype | type = np.float32) -> np.ndarray:
        """:func:`one_hot` of :meth:`fetch`: shape ``(4, end - start)``."""
        return one_hot(self.fetch(contig, start, end), dtype=dtype)

    def close(self) -> None:
        """Release the file."""
        self._reader.close()

    def __enter__(self) -> Genome:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Genome({str(self.path)!r}, {len(self.contigs)} contigs)"


def open_genome(path: str | os.PathLike[str]) -> Genome:
    """Open a FASTA (plain, gzip or bgzip) or 2bit genome, chosen by the file's content.

    Parameters
    ----------
    path
        The genome file.

    Returns
    -------
    Genome

    Raises
    ------
    InputError
        Naming the file: missing, unreadable, not FASTA/2bit, empty, or a contig listed twice.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such genome file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(18)
    except OSError as error:
        raise InputError(f"{path}: cannot be read ({error.strerror})") from None
    if head[:4] == _TWOBIT_MAGIC:
        reader: _Reader = _TwoBit(path)
    elif head[:2] == b"\x1f\x8b" and not _is_bgzip(head):
        log.info("%s is plain gzip, not bgzip: reading the whole sequence into memory", path)
        reader = _InMemory(path, gzip.open)
    else:
        reader = _faidx_or_memory(path, bgzip=head[:2] == b"\x1f\x8b")
    genome = Genome(path, reader)
    if not genome.contigs:
        genome.close()
        raise InputError(f"{path}: no sequences found (not a FASTA or 2bit file?)")
    return genome


def _is_bgzip(head: bytes) -> bool:
    """gzip member with the ``BC`` extra subfield of BGZF (SAM specification, section 4.1)."""
    return len(head) >= 16 and head[3] & 4 != 0 and head[12:14] == b"BC"


def _faidx_or_memory(path: Path, *, bgzip: bool) -> _Reader:
    index = path.with_name(path.name + ".fai")
    writable = os.access(path.parent, os.W_OK)
    if not index.exists() and not writable:
        log.info("%s has no .fai index and its folder is read-only: reading it into memory", path)
        return _InMemory(path, gzip.open if bgzip else open)
    if bgzip and not path.with_name(path.name + ".gzi").exists() and not writable:
        return _InMemory(path, gzip.open)
    return _Faidx(path)


class _Faidx:
    def __init__(self, path: Path) -> None:
        import pyfaidx

        self._path = path
        try:
            self._fasta = pyfaidx.Fasta(str(path), as_raw=True, sequence_always_upper=False,
                                        rebuild=False)
        except (pyfaidx.FastaIndexingError, pyfaidx.UnsupportedCompressionFormat,
                ValueError, UnicodeDecodeError) as error:
            raise InputError(f"{path}: cannot be indexed as FASTA ({error}); check it is FASTA "
                             "and, if compressed, bgzip (index with 'samtools faidx')") from None
        except OSError as error:
            raise InputError(f"{path}: cannot be read ({error})") from None

    def contigs(self) -> dict[str, int]:
        return {name: len(record) for name, record in self._fasta.records.items()}

    def bases(self, contig: str, start: int, end: int) -> str:
        return str(self._fasta[contig][start:end])

    def close(self) -> None:
        self._fasta.close()


class _InMemory:
    """The whole FASTA held as one ``bytes`` per contig (one byte per base)."""

    def __init__(self, path: Path, opener: object) -> None:
        self._sequences: dict[str, bytes] = {}
        name, parts = None, []
        try:
            with opener(path, "rb") as fh:  # type: ignore[operator]
                for number, line in enumerate(fh, start=1):
                    line = line.rstrip(b"\r\n")
                    if line.startswith(b">"):
                        self._add(path, name, parts)
                        header = line[1:].split()
                        name, parts = header[0].decode("ascii", "replace") if header else "", []
                        if not name:
                            raise InputError(f"{path}, line {number}: sequence without a name")
                    elif line and name is None:
                        raise InputError(f"{path}, line {number}: sequence before the first "
                                         "'>' header (not a FASTA file?)")
                    else:
                        parts.append(line)
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            raise InputError(f"{path}: cannot be read ({error})") from None
        self._add(path, name, parts)

    def _add(self, path: Path, name: str | None, parts: list[bytes]) -> None:
        if name is None:
            return
        if name in self._sequences:
            raise InputError(f"{path}: contig {name!r} is listed twice")
        self._sequences[name] = b"".join(parts)

    def contigs(self) -> dict[str, int]:
        return {name: len(seq) for name, seq in self._sequences.items()}

    def bases(self, contig: str, start: int, end: int) -> str:
        return self._sequences[contig][start:end].decode("ascii", "replace")

    def close(self) -> None:
        self._sequences = {}


class _TwoBit:
    def __init__(self, path: Path) -> None:
        import py2bit

        try:
            self._file = py2bit.open(str(path), storeMasked=True)  # keep soft-masking
        except (RuntimeError, OSError) as error:
            raise InputError(f"{path}: cannot be read as 2bit ({error})") from None

    def contigs(self) -> dict[str, int]:
        return {str(name): int(length) for name, length in self._file.chroms().items()}

    def bases(self, contig: str, start: int, end: int) -> str:
        return self._file.sequence(contig, start, end)

    def close(self) -> None:
        self._file.close()


def contig_alias(name: str, names: object) -> str | None:
    """The contig of ``names`` that ``name`` means under the other ``chr`` convention.

    ``"22"`` finds ``"chr22"`` and back; ``"chrM"`` and ``"MT"`` are the same contig.
    """
    candidates = {name[3:] if name.startswith("chr") else f"chr{name}"}
    if name in ("chrM", "M", "MT"):
        candidates |= {"chrM", "MT", "M"} - {name}
    found = [c for c in candidates if c in names]  # type: ignore[operator]
    return found[0] if found else None


def _alias_hint(name: str, names: object) -> str:
    alias = contig_alias(name, names)
    return f" (it has {alias!r}: the genome and the data name contigs differently)" if alias else ""


def check_contigs(genome: Genome, contigs: dict[str, int]) -> None:
    """Check that the genome has every contig of a store, at the same length.

    Parameters
    ----------
    genome
        The opened genome.
    contigs
        Contig name to length, e.g. :attr:`epimpute.store.Store.contigs`.

    Raises
    ------
    InputError
        Naming the genome file and the first contig that is missing (with a hint when the
        genome names it with or without ``chr``) or has another length.
    """
    for name, length in contigs.items():
        have = genome.contigs.get(name)
        if have is None:
            raise InputError(f"{genome.path}: no contig {name!r}"
                             f"{_alias_hint(name, genome.contigs)}")
        if have != length:
            raise InputError(f"{genome.path}: contig {name!r} has {have:,} bases, but the store "
                             f"has {length:,} (another assembly?)")
