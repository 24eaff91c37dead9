"""Score one imputed track against its observed track on every metric, contig by contig.

:class:`TrackScorer` is fed one contig at a time (peaks never cross contigs). Per contig it

- calls peaks on both tracks (observed peaks define foreground/background);
- adds exact running moments for MSE / Pearson (all, foreground, background), the weighted
  sums behind ``msevar`` / ``mseprom`` / ``msegene`` / ``mseenh`` and the peak-overlap counts,
  grouped by specificity count and by genomic block (for the block bootstrap);
- for the full-pass metrics (see :data:`epimpute.evaluation.catalog.METRICS`), keeps the
  track's observed and imputed values (float32), its foreground flag and specificity count.

Memory is therefore constant for the streaming metrics, and about 10 bytes per bin of the
*one* track being scored for the full-pass ones, plus sorting scratch at
:meth:`TrackScorer.result` of at most about 50 bytes per bin (less when values tie); pass
``full_pass=False`` to skip them. At 25 bp, hg38 is about 124 M bins, so a genome-wide track
peaks at about 7 GB in :meth:`TrackScorer.result`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from epimpute.errors import InputError
from epimpute.evaluation._ranking import Ranked, average_precision
from epimpute.evaluation.accumulators import PairMoments
from epimpute.evaluation.catalog import METRICS
from epimpute.evaluation.correlation import spearman_from_ranked
from epimpute.evaluation.peaks import (
    DEFAULT_PEAK_PARAMS,
    PeakParams,
    call_peaks,
    overlaps_mask,
    peak_mask,
)
from epimpute.evaluation.regions import tss_labels
from epimpute.evaluation.strata import ALL, Strata
from epimpute.evaluation.topbins import TOP_FRACTION, top_metrics_from_ranked

__all__ = ["DEFAULT_BLOCK_BINS", "TrackScorer", "TrackScores"]

DEFAULT_BLOCK_BINS = 40_000
"""Bins per bootstrap block: 1 Mb at 25 bp."""

_WEIGHTED = ("msevar", "mseprom", "msegene", "mseenh")


@dataclass
class TrackScores:
    """Scores of one imputed track.

    Attributes
    ----------
    values
        Stratum name to metric name to value (NaN where undefined), in report order.
    sizes
        Stratum name to number of bins.
    n_blocks
        Number of genomic blocks for :meth:`bootstrap`.
    """

    values: dict[str, dict[str, float]]
    sizes: dict[str, int]
    n_blocks: int
    _blocks: PairMoments = field(repr=False)
    _weighted: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]] = field(repr=False)

    def bootstrap(self, counts: ArrayLike) -> dict[str, NDArray[np.float64]]:
        """Block-bootstrap replicates of the block-decomposable metrics (stratum ``all``).

        Parameters
        ----------
        counts
            Array of shape ``(n_boot, n_blocks)``: how often each block is drawn in each
            replicate (see :func:`epimpute.evaluation.stats.block_resample_counts`).

        Returns
        -------
        dict
            Metric name to an array of shape ``(n_boot,)``, for the metrics whose
            :attr:`MetricInfo.bootstrap` is True and that were computed.
        """
        weights = np.asarray(counts, dtype=np.float64)
        if weights.ndim != 2 or weights.shape[1] != self.n_blocks:
            raise InputError(f"counts must have shape (n_boot, {self.n_blocks}), got {weights.shape}")
        overall = self._blocks.pool(axis=0)
        fg = self._blocks.map(lambda a: a[1])
        bg = self._blocks.map(lambda a: a[0])
        out = {}
        resampled = overall.resample(weights)
        out["mse"], out["gwcorr"] = resampled.mse(), resampled.pearson()
        resampled = fg.resample(weights)
        out["mse_fg"], out["corr_fg"] = resampled.mse(), resampled.pearson()
        resampled = bg.resample(weights)
        out["mse_bg"], out["corr_bg"] = resampled.mse(), resampled.pearson()
        for name, (w, wse) in self._weighted.items():
            total = weights @ w
            with np.errstate(invalid="ignore", divide="ignore"):
                out[name] = np.where(total > 0, (weights @ wse) / total, np.nan)
        return out


class TrackScorer:
    """Accumulate every metric of one (observed, imputed) track pair over contigs.

    Parameters
    ----------
    n_cell_types
        Cell types in which the assay is observed, for the specificity strata; 0 reports
        only the ``all`` stratum.
    bin_size
        Bin width in bp.
    params
        Peak-calling thresholds (observed and imputed peaks).
    fraction
        Top fraction of the top-bin metrics (0.01).
    block_bins
        Bins per genomic block of the bootstrap (blocks never span contigs).
    full_pass
        Compute the metrics that need the whole track at once.
    """

    def __init__(
        self,
        *,
        n_cell_types: int = 0,
        bin_size: int = 25,
        params: PeakParams = DEFAULT_PEAK_PARAMS,
        fraction: float = TOP_FRACTION,
        block_bins: int = DEFAULT_BLOCK_BINS,
        full_pass: bool = True,
    ) -> None:
        if block_bins <= 0:
            raise InputError(f"block_bins must be positive, got {block_bins}")
        self.strata = Strata(n_cell_types)
        self.bin_size = bin_size
        self.params = params
        self.fraction = fraction
        self.block_bins = block_bins
        self.full_pass = full_pass
        k = self.strata.n_counts
        self._moments: list[PairMoments] = []
        self._weight_parts: dict[str, list[tuple[NDArray[np.float64], NDArray[np.float64]]]] = {
            name: [] for name in _WEIGHTED
        }
        self._has_weights = dict.fromkeys(_WEIGHTED, False)
        self._peak_counts = np.zeros((4, k), dtype=np.int64)
        self._tss_labels = tss_labels()
        self._tss: PairMoments | None = None
        self._kept: list[
            tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.bool_], NDArray[np.uint16]]
        ] = []

    def update(
        self,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        *,
        contig: str = "",
        length: int | None = None,
        specificity: ArrayLike | None = None,
        variance: ArrayLike | None = None,
        promoters: ArrayLike | None = None,
        genes: ArrayLike | None = None,
        enhancers: ArrayLike | None = None,
        tss: ArrayLike | None = None,
    ) -> None:
        """Add one whole contig.

        Parameters
        ----------
        y_true, y_pred
            Observed and imputed signal of the contig (arcsinh scale), shape ``(n_bins,)``.
        contig
            Name, for messages.
        length
            Contig length in bp (for peak lengths in the last, partial bin).
        specificity
            uint array of shape ``(n_bins,)``: cell types with an observed peak per bin
            (:func:`epimpute.evaluation.strata.specificity_counts`); None counts 0 everywhere.
        variance
            Shape ``(n_bins,)``: cross-cell-type variance of the assay, for ``msevar``.
        promoters, genes, enhancers
            Shape ``(n_bins,)``: region coverage counts (:mod:`epimpute.evaluation.regions`).
        tss
            Shape ``(n_bins,)``: distance-to-TSS class of each bin
            (:func:`epimpute.evaluation.regions.tss_classes`), for the ``tss...`` strata
            (``mse`` and ``gwcorr``); None on every contig: no such strata.
        """
        yt = np.asarray(y_true)
        yp = np.asarray(y_pred)
        if yt.ndim != 1 or yt.shape != yp.shape:
            raise InputError(
                f"contig {contig!r}: y_true and y_pred must be 1-D of one length, got {yt.shape} and {yp.shape}"
            )
        if not (np.isfinite(yt).all() and np.isfinite(yp).all()):
            raise InputError(f"contig {contig!r}: the signal has NaN or infinite values")
        n = yt.shape[0]
        if n == 0:
            return
        k_max = self.strata.n_counts
        if specificity is None:
            counts = np.zeros(n, dtype=np.uint16)
        else:
            counts = np.asarray(specificity).astype(np.uint16, copy=False)
            if counts.shape != (n,) or (counts.size and int(counts.max()) >= k_max):
                raise InputError(
                    f"contig {contig!r}: specificity must have shape ({n},) and values <= {self.strata.n_cell_types}"
                )

        observed = call_peaks(yt, bin_size=self.bin_size, length=length, contig=contig, params=self.params)
        predicted = call_peaks(yp, bin_size=self.bin_size, length=length, contig=contig, params=self.params)
        fg = peak_mask(observed, n_bins=n, bin_size=self.bin_size)

        n_blocks = -(-n // self.block_bins)
        groups = (counts.astype(np.intp) * 2 + fg) * n_blocks + np.arange(n, dtype=np.intp) // self.block_bins
        n_groups = k_max * 2 * n_blocks
        shape = (k_max, 2, n_blocks)
        self._moments.append(
            PairMoments.from_groups(yt, yp, groups, n_groups).map(lambda a: a.reshape(shape))
        )

        error = yt.astype(np.float64) - yp
        error *= error
        given = {"msevar": variance, "mseprom": promoters, "msegene": genes, "mseenh": enhancers}
        for name, weights in given.items():
            if weights is None:
                zeros = np.zeros(shape)
                self._weight_parts[name].append((zeros, zeros))
                continue
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (n,):
                raise InputError(f"contig {contig!r}: {name} weights have shape {w.shape}, expected ({n},)")
            self._has_weights[name] = True
            self._weight_parts[name].append(
                (
                    np.bincount(groups, w, n_groups).reshape(shape),
                    np.bincount(groups, w * error, n_groups).reshape(shape),
                )
            )

        predicted_bins = peak_mask(predicted, n_bins=n, bin_size=self.bin_size)
        for row, (peaks, other) in enumerate(((predicted, fg), (observed, predicted_bins))):
            summit_k = counts[np.minimum(peaks.bins(self.bin_size)[2], n - 1)]
            hit = overlaps_mask(peaks, other, bin_size=self.bin_size)
            self._peak_counts[2 * row] += np.bincount(summit_k, minlength=k_max)
            self._peak_counts[2 * row + 1] += np.bincount(summit_k[hit], minlength=k_max)

        if tss is not None:
            classes = np.asarray(tss).astype(np.intp)
            if classes.shape != (n,) or (n and int(classes.max()) >= len(self._tss_labels)):
                raise InputError(f"contig {contig!r}: tss classes must have shape ({n},) and "
                                 f"values < {len(self._tss_labels)}")
            part = PairMoments.from_groups(yt, yp, classes, len(self._tss_labels))
            self._tss = part if self._tss is None else self._tss.merge(part)

        if self.full_pass:
            self._kept.append((yt.copy(), yp.copy(), fg, counts.copy()))

    def result(self) -> TrackScores:
        """Every metric per stratum, from everything added so far."""
        k_max = self.strata.n_counts
        if self._moments:
            moments = PairMoments.concatenate(self._moments, axis=-1)
        else:
            moments = PairMoments.zeros((k_max, 2, 0))
        weighted = {
            name: (
                np.concatenate([p[0] for p in parts], axis=-1),
                np.concatenate([p[1] for p in parts], axis=-1),
            )
            for name, parts in self._weight_parts.items()
            if self._has_weights[name] and parts
        }
        members = self.strata.members()
        values: dict[str, dict[str, float]] = {}
        sizes: dict[str, int] = {}
        for stratum, ks in members.items():
            picked = moments.map(lambda a, ks=ks: a[list(ks)])
            sizes[stratum] = int(picked.n.sum())
            values[stratum] = self._streaming(
                picked, {n: (w[list(ks)], s[list(ks)]) for n, (w, s) in weighted.items()}, ks
            )
        if self.full_pass:
            for stratum, extra in self._full_pass(members).items():
                values[stratum].update(extra)
        if self._tss is not None:
            for j, label in enumerate(self._tss_labels):
                picked = self._tss.map(lambda a, j=j: a[j])
                sizes[label] = int(picked.n)
                values[label] = {"mse": float(picked.mse()), "gwcorr": float(picked.pearson())}
        order = [name for name in METRICS if name in values.get(ALL, {})]
        values = {s: {name: v[name] for name in order if name in v} for s, v in values.items()}
        all_blocks = moments.pool(axis=0)
        block_weights = {n: (w.sum(axis=(0, 1)), s.sum(axis=(0, 1))) for n, (w, s) in weighted.items()}
        return TrackScores(values, sizes, int(moments.n.shape[-1]), all_blocks, block_weights)

    def _streaming(
        self,
        picked: PairMoments,
        weighted: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]],
        ks: tuple[int, ...],
    ) -> dict[str, float]:
        overall = picked.pool()
        fg = picked.map(lambda a: a[:, 1]).pool()
        bg = picked.map(lambda a: a[:, 0]).pool()
        out = {"mse": float(overall.mse()), "gwcorr": float(overall.pearson())}
        for name, (w, wse) in weighted.items():
            total = w.sum()
            out[name] = float(wse.sum() / total) if total > 0 else float("nan")
        out.update(
            mse_fg=float(fg.mse()),
            mse_bg=float(bg.mse()),
            corr_fg=float(fg.pearson()),
            corr_bg=float(bg.pearson()),
        )
        counts = self._peak_counts[:, list(ks)].sum(axis=1)
        out["peak_precision"] = counts[1] / counts[0] if counts[0] else float("nan")
        out["peak_recall"] = counts[3] / counts[2] if counts[2] else float("nan")
        return out

    def _full_pass(self, members: dict[str, tuple[int, ...]]) -> dict[str, dict[str, float]]:
        if self._kept:
            yt = np.concatenate([part[0] for part in self._kept])
            yp = np.concatenate([part[1] for part in self._kept])
            fg = np.concatenate([part[2] for part in self._kept])
            counts = np.concatenate([part[3] for part in self._kept])
        else:
            yt = yp = np.zeros(0, dtype=np.float32)
            fg = np.zeros(0, dtype=bool)
            counts = np.zeros(0, dtype=np.uint16)
        out = {}
        for stratum, ks in members.items():
            if stratum == ALL:
                out[stratum] = self._ranked_metrics(Ranked(yt), Ranked(yp), fg)
                continue
            keep = (counts >= min(ks)) & (counts <= max(ks)) if ks else np.zeros(counts.shape, dtype=bool)
            out[stratum] = self._ranked_metrics(Ranked(yt[keep]), Ranked(yp[keep]), fg[keep])
        return out

    def _ranked_metrics(
        self, ranked_true: Ranked, ranked_pred: Ranked, fg: NDArray[np.bool_]
    ) -> dict[str, float]:
        out = {"gwspear": spearman_from_ranked(ranked_true, ranked_pred)}
        out.update(top_metrics_from_ranked(ranked_true, ranked_pred, fraction=self.fraction))
        out["auprc"] = average_precision(fg, ranked_pred)
        return out
