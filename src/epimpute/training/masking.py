"""Which observed tracks to hide at each training bin, and which to reconstruct."""

from __future__ import annotations

from typing import NamedTuple

import torch


class Masks(NamedTuple):
    """Masks for a batch of ``N`` bins over ``T`` input tracks.

    available
        ``(N, T)`` bool: tracks the model may read at each bin.
    targets
        ``(N, K)`` long: indices of hidden tracks to reconstruct (padded).
    valid
        ``(N, K)`` bool: which entries of ``targets`` are real (the rest are padding).
    """

    available: torch.Tensor
    targets: torch.Tensor
    valid: torch.Tensor


def sample_masks(
    n_bins: int,
    n_tracks: int,
    *,
    max_masked: int,
    generator: torch.Generator,
    track_biosample: torch.Tensor | None = None,
    biosample_probability: float = 0.0,
    targetable: torch.Tensor | None = None,
) -> Masks:
    """Draw training masks.

    At each bin, either (probability ``1 - biosample_probability``) a uniform number
    ``k`` in ``1..max_masked`` of tracks chosen uniformly at random is hidden, or every
    track of one biosample chosen at random is hidden (the eDICE option used to train
    for biosamples with no data). At least one track always stays available.

    Parameters
    ----------
    n_bins, n_tracks
        Batch size ``N`` and number of input tracks ``T``.
    max_masked
        Largest number of tracks hidden at a bin in the random mode.
    generator
        Source of randomness (CPU generator).
    track_biosample
        ``(T,)`` biosample index of each track; needed when ``biosample_probability > 0``.
    biosample_probability
        Probability that a bin hides a whole biosample instead.
    targetable
        ``(T,)`` bool: tracks that may be hidden (default all). Others are always inputs;
        this keeps validation tracks out of the training targets.
    """
    if n_tracks < 2:
        raise ValueError("training by masking needs at least two observed tracks")
    if targetable is None:
        targetable = torch.ones(n_tracks, dtype=torch.bool)
    n_targetable = int(targetable.sum())
    if n_targetable == 0:
        raise ValueError("no track may be hidden")
    max_masked = max(1, min(max_masked, n_tracks - 1, n_targetable))
    # Tracks that may not be hidden sort last and are never among the first max_masked.
    scores = torch.rand(n_bins, n_tracks, generator=generator) + (~targetable) * 4.0
    counts = torch.randint(1, max_masked + 1, (n_bins,), generator=generator)
    width = max_masked
    if biosample_probability > 0:
        if track_biosample is None:
            raise ValueError("track_biosample is needed to mask whole biosamples")
        biosamples = torch.unique(track_biosample)
        whole = torch.rand(n_bins, generator=generator) < biosample_probability
        pick = biosamples[torch.randint(len(biosamples), (n_bins,), generator=generator)]
        hidden = (track_biosample.unsqueeze(0) == pick.unsqueeze(1)) & targetable
        per_bin = hidden.sum(1).clamp(max=n_tracks - 1)
        # Tracks of the chosen biosample sort first.
        scores = torch.where(whole.unsqueeze(1) & hidden, scores - 2.0, scores)
        counts = torch.where(whole, per_bin, counts)
        width = max(width, int(per_bin.max()))
    order = scores.argsort(dim=1)[:, :width]
    valid = torch.arange(width).unsqueeze(0) < counts.unsqueeze(1)
    available = torch.ones(n_bins, n_tracks, dtype=torch.bool)
    rows = torch.arange(n_bins).unsqueeze(1).expand(-1, width)
    available[rows[valid], order[valid]] = False
    return Masks(available, order, valid)
