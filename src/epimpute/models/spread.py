"""Calibration tables of eDICE's predicted spread: level groups and interval shapes.

A calibrated sd is ``pair sd x factor x exp(log-variance / 2)``, the factor chosen per assay,
per kind of pair (statistics measured or estimated) and per *level group* of the predicted
value (where it falls among the assay's group edges). The central ``p`` interval is
``mean +- w_p x sd``, with half-widths ``w_p`` measured on the validation errors at
:data:`epimpute.intervals.CURVE_LEVELS` (a Gaussian's ``z_p`` until measured).
"""

from __future__ import annotations

import torch

from epimpute.intervals import CURVE_LEVELS, half_width

__all__ = ["SPREAD_LEVEL_GROUPS", "gaussian_widths", "grow_spread_state", "spread_group",
           "upgrade_spread_state"]

SPREAD_LEVEL_GROUPS = 5
"""Groups of predicted values (per assay) with a calibration factor each."""


def gaussian_widths() -> torch.Tensor:
    """Half-widths of a standard Gaussian's central intervals at :data:`CURVE_LEVELS`."""
    return torch.tensor([half_width(p) for p in CURVE_LEVELS], dtype=torch.float32)


def spread_group(edges: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Level group of each value: how many of its edges ``(..., G - 1)`` it reaches."""
    return (values.unsqueeze(-1) >= edges).sum(-1)


def upgrade_spread_state(state: dict[str, torch.Tensor], prefix: str = "") -> None:
    """Bring an older calibration in ``state`` (in place) to the current tables: factors
    with one group per assay (no edges) become that single group, and a model without
    measured interval shapes gets the Gaussian's."""
    scale = state.get(prefix + "spread_scale")
    if scale is None:
        return
    n_assays = scale.shape[1]
    if scale.dim() == 2:
        state[prefix + "spread_scale"] = scale[..., None].repeat(1, 1, SPREAD_LEVEL_GROUPS)
        state[prefix + "spread_edges"] = torch.full((n_assays, SPREAD_LEVEL_GROUPS - 1),
                                                    float("inf"))
    if prefix + "spread_widths" not in state:
        state[prefix + "spread_widths"] = gaussian_widths().repeat(2, n_assays, 1)


def grow_spread_state(state: dict[str, torch.Tensor], n_assays: int) -> None:
    """Grow the tables in ``state`` (in place) to ``n_assays``: the old assays keep theirs, a
    new one gets the mean factors, one level group and a Gaussian's interval half-widths
    (until calibration refits them all)."""
    old = state["spread_scale"]
    scale = old.mean(1, keepdim=True).repeat(1, n_assays, 1)
    scale[:, :old.shape[1]] = old
    edges = torch.full((n_assays, old.shape[2] - 1), float("inf"))
    edges[:old.shape[1]] = state["spread_edges"]
    widths = gaussian_widths().repeat(2, n_assays, 1)
    widths[:, :old.shape[1]] = state["spread_widths"]
    state.update(spread_scale=scale, spread_edges=edges, spread_widths=widths)
