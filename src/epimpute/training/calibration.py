"""Post-hoc calibration of eDICE's predicted spread on the validation bins.

The spread head learns a heteroscedastic log-variance, but a Gaussian negative
log-likelihood fitted on training bins gives intervals that are too narrow where the
model over-fits and wrong in shape where errors have heavy tails. After training, the
validation bins (whole genomic blocks never trained on, with tracks hidden the way training
hides them) are predicted once, and per assay one factor on the sd is chosen
(:func:`epimpute.intervals.fit_scale`) so that the central 50/80/95% intervals cover the
hidden truth as closely as possible.

Two situations get their own factors: a target whose track the model was trained on (its
mean and sd are measured, as in a leave-one-out imputation), and a target the model never
saw (its mean and sd are estimated from the biosample and assay factors,
:mod:`epimpute.models.track_scale`), whose errors include those of the estimate. The second
is calibrated by re-estimating each validation target's statistics without its own track
and rescaling the prediction with them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from epimpute.intervals import REPORTED_LEVELS, fit_scale
from epimpute.models.edice import Edice
from epimpute.models.track_scale import complete_log_additive

__all__ = ["MIN_RATIOS", "calibrate_spread"]

MIN_RATIOS = 1000
"""An assay with fewer validation values than this gets the factor fitted on all assays."""
MAX_ESTIMATED_TRACKS = 256
"""Tracks whose statistics are re-estimated without them (the first ones, by index)."""


def _estimated_statistics(network: Edice, tracks: Sequence[int]) -> dict[int, tuple[float, float]]:
    """For each input track, its pair's mean and sd estimated as if it were never measured."""
    mean = network.pair_mean.cpu().numpy().astype(np.float64)
    sd = network.pair_sd.cpu().numpy().astype(np.float64)
    measured = network.pair_measured.cpu().numpy()
    bios, assays = network.track_biosample.cpu().numpy(), network.track_assay.cpu().numpy()
    out = {}
    for track in tracks:
        b, a = int(bios[track]), int(assays[track])
        without = measured.copy()
        without[b, a] = False
        if not without.any():
            continue
        out[int(track)] = (float(complete_log_additive(mean, without)[b, a]),
                           float(complete_log_additive(sd, without)[b, a]))
    return out


def calibrate_spread(network: Edice, batches: Sequence[tuple[torch.Tensor, ...]], *,
                     levels: Sequence[float] = REPORTED_LEVELS) -> dict[str, list[float]]:
    """Fit ``network.spread_scale`` on validation ``batches`` (as the trainer builds them).

    Parameters
    ----------
    network
        A trained network with ``uncertainty``.
    batches
        ``(features, values, available, targets, valid)`` validation batches.
    levels
        Nominal coverages the factors aim at.

    Returns
    -------
    dict[str, list[float]]
        The factors per assay, ``measured`` and ``estimated``, as set in the network.
    """
    was_training = network.training
    network.eval()
    n_assays = network.layout.n_assays
    ratios: dict[str, list[list[np.ndarray]]] = {
        kind: [[] for _ in range(n_assays)] for kind in ("measured", "estimated")}
    track_assay = network.track_assay
    with torch.no_grad():
        seen = sorted({int(t) for batch in batches
                       for t in torch.unique(batch[3][batch[4]]).tolist()})
        estimates = (_estimated_statistics(network, seen[:MAX_ESTIMATED_TRACKS])
                     if network.config.standardize else {})
        for features, values, available, targets, valid in batches:
            pairs = torch.stack([network.track_biosample[targets], track_assay[targets]], -1)
            predicted, log_variance = network(features, available, pairs, valid, spread=True)
            truth = torch.gather(values, 1, targets)
            spread = torch.exp(0.5 * log_variance.float())
            sd = network.target_sd(pairs)
            chosen = valid.cpu().numpy()
            tracks = targets.cpu().numpy()[chosen]
            assay = track_assay[targets].cpu().numpy()[chosen]
            error = (truth - predicted.float()).cpu().numpy()[chosen]
            spread_np, sd_np = spread.cpu().numpy()[chosen], sd.cpu().numpy()[chosen]
            measured = np.abs(error) / (sd_np * spread_np)
            for a in np.unique(assay):
                ratios["measured"][a].append(measured[assay == a])
            if not estimates:
                continue
            known = np.array([t in estimates for t in tracks], dtype=bool)
            if not known.any():
                continue
            mean_hat = np.array([estimates[t][0] for t in tracks[known]])
            sd_hat = np.array([estimates[t][1] for t in tracks[known]])
            predicted_np = predicted.float().cpu().numpy()[chosen][known]
            pair_mean = network.pair_mean[pairs[..., 0], pairs[..., 1]].cpu().numpy()[chosen][known]
            standardised = (predicted_np - pair_mean) / sd_np[known]
            truth_np = truth.cpu().numpy()[chosen][known]
            estimated = (np.abs(truth_np - (mean_hat + sd_hat * standardised))
                         / (sd_hat * spread_np[known]))
            for a in np.unique(assay[known]):
                ratios["estimated"][a].append(estimated[assay[known] == a])
    factors: dict[str, list[float]] = {}
    for kind, per_assay in ratios.items():
        pooled = [np.concatenate(r) for r in per_assay if r]
        if not pooled:  # no estimate possible (e.g. no standardisation): as measured
            factors[kind] = list(factors["measured"])
            continue
        overall = fit_scale(np.concatenate(pooled), levels)
        factors[kind] = [
            fit_scale(np.concatenate(r), levels) if r and sum(len(x) for x in r) >= MIN_RATIOS
            else overall for r in per_assay]
    scale = torch.tensor([factors["measured"], factors["estimated"]], dtype=torch.float32)
    network.spread_scale.copy_(scale.to(network.spread_scale.device))
    network.train(was_training)
    return factors
