"""The metric catalogue is consistent with the metric functions."""

from epimpute import evaluation
from epimpute.evaluation.catalog import METRICS, metric_names


def test_every_metric_has_a_function_with_the_shared_signature():
    import inspect

    for name in METRICS:
        params = list(inspect.signature(getattr(evaluation, name)).parameters.values())
        assert [p.name for p in params[:3]] == ["y_true", "y_pred", "mask"], name
        assert all(p.kind is p.KEYWORD_ONLY for p in params[3:]), name


def test_streaming_subset():
    assert "gwspear" not in metric_names(full_pass=False)
    assert metric_names()[:3] == ["mse", "gwcorr", "gwspear"]
