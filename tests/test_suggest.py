"""``epimpute suggest``: unmeasured tracks ranked by a simulated measurement's value to the
cell type's other missing tracks, or by the model's mean predicted sd."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import write_array_compendium

from epimpute import api
from epimpute.cli import main
from epimpute.imputation import WindowImputer
from epimpute.model_dir import load_model
from epimpute.store import Store, ingest
from epimpute.suggest import (
    SIMULATION_COLUMNS,
    donor_plan,
    sample_windows,
    simulate_measurements,
    simulated_scores,
)
from epimpute.suggest_retraining import retraining_jobs, simulate_retraining
from epimpute.synthetic import SyntheticSpec

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
    whole = api.suggest(folder / "model", store, criterion="spread", sample_bins=10**9,
                        device="cpu", precision="fp32")
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
    sampled = api.suggest(folder / "model", store, criterion="spread", sample_bins=3000, top=2,
                          device="cpu", precision="fp32")
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
            "cpu", "--out", str(out), "--criterion", "spread"]
    assert main(args) == 0
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == ["rank", "cell_type", "assay", "score"] and len(table) == 2
    assert main(args) == 2 and "already exists" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    capsys.readouterr()
    refused = folder / "avg.tsv"
    assert main(["-q", "suggest", str(folder / "avg"), str(store.path), "--out",
                 str(refused), "--criterion", "spread"]) == 2
    assert "does not predict uncertainty" in capsys.readouterr().err
    assert not refused.exists()
    assert main(["-q", "suggest", str(folder / "model"), str(store.path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split("\t") == ["rank", "cell_type", "assay", "score"]


def test_donors_share_the_most_measured_assays_with_the_cell_type():
    # biosamples 0-4 x assays 0-3; True = measured
    measured = {0: {0}, 1: {0, 1, 2, 3}, 2: {0, 1, 2}, 3: {1, 2, 3}, 4: {0, 1}}
    tracks = [(b, a) for b in range(5) for a in range(4)]
    available = np.array([a in measured[b] for b, a in tracks])
    candidates = [(b, a) for b, a in tracks if a not in measured[b]]
    # cell 0 lacks 1, 2, 3: cells 1, 2 share its assay 0 (1 before 2: it measures all three
    # missing ones, 2 only two of them); 3 shares none; 4 measures only one missing assay.
    # Cells 2 and 3 lack one assay each: no other missing track to inform, no donors.
    # cell 4 lacks 2, 3: cell 1 shares 0 and 1, cell 3 shares 1; cell 2 measures only 2.
    assert donor_plan(tracks, available, candidates) == {0: [1, 2, 3], 4: [1, 3]}
    assert donor_plan(tracks, available, candidates, donors=2) == {0: [1, 2], 4: [1, 3]}


def test_scores_sum_the_donor_mean_drops_of_the_other_missing_assays():
    rows = [("X", "a1", "D1", "a2", 1.0, 0.6), ("X", "a1", "D1", "a3", 0.5, 0.5),
            ("X", "a1", "D2", "a2", 0.8, 0.6), ("X", "a2", "D1", "a1", 2.0, 1.0)]
    simulation = pd.DataFrame(rows, columns=SIMULATION_COLUMNS)
    candidates = [("X", "a1"), ("X", "a2"), ("X", "a3"), ("Y", "a1")]
    # X:a1: a2 drops 0.4 and 0.2 (mean 0.3), a3 0; X:a2: 1.0; X:a3: no donor; Y:a1 alone
    scores = simulated_scores(simulation, candidates)
    np.testing.assert_allclose(scores, [0.3, 1.0, np.nan, 0.0])


@pytest.fixture(scope="module")
def sparse(tmp_path_factory):
    """A store in which cell type 0 measures one assay of 4, a tiny eDICE trained on it, and
    a folder for stores with some of a donor's tracks left out."""
    folder = tmp_path_factory.mktemp("sparse")
    spec = SyntheticSpec(n_cell_types=4, contigs={"chrA": 150_000}, missing_fraction=0.0,
                         assays=("H3K4me3", "H3K27ac", "H3K36me3", "H3K27me3"), seed=4)
    sheet, _ = write_array_compendium(folder / "arrays", spec)
    rows = pd.read_csv(sheet, sep="\t")
    cells = sorted(rows["cell_type"].unique())
    keep = (rows["cell_type"] != cells[0]) | (rows["assay"] == "H3K4me3")
    rows[keep].to_csv(folder / "arrays" / "sparse.tsv", sep="\t", index=False)
    store = ingest(folder / "arrays" / "sparse.tsv", folder / "sparse.zarr",
                   chrom_sizes=spec.contigs)
    config = dict(TINY, model=dict(TINY["model"], uncertainty=False))
    (folder / "tiny.json").write_text(json.dumps(config))
    assert main(["-q", "train", str(store.path), "--model", "edice", "--out",
                 str(folder / "model"), "--config", str(folder / "tiny.json"), "--seed", "1",
                 "--device", "cpu"]) == 0
    return store, rows[keep], folder, cells, spec


