"""Central intervals of a Gaussian: their half-widths, their coverage, a scale fitted to it.

A prediction ``m`` with sd ``s`` has the central ``p`` interval ``m +- z_p s`` with
``z_p = Phi^-1((1 + p) / 2)``; a truth ``y`` lies inside it when the *ratio*
``|y - m| / s`` is at most ``z_p``. Calibration (training) and coverage (evaluation) both
work on these ratios.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

__all__ = ["REPORTED_LEVELS", "CURVE_LEVELS", "coverage", "fit_scale", "half_width"]

REPORTED_LEVELS = (0.5, 0.8, 0.95)
"""Nominal coverages the evaluation tabulates and calibration aims at."""
CURVE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
"""Nominal coverages of the reliability diagram."""
_SCALE_GRID = np.exp(np.linspace(np.log(0.02), np.log(50.0), 801))


def half_width(level: float) -> float:
    """``z`` such that a standard Gaussian lies within ``+-z`` with probability ``level``."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"a coverage level lies strictly between 0 and 1, got {level}")
    return NormalDist().inv_cdf((1.0 + level) / 2.0)


def coverage(ratios: np.ndarray, levels: Sequence[float], *, scale: float = 1.0,
             presorted: bool = False) -> np.ndarray:
    """Share of ``ratios`` (``|truth - mean| / sd``) inside each central interval.

    Parameters
    ----------
    ratios
        Non-negative ratios, any shape (flattened).
    levels
        Nominal coverages in (0, 1).
    scale
        Factor applied to every sd.
    presorted
        ``ratios`` is already a sorted 1-d array.

    Returns
    -------
    numpy.ndarray
        ``(len(levels),)`` observed coverages (NaN when ``ratios`` is empty).
    """
    values = np.asarray(ratios, dtype=np.float64).reshape(-1)
    if not presorted:
        values = np.sort(values)
    if values.size == 0:
        return np.full(len(levels), np.nan)
    bounds = scale * np.array([half_width(p) for p in levels])
    return np.searchsorted(values, bounds, side="right") / values.size


def fit_scale(ratios: np.ndarray, levels: Sequence[float] = REPORTED_LEVELS) -> float:
    """The sd factor that brings the coverage of ``ratios`` closest to nominal.

    Chooses, on a log grid from 0.02 to 50, the factor minimising the largest gap between
    observed and nominal coverage over ``levels``: a single factor cannot make a
    non-Gaussian spread of errors right at every level, so it balances the worst one.
    Returns 1 when there are no ratios.
    """
    values = np.sort(np.asarray(ratios, dtype=np.float64).reshape(-1))
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 1.0
    nominal = np.asarray(levels, dtype=np.float64)
    bounds = _SCALE_GRID[:, None] * np.array([half_width(p) for p in levels])[None, :]
    observed = np.searchsorted(values, bounds.reshape(-1), side="right").reshape(bounds.shape)
    gaps = np.abs(observed / values.size - nominal[None, :]).max(axis=1)
    return float(_SCALE_GRID[int(np.argmin(gaps))])
