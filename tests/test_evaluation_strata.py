"""Specificity strata definitions and counts."""

import numpy as np
import pytest

from epimpute.errors import InputError
from epimpute.evaluation.strata import Strata, specificity_counts


def test_members_for_five_cell_types():
    members = Strata(5).members()
    assert list(members) == [
        "all",
        "count=0",
        "count=1",
        "count=2",
        "count=3",
        "count=4",
        "count=5",
        "high_specificity",
        "low_specificity",
    ]
    assert members["high_specificity"] == (1, 2)
    assert members["low_specificity"] == (3, 4, 5)
    assert members["all"] == (0, 1, 2, 3, 4, 5)


def test_edge_cases():
    assert Strata(1).members()["high_specificity"] == ()
    assert Strata(0).names() == ["all"]
    with pytest.raises(InputError):
        Strata(-1)


def test_counts():
    masks = np.array([[True, False, True], [True, False, False]])
    assert specificity_counts(masks).tolist() == [2, 0, 1]
    with pytest.raises(InputError):
        specificity_counts(np.ones((2, 3)))
