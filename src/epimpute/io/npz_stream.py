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
    """Write named arrays into an ``.npz`` (readable by ``numpy.load``), row blocks at a time.

    Each streamed array is declared with its full length (and row width), then filled by
    :meth:`write` in order; small arrays are written whole with :meth:`add`. The file
    is written under a temporary name (:func:`epimpute.io.atomic.atomic_file`) and appears
    under its final name only when the block exits without error; otherwise nothing is left.

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
        self._dtype = "<f4"
        self._row_shape: tuple[int, ...] = ()
        self._remaining = 0

    def begin(self, name: str, length: int, *, dtype: str = "<f4",
              columns: int | None = None) -> None:
        """Start array ``name`` of shape ``(length,)``, or ``(length, columns)``, of
        ``dtype`` (a little-endian numpy type string such as ``"<f4"`` or ``"<i8"``)."""
        if self._zip is None:
            raise ValueError("use the writer as a context manager")
        self._finish_member()
        shape = (int(length),) if columns is None else (int(length), int(columns))
        self._member = self._zip.open(f"{name}.npy", "w", force_zip64=True)
        header = {"descr": dtype, "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_2_0(self._member, header)
        self._dtype = dtype
        self._row_shape = shape[1:]
        self._remaining = int(np.prod(shape))

    def write(self, values: np.ndarray) -> None:
        """Append the next values (rows) of the current array."""
        values = np.ascontiguousarray(values, dtype=self._dtype)
        if self._row_shape and values.shape[1:] != self._row_shape:
            raise ValueError(f"rows of shape {values.shape[1:]} written to an array of rows "
                             f"of shape {self._row_shape}")
        if self._member is None or values.size > self._remaining:
            raise ValueError("more values written than the array was declared with")
        self._member.write(values.tobytes())
        self._remaining -= values.size

    def add(self, name: str, values: np.ndarray) -> None:
        """Write array ``name`` whole (no Python objects: strings as numpy unicode)."""
        self._finish_member()
        with self._zip.open(f"{name}.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, np.asarray(values), allow_pickle=False)

    def _finish_member(self) -> None:
        if self._member is not None:
            if self._remaining:
                raise ValueError(f"{self._remaining} values of the array were never written")
            self._member.close()
            self._member = None

    def __enter__(self) -> NpzStreamWriter:
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
