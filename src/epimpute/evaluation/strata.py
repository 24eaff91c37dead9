"""Cell-type-specificity strata: in how many cell types is a bin inside an observed peak?

For an assay observed in ``n`` cell types, the *specificity count* of a bin is the number of
those cell types whose observed track has a peak over the bin (the scored cell type included),
``0 .. n``. Low counts are cell-type-specific ("facultative") peaks, high counts shared
("constitutive") ones. Metrics are reported per stratum:

- ``all``: every bin;
- ``count=k`` for ``k = 0 .. n``: bins with exactly ``k`` cell types in a peak;
- ``high_specificity``: bins in a peak in ``1 .. floor(n / 2)`` cell types;
- ``low_specificity``: bins in a peak in more than ``n / 2`` cell types.

The two halves split the peak bins (count >= 1) at half the number of cell types; with a
single cell type ``high_specificity`` is empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from epimpute.errors import InputError

__all__ = ["ALL", "HIGH", "LOW", "Strata", "count_label", "specificity_counts"]

ALL = "all"
HIGH = "high_specificity"
LOW = "low_specificity"


def count_label(k: int) -> str:
    """Stratum name of the bins with specificity count ``k``."""
    return f"count={k}"


@dataclass(frozen=True)
class Strata:
    """The strata of an assay observed in ``n_cell_types`` cell types.

    Attributes
    ----------
    n_cell_types
        Number of cell types (observed tracks) of the assay; 0 means no strata but ``all``.
    """

    n_cell_types: int

    def __post_init__(self) -> None:
        if self.n_cell_types < 0 or self.n_cell_types > np.iinfo(np.uint16).max - 1:
            raise InputError(f"n_cell_types must be in 0 .. 65534, got {self.n_cell_types}")

    @property
    def n_counts(self) -> int:
        """Number of distinct specificity counts, ``n_cell_types + 1``."""
        return self.n_cell_types + 1

    def members(self) -> dict[str, tuple[int, ...]]:
        """Stratum name to the specificity counts it holds, in report order."""
        n = self.n_cell_types
        if n == 0:
            return {ALL: (0,)}
        half = n // 2
        out: dict[str, tuple[int, ...]] = {ALL: tuple(range(n + 1))}
        out.update({count_label(k): (k,) for k in range(n + 1)})
        out[HIGH] = tuple(range(1, half + 1))
        out[LOW] = tuple(range(half + 1, n + 1))
        return out

    def names(self) -> list[str]:
        """Stratum names in report order."""
        return list(self.members())


def specificity_counts(peak_masks: ArrayLike) -> NDArray[np.uint16]:
    """Number of cell types with a peak over each bin.

    Parameters
    ----------
    peak_masks
        Boolean array of shape ``(n_cell_types, n_bins)``: bins inside each cell type's
        observed peaks (see :func:`epimpute.evaluation.peaks.peak_mask`).

    Returns
    -------
    numpy.ndarray
        uint16 array of shape ``(n_bins,)``.
    """
    masks = np.asarray(peak_masks)
    if masks.ndim != 2 or masks.dtype != np.bool_:
        raise InputError(f"peak_masks must be a 2-D boolean array, got {masks.dtype} {masks.shape}")
    return masks.sum(axis=0, dtype=np.uint16)
