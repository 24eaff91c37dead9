"""Multi-scale window means of signal tracks: the per-track input features of eDICE."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def context_margin(windows: Sequence[int]) -> int:
    """Bins of context needed on each side of a region for the widest window."""
    return max(windows) // 2


def window_means(signal: np.ndarray, windows: Sequence[int], *, margin: int) -> np.ndarray:
    """Centred moving means of every track at several window widths.

    Parameters
    ----------
    signal
        ``(n_tracks, n_bins + 2 * margin)`` signal; the first and last ``margin`` bins are
        context only (zeros beyond a contig's ends).
    windows
        Odd window widths in bins; ``(1,)`` is the bin's own value.
    margin
        Context bins on each side; at least ``max(windows) // 2``.

    Returns
    -------
    np.ndarray
        ``(n_bins, n_tracks, len(windows))`` float32 features.
    """
    n_tracks, padded = signal.shape
    n_bins = padded - 2 * margin
    if n_bins < 0 or margin < context_margin(windows):
        raise ValueError("margin is smaller than the widest window needs")
    cumulative = np.zeros((n_tracks, padded + 1), dtype=np.float64)
    np.cumsum(signal, axis=1, dtype=np.float64, out=cumulative[:, 1:])
    out = np.empty((n_bins, n_tracks, len(windows)), dtype=np.float32)
    for k, width in enumerate(windows):
        if width % 2 != 1:
            raise ValueError(f"window widths must be odd, got {width}")
        half = width // 2
        upper = cumulative[:, margin + half + 1:margin + half + 1 + n_bins]
        lower = cumulative[:, margin - half:margin - half + n_bins]
        out[:, :, k] = ((upper - lower) / width).T
    return out
