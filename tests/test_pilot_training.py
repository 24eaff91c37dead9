"""A seeded short eDICE training on a slice of the real Roadmap pilot data."""

import numpy as np
import pandas as pd
import pytest
from conftest import require_pilot

from epimpute import api
from epimpute.evaluation.error import mse

CELLS = ["E003", "E017", "E065", "E116", "E117"]
ASSAYS = ["H3K4me3", "H3K27me3", "H3K36me3", "H3K9me3", "H3K4me1"]
HELD_OUT = ["E003:H3K4me3", "E017:H3K27me3", "E065:H3K36me3", "E116:H3K9me3", "E117:H3K4me1"]
SLICE = slice(0, 160_000)


@pytest.mark.slow
def test_short_edice_training_beats_the_average_baseline(tmp_path):
    pilot = require_pilot()
    rows = []
    truth = {}
    for cell in CELLS:
        for assay in ASSAYS:
            values = np.load(pilot / f"{cell}.{assay}.pilot.arcsinh.npz")["arr_0"][SLICE]
            key = f"{cell}:{assay}"
            if key in HELD_OUT:
                truth[key] = values
                continue
            path = tmp_path / f"{cell}.{assay}.npy"
            np.save(path, values)
            rows.append({"cell_type": cell, "assay": assay, "path": path.name,
                         "chrom": "pilot"})
    pd.DataFrame(rows).to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    store = api.ingest(tmp_path / "samples.tsv", tmp_path / "pilot.zarr", transformed=True)
    config = tmp_path / "config.json"
    config.write_text('{"training": {"max_epochs": 6, "epoch_bins": 100000}}')
    scores = {}
    for model in ("average", "edice"):
        model_dir = api.train(store, tmp_path / model, model=model, config=config
                              if model == "edice" else None, seed=0, device="cpu")
        api.impute(model_dir, store, tmp_path / f"out-{model}", targets=HELD_OUT,
                   format="npz", device="cpu")
        scores[model] = np.mean([
            mse(truth[k], np.load(tmp_path / f"out-{model}" /
                                  f"{k.replace(':', '.')}.npz")["pilot"]) for k in HELD_OUT])
    assert scores["edice"] < 0.95 * scores["average"], scores
