"""Parse and check the sample sheet that lists the tracks to ingest.

The sheet is a tab-separated file with a header line. Columns:

``cell_type`` (required)
    Cell type or tissue, e.g. ``E003``.
``assay`` (required)
    Assay, e.g. ``H3K4me3``.
``path`` (required)
    Signal file, absolute or relative to the sheet's folder: bigWig (``.bw``,
    ``.bigwig``), bedGraph (``.bedgraph``, ``.bdg``, optionally ``.gz``) or pre-binned
    arrays (``.npy``, ``.npz``).
``individual`` (optional)
    Donor or replicate; tracks of one cell type from several individuals become separate
    biosamples ``cell_type@individual``.

Names (cell type, assay, individual) are made of ASCII letters, digits and ``_ - . +``
and do not start with ``.`` (:data:`epimpute.io.trackkey.NAME_RULE`); they become parts
of output file names.
``chrom`` (optional, arrays only)
    Contig held by a ``.npy`` or single-array ``.npz`` file. One track may span several
    rows, one per contig.

Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from epimpute.errors import InputError
from epimpute.io.trackkey import NamedTrack, check_name

__all__ = ["SampleSpec", "check_samples", "file_kind", "read_sample_sheet"]

REQUIRED_COLUMNS = ("cell_type", "assay", "path")
OPTIONAL_COLUMNS = ("individual", "chrom")

_KINDS = {
    ".bw": "bigwig",
    ".bigwig": "bigwig",
    ".bedgraph": "bedgraph",
    ".bdg": "bedgraph",
    ".npy": "array",
    ".npz": "array",
}
_NAMES = ("cell_type", "assay", "individual")


@dataclass(frozen=True)
class SampleSpec(NamedTrack):
    """One row of the sample sheet.

    Attributes
    ----------
    cell_type, assay
        Track identity.
    path
        Signal file, resolved against the sheet's folder.
    individual
        Donor or replicate; ``""`` when the sheet has none.
    chrom
        Contig of an array file; ``""`` when not given.
    row
        Line number of the row in the sheet (the header is line 1); 0 when the spec was
        not read from a sheet.
    """

    cell_type: str
    assay: str
    path: Path
    individual: str = ""
    chrom: str = ""
    row: int = 0

    @property
    def kind(self) -> str:
        """File type: ``"bigwig"``, ``"bedgraph"`` or ``"array"``.

        Raises
        ------
        InputError
            If the file name has none of the known suffixes.
        """
        kind = file_kind(self.path)
        if kind is None:
            raise InputError(f"{self.path}: {_UNKNOWN_TYPE}")
        return kind


_UNKNOWN_TYPE = (
    "unknown file type; expected .bw/.bigwig, .bedgraph/.bdg (optionally .gz), .npy or .npz"
)


def file_kind(path: str | os.PathLike[str]) -> str | None:
    """File type from the name: ``"bigwig"``, ``"bedgraph"``, ``"array"`` or ``None``.

    Suffixes are matched case-insensitively; bedGraph may end in an extra ``.gz``.
    """
    suffixes = [s.lower() for s in Path(path).suffixes]
    if len(suffixes) >= 2 and suffixes[-1] == ".gz" and _KINDS.get(suffixes[-2]) == "bedgraph":
        return "bedgraph"
    return _KINDS.get(suffixes[-1]) if suffixes else None


def read_sample_sheet(path: str | os.PathLike[str]) -> list[SampleSpec]:
    """Read and check a sample sheet.

    Parameters
    ----------
    path
        Tab-separated sheet with a header line (see the module docstring).

    Returns
    -------
    list[SampleSpec]
        One spec per data row, in sheet order.

    Raises
    ------
    InputError
        Naming the sheet and line: a missing sheet or signal file, a sheet without rows,
        missing or unknown columns, a row with the wrong number of fields, an empty
        required cell, a forbidden character, an unknown file type, or a track listed twice.
    """
    sheet = Path(path)
    if not sheet.is_file():
        raise InputError(f"{sheet}: no such file")
    try:
        lines = sheet.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{sheet}: cannot be read as text ({exc})") from None
    rows = [
        (number, line.split("\t"))
        for number, line in enumerate(lines, start=1)
        if line.strip() and not line.startswith("#")
    ]
    if not rows:
        raise InputError(f"{sheet}: the sample sheet is empty")
    header_line, header = rows[0]
    columns = [c.strip() for c in header]
    _check_columns(sheet, header_line, columns)
    if len(rows) == 1:
        raise InputError(f"{sheet}: the sample sheet has a header but no rows")

    base = sheet.resolve().parent
    specs = []
    for number, fields in rows[1:]:
        if len(fields) != len(columns):
            raise InputError(
                f"{sheet}, line {number}: {len(fields)} tab-separated fields, but the header "
                f"has {len(columns)}"
            )
        cells = {name: value.strip() for name, value in zip(columns, fields, strict=True)}
        for name in REQUIRED_COLUMNS:
            if not cells[name]:
                raise InputError(f"{sheet}, line {number}: the {name!r} cell is empty")
        file = Path(cells["path"]).expanduser()
        specs.append(
            SampleSpec(
                cell_type=cells["cell_type"],
                assay=cells["assay"],
                path=file if file.is_absolute() else (base / file).resolve(),
                individual=cells.get("individual", ""),
                chrom=cells.get("chrom", ""),
                row=number,
            )
        )
    check_samples(specs, sheet=str(sheet))
    return specs


def check_samples(specs: Sequence[SampleSpec], *, sheet: str = "sample list") -> None:
    """Check specs for the problems :func:`read_sample_sheet` reports.

    Parameters
    ----------
    specs
        The samples, e.g. built in code rather than read from a sheet.
    sheet
        Name used in messages (the sheet's path).

    Raises
    ------
    InputError
        On no specs, an empty required field, a forbidden character, an unknown file type,
        a missing file, a ``chrom`` on a non-array file or missing on a ``.npy`` file, or a
        track listed twice (other than array rows of distinct contigs).
    """
    if not specs:
        raise InputError(f"{sheet}: no samples")
    seen: dict[tuple[str, str, str], list[SampleSpec]] = {}
    for spec in specs:
        where = _where(sheet, spec)
        for name in ("cell_type", "assay"):
            if not getattr(spec, name):
                raise InputError(f"{where}: {name} is empty")
        for name in _NAMES:
            value = getattr(spec, name)
            if value or name != "individual":
                try:
                    check_name(value, what=name)
                except InputError as error:
                    raise InputError(f"{where}: {error}") from None
        kind = file_kind(spec.path)
        if kind is None:
            raise InputError(f"{where}: {spec.path}: {_UNKNOWN_TYPE}")
        if not Path(spec.path).is_file():
            raise InputError(f"{where}: {spec.path}: no such file")
        if spec.chrom and kind != "array":
            raise InputError(
                f"{where}: the chrom column applies only to .npy/.npz files, not {spec.path}"
            )
        if kind == "array" and not spec.chrom and Path(spec.path).suffix.lower() == ".npy":
            raise InputError(f"{where}: {spec.path} holds one contig; fill in the chrom column")
        identity = (spec.cell_type, spec.assay, spec.individual)
        for other in seen.get(identity, []):
            allowed = (
                kind == "array"
                and file_kind(other.path) == "array"
                and spec.chrom
                and other.chrom
                and spec.chrom != other.chrom
            )
            if not allowed:
                raise InputError(
                    f"{where}: track {spec.key} is already listed "
                    f"({_where(sheet, other)}); array rows of one track need distinct "
                    "chrom values"
                )
        seen.setdefault(identity, []).append(spec)


def _check_columns(sheet: Path, line: int, columns: list[str]) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InputError(
            f"{sheet}, line {line}: missing column(s) {', '.join(missing)} (the header needs "
            f"{', '.join(REQUIRED_COLUMNS)}; optional: {', '.join(OPTIONAL_COLUMNS)})"
        )
    unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise InputError(
            f"{sheet}, line {line}: unknown column(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})"
        )
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise InputError(f"{sheet}, line {line}: column(s) {', '.join(duplicated)} repeated")


def _where(sheet: str, spec: SampleSpec) -> str:
    return f"{sheet}, line {spec.row}" if spec.row else f"{sheet}: sample {spec.key}"
