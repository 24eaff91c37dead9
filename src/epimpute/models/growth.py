"""Growing parameter tables when a trained model gains biosamples or assays."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["grow_rows"]


def grow_rows(old: torch.Tensor, n_rows: int, new_rows: Sequence[int], *,
              fresh: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``old`` ``(R, ...)`` grown to ``n_rows`` rows.

    The ``new_rows`` (indices in the grown table; rows past ``R`` and rows of ``old`` that
    were never trained) get the mean of the other rows of ``old``, or with ``fresh``
    standard normal values drawn from it (as ``nn.Embedding`` starts).

    Returns
    -------
    tuple[torch.Tensor, torch.Tensor]
        The grown tensor and a bool mask of the new rows, broadcast to its shape.
    """
    grown = old.new_empty((n_rows, *old.shape[1:]))
    grown[:old.shape[0]] = old
    new = torch.zeros(n_rows, dtype=torch.bool)
    new[list(new_rows)] = True
    trained = ~new
    trained[old.shape[0]:] = False
    if bool(new.any()) and fresh is not None:
        grown[new] = torch.randn((int(new.sum()), *old.shape[1:]), generator=fresh,
                                 dtype=old.dtype)
    elif bool(new.any()):
        fill = old[trained[:old.shape[0]]].mean(0) if bool(trained.any()) else old.mean(0)
        grown[new] = fill
    mask = new.view(-1, *([1] * (old.dim() - 1))).expand_as(grown).clone()
    return grown, mask