def test_simulation_is_the_imputation_from_a_store_without_the_donors_other_tracks(sparse):
    store, rows, folder, cells, spec = sparse
    imputer = load_model(folder / "model")
    work = WindowImputer(imputer, store, [], device="cpu", precision="fp32")
    layout = imputer.layout
    candidates = [(0, a) for a in range(layout.n_assays)
                  if layout.assays[a] != "H3K4me3"]
    assert layout.biosamples[0] == cells[0]
    windows = sample_windows(store, 10**9, window=1500)
    simulation = simulate_measurements(work, candidates, windows, donors=2)
    donors = sorted(simulation["donor"].unique())
    assert len(donors) == 2 and cells[0] not in donors
    row = simulation.iloc[0]
    donor, measured, assay = row["donor"], row["measured"], row["assay"]
    # independently: impute the donor's track from a store holding, of the donor's tracks,
    # only H3K4me3 (what cell type 0 measures), then also the measured assay's
    mse = []
    for name, kept in (("without", {"H3K4me3"}), ("with", {"H3K4me3", measured})):
        part = rows[(rows["cell_type"] != donor) | rows["assay"].isin(kept)]
        part.to_csv(folder / "arrays" / f"{name}.tsv", sep="\t", index=False)
        reduced = ingest(folder / "arrays" / f"{name}.tsv", folder / f"{name}.zarr",
                         chrom_sizes=spec.contigs)
        api.impute(folder / "model", reduced, folder / f"imputed-{name}",
                   targets=[f"{donor}:{assay}"], format="npz", device="cpu",
                   precision="fp32", overwrite=True)
        predicted = np.load(folder / f"imputed-{name}" / f"{donor}.{assay}.npz")["chrA"]
        truth = Store.open(store.path).read("chrA", tracks=[store.track_index(
            f"{donor}:{assay}")])[0]
        mse.append(np.mean((predicted.astype(np.float64) - truth) ** 2))
    assert row["mse_without"] == pytest.approx(mse[0], rel=1e-4)
    assert row["mse_with"] == pytest.approx(mse[1], rel=1e-4)
    assert abs(mse[0] - mse[1]) > 1e-3 * mse[0]  # the measured track changes the imputation


def test_ranking_by_simulation_scores_only_cell_types_missing_several_tracks(sparse, capsys):
    store, _, folder, cells, _ = sparse
    table = api.suggest(folder / "model", store, sample_bins=2000, device="cpu",
                        precision="fp32")
    assert len(table) == 3 and set(table["cell_type"]) == {cells[0]}
    assert table["score"].is_monotonic_decreasing and np.isfinite(table["score"]).all()
    out = folder / "next.tsv"
    assert main(["-q", "suggest", str(folder / "model"), str(store.path), "--sample-bins",
                 "2000", "--device", "cpu", "--precision", "fp32", "--donors", "1", "--out",
                 str(out)]) == 0
    assert pd.read_csv(out, sep="\t").shape == (3, 4)
    assert main(["-q", "suggest", str(folder / "model"), str(store.path), "--donors",
                 "0"]) == 2
    assert "--donors must be positive" in capsys.readouterr().err


