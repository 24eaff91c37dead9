"""Write ``.npz`` files one array at a time, each array in chunks (memory stays flat)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from types import TracebackType

import numpy as np


class NpzStreamWriter:
    """Write named 1-D float32 arrays into an ``.npz`` (readable by ``numpy.load``).

    Each array is declared with its full length, then filled by :meth:`write` in order.
    The file appears under its final name only when the writer closes without error.

    Examples
    --------
    >>> with NpzStreamWriter(path) as out:  # doctest: +SKIP
    ...     out.begin("chr1", 1000)
    ...     out.write(np.zeros(600, np.float32)); out.write(np.ones(400, np.float32))
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self._zip = zipfile.ZipFile(self._tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self._member = None
        self._remaining = 0

    def begin(self, name: str, length: int) -> None:
        """Start array ``name`` of ``length`` float32 values."""
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

    def close(self) -> None:
        self._finish_member()
        self._zip.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Close and remove the partial file."""
        if self._member is not None:
            self._member.close()
        self._zip.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "NpzStreamWriter":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
