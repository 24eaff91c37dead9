"""Where the scored signal comes from: the truth store and prediction folders.

A prediction folder, as ``epimpute impute`` writes it, holds one file per imputed track:

- ``{biosample}.{assay}.npz``: one array per contig, named by contig, arcsinh scale; or
- ``{biosample}.{assay}.bw`` (or ``.bigWig``): ``-log10 p`` signal, binned and arcsinh
  transformed on reading.

Beside a track, ``{biosample}.{assay}.sd.npz`` (or ``.bw``) may hold its predicted sd, on the
arcsinh scale in both formats (read as it is, key ``CELL:ASSAY.sd``). When both exist for a
track the ``.npz`` is used. Files are matched against the truth's track
keys, so names may contain dots.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from epimpute.errors import InputError
from epimpute.io.trackkey import TrackKey, is_spread_key, spread_key

__all__ = ["PredictionDir", "TruthSource", "open_truth", "read_truth"]

log = logging.getLogger(__name__)

_NPZ = ".npz"
_BIGWIG = (".bw", ".bigWig", ".bigwig")


class TruthSource(Protocol):
    """What the evaluation reads from the truth: an :class:`epimpute.store.Store` or alike."""

    bin_size: int

    @property
    def tracks(self) -> list: ...  # objects with .cell_type, .assay, .biosample, .key

    @property
    def contigs(self) -> dict[str, int]: ...

    def n_bins(self, contig: str) -> int: ...

    def read(
        self, contig: str, start: int = 0, end: int | None = None, *, tracks: Sequence[int] | None = None
    ) -> NDArray[np.float32]: ...


def open_truth(truth: str | os.PathLike[str] | TruthSource) -> TruthSource:
    """Open a store path, or pass a store (or store-like object) through."""
    if isinstance(truth, (str, os.PathLike)):
        from epimpute.store import Store

        return Store.open(truth)
    return truth


def read_truth(
    truth: TruthSource, contig: str, row: int, start: int = 0, end: int | None = None
) -> NDArray[np.float32]:
    """One track's observed signal on the arcsinh scale, shape ``(end - start,)``."""
    values = truth.read(contig, start, end, tracks=[row])[0]
    if getattr(truth, "transform", "arcsinh") == "none":
        values = np.arcsinh(values)
    return values


class PredictionDir:
    """The imputed tracks of one model.

    Parameters
    ----------
    path
        The folder ``epimpute impute`` wrote.
    name
        The model's name in the report.

    Raises
    ------
    InputError
        If ``path`` is not a folder.
    """

    def __init__(self, path: str | os.PathLike[str], *, name: str) -> None:
        self.path = Path(path)
        self.name = name
        if not self.path.is_dir():
            raise InputError(f"{self.path}: prediction folder of model {name!r} not found")
        self._files = {p.name: p for p in self.path.iterdir() if p.is_file()}
        self._widths: tuple[list[float], dict[str, list[float]]] | None = None

    def file_for(self, key: str) -> Path | None:
        """The file holding track ``biosample:assay``, or None."""
        track = TrackKey.parse(key)
        for suffix in (_NPZ, *_BIGWIG):
            found = self._files.get(track.file_name(suffix))
            if found is not None:
                return found
        return None

    def keys(self, known: Iterable[str]) -> list[str]:
        """The keys among ``known`` that this folder has a file for (logs unmatched files)."""
        found = [key for key in known if self.file_for(key) is not None]
        used = {self.file_for(key).name for key in found}  # type: ignore[union-attr]
        used |= {f.name for key in found if (f := self.file_for(spread_key(key))) is not None}
        stray = [n for n in self._files if n.endswith((_NPZ, *_BIGWIG)) and n not in used]
        if stray:
            log.info("%s: %d file(s) match no observed track, e.g. %s", self.path, len(stray), stray[0])
        return found

    def contigs(self, key: str) -> set[str]:
        """Contigs present in the track's file."""
        path = self._require(key)
        if path.suffix == _NPZ:
            try:
                with np.load(path) as arrays:
                    return set(arrays.files)
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                raise InputError(f"{path}: cannot read the npz file ({exc})") from exc
        from epimpute.io.bigwig import chrom_sizes

        return set(chrom_sizes(path))

    def read(self, key: str, contig: str, *, length: int, bin_size: int) -> NDArray[np.float32]:
        """Imputed signal of one contig on the arcsinh scale (a ``CELL:ASSAY.sd`` key: the
        predicted sd, read untransformed from bigWig too).

        Parameters
        ----------
        key
            Track key ``biosample:assay``.
        contig
            Contig name.
        length
            Contig length in bp.
        bin_size
            Bin width in bp.

        Returns
        -------
        numpy.ndarray
            float32 array of shape ``(ceil(length / bin_size),)``.

        Raises
        ------
        InputError
            If the file lacks the contig, has another number of bins, or non-finite values.
        """
        path = self._require(key)
        n_bins = -(-length // bin_size)
        if path.suffix == _NPZ:
            try:
                with np.load(path) as arrays:
                    if contig not in arrays.files:
                        raise InputError(f"{path}: no array for contig {contig!r}")
                    values = np.asarray(arrays[contig], dtype=np.float32).reshape(-1)
            except InputError:
                raise
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                raise InputError(f"{path}: cannot read contig {contig!r} ({exc})") from exc
        else:
            from epimpute.io.bigwig import read_binned

            values = read_binned(path, contig, length=length, bin_size=bin_size)
            if not is_spread_key(key):
                values = np.arcsinh(values)
        if values.shape != (n_bins,):
            raise InputError(f"{path}: contig {contig!r} has {values.size} bins, the truth has {n_bins}")
        if not np.isfinite(values).all():
            raise InputError(f"{path}: contig {contig!r} has NaN or infinite values")
        if is_spread_key(key) and (values < 0).any():
            raise InputError(f"{path}: contig {contig!r} has negative sds")
        return values

    def interval_widths(self, key: str, levels: Sequence[float]) -> list[float] | None:
        """Half-widths (in predicted sds) of track ``key``'s central intervals at ``levels``
        as the folder's ``imputation.json`` records them; None when it records none (or for
        other levels): the intervals are a Gaussian's."""
        if self._widths is None:
            self._widths = _recorded_widths(self.path / "imputation.json")
        recorded_levels, tracks = self._widths
        if key not in tracks or len(recorded_levels) != len(levels) \
                or not np.allclose(recorded_levels, levels):
            return None
        return tracks[key]

    def _require(self, key: str) -> Path:
        path = self.file_for(key)
        if path is None:
            raise InputError(f"{self.path}: no prediction for track {key!r}")
        return path


def _recorded_widths(path: Path) -> tuple[list[float], dict[str, list[float]]]:
    """``(levels, {key: half-widths})`` of an ``imputation.json`` (empty when absent)."""
    if not path.is_file():
        return [], {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        widths = record.get("interval_half_widths") or {}
        levels = [float(x) for x in widths.get("levels", [])]
        tracks = {str(k): [float(x) for x in v] for k, v in widths.get("tracks", {}).items()}
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: cannot read the interval half-widths ({exc})") from exc
    if any(len(v) != len(levels) for v in tracks.values()):
        raise InputError(f"{path}: interval_half_widths has rows of another length than its "
                         f"{len(levels)} levels")
    return levels, tracks
