"""A first convolution with known motifs beside the learnt filters.

Each motif gives two fixed filters, its log2-odds matrix against a uniform background and
that matrix's reverse complement, so a filter's response at a position is the motif's match
score there (as in FIMO) on either strand. The filters stay as they are during training (a
substitution that breaks or creates a match moves the response by exactly the change of
the match score); their biases are learnt, starting at minus the score a random sequence
passes with probability :data:`MATCH_P`, so that after the stem's activation only matches
stand out. The weights live in the network's state, so a trained model needs no motif
database to run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["MATCH_P", "PSEUDOCOUNT", "MotifStem", "motif_filters", "motif_width"]

PSEUDOCOUNT = 1e-4
"""Added to each probability before the log-odds (that of :func:`epimpute.motifs.scan`)."""
MATCH_P = 1e-4
"""Initial bias: minus the score a uniform random sequence passes with this probability."""
_Z = 3.719  # one-sided standard normal quantile of 1 - MATCH_P


def motif_width(lengths: Sequence[int]) -> int:
    """Kernel of the motif filters: the longest motif, made odd (filters are centred)."""
    longest = max(lengths)
    return longest + 1 - longest % 2


def motif_filters(pwms: Sequence[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``(2M, 4, width)`` and biases ``(2M,)`` of ``M`` motifs.

    Filter ``2m`` is motif ``m``'s log2 odds (``(4, length)`` probabilities of A, C, G, T,
    plus :data:`PSEUDOCOUNT`, over 1/4), filter ``2m + 1`` its reverse complement, each
    centred in ``width`` columns (zeros around). A bias is minus the score that a uniform
    random sequence passes with probability :data:`MATCH_P`, by the normal approximation of
    the score (a sum of independent columns): mean plus 3.719 standard deviations.
    """
    weights = np.zeros((2 * len(pwms), 4, width), dtype=np.float64)
    biases = np.zeros(2 * len(pwms), dtype=np.float64)
    for m, pwm in enumerate(pwms):
        pwm = np.asarray(pwm, dtype=np.float64)
        if pwm.ndim != 2 or pwm.shape[0] != 4 or not 0 < pwm.shape[1] <= width:
            raise ValueError(f"motif {m}: expected (4, length <= {width}) probabilities, "
                             f"got shape {pwm.shape}")
        odds = np.log2((pwm + PSEUDOCOUNT) / (1 + 4 * PSEUDOCOUNT) / 0.25)
        lo = (width - odds.shape[1]) // 2
        weights[2 * m, :, lo:lo + odds.shape[1]] = odds
        weights[2 * m + 1] = weights[2 * m, ::-1, ::-1]  # complement (ACGT reversed), reversed
        threshold = odds.mean(axis=0).sum() + _Z * np.sqrt(odds.var(axis=0).sum())
        biases[2 * m] = biases[2 * m + 1] = -threshold
    return weights.astype(np.float32), biases.astype(np.float32)


class MotifStem(nn.Module):
    """``(B, 4, L)`` one-hot -> ``(B, channels + 2 * motifs, L)``: the learnt filters' output,
    then the fixed motif filters' (forward and reverse strand of each motif in turn)."""

    def __init__(self, channels: int, kernel: int, n_motifs: int, width: int) -> None:
        super().__init__()
        self.learnt = nn.Conv1d(4, channels, kernel, padding=kernel // 2)
        self.motifs = nn.Conv1d(4, 2 * n_motifs, width, padding=width // 2)
        self.motifs.weight.requires_grad_(requires_grad=False)

    def set_motifs(self, pwms: Sequence[np.ndarray]) -> None:
        """Load the motif filters (see :func:`motif_filters`) and reset their biases."""
        weights, biases = motif_filters(pwms, self.motifs.kernel_size[0])
        if weights.shape[0] != self.motifs.out_channels:
            raise ValueError(f"the stem holds {self.motifs.out_channels // 2} motifs, "
                             f"got {len(pwms)}")
        with torch.no_grad():
            self.motifs.weight.copy_(torch.from_numpy(weights))
            self.motifs.bias.copy_(torch.from_numpy(biases))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.learnt(x), self.motifs(x)], dim=1)
