"""Post-hoc calibration of eDICE's predicted spread on the validation bins.

The spread head learns a heteroscedastic log-variance, but a Gaussian negative
log-likelihood fitted on training bins gives intervals that are too narrow where the
model over-fits and wrong in shape where errors have heavy tails. After training, the
validation bins (whole genomic blocks never trained on, with tracks hidden the way training
hides them) are predicted once, and factors on the sd are chosen
(:func:`epimpute.intervals.fit_scale`) so that the central 50/80/95% intervals cover the
hidden truth as closely as possible: per assay and per *level group* of the predicted
value (groups cut at quantiles of the assay's validation predictions), because errors in
predicted peaks are larger, relative to the predicted spread, than in the background.
Then the shape of the errors is measured: the quantiles of the calibrated validation
ratios ``|truth - mean| / sd`` at the reliability levels become the half-widths of the
central intervals (the errors are not Gaussian; see :mod:`epimpute.models.spread`).

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

from epimpute.intervals import CURVE_LEVELS, REPORTED_LEVELS, fit_scale, half_width
from epimpute.models.edice import Edice
from epimpute.models.spread import SPREAD_LEVEL_GROUPS, spread_group
from epimpute.models.track_scale import complete_log_additive

__all__ = ["GROUP_QUANTILES", "MIN_RATIOS", "calibrate_spread", "fit_group_factors",
           "interval_widths"]

MIN_RATIOS = 1000
"""A level group with fewer validation values than this gets its assay's factor, and an
assay with fewer gets the factor fitted on all assays."""
GROUP_QUANTILES = (0.5, 0.75, 0.9, 0.97)
"""Quantiles of an assay's predicted values that separate its level groups."""
assert len(GROUP_QUANTILES) == SPREAD_LEVEL_GROUPS - 1
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


def fit_group_factors(ratios: np.ndarray, groups: np.ndarray, fallback: float, *,
                      levels: Sequence[float] = REPORTED_LEVELS) -> list[float]:
    """One sd factor per level group (``groups`` in ``0 .. SPREAD_LEVEL_GROUPS - 1``) fitted on
    its ``ratios``; ``fallback`` for a group with fewer than :data:`MIN_RATIOS` values."""
    return [fit_scale(ratios[groups == g], levels) if np.sum(groups == g) >= MIN_RATIOS
            else fallback for g in range(SPREAD_LEVEL_GROUPS)]


