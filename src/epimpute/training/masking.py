"""Which observed tracks to hide at each training bin, and which to reconstruct."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
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
    """
    if n_tracks < 2:
        raise ValueError("training by masking needs at least two observed tracks")
    max_masked = max(1, min(max_masked, n_tracks - 1))
    scores = torch.rand(n_bins, n_tracks, generator=generator)
    counts = torch.randint(1, max_masked + 1, (n_bins,), generator=generator)
    width = max_masked
    if biosample_probability > 0:
        if track_biosample is None:
            raise ValueError("track_biosample is needed to mask whole biosamples")
        biosamples = torch.unique(track_biosample)
        whole = torch.rand(n_bins, generator=generator) < biosample_probability
        pick = biosamples[torch.randint(len(biosamples), (n_bins,), generator=generator)]
        hidden = track_biosample.unsqueeze(0) == pick.unsqueeze(1)
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


def draw_context(track_biosample: torch.Tensor, n_context: int,
                 generator: torch.Generator) -> torch.Tensor | None:
    """Tracks of ``n_context`` biosamples drawn at random among those with tracks.

    Returns the sorted indices of their tracks, or ``None`` (and draws nothing) when
    ``n_context`` covers every biosample with tracks.
    """
    biosamples = torch.unique(track_biosample)
    if n_context >= len(biosamples):
        return None
    chosen = biosamples[torch.randperm(len(biosamples), generator=generator)[:n_context]]
    return torch.nonzero(torch.isin(track_biosample, chosen)).squeeze(1)


def widen_masks(masks: Masks, context: torch.Tensor, n_tracks: int) -> Masks:
    """``masks`` drawn over the tracks ``context`` restated over all ``n_tracks`` tracks:
    tracks outside ``context`` are neither available nor targets."""
    available = torch.zeros(masks.available.shape[0], n_tracks, dtype=torch.bool)
    available[:, context] = masks.available
    return Masks(available, context[masks.targets], masks.valid)


def choose_validation_tracks(tracks: Sequence[tuple[int, int]], count: int,
                             rng: np.random.Generator) -> list[int]:
    """Indices of up to ``count`` of the ``(biosample, assay)`` ``tracks`` to hold out.

    No two share a biosample or an assay, and every biosample and assay keeps at least two
    other tracks, so each held-out track is an unseen pair of the kind imputation fills in.
    """
    per_biosample = Counter(b for b, _ in tracks)
    per_assay = Counter(a for _, a in tracks)
    chosen: list[int] = []
    used_biosamples: set[int] = set()
    used_assays: set[int] = set()
    for i in rng.permutation(len(tracks)):
        if len(chosen) == count:
            break
        b, a = tracks[i]
        if b in used_biosamples or a in used_assays or per_biosample[b] < 3 \
                or per_assay[a] < 3:
            continue
        chosen.append(int(i))
        used_biosamples.add(b)
        used_assays.add(a)
        per_biosample[b] -= 1
        per_assay[a] -= 1
    return sorted(chosen)
