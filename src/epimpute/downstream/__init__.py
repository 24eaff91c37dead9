"""Downstream predictors on what the models learned: window features from observed tracks,
imputed tracks or genome factors, and a cross-validated gradient-boosting predictor that
compares feature sets side by side (:func:`epimpute.downstream.run.downstream`)."""
