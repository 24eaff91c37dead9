import numpy as np
import pytest

from epimpute.models.track_scale import STATISTIC_FLOOR, complete_log_additive


def test_missing_entries_of_a_product_table_are_recovered_exactly():
    biosample = np.array([1.0, 2.0, 0.5])
    assay = np.array([0.3, 0.6, 1.2, 0.9])
    table = np.outer(biosample, assay)
    measured = np.ones_like(table, dtype=bool)
    measured[0, 1] = measured[1, 0] = measured[2, 3] = False
    given = np.where(measured, table, 99.0)
    completed = complete_log_additive(given, measured)
    np.testing.assert_allclose(completed, table, rtol=1e-9)


def test_measured_entries_are_returned_unchanged():
    rng = np.random.default_rng(0)
    table = rng.uniform(0.1, 2.0, size=(4, 5))
    measured = rng.random((4, 5)) < 0.7
    measured[:, 0] = measured[0, :] = True
    completed = complete_log_additive(table, measured)
    assert np.array_equal(completed[measured], table[measured])


def test_an_unmeasured_biosample_is_a_typical_one():
    # rows 0 and 1 are 1x and 4x the assay profile; row 2 (never measured) gets their
    # geometric mean, 2x
    assay = np.array([0.5, 1.0, 2.0])
    table = np.vstack([assay, 4 * assay, np.zeros(3)])
    measured = np.array([[True] * 3, [True] * 3, [False] * 3])
    np.testing.assert_allclose(complete_log_additive(table, measured)[2], 2 * assay)


def test_one_measured_entry_per_row_and_column_in_a_chain():
    # a (0,0) (0,1) (1,1) chain fixes (1,0) = t01 * t10 / t00 ... here t10 = t11 * t00 / t01
    table = np.array([[2.0, 3.0], [0.0, 6.0]])
    measured = np.array([[True, True], [False, True]])
    assert complete_log_additive(table, measured)[1, 0] == pytest.approx(4.0)


def test_empty_tracks_are_floored_in_the_fit():
    table = np.array([[0.0, 1.0], [1.0, 0.0]])
    measured = np.array([[True, True], [True, False]])
    completed = complete_log_additive(table, measured)
    assert completed[0, 0] == 0.0
    assert completed[1, 1] == pytest.approx(1.0 / STATISTIC_FLOOR)


def test_nothing_measured_is_an_error():
    with pytest.raises(ValueError, match="no measured"):
        complete_log_additive(np.ones((2, 2)), np.zeros((2, 2), dtype=bool))
