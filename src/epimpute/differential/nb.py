"""Negative-binomial replicates of a mean track and the dispersion they are drawn with.

A replicate count ``Y`` of mean ``mu`` and dispersion ``alpha`` has
``Var(Y) = mu + alpha * mu**2`` (DESeq2's parametrisation). It is drawn as a gamma-Poisson
mixture: ``Y ~ Poisson(mu * G)`` with ``G ~ Gamma(shape=1/alpha, scale=alpha)`` (mean 1,
variance ``alpha``). One ``G`` is shared by the bins of a block of ``block`` bins, so the
sum over a peak inside a block is again negative binomial with the same ``alpha``: the
variability is local, as in a real replicate whose coverage of a region goes up or down
together, and the dispersion seen by a per-peak test is the one that was fitted.

The dispersion is a function of the mean, DESeq2's parametric trend
``alpha(mu) = a0 + a1 / mu``, fitted by :func:`fit_dispersion_trend` to the spread of counts
across samples (for tracks without replicates: the cell types of one assay).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from epimpute.errors import InputError

__all__ = [
    "DispersionTrend",
    "block_sums",
    "fit_dispersion_trend",
    "sample_replicates",
    "to_counts",
]

_MIN_DISPERSION = 1e-8


@dataclass(frozen=True)
class DispersionTrend:
    """DESeq2's parametric dispersion trend ``alpha(mu) = a0 + a1 / mu``.

    Attributes
    ----------
    a0
        Asymptotic dispersion of well-covered regions.
    a1
        Extra dispersion of weakly covered ones.
    """

    a0: float
    a1: float

    def __call__(self, mean: ArrayLike) -> NDArray[np.float64]:
        """Dispersion at each mean (at least 1e-8; means at or below 0 take the 1e-8 floor)."""
        mu = np.asarray(mean, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = self.a0 + self.a1 / mu
        return np.where(mu > 0, np.maximum(np.nan_to_num(alpha, nan=_MIN_DISPERSION),
                                           _MIN_DISPERSION), _MIN_DISPERSION)


def to_counts(signal: ArrayLike, *, scale: float) -> NDArray[np.float64]:
    """Pseudo-count means of bins on the arcsinh scale: ``scale * sinh(signal)``, at least 0.

    Parameters
    ----------
    signal
        Track values on the arcsinh scale (store and imputation scale).
    scale
        Pseudo-reads per bin for one unit of ``-log10 p``.

    Returns
    -------
    numpy.ndarray
        float64 array of the input's shape.
    """
    if not np.isfinite(scale) or scale <= 0:
        raise InputError(f"scale must be a positive number of reads, got {scale!r}")
    return scale * np.maximum(np.sinh(np.asarray(signal, dtype=np.float64)), 0.0)


def block_sums(values: ArrayLike, block: int) -> NDArray[np.float64]:
    """Sums over consecutive blocks of ``block`` entries along the last axis (last one shorter)."""
    x = np.asarray(values, dtype=np.float64)
    if block < 1:
        raise InputError(f"block must be at least 1 bin, got {block}")
    starts = np.arange(0, x.shape[-1], block)
    if starts.size == 0:
        return np.zeros((*x.shape[:-1], 0))
    return np.add.reduceat(x, starts, axis=-1)


def sample_replicates(
    mean: ArrayLike,
    trend: DispersionTrend,
    *,
    n: int,
    block: int,
    rng: np.random.Generator,
) -> NDArray[np.float32]:
    """Draw ``n`` negative-binomial replicates of a binned mean.

    Parameters
    ----------
    mean
        Array of shape ``(n_bins,)``: the expected count of each bin (>= 0).
    trend
        Dispersion as a function of the mean; evaluated at each block's summed mean.
    n
        Number of replicates.
    block
        Bins that share one gamma factor.
    rng
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(n, n_bins)`` of integer counts.
    """
    mu = np.asarray(mean, dtype=np.float64)
    if mu.ndim != 1 or not np.isfinite(mu).all() or (mu < 0).any():
        raise InputError("the mean must be a 1-D array of finite, non-negative counts")
    if n < 1:
        raise InputError(f"n must be at least 1 replicate, got {n}")
    alpha = trend(block_sums(mu, block))
    gamma = rng.gamma(shape=1.0 / alpha, scale=alpha, size=(n, alpha.size))
    rate = mu[None, :] * np.repeat(gamma, block, axis=1)[:, : mu.size]
    return rng.poisson(rate).astype(np.float32)


def fit_dispersion_trend(
    counts: ArrayLike,
    *,
    poisson: bool = True,
    min_mean: float = 10.0,
    outlier_ratio: float = 15.0,
    iterations: int = 10,
) -> DispersionTrend:
    """Fit ``alpha(mu) = a0 + a1 / mu`` to counts of the same regions in several samples.

    Each region's method-of-moments dispersion ``(s2 - m) / m**2`` (sample variance ``s2``
    and mean ``m`` across samples; ``s2 / m**2`` without ``poisson``) is regressed on
    ``1 / m`` as DESeq2's parametric fit does: a gamma-family GLM with identity link
    (weighted least squares with weights ``1 / fitted**2``, iterated), refitted without
    regions whose estimate is more than ``outlier_ratio`` times the fit in size
    (cell-type-specific regions), until the set of regions settles. Moment estimates may
    be negative; the quasi-likelihood equations take them as they are, so the fit stays
    unbiased for small numbers of samples. A negative coefficient is set to 0 and the
    other refitted alone.

    Parameters
    ----------
    counts
        Array of shape ``(n_samples, n_regions)``, at least 2 samples.
    poisson
        The counts are read counts, whose Poisson part ``m`` of the variance is not
        dispersion. False for pseudo-counts scaled from a continuous signal (observed
        tracks): all their spread is dispersion, and sampling adds the Poisson part.
    min_mean
        Regions with a lower mean count are ignored (below about 10 counts the noise of
        the sample mean biases the moment estimates, and ``a1`` with them, low).
    outlier_ratio
        Estimates more than this many times the fit in absolute value are left out of the
        next fit.
    iterations
        Most refits.

    Returns
    -------
    DispersionTrend
    """
    x = np.asarray(counts, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise InputError(f"counts must have shape (n_samples >= 2, n_regions), got {x.shape}")
    m = x.mean(axis=0)
    keep = (m >= min_mean) & (m > 0)
    if keep.sum() < 3:
        raise InputError(f"only {int(keep.sum())} regions have a mean count of at least "
                         f"{min_mean}; cannot fit a dispersion trend")
    m = m[keep]
    y = (x[:, keep].var(axis=0, ddof=1) - (m if poisson else 0.0)) / m**2
    design = np.column_stack([np.ones_like(m), 1.0 / m])
    use = np.ones(m.size, dtype=bool)
    coef = _gamma_glm(design, y, use)
    for _ in range(iterations):
        ratio = y / np.maximum(design @ coef, _MIN_DISPERSION)
        next_use = np.abs(ratio) < outlier_ratio
        if np.array_equal(next_use, use) or next_use.sum() < 3:
            break
        use = next_use
        coef = _gamma_glm(design, y, use)
    return DispersionTrend(float(coef[0]), float(coef[1]))


def _gamma_glm(design: NDArray[np.float64], y: NDArray[np.float64],
               use: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Identity-link gamma GLM of ``y`` on ``design`` over the ``use`` rows, coefficients
    >= 0: both, else the intercept alone, else the slope alone."""
    for columns in ([0, 1], [0], [1]):
        a, b = design[use][:, columns], y[use]
        sub = np.full(len(columns), max(float(np.mean(b)), 1e-3))
        for _ in range(50):
            root_w = 1.0 / np.maximum(a @ sub, _MIN_DISPERSION)  # weights 1 / fitted**2
            new = np.linalg.lstsq(a * root_w[:, None], b * root_w, rcond=None)[0]
            settled = np.allclose(new, sub, rtol=1e-7, atol=1e-12)
            sub = new
            if settled:
                break
        if (sub >= 0).all():
            coef = np.zeros(2)
            coef[columns] = sub
            return coef
    raise InputError("the counts vary less than Poisson noise; no dispersion to fit")
