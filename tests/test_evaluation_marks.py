"""Mark groups from assay names."""

import pytest

from epimpute.evaluation.marks import mark_of, mark_role, mark_shape


@pytest.mark.parametrize(
    ("assay", "mark", "shape", "role"),
    [
        ("H3K4me3", "H3K4ME3", "narrow", "activating"),
        ("ChIP-seq_H3K27ac_signal_p-value", "H3K27AC", "narrow", "activating"),
        ("H3K27me3", "H3K27ME3", "broad", "repressive"),
        ("h3k9me3", "H3K9ME3", "broad", "repressive"),
        ("H3K36me3", "H3K36ME3", "broad", "activating"),
        ("H3K4me1", "H3K4ME1", "broad", "activating"),
        ("DNase-seq", "DNASE", "narrow", "activating"),
        ("CTCF", None, None, None),
        ("H3K4me10", None, None, None),
    ],
)
def test_marks(assay, mark, shape, role):
    assert mark_of(assay) == mark
    assert mark_shape(assay) == shape
    assert mark_role(assay) == role
