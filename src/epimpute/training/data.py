"""Training data drawn from a store: genomic blocks, split into training and validation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from epimpute.errors import InputError
from epimpute.models.layout import Layout
from epimpute.store import Store

Block = tuple[str, int, int]
"""``(contig, start_bin, end_bin)``."""


def genome_blocks(contig_bins: dict[str, int], *, block_bins: int) -> list[Block]:
    """Tile every contig into consecutive blocks of at most ``block_bins`` bins."""
    return [
        (contig, lo, min(lo + block_bins, n))
        for contig, n in contig_bins.items()
        for lo in range(0, n, block_bins)
    ]


def split_blocks(
    blocks: Sequence[Block],
    *,
    max_bins: int,
    validation_fraction: float,
    rng: np.random.Generator,
) -> tuple[list[Block], list[Block]]:
    """Choose training and validation blocks.

    Blocks are drawn at random until ``max_bins`` is reached (all of them when the genome
    is smaller); a ``validation_fraction`` of the drawn blocks (at least one) is held out
    whole, so the context windows of validation bins do not overlap training targets
    except at block edges. Both lists come back in genome order.
    """
    order = rng.permutation(len(blocks))
    chosen, total = [], 0
    for i in order:
        if total >= max_bins:
            break
        chosen.append(int(i))
        total += blocks[i][2] - blocks[i][1]
    n_validation = max(1, int(round(validation_fraction * len(chosen)))) if len(chosen) > 1 else 0
    validation = sorted(chosen[:n_validation])
    training = sorted(chosen[n_validation:])
    return [blocks[i] for i in training], [blocks[i] for i in validation]


@dataclass
class BinTable:
    """Per-bin inputs of a set of blocks, concatenated.

    Attributes
    ----------
    features
        ``(n_bins, T, F)`` float32 model inputs of every input track.
    values
        ``(n_bins, T)`` float32 signal of every input track (the reconstruction targets).
    """

    features: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return self.values.shape[0]


SPAN_BYTES = 256 << 20
"""Most bytes of signal :func:`load_bins` reads at once."""


def read_spans(blocks: Sequence[Block], *, margin: int, n_rows: int,
               chunk_bins: Callable[[str], int]) -> list[tuple[str, int, int, list[Block]]]:
    """Group genome-ordered ``blocks`` into reads: ``(contig, lo, hi, blocks)``.

    Consecutive blocks of a contig share one read of ``[lo, hi)`` (their margins included)
    while it spans at most one chunk (``chunk_bins(contig)``) and ``SPAN_BYTES`` of
    ``n_rows`` tracks: reading a chunk once instead of once per block it holds saves
    decompressing it again for every block.
    """
    spans: list[tuple[str, int, int, list[Block]]] = []
    for block in blocks:
        contig, start, end = block
        lo, hi = start - margin, end + margin
        if spans:
            last_contig, last_lo, last_hi, members = spans[-1]
            width = max(hi, last_hi) - last_lo
            if (last_contig == contig and lo >= last_lo and width <= chunk_bins(contig)
                    and width * n_rows * 4 <= SPAN_BYTES):
                spans[-1] = (contig, last_lo, max(hi, last_hi), members + [block])
                continue
        spans.append((contig, lo, hi, [block]))
    return spans


def load_bins(
    store: Store,
    rows: Sequence[int],
    blocks: Sequence[Block],
    *,
    margin: int,
    featurize: Callable[[np.ndarray], np.ndarray],
) -> BinTable:
    """Read ``blocks`` of store ``rows`` with ``margin`` context and featurize them.

    ``featurize`` maps ``(T, L + 2 * margin)`` signal to ``(L, T, F)`` features.
    """
    n_total = sum(end - start for _, start, end in blocks)
    features: np.ndarray | None = None
    values = np.empty((n_total, len(rows)), dtype=np.float32)
    at = 0
    for contig, lo, hi, members in read_spans(blocks, margin=margin, n_rows=len(rows),
                                              chunk_bins=store.chunk_bins):
        span = store.read(contig, lo, hi, tracks=list(rows))
        for _, start, end in members:
            signal = span[:, start - margin - lo:end + margin - lo]
            block_features = featurize(signal)
            if features is None:
                features = np.empty((n_total,) + block_features.shape[1:], dtype=np.float32)
            n = end - start
            features[at:at + n] = block_features
            values[at:at + n] = signal[:, margin:margin + n].T
            at += n
    if features is None:
        features = np.empty((0, len(rows), 0), dtype=np.float32)
    return BinTable(features, values)


def input_rows(store: Store, exclude: tuple[str, ...] | list[str]) -> list[int]:
    """Store rows that are model inputs: every track not excluded."""
    excluded = set(exclude)
    return [i for i, track in enumerate(store.tracks) if track.key not in excluded]


def layout_rows(store: Store, layout: Layout) -> list[int]:
    """Store row of every input track of ``layout``, in input order; InputError naming the
    tracks the store lacks."""
    rows = [store.track_index(key) for key in layout.keys]
    lacking = [key for key, row in zip(layout.keys, rows) if row is None]
    if lacking:
        raise InputError(f"{store.path} lacks input tracks of the model: "
                         f"{', '.join(lacking[:10])}" + (" ..." if len(lacking) > 10 else ""))
    return [int(row) for row in rows if row is not None]


def check_exclude(store: Store, exclude: Sequence[str]) -> None:
    """InputError naming the keys of ``exclude`` that are not tracks of ``store``."""
    unknown = set(exclude) - {t.key for t in store.tracks}
    if unknown:
        raise InputError(f"--exclude names tracks that are not in {store.path}: "
                         f"{', '.join(sorted(unknown))}")


def check_learnable(layout: Layout, *, where: str) -> None:
    """InputError unless ``layout`` has input tracks and every assay has one of them (an
    assay without a training track cannot be learnt; its imputations would be flat)."""
    if not layout.tracks:
        raise InputError(f"{where}: no track is left to train on (every track is excluded)")
    trained = {a for _, a in layout.tracks}
    lacking = [name for i, name in enumerate(layout.assays) if i not in trained]
    if lacking:
        raise InputError(f"{where}: assay(s) {', '.join(lacking)} would have no training "
                         "track (all excluded); keep at least one track of each assay")


def store_layout(store: Store, *, exclude: tuple[str, ...] | list[str] = ()) -> Layout:
    """The layout of a store: all its biosamples and assays, non-excluded tracks as inputs."""
    check_exclude(store, exclude)
    keys = [store.tracks[i].key for i in input_rows(store, exclude)]
    return Layout.from_keys(keys, bin_size=store.bin_size, excluded=tuple(exclude),
                            biosamples=store.biosamples, assays=store.assays)
