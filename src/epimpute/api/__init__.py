"""The public Python API; each function is one ``epimpute`` subcommand.
>>> from epimpute import api                                    # doctest: +SKIP
>>> store = api.ingest("samples.tsv", "compendium.zarr")        # doctest: +SKIP
>>> api.train("compendium.zarr", "models/edice", model="edice")  # doctest: +SKIP
>>> api.impute("models/edice", "compendium.zarr", "imputed", missing=True)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from epimpute.api._common import expand_keys
from epimpute.api.generators import synth, synth_sequence
from epimpute.api.imputing import export, factors, impute, suggest
from epimpute.api.training import extend, train
from epimpute.config_file import read_config_file
from epimpute.model_dir import load_model
from epimpute.store import ingest

__all__ = ["ingest", "train", "extend", "impute", "evaluate", "factors", "load_model",
           "read_config_file", "expand_keys", "synth", "export", "synth_sequence",
           "replicates", "differential", "compare", "downstream", "variants", "suggest"]


def __getattr__(name: str) -> Any:
    # ``evaluate`` (epimpute.evaluation.run.evaluate) is imported on first use: scipy and
    # pandas would otherwise slow every command's start by a second.
    if name == "evaluate":
        from epimpute.evaluation.run import evaluate

        return evaluate
    if name in ("replicates", "differential", "compare"):  # pandas, scipy and pydeseq2
        from epimpute import differential

        return getattr(differential, name)
    if name == "downstream":  # lightgbm and scikit-learn load on first use
        from epimpute.downstream.run import downstream

        return downstream
    if name == "variants":  # epimpute.variants.variants
        from epimpute.variants import variants

        return variants
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