def test_retraining_hides_the_donors_tracks_of_the_assays_the_cell_type_lacks():
    measured = {0: {0}, 1: {0, 1, 2, 3}, 2: {0, 1, 2}, 3: {1, 2, 3}}
    tracks = [(b, a) for b in range(4) for a in range(4)]
    keys = [f"c{b}:a{a}" for b, a in tracks]
    available = np.array([a in measured[b] for b, a in tracks])
    candidates = [(b, a) for b, a in tracks if a not in measured[b]]
    jobs = retraining_jobs(tracks, keys, available, candidates, {0: [1, 2]})
    assert [(j.cell, j.donor) for j in jobs] == [(0, 1), (0, 2)]
    # donor 1 keeps only a0 (what cell 0 measures); all three of its other tracks are scored
    assert jobs[0].hidden == ("c1:a1", "c1:a2", "c1:a3") and jobs[0].assays == (1, 2, 3)
    assert jobs[0].keys == ("c1:a1", "c1:a2", "c1:a3")
    # donor 2 does not measure a3: it neither hides nor scores it
    assert jobs[1].hidden == ("c2:a1", "c2:a2") and jobs[1].assays == (1, 2)


def test_retrained_simulation_is_a_model_trained_without_the_donors_other_tracks(sparse):
    store, _, folder, cells, _ = sparse
    imputer = load_model(folder / "model")
    layout = imputer.layout
    candidates = [(0, a) for a in range(layout.n_assays) if layout.assays[a] != "H3K4me3"]
    windows = sample_windows(store, 6000, window=1500)
    retraining = api.imputing._retraining(folder / "model", epochs=1, seed=3, device="cpu",
                                          precision="fp32")
    assert retraining.epochs == 1 and retraining.training.batch_size == TINY["training"][
        "batch_size"]
    available = np.array([store.track_index(key) is not None for key in layout.keys])
    plan = donor_plan(layout.tracks, available, candidates, donors=1)
    simulation = simulate_retraining(imputer, store, candidates, windows, retraining,
                                     donors=1)
    donor = plan[0][0]
    assert set(simulation["donor"]) == {layout.biosamples[donor]}
    assert len(simulation) == 3 * 2  # 3 measured assays x the 2 others scored
    row = simulation.iloc[0]
    measured, assay = row["measured"], row["assay"]
    # independently, through the public API: train with the donor's tracks of the assays
    # cell 0 lacks excluded (then all but the measured one's), impute, score the windows
    config = folder / "one-epoch.json"
    config.write_text(json.dumps(dict(TINY, model=dict(TINY["model"], uncertainty=False),
                                      training=dict(TINY["training"], max_epochs=1))))
    lacking = [f"{layout.biosamples[donor]}:{a}" for a in layout.assays if a != "H3K4me3"]
    target = f"{layout.biosamples[donor]}:{assay}"
    truth = np.concatenate([store.read(w.contig, w.lo, w.hi,
                                       tracks=[store.track_index(target)])[0] for w in windows])
    mse = []
    for name, exclude in (("without", lacking),
                          ("with", [k for k in lacking if not k.endswith(f":{measured}")])):
        api.train(store, folder / f"retrained-{name}", model="edice", config=config,
                  exclude=exclude, seed=3, device="cpu", precision="fp32")
        api.impute(folder / f"retrained-{name}", store, folder / f"retrained-{name}-imputed",
                   targets=[target], format="npz", device="cpu", precision="fp32")
        predicted = np.load(folder / f"retrained-{name}-imputed" / f"{target.replace(':', '.')}"
                            ".npz")["chrA"]
        values = np.concatenate([predicted[w.lo:w.hi] for w in windows]).astype(np.float64)
        mse.append(np.mean((values - truth) ** 2))
    assert row["mse_without"] == pytest.approx(mse[0], rel=1e-4)
    assert row["mse_with"] == pytest.approx(mse[1], rel=1e-4)
    assert abs(mse[0] - mse[1]) > 1e-3 * mse[0]  # retraining with the track changes it


def test_ranking_by_retraining_from_the_cli(sparse, capsys):
    store, _, folder, cells, _ = sparse
    out = folder / "retrained.tsv"
    args = ["-q", "suggest", str(folder / "model"), str(store.path), "--criterion",
            "retrained", "--sample-bins", "2000", "--donors", "1", "--device", "cpu",
            "--precision", "fp32", "--out", str(out)]
    assert main(args + ["--retrain-epochs", "1"]) == 0
    table = pd.read_csv(out, sep="\t")
    assert table.shape == (3, 4) and set(table["cell_type"]) == {cells[0]}
    assert np.isfinite(table["score"]).all() and table["score"].is_monotonic_decreasing
    assert main(args + ["--retrain-epochs", "0", "--overwrite"]) == 2
    assert "--retrain-epochs must be a positive" in capsys.readouterr().err
    assert pd.read_csv(out, sep="\t").equals(table)  # the refused run wrote nothing
