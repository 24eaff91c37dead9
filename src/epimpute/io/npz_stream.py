"""Write ``.npz`` files one array at a time, each array in chunks (memory stays flat)."""

from __future__ import annotations

import zipfile
from contextlib import suppress
from pathlib import Path
from types import TracebackType

import numpy as np

from epimpute.errors import InputError
from epimpute.io.atomic import atomic_file


class NpzStreamWriter:
    """Write named 1-D float32 arrays into an ``.npz`` (readable by ``numpy.load``).

    Each array is declared with its full length, then filled by :meth:`write` in order.
    Use as a context manager: the file is written under a temporary name
    (:func:`epimpute.io.atomic.atomic_file`) and appears under its final name only when the
    block exits without error; otherwise nothing is left.

    Examples
    --------
    >>> with NpzStreamWriter(path) as out:  # doctest: +SKIP
    ...     out.begin("chr1", 1000)
    ...     out.write(np.zeros(600, np.float32)); out.write(np.ones(400, np.float32))
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = atomic_file(self.path)
        self._zip: zipfile.ZipFile | None = None
        self._member = None
        self._remaining = 0

    def begin(self, name: str, length: int) -> None:
        """Start array ``name`` of ``length`` float32 values."""
        if self._zip is None:
            raise ValueError("use the writer as a context manager")
        self._finish_member()
        self._member = self._zip.open(f"{name}.npy", "w", force_zip64=True)
        header = {"descr": "<f4", "fortran_order": False, "shape": (int(length),)}
        np.lib.format.write_array_header_2_0(self._member, header)
        self._remaining = int(length)

    def write(self, values: np.ndarray) -> None:
        """Append the next values of the current array."""
        values = np.ascontiguousarray(values, dtype="<f4")
        if self._member is None or values.size > self._remaining:
            raise ValueError("more values written than the array was declared with")
        self._member.write(values.tobytes())
        self._remaining -= values.size

    def _finish_member(self) -> None:
        if self._member is not None:
            if self._remaining:
                raise ValueError(f"{self._remaining} values of the array were never written")
            self._member.close()
            self._member = None

    def __enter__(self) -> "NpzStreamWriter":
        if not self.path.parent.is_dir():
            raise InputError(f"{self.path}: the folder {self.path.parent} does not exist")
        tmp = self._file.__enter__()
        try:
            self._zip = zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED,
                                        allowZip64=True)
        except BaseException as error:
            self._file.__exit__(type(error), error, error.__traceback__)
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if kind is None:
                self._finish_member()
                self._zip.close()
            else:
                self._abort_zip()
        except BaseException as failure:
            self._abort_zip()
            self._file.__exit__(type(failure), failure, failure.__traceback__)
            raise
        self._file.__exit__(kind, error, trace)

    def _abort_zip(self) -> None:
        """Close the partial archive without caring whether it is complete."""
        with suppress(OSError, ValueError, zipfile.BadZipFile):  # the file is removed anyway
            if self._member is not None:
                self._member.close()
        self._member = None
        with suppress(OSError, ValueError, zipfile.BadZipFile):
            self._zip.close()
