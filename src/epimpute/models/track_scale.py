"""Each track's level and spread, measured where observed and estimated where not.

Signal tracks of one biosample tend to be stronger or weaker than other biosamples' in
every assay (sequencing depth, antibody lots, cell-type-wide chromatin state), and assays
differ in their own typical level. A statistic of a track (its mean, its standard
deviation) is therefore modelled as a biosample factor times an assay factor::

    log s[b, a] = u[b] + v[a]

fitted by least squares to the tracks that were measured. A pair never measured gets
``exp(u[b] + v[a])``: a biosample whose observed tracks are all 1.3x stronger than the
other biosamples' gets its missing tracks 1.3x stronger too.
"""

from __future__ import annotations

import numpy as np

STATISTIC_FLOOR = 1e-3
"""Statistics below this (empty tracks) count as this value in the log-additive fit."""


def complete_log_additive(table: np.ndarray, measured: np.ndarray, *,
                          iterations: int = 500, tolerance: float = 1e-10) -> np.ndarray:
    """``table`` ``(B, A)`` with every entry that is not ``measured`` replaced by
    ``exp(u[b] + v[a])``, the least-squares log-additive fit to the measured entries.

    Measured entries are returned unchanged. A biosample (row) or assay (column) without
    any measured entry gets the mean factor of the others: it is estimated as a typical
    one. Where the measured pairs fall into groups of biosamples and assays that share no
    measured pair, the fit cannot tell the groups' levels apart; pairs across groups then
    get one of the equally good fits (always the same one).
    """
    table = np.asarray(table, dtype=np.float64)
    measured = np.asarray(measured, dtype=bool)
    if table.shape != measured.shape or table.ndim != 2:
        raise ValueError("table and measured must be matching 2-d arrays")
    if not measured.any():
        raise ValueError("no measured statistic to estimate the others from")
    clipped = np.maximum(np.where(measured, table, 1.0), STATISTIC_FLOOR)
    logs = np.where(measured, np.log(clipped), 0.0)
    weight = measured.astype(np.float64)
    rows, columns = weight.sum(1), weight.sum(0)

    def solve(residual: np.ndarray, count: np.ndarray) -> np.ndarray:
        factor = np.divide(residual, count, out=np.zeros_like(residual), where=count > 0)
        factor[count == 0] = factor[count > 0].mean()
        return factor

    u = np.zeros(table.shape[0])
    v = solve((logs * weight).sum(0), columns)
    for _ in range(iterations):
        u_new = solve(((logs - v[None, :]) * weight).sum(1), rows)
        v_new = solve(((logs - u_new[:, None]) * weight).sum(0), columns)
        change = max(np.abs(u_new - u).max(), np.abs(v_new - v).max())
        u, v = u_new, v_new
        if change < tolerance:
            break
    return np.where(measured, table, np.exp(u[:, None] + v[None, :]))
