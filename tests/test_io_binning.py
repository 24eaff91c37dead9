import numpy as np
import pytest

from epimpute.errors import InputError
from epimpute.io.binning import (
    arcsinh,
    bin_intervals,
    bin_window,
    n_bins,
    sinh,
    windows,
)


def test_n_bins_rounds_up():
    assert n_bins(100, 25) == 4
    assert n_bins(101, 25) == 5
    assert n_bins(1, 25) == 1


@pytest.mark.parametrize("length, bin_size", [(0, 25), (100, 0), (-5, 25), (100, 2.5)])
def test_n_bins_rejects_non_positive(length, bin_size):
    with pytest.raises(InputError, match="positive integer"):
        n_bins(length, bin_size)


def test_partial_coverage_and_gaps_count_as_zero():
    # bin 0 [0,10): 4 bases of 2.0 -> 0.8
    # bin 1 [10,20): 2 bases of 2.0, 3 bases of 5.0 -> (4 + 15) / 10 = 1.9
    # bin 2 [20,30): nothing -> 0
    # bin 3 [30,40): 10 bases of 1.0 -> 1.0
    out = bin_intervals([6, 17, 30], [12, 20, 40], [2.0, 5.0, 1.0], length=40, bin_size=10)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.8, 1.9, 0.0, 1.0], rtol=1e-6)


def test_last_partial_bin_averages_over_its_real_bases():
    # length 25 with bin 10: the last bin covers [20, 25), 5 bases; 3 bases of 4.0 -> 2.4
    out = bin_intervals([0, 22], [10, 25], [1.0, 4.0], length=25, bin_size=10)
    np.testing.assert_allclose(out, [1.0, 0.0, 2.4], rtol=1e-6)


def test_interval_spanning_several_bins():
    # one interval [5, 35) of 3.0: bins get 5, 10, 10, 5 covered bases of 10
    out = bin_intervals([5], [35], [3.0], length=40, bin_size=10)
    np.testing.assert_allclose(out, [1.5, 3.0, 3.0, 1.5], rtol=1e-6)


def test_unsorted_intervals_give_the_same_bins():
    starts, ends, values = [30, 6, 17], [40, 12, 20], [1.0, 2.0, 5.0]
    out = bin_intervals(starts, ends, values, length=40, bin_size=10)
    np.testing.assert_allclose(out, [0.8, 1.9, 0.0, 1.0], rtol=1e-6)


def test_no_intervals_gives_zeros():
    out = bin_intervals([], [], [], length=21, bin_size=10)
    np.testing.assert_array_equal(out, np.zeros(3, dtype=np.float32))


def test_matches_base_level_average_on_random_intervals():
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(np.arange(1, 997), size=80, replace=False))
    starts, ends = cuts[0::2], cuts[1::2]
    values = rng.uniform(0, 10, size=starts.size)
    bases = np.zeros(997)
    for s, e, v in zip(starts, ends, values, strict=True):
        bases[s:e] = v
    expected = [bases[i : i + 25].mean() for i in range(0, 997, 25)]
    out = bin_intervals(starts, ends, values, length=997, bin_size=25)
    np.testing.assert_allclose(out, expected, rtol=1e-5)


@pytest.mark.parametrize(
    "starts, ends, values, message",
    [
        ([0, 5], [10, 15], [1.0, 1.0], "0-10 and 5-15 overlap"),
        ([0, 12], [10, 12], [1.0, 1.0], "12-12 is empty or reversed"),
        ([0, 20], [10, 15], [1.0, 1.0], "20-15 is empty or reversed"),
        ([0, 30], [10, 41], [1.0, 1.0], "30-41 ends past the length 40"),
        ([-2], [3], [1.0], "starts before 0"),
        ([0, 20], [10, 25], [1.0, np.nan], "20-25 has the value nan"),
    ],
)
def test_bad_intervals_are_rejected(starts, ends, values, message):
    with pytest.raises(InputError, match=message):
        bin_intervals(starts, ends, values, length=40, bin_size=10)


def test_mismatched_lengths_are_rejected():
    with pytest.raises(InputError, match="1-D arrays of one length"):
        bin_intervals([0, 10], [5], [1.0], length=40, bin_size=10)


def test_arcsinh_and_sinh_are_inverse():
    x = np.array([0.0, 1.0, 10.0, 1000.0])
    np.testing.assert_allclose(arcsinh(x), np.arcsinh(x))
    np.testing.assert_allclose(arcsinh(1.0), np.log(1.0 + np.sqrt(2.0)))
    np.testing.assert_allclose(sinh(arcsinh(x)), x, rtol=1e-12)


def random_cover(rng, length, n):
    """Disjoint sorted intervals in [0, length) with values on a 1/8 grid (sums exact)."""
    cuts = np.sort(rng.choice(np.arange(0, length + 1), size=2 * n, replace=False))
    starts, ends = cuts[0::2], cuts[1::2]
    return starts, ends, rng.integers(1, 80, size=n) / 8.0


@pytest.mark.parametrize("window_bins", [1, 2, 3, 7, 40, 1000])
def test_windowed_binning_equals_whole_contig_binning(window_bins):
    # 997 bases at bin size 10: 100 bins, the last one 7 bases; some intervals are long
    # enough to cross several window edges, others end or start exactly on one
    rng = np.random.default_rng(3)
    starts, ends, values = random_cover(rng, 997, 60)
    whole = bin_intervals(starts, ends, values, length=997, bin_size=10)
    parts = []
    for first, last, lo, hi in windows(997, 10, window_bins):
        assert (lo, hi) == (first * 10, min(last * 10, 997))
        parts.append(bin_window(starts, ends, values, lo=lo, hi=hi, bin_size=10))
        assert parts[-1].size == last - first
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_window_edge_inside_an_interval_by_hand():
    # one interval [15, 47) of 2.0, bins of 10, windows of 2 bins = 20 bases:
    # window [0, 20): bin 1 has 5 bases -> 1.0; window [20, 40): 2.0, 2.0;
    # window [40, 50): bin 4 has 7 bases -> 1.4
    got = [
        bin_window([15], [47], [2.0], lo=lo, hi=hi, bin_size=10)
        for _, _, lo, hi in windows(50, 10, 2)
    ]
    np.testing.assert_allclose(np.concatenate(got), [0, 1.0, 2.0, 2.0, 1.4], rtol=1e-6)
    assert [len(g) for g in got] == [2, 2, 1]


def test_bin_window_checks_its_window_and_the_intervals_inside():
    with pytest.raises(ValueError, match="bin edge"):
        bin_window([0], [5], [1.0], lo=5, hi=20, bin_size=10)
    with pytest.raises(InputError, match="overlap"):
        bin_window([0, 12], [15, 18], [1.0, 1.0], lo=10, hi=20, bin_size=10)
    # an interval wholly outside the window is ignored, not refused
    np.testing.assert_array_equal(
        bin_window([0, 30], [5, 40], [1.0, 9.0], lo=10, hi=30, bin_size=10), [0, 0]
    )
