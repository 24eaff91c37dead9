"""Individual-specific-peak AUPRC, on tracks whose peaks are placed by hand."""

import numpy as np
import pytest

from epimpute.evaluation.individual import individual_peaks_auprc, individual_specific_bins

HIGH = np.arcsinh(10.0)  # -log10 p = 10, above the cutoff of 2


def tracks():
    """Target B: peaks at bins 10-19 (250 bp, also in A), 40-49 (250 bp, B only) and
    70-74 (125 bp, B only: too short). Reference A: peaks at 12-15 and 90-99 (A only)."""
    b = np.zeros(120, dtype=np.float32)
    a = np.zeros(120, dtype=np.float32)
    b[10:20] = b[40:50] = b[70:75] = HIGH
    a[12:16] = a[90:100] = HIGH
    return b, a


def test_positives_are_long_b_only_peaks_and_shared_or_short_peaks_are_left_out():
    b, a = tracks()
    positive, scored = individual_specific_bins(b, a, bin_size=25)
    assert np.flatnonzero(positive).tolist() == list(range(40, 50))
    left_out = np.flatnonzero(~scored).tolist()
    assert left_out == list(range(10, 20)) + list(range(70, 75))


def test_auprc_by_hand():
    b, a = tracks()
    # Copying A: of the 105 scored bins, A's own peak (90-99, a negative) scores highest;
    # the 10 positives tie with the 85 other bins at 0. Thresholds: 10 bins (0 positives),
    # then all 105 (10 positives): AP = 1.0 * 10 / 105.
    assert individual_peaks_auprc(b, a.copy(), reference=a) == pytest.approx(10 / 105)
    # a perfect imputation ranks the 10 positives first
    assert individual_peaks_auprc(b, b, reference=a) == 1.0
    # masking out the positives leaves nothing to find
    mask = np.ones(120, dtype=bool)
    mask[40:50] = False
    assert np.isnan(individual_peaks_auprc(b, b, mask, reference=a))
