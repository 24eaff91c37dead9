"""Central Gaussian intervals: half-widths, coverage and the fitted sd factor."""

from statistics import NormalDist

import numpy as np
import pytest

from epimpute.intervals import REPORTED_LEVELS, coverage, fit_scale, half_width

PHI = NormalDist().cdf


def test_half_widths_are_the_gaussian_quantiles():
    assert half_width(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert half_width(0.5) == pytest.approx(0.674490, abs=1e-6)
    with pytest.raises(ValueError):
        half_width(1.0)


def test_truth_drawn_from_the_predicted_gaussian_is_covered_at_nominal_rates():
    rng = np.random.default_rng(0)
    mean, sd = rng.normal(size=200_000), rng.uniform(0.2, 3.0, size=200_000)
    truth = rng.normal(mean, sd)
    got = coverage(np.abs(truth - mean) / sd, REPORTED_LEVELS)
    np.testing.assert_allclose(got, REPORTED_LEVELS, atol=0.005)


@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_a_wrong_sd_covers_what_the_gaussian_says(factor):
    """Truth ~ N(0, 1) with a predicted sd of ``factor``: the central p interval
    +-z*factor holds the truth with probability 2*Phi(z*factor) - 1."""
    rng = np.random.default_rng(1)
    ratios = np.abs(rng.normal(size=200_000)) / factor
    expected = [2 * PHI(half_width(p) * factor) - 1 for p in REPORTED_LEVELS]
    np.testing.assert_allclose(coverage(ratios, REPORTED_LEVELS), expected, atol=0.005)
    # the same via the scale argument, from ratios with the right sd
    np.testing.assert_allclose(coverage(ratios * factor, REPORTED_LEVELS, scale=factor),
                               expected, atol=0.005)


def test_coverage_counts_bounds_inclusively_and_is_nan_when_empty():
    z = half_width(0.5)
    assert coverage(np.array([0.0, z, z + 1e-9, 5.0]), [0.5]).tolist() == [0.5]
    assert np.isnan(coverage(np.array([]), [0.5])).all()


def test_fitted_factor_recovers_an_sd_that_was_too_small():
    rng = np.random.default_rng(2)
    ratios = np.abs(rng.normal(scale=2.0, size=100_000))  # the predicted sd was half the true
    assert fit_scale(ratios) == pytest.approx(2.0, rel=0.02)
    np.testing.assert_allclose(coverage(ratios, REPORTED_LEVELS, scale=fit_scale(ratios)),
                               REPORTED_LEVELS, atol=0.01)
    assert fit_scale(np.array([])) == 1.0


def test_fitted_factor_balances_the_worst_level_for_heavy_tails():
    """Laplace errors: no single factor is right at every level; the fit's largest gap is
    no larger than that of the factors around it."""
    rng = np.random.default_rng(3)
    ratios = np.abs(rng.laplace(size=100_000))
    best = fit_scale(ratios)

    def worst(scale):
        return np.abs(coverage(ratios, REPORTED_LEVELS, scale=scale) - REPORTED_LEVELS).max()

    assert all(worst(best) <= worst(best * f) + 1e-12 for f in (0.8, 0.95, 1.05, 1.25))
