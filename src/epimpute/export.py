"""Write tracks of a store as one bigWig or ``.npz`` file each, a few files open at a time."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from epimpute.errors import InputError
from epimpute.imputation import output_file
from epimpute.io.bigwig import BigWigWriter
from epimpute.io.npz_stream import NpzStreamWriter
from epimpute.io.trackkey import is_spread_key
from epimpute.store import Store

FileFormat = Literal["bigwig", "npz"]
MAX_OPEN_FILES = 64
"""Output files a writer keeps open at once (tracks are written in groups of this many)."""
READ_BINS = 131_072


def file_values(values: np.ndarray, output_format: str, *, arcsinh_scale: bool,
                transform: str = "arcsinh") -> np.ndarray:
    """Stored values as a file holds them.

    bigWig files hold the ``-log10 p`` scale (``sinh`` of arcsinh values, floored at 0)
    unless ``arcsinh_scale``; ``.npz`` files hold the arcsinh scale as stored.
    """
    if output_format == "npz":
        return values
    if transform == "none":
        return np.arcsinh(values) if arcsinh_scale else values
    return values if arcsinh_scale else np.sinh(np.maximum(values, 0))


def key_values(block: np.ndarray, keys: Sequence[str], output_format: str, *,
               arcsinh_scale: bool, transform: str = "arcsinh") -> np.ndarray:
    """:func:`file_values` of ``block`` (one row per track of ``keys``), except that rows of
    predicted-sd tracks (``CELL:ASSAY.sd``) stay on the arcsinh scale in every format."""
    spread = np.array([is_spread_key(k) for k in keys], dtype=bool)
    out = file_values(block, output_format, arcsinh_scale=arcsinh_scale, transform=transform)
    if spread.any() and out is not block:  # a converted copy
        out[spread] = block[spread]
    return out


class TrackFiles:
    """Open output files of a group of tracks; write blocks of bins in genome order.

    Parameters
    ----------
    paths
        One file per track.
    output_format
        ``bigwig`` or ``npz``.
    contigs
        Contig name to length in bases (bigWig header), in the order blocks come.
    bin_size
        Bin width in bases.
    stack
        Closes (or, on error, discards) every file when it unwinds.
    """

    def __init__(self, paths: Sequence[Path], output_format: str, contigs: dict[str, int], *,
                 bin_size: int, stack: ExitStack) -> None:
        self.output_format = output_format
        self.bin_size = bin_size
        if output_format == "bigwig":
            self.writers = [stack.enter_context(BigWigWriter(p, contigs, bin_size=bin_size))
                            for p in paths]
        else:
            self.writers = [stack.enter_context(NpzStreamWriter(p)) for p in paths]

    def begin(self, n_bins: int, contig: str) -> None:
        """Start a contig of ``n_bins`` bins (``.npz`` arrays are declared with their length)."""
        if self.output_format == "npz":
            for writer in self.writers:
                writer.begin(contig, n_bins)

    def write(self, contig: str, start: int, block: np.ndarray) -> None:
        """Write ``block[i]`` (values as files hold them) into file ``i`` from bin ``start``."""
        for writer, values in zip(self.writers, block):
            if self.output_format == "bigwig":
                writer.write(contig, start, values)
            else:
                writer.write(values)


def export_tracks(
    store: Store,
    keys: Sequence[str],
    out_dir: Path,
    *,
    output_format: FileFormat = "bigwig",
    arcsinh_scale: bool = False,
    max_open: int = MAX_OPEN_FILES,
    progress: bool = False,
) -> list[Path]:
    """Write the tracks ``keys`` of ``store`` as files ``BIOSAMPLE.ASSAY.bw|npz`` in ``out_dir``.

    Tracks are written in groups of at most ``max_open`` open files, each group in one pass
    over the genome, reading ``max_open`` rows x 131,072 bins at a time; each file appears
    only when complete. Values are converted by :func:`key_values` (predicted-sd tracks
    stay on the arcsinh scale).

    Returns
    -------
    list[Path]
        The written files, in the order of ``keys``.

    Raises
    ------
    InputError
        If a key is not a track of ``store``.
    """
    rows = []
    for key in keys:
        row = store.track_index(key)
        if row is None:
            raise InputError(f"{store.path} has no track {key}")
        rows.append(row)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [output_file(out_dir, key, output_format) for key in keys]
    total = len(keys) * sum(store.n_bins(c) for c in store.contigs)
    with tqdm(total=total, unit="track-bin", unit_scale=True, desc="exporting",
              disable=not progress) as bar:
        for first in range(0, len(keys), max(1, max_open)):
            group = slice(first, first + max(1, max_open))
            with ExitStack() as stack:
                files = TrackFiles(paths[group], output_format, store.contigs,
                                   bin_size=store.bin_size, stack=stack)
                for contig in store.contigs:
                    n_bins = store.n_bins(contig)
                    files.begin(n_bins, contig)
                    for lo in range(0, n_bins, READ_BINS):
                        hi = min(lo + READ_BINS, n_bins)
                        block = store.read(contig, lo, hi, tracks=rows[group])
                        files.write(contig, lo, key_values(
                            block, keys[group], output_format, arcsinh_scale=arcsinh_scale,
                            transform=store.transform))
                        bar.update(block.size)
    return paths