def calibrate_spread(network: Edice, batches: Sequence[tuple[torch.Tensor, ...]], *,
                     levels: Sequence[float] = REPORTED_LEVELS) -> dict[str, list]:
    """Fit ``network.spread_scale``, ``spread_edges`` and ``spread_widths`` on validation
    ``batches`` (as the trainer builds them).

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
    dict[str, list]
        ``measured`` and ``estimated``: the factors per assay and level group, as set in
        the network; ``edges``: each assay's level-group edges; ``widths``: per kind and
        assay, the interval half-widths at :data:`epimpute.intervals.CURVE_LEVELS`.
    """
    was_training = network.training
    network.eval()
    n_assays = network.layout.n_assays
    # per kind and assay: (ratios, predicted values) of every validation value
    collected: dict[str, list[list[tuple[np.ndarray, np.ndarray]]]] = {
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
            predicted_np = predicted.float().cpu().numpy()[chosen]
            truth_np = truth.cpu().numpy()[chosen]
            spread_np, sd_np = spread.cpu().numpy()[chosen], sd.cpu().numpy()[chosen]
            measured = np.abs(truth_np - predicted_np) / (sd_np * spread_np)
            for a in np.unique(assay):
                collected["measured"][a].append((measured[assay == a],
                                                 predicted_np[assay == a]))
            if not estimates:
                continue
            known = np.array([t in estimates for t in tracks], dtype=bool)
            if not known.any():
                continue
            mean_hat = np.array([estimates[t][0] for t in tracks[known]])
            sd_hat = np.array([estimates[t][1] for t in tracks[known]])
            pair_mean = network.pair_mean[pairs[..., 0], pairs[..., 1]].cpu().numpy()[chosen][known]
            rescaled = mean_hat + sd_hat * (predicted_np[known] - pair_mean) / sd_np[known]
            estimated = np.abs(truth_np[known] - rescaled) / (sd_hat * spread_np[known])
            for a in np.unique(assay[known]):
                collected["estimated"][a].append((estimated[assay[known] == a],
                                                  rescaled[assay[known] == a]))
    pooled = {kind: [(np.concatenate([r for r, _ in parts]), np.concatenate([v for _, v in parts]))
                     if parts else None for parts in per_assay]
              for kind, per_assay in collected.items()}
    edges = np.full((n_assays, SPREAD_LEVEL_GROUPS - 1), np.inf)
    for a in range(n_assays):
        values = [p[a][1] for p in pooled.values() if p[a] is not None]
        if values and sum(len(v) for v in values) >= MIN_RATIOS:
            edges[a] = np.quantile(np.concatenate(values), GROUP_QUANTILES)
    stored_edges = torch.as_tensor(edges, dtype=torch.float32)  # as imputation reads them
    # per kind and assay: (ratios, level group of each), grouped as output_sd groups
    grouped = {kind: [None if part is None else
                      (part[0], spread_group(stored_edges[a], torch.from_numpy(part[1]).float())
                       .numpy()) for a, part in enumerate(per_assay)]
               for kind, per_assay in pooled.items()}
    factors: dict[str, list] = {}
    for kind, per_assay in grouped.items():
        present = [p for p in per_assay if p is not None]
        if not present:  # no estimate possible (e.g. no standardisation): as measured
            factors[kind] = [list(f) for f in factors["measured"]]
            continue
        overall = fit_scale(np.concatenate([r for r, _ in present]), levels)
        factors[kind] = [
            [overall] * SPREAD_LEVEL_GROUPS if part is None or len(part[0]) < MIN_RATIOS
            else fit_group_factors(part[0], part[1], fit_scale(part[0], levels), levels=levels)
            for part in per_assay]
    widths = {kind: _interval_widths(grouped[kind] if any(p is not None for p in grouped[kind])
                                     else grouped["measured"], factors[kind])
              for kind in grouped}
    scale = torch.tensor([factors["measured"], factors["estimated"]], dtype=torch.float32)
    network.spread_scale.copy_(scale.to(network.spread_scale.device))
    network.spread_edges.copy_(stored_edges.to(network.spread_edges.device))
    network.spread_widths.copy_(torch.tensor([widths["measured"], widths["estimated"]],
                                             dtype=torch.float32))
    network.train(was_training)
    return {**factors, "edges": edges.tolist(), "widths": widths}


def interval_widths(ratios: np.ndarray, levels: Sequence[float] = CURVE_LEVELS) -> list[float]:
    """Half-widths, in calibrated sds, of the central intervals at ``levels``: the empirical
    quantiles of the calibrated ``ratios`` ``|truth - mean| / sd`` (a Gaussian's ``z_p``
    when there are fewer than :data:`MIN_RATIOS`)."""
    values = np.asarray(ratios, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    if values.size < MIN_RATIOS:
        return [half_width(p) for p in levels]
    return [float(q) for q in np.quantile(values, levels)]


def _interval_widths(per_assay: list, factors: list[list[float]]) -> list[list[float]]:
    """Each assay's interval half-widths from its validation ratios ``(ratios, groups)``
    divided by their group's factor; an assay with too few gets those of all assays."""
    calibrated = [np.zeros(0) if part is None else part[0] / np.asarray(factors[a])[part[1]]
                  for a, part in enumerate(per_assay)]
    overall = interval_widths(np.concatenate(calibrated))
    return [interval_widths(c) if c.size >= MIN_RATIOS else overall for c in calibrated]
