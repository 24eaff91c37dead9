"""``epimpute suggest``: unmeasured tracks ranked by the model's mean predicted sd."""

import json

import numpy as np
import pandas as pd
import pytest

from epimpute import api
from epimpute.cli import main
from epimpute.suggest import sample_windows

TINY = {"model": {"d_model": 16, "n_heads": 2, "feedforward": 32, "decoder_hidden": [32],
                  "windows": [1, 3, 9], "uncertainty": True},
        "training": {"batch_size": 256, "epoch_bins": 2048, "max_epochs": 2,
                     "block_bins": 2000, "validation_max_bins": 4000}}


@pytest.fixture(scope="module")
def trained(small_compendium, tmp_path_factory):
    store, truth = small_compendium
    folder = tmp_path_factory.mktemp("suggest")
    (folder / "tiny.json").write_text(json.dumps(TINY))
    assert main(["-q", "train", str(store.path), "--model", "edice", "--out",
                 str(folder / "model"), "--config", str(folder / "tiny.json"), "--seed", "2",
                 "--device", "cpu"]) == 0
    assert main(["-q", "train", str(store.path), "--model", "average", "--out",
                 str(folder / "avg")]) == 0
    missing = sorted(truth)
    assert main(["-q", "impute", str(folder / "model"), str(store.path), "--missing", "--out",
                 str(folder / "imputed"), "--format", "npz", "--uncertainty", "--device", "cpu",
                 "--precision", "fp32"]) == 0
    sd = {key: np.load(folder / "imputed" / f"{key.replace(':', '.')}.sd.npz")
          for key in missing}
    return store, folder, sd


def test_sampled_windows_are_spread_evenly_and_stay_in_their_contig(small_compendium):
    store, _ = small_compendium
    lengths = {c: store.n_bins(c) for c in store.contigs}  # 12,000 + 8,000 bins
    windows = sample_windows(store, 4000, window=1000)
    assert len(windows) == 4 and sum(w.hi - w.lo for w in windows) == 4000
    assert [(w.contig, w.lo) for w in windows] == [("chrA", 0), ("chrA", 5000),
                                                    ("chrA", 10000), ("chrB", 3000)]
    assert all(0 <= w.lo < w.hi <= lengths[w.contig] for w in windows)
    every = sample_windows(store, 10**9, window=5000)
    assert sum(w.hi - w.lo for w in every) == sum(lengths.values())


def test_scores_are_the_mean_sd_that_impute_writes(trained):
    store, folder, sd = trained
    whole = api.suggest(folder / "model", store, sample_bins=10**9, device="cpu",
                        precision="fp32")
    assert list(whole.columns) == ["rank", "cell_type", "assay", "score"]
    assert whole["rank"].tolist() == list(range(1, len(sd) + 1))
    assert whole["score"].is_monotonic_decreasing
    expected = {key: np.concatenate([arrays[c] for c in store.contigs]).mean()
                for key, arrays in sd.items()}
    got = {f"{c}:{a}": s for c, a, s in zip(whole["cell_type"], whole["assay"], whole["score"])}
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-5)
    # a sample: the mean over the sampled windows only
    sampled = api.suggest(folder / "model", store, sample_bins=3000, top=2, device="cpu",
                          precision="fp32")
    windows = sample_windows(store, 3000)
    assert len(sampled) == 2
    for c, a, score in zip(sampled["cell_type"], sampled["assay"], sampled["score"]):
        arrays = sd[f"{c}:{a}"]
        values = np.concatenate([arrays[w.contig][w.lo:w.hi] for w in windows])
        assert score == pytest.approx(values.mean(), rel=1e-5)


def test_cli_writes_the_table_once_and_refuses_models_without_uncertainty(trained, capsys):
    store, folder, _ = trained
    out = folder / "next.tsv"
    args = ["-q", "suggest", str(folder / "model"), str(store.path), "--top", "2", "--device",
            "cpu", "--out", str(out)]
    assert main(args) == 0
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == ["rank", "cell_type", "assay", "score"] and len(table) == 2
    assert main(args) == 2 and "already exists" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    capsys.readouterr()
    refused = folder / "avg.tsv"
    assert main(["-q", "suggest", str(folder / "avg"), str(store.path), "--out",
                 str(refused)]) == 2
    assert "does not predict uncertainty" in capsys.readouterr().err
    assert not refused.exists()
    assert main(["-q", "suggest", str(folder / "model"), str(store.path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split("\t") == ["rank", "cell_type", "assay", "score"]
