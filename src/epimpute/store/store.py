"""The on-disk compendium: a zarr v3 group of binned signal, one array per contig.

Layout (format version 1, see ``docs/architecture.md``)::

    STORE/
      zarr.json          group attributes; "epimpute" holds the metadata
      signal/<contig>    float32, shape (n_tracks, n_bins), chunks (1, 131072)

Row ``i`` of every contig array is ``tracks[i]``. Chunks span one track, so writers of
different tracks never touch the same chunk. Unwritten chunks read as 0.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from epimpute import __version__
from epimpute.errors import InputError
from epimpute.io.binning import n_bins as _count_bins
from epimpute.io.trackkey import NamedTrack
from epimpute.provenance import KEY as PROVENANCE_KEY
from epimpute.provenance import provenance

__all__ = [
    "CHUNK_BINS",
    "FORMAT",
    "FORMAT_VERSION",
    "Store",
    "StoreWriter",
    "Track",
    "create_store",
    "is_store",
]

FORMAT = "epimpute-store"
FORMAT_VERSION = 1
CHUNK_BINS = 131_072
TRANSFORMS = ("arcsinh", "none")
_ATTR = "epimpute"


@dataclass(frozen=True)
class Track(NamedTrack):
    """One observed signal track of the store.

    Attributes
    ----------
    cell_type, assay
        Track identity.
    individual
        Donor or replicate; ``""`` when there is none.
    source
        The file(s) the signal was read from (informational).
    """

    cell_type: str
    assay: str
    individual: str = ""
    source: str = ""


class Store:
    """Read access to an epimpute store. Create one with :meth:`Store.open`.

    Attributes
    ----------
    path : pathlib.Path
        The store's folder.
    bin_size : int
        Bin width in bases.
    transform : str
        Transform applied to the stored signal (``"arcsinh"``).
    metadata : dict
        The raw ``epimpute`` group attribute.
    """

    def __init__(self, path: Path, metadata: Mapping[str, Any]) -> None:
        self.path = path
        self.metadata = dict(metadata)
        self.bin_size = int(metadata["bin_size"])
        self.transform = str(metadata["transform"])
        self._contigs = {str(c): int(n) for c, n in metadata["contigs"].items()}
        self._tracks = [Track(**t) for t in metadata["tracks"]]
        try:
            self._index = {t.key: i for i, t in enumerate(self._tracks)}
        except InputError as error:
            raise InputError(f"{path}: {error}; re-ingest it with valid names") from None
        self._arrays: dict[str, zarr.Array] = {}

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Store:
        """Open an existing store for reading.

        Parameters
        ----------
        path
            The store's folder.

        Returns
        -------
        Store

        Raises
        ------
        InputError
            If ``path`` is missing, is not an epimpute store, or has another format version.
        """
        path = Path(path)
        metadata = _read_metadata(path)
        version = metadata.get("format_version")
        if version != FORMAT_VERSION:
            raise InputError(
                f"{path}: store format version {version!r}, but this epimpute "
                f"({__version__}) reads version {FORMAT_VERSION}"
            )
        try:
            store = cls(path, metadata)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"{path}: the store's metadata is malformed ({exc!r})") from None
        return store

    @property
    def tracks(self) -> list[Track]:
        """Tracks in row order."""
        return list(self._tracks)

    @property
    def contigs(self) -> dict[str, int]:
        """Contig name to length in bases, in store order."""
        return dict(self._contigs)

    @property
    def biosamples(self) -> list[str]:
        """Sorted unique biosamples of the tracks."""
        return sorted({t.biosample for t in self._tracks})

    @property
    def assays(self) -> list[str]:
        """Sorted unique assays of the tracks."""
        return sorted({t.assay for t in self._tracks})

    def n_bins(self, contig: str) -> int:
        """Number of bins of ``contig``: ``ceil(length / bin_size)``."""
        return _count_bins(self._length(contig), self.bin_size)

    def require_model_bins(self, bin_size: int) -> None:
        """InputError unless this store's bins are the ``bin_size`` bp a model was trained on."""
        if self.bin_size != bin_size:
            raise InputError(f"{self.path} has {self.bin_size}-bp bins but the model was "
                             f"trained on {bin_size}-bp bins")

    def chunk_bins(self, contig: str) -> int:
        """Bins per chunk of ``contig``'s signal array (reads within one chunk cost one
        decompression per track)."""
        return int(self._array(contig).chunks[1])

    def track_index(self, key: str) -> int | None:
        """Row of the track with key ``biosample:assay``, or ``None`` if absent."""
        return self._index.get(key)

    def read(
        self,
        contig: str,
        start: int = 0,
        end: int | None = None,
        *,
        tracks: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Signal of bins ``start .. end`` of a contig.

        Bins outside ``[0, n_bins)`` read as 0, so a window may reach past either end of
        the contig (e.g. to add context margins).

        Parameters
        ----------
        contig
            A contig of the store.
        start, end
            Bin range, end exclusive; ``end`` defaults to the contig's number of bins.
        tracks
            Rows to read, in the order wanted (repeats allowed); all tracks by default.

        Returns
        -------
        numpy.ndarray
            float32 array of shape ``(n_tracks, end - start)``.

        Raises
        ------
        InputError
            If ``contig`` is not in the store.
        ValueError
            If ``end < start`` or a track row is out of range.
        """
        size = self.n_bins(contig)
        stop = size if end is None else int(end)
        start = int(start)
        if stop < start:
            raise ValueError(f"end ({stop}) is before start ({start})")
        rows = None if tracks is None else np.asarray(tracks, dtype=np.int64).reshape(-1)
        if rows is not None and rows.size and (rows.min() < 0 or rows.max() >= len(self._tracks)):
            raise ValueError(f"track rows must be in [0, {len(self._tracks)}), got {tracks}")
        n_rows = len(self._tracks) if rows is None else rows.size
        out = np.zeros((n_rows, stop - start), dtype=np.float32)
        lo, hi = max(start, 0), min(stop, size)
        if lo >= hi or n_rows == 0:
            return out
        array = self._array(contig)
        if rows is None:
            block = array[:, lo:hi]
        else:
            unique, inverse = np.unique(rows, return_inverse=True)
            block = array.oindex[unique, lo:hi][inverse.reshape(-1)]
        out[:, lo - start : hi - start] = block
        return out

    def observed_matrix(self) -> tuple[list[str], list[str], np.ndarray]:
        """Which (biosample, assay) pairs have a track.

        Returns
        -------
        biosamples : list[str]
            Sorted, as :attr:`biosamples`.
        assays : list[str]
            Sorted, as :attr:`assays`.
        observed : numpy.ndarray
            bool array of shape ``(n_biosamples, n_assays)``.
        """
        biosamples, assays = self.biosamples, self.assays
        row = {b: i for i, b in enumerate(biosamples)}
        col = {a: j for j, a in enumerate(assays)}
        observed = np.zeros((len(biosamples), len(assays)), dtype=bool)
        for track in self._tracks:
            observed[row[track.biosample], col[track.assay]] = True
        return biosamples, assays, observed

    def __repr__(self) -> str:
        return (
            f"Store({str(self.path)!r}: {len(self._tracks)} tracks, "
            f"{len(self.biosamples)} biosamples x {len(self.assays)} assays, "
            f"{len(self._contigs)} contigs, bin_size={self.bin_size})"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_arrays"] = {}  # reopened lazily after unpickling (e.g. in loader workers)
        return state

    def _length(self, contig: str) -> int:
        try:
            return self._contigs[contig]
        except KeyError:
            raise InputError(f"{self.path}: no contig {contig!r} in the store") from None

    def _array(self, contig: str) -> zarr.Array:
        array = self._arrays.get(contig)
        if array is None:
            array = _open_signal(self.path, contig, mode="r")
            expected = (len(self._tracks), self.n_bins(contig))
            if array.shape != expected:
                raise InputError(
                    f"{self.path}: signal/{contig} has shape {array.shape}, expected {expected}"
                )
            self._arrays[contig] = array
        return array


class StoreWriter:
    """Write signal rows into a store made by :func:`create_store`.

    Can be constructed again from the path in another process; writers of different rows
    never share a chunk.

    Parameters
    ----------
    path
        The store's folder.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.store = Store.open(path)
        self.path = self.store.path
        self._arrays: dict[str, zarr.Array] = {}

    def write(self, row: int, contig: str, values: np.ndarray, start: int = 0) -> None:
        """Write ``values`` into bins ``start .. start + len(values)`` of a track's row.

        Parameters
        ----------
        row
            Track row, in ``[0, n_tracks)``.
        contig
            A contig of the store.
        values
            Array of shape ``(n,)``; stored as float32.
        start
            First bin written.

        Raises
        ------
        ValueError
            If the row or bin range is out of bounds or ``values`` is not 1-D.
        """
        size = self.store.n_bins(contig)
        data = np.asarray(values, dtype=np.float32)
        if data.ndim != 1:
            raise ValueError(f"values must be 1-D, got shape {data.shape}")
        if not 0 <= row < len(self.store.tracks):
            raise ValueError(f"row {row} is outside [0, {len(self.store.tracks)})")
        if start < 0 or start + data.size > size:
            raise ValueError(f"bins {start}-{start + data.size} are outside {contig} ({size} bins)")
        array = self._arrays.get(contig)
        if array is None:
            array = self._arrays[contig] = _open_signal(self.path, contig, mode="r+")
        array[row, start : start + data.size] = data

    def write_block(self, first_row: int, contig: str, values: np.ndarray, start: int = 0) -> None:
        """Write a ``(rows, n)`` block into rows ``first_row ..`` and bins ``start .. start + n``.

        Faster than one :meth:`write` per row when the block covers whole chunks.

        Raises
        ------
        ValueError
            If the rows or bins are out of bounds or ``values`` is not 2-D.
        """
        data = np.asarray(values, dtype=np.float32)
        if data.ndim != 2:
            raise ValueError(f"values must be 2-D, got shape {data.shape}")
        size, n_rows = self.store.n_bins(contig), len(self.store.tracks)
        if first_row < 0 or first_row + data.shape[0] > n_rows:
            raise ValueError(f"rows {first_row}-{first_row + data.shape[0]} are outside "
                             f"[0, {n_rows})")
        if start < 0 or start + data.shape[1] > size:
            raise ValueError(f"bins {start}-{start + data.shape[1]} are outside {contig} "
                             f"({size} bins)")
        array = self._arrays.get(contig)
        if array is None:
            array = self._arrays[contig] = _open_signal(self.path, contig, mode="r+")
        array[first_row : first_row + data.shape[0], start : start + data.shape[1]] = data


def create_store(
    path: str | os.PathLike[str],
    *,
    tracks: Sequence[Track],
    contigs: Mapping[str, int],
    bin_size: int,
    transform: str = "arcsinh",
    chunks: tuple[int, int] = (1, CHUNK_BINS),
) -> StoreWriter:
    """Create an empty store: metadata plus zero-filled signal arrays.

    Parameters
    ----------
    path
        Folder to create; must not exist or be empty.
    tracks
        Tracks in row order; their ``(cell_type, assay, individual)`` must be unique.
    contigs
        Contig name to length in bases, in store order.
    bin_size
        Bin width in bases.
    transform
        Transform of the stored values, ``"arcsinh"`` (or ``"none"``).
    chunks
        ``(tracks, bins)`` of a chunk; the default gives each track its own chunks, so
        writers of different rows never share one.

    Returns
    -------
    StoreWriter
        A writer for the new store.

    Raises
    ------
    InputError
        If ``path`` exists, or the tracks, contigs, bin size or transform are invalid.
    """
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InputError(f"{path} already exists")
    if not path.parent.is_dir():
        raise InputError(f"{path}: the folder {path.parent} does not exist")
    metadata = _metadata(tracks=tracks, contigs=contigs, bin_size=bin_size, transform=transform)
    group = zarr.open_group(path, mode="w-", zarr_format=3)
    signal = group.create_group("signal")
    for contig, length in metadata["contigs"].items():
        signal.create_array(
            contig,
            shape=(len(metadata["tracks"]), _count_bins(length, bin_size)),
            chunks=(max(1, min(chunks[0], len(metadata["tracks"]))), max(1, chunks[1])),
            dtype="float32",
            fill_value=0.0,
        )
    group.attrs[_ATTR] = metadata  # last, so a half-made store is never taken for a store
    return StoreWriter(path)


def is_store(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like an epimpute store (of any format version)."""
    try:
        return _read_metadata(Path(path)).get("format") == FORMAT
    except InputError:
        return False


def _metadata(
    *,
    tracks: Sequence[Track],
    contigs: Mapping[str, int],
    bin_size: int,
    transform: str,
) -> dict[str, Any]:
    _count_bins(1, bin_size)  # validates bin_size
    if transform not in TRANSFORMS:
        raise InputError(f"unknown transform {transform!r}; expected one of {TRANSFORMS}")
    if not tracks:
        raise InputError("a store needs at least one track")
    if not contigs:
        raise InputError("a store needs at least one contig")
    seen: dict[tuple[str, str, str], Track] = {}
    for track in tracks:
        identity = (track.cell_type, track.assay, track.individual)
        if identity in seen:
            raise InputError(f"track {track.key} is listed twice")
        seen[identity] = track
    for contig, length in contigs.items():
        if not contig or "/" in contig or contig in (".", "..") or contig.startswith("__"):
            raise InputError(f"contig name {contig!r} cannot be stored")
        _count_bins(length, bin_size)  # validates length
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "bin_size": int(bin_size),
        "transform": transform,
        "contigs": {str(c): int(n) for c, n in contigs.items()},
        "tracks": [asdict(t) for t in tracks],
        "created_by": f"epimpute {__version__}",
        PROVENANCE_KEY: provenance(),
    }


def _read_metadata(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise InputError(f"{path}: no such store")
    try:
        group = zarr.open_group(path, mode="r")
        metadata = group.attrs.get(_ATTR)
    except Exception as exc:  # noqa: BLE001 - zarr reports unreadable stores with many exception types
        raise InputError(f"{path}: not an epimpute store ({exc})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise InputError(f"{path}: not an epimpute store (no '{_ATTR}' metadata)")
    return metadata


def _open_signal(path: Path, contig: str, *, mode: str) -> zarr.Array:
    try:
        return zarr.open_array(path / "signal" / contig, mode=mode, zarr_format=3)
    except Exception as exc:  # noqa: BLE001 - zarr reports missing arrays with many exception types
        raise InputError(f"{path}: cannot open signal/{contig} ({exc})") from None
