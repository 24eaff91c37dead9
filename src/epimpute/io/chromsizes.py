"""Read a chromosome sizes file (``name<TAB>length`` per line, as UCSC ``*.chrom.sizes``)."""

from __future__ import annotations

import os
from pathlib import Path

from epimpute.errors import InputError

__all__ = ["read_chrom_sizes"]


def read_chrom_sizes(path: str | os.PathLike[str]) -> dict[str, int]:
    """Contig lengths from a two-column, whitespace-separated file.

    Blank lines and lines starting with ``#`` are skipped.

    Parameters
    ----------
    path
        The sizes file.

    Returns
    -------
    dict[str, int]
        Contig name to length in bases, in file order.

    Raises
    ------
    InputError
        Naming the file and line: a missing or unreadable file, a line without exactly two
        fields, a length that is not a positive integer, a contig listed twice, or no
        contigs at all.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    sizes: dict[str, int] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                fields = line.split()
                if not fields or fields[0].startswith("#"):
                    continue
                where = f"{path}, line {number}"
                if len(fields) != 2:
                    raise InputError(f"{where}: expected 'name length', got {line.strip()!r}")
                name, text = fields
                try:
                    size = int(text)
                except ValueError:
                    size = 0
                if size <= 0:
                    raise InputError(f"{where}: length {text!r} is not a positive integer")
                if name in sizes:
                    raise InputError(f"{where}: contig {name!r} is listed twice")
                sizes[name] = size
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as text ({exc})") from None
    if not sizes:
        raise InputError(f"{path}: no contigs listed")
    return sizes
