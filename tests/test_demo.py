import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyBigWig
import pytest
import torch

from epimpute.demo import SPARK_LEVELS, DemoSpec, run_demo, sparkline
from epimpute.errors import InputError
from epimpute.synthetic import SyntheticSpec, generate

TINY = DemoSpec(
    data=SyntheticSpec(n_cell_types=3, contigs={"chrA": 150_000},
                       assays=("H3K4me3", "H3K27ac", "H3K36me3"), missing_fraction=0.25),
    edice={"model": {"d_model": 16, "n_heads": 2, "feedforward": 32, "decoder_hidden": [32],
                     "windows": [1, 3, 9]},
           "training": {"batch_size": 256, "epoch_bins": 1024, "max_epochs": 2,
                        "block_bins": 1000, "ema_decay": None}},
    bootstrap=10,
    locus_chars=20,
    locus_step=3,
)


def test_generator_is_seeded_and_keeps_two_tracks_per_cell_type_and_assay():
    spec = SyntheticSpec(contigs={"c": 100_000}, seed=4)
    a, b = generate(spec), generate(spec)
    assert a.missing == b.missing
    key = a.observed[0]
    assert (a.signal[key]["c"] == b.signal[key]["c"]).all()
    for cell in a.cell_types:
        assert sum(1 for c, _ in a.observed if c == cell) >= 2
    for assay in a.assays:
        assert sum(1 for _, x in a.observed if x == assay) >= 2
    assert len(a.missing) == round(0.3 * 36)
    assert all(v.min() >= 0 for per in a.signal.values() for v in per.values())


def test_sparkline_maps_zero_to_top_onto_the_eight_levels():
    assert sparkline(np.arange(8), top=7) == "▁▂▃▄▅▆▇█"
    assert sparkline([0.0, 3.5, 7.0]) == "▁▅█"  # top defaults to the largest value
    # a shared scale: half of the top is the middle level, whatever the line's own maximum
    assert sparkline([0.0, 1.0], top=2.0) == "▁▅"
    assert sparkline([-1.0, 10.0, np.nan], top=2.0) == "▁█ "
    assert sparkline([0.0, 0.0]) == "▁▁" and sparkline([]) == ""
    assert len(SPARK_LEVELS) == 8


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The tiny demo run twice in one folder: with one torch thread set by the caller, then
    (replacing the first run, kept as a copy) with two; returns both and the copy."""
    folder = tmp_path_factory.mktemp("demo")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    first = run_demo(folder / "demo", spec=TINY)
    shutil.copytree(folder / "demo", folder / "first")
    torch.set_num_threads(2)
    second = run_demo(folder / "demo", spec=TINY)
    after = torch.get_num_threads()
    torch.set_num_threads(threads)
    return first, second, folder / "first", after


def test_demo_runs_end_to_end_and_ends_with_a_locus_and_the_report(two_runs):
    _, result, _, _ = two_runs
    out = result.out
    metrics = pd.read_csv(out / "report" / "metrics.tsv", sep="\t")
    assert set(metrics["model"]) == {"average", "edice"}
    assert (out / "report" / "report.html").exists()
    record = json.loads((out / "demo.json").read_text())
    assert record["seed"] == 0 and record["created"]["command"] == "python API"
    text = result.text()
    assert f"{result.n_held_back} held back and imputed" in text
    lines = text.splitlines()
    assert lines[-2] == f"report: {out / 'report' / 'report.html'}"
    assert lines[-1].endswith((out / "report" / "report.html").resolve().as_uri())
    # the locus: observed, then eDICE, then the baseline, on one scale
    assert result.locus is not None and result.locus.key.split(":")[1] in ("H3K4me3", "H3K27ac")
    drawn = [line.split() for line in lines if line.startswith("  ") and line.split()[0] in
             ("observed", "edice", "average")]
    assert [d[0] for d in drawn] == ["observed", "edice", "average"]
    assert all(len(d[1]) == TINY.locus_chars and set(d[1]) <= set(SPARK_LEVELS) for d in drawn)
    observed = result.locus.signals["observed"]
    for name, words in zip(("edice", "average"), drawn[1:]):
        mse = np.mean((result.locus.signals[name] - observed) ** 2)
        assert float(words[-1]) == pytest.approx(mse, abs=0.005)
    # the locus is the held-back track read back from the truth store
    from epimpute.store import Store

    truth = Store.open(out / "truth.zarr")
    row = truth.track_index(result.locus.key)
    start = result.locus.start_bin
    np.testing.assert_array_equal(
        observed, truth.read(result.locus.contig, start, start + observed.size, tracks=[row])[0])
    # the summary is the mean of the per-track scores
    overall = metrics[(metrics["stratum"] == "all") & (metrics["metric"] == "mse")]
    assert result.summary.loc["edice", "mse"] == pytest.approx(
        overall[overall["model"] == "edice"]["value"].mean())


def test_demo_gives_the_same_outputs_bit_for_bit_whatever_the_thread_count(two_runs):
    first, second, kept, after = two_runs
    assert after == 2  # the caller's setting is restored
    assert not (second.out / "first").exists()  # the second run replaced the first
    for name in ("metrics.tsv", "summary.tsv", "strata.tsv", "bootstrap.tsv"):
        assert (kept / "report" / name).read_bytes() == (second.out / "report" / name).read_bytes()
    for model in ("average", "edice"):
        files = sorted(p.name for p in (kept / "imputed" / model).glob("*.bw"))
        assert files == sorted(p.name for p in (second.out / "imputed" / model).glob("*.bw"))
        assert len(files) == second.n_held_back
        for name in files:
            a = pyBigWig.open(str(kept / "imputed" / model / name))
            b = pyBigWig.open(str(second.out / "imputed" / model / name))
            for contig, length in a.chroms().items():
                np.testing.assert_array_equal(np.array(a.values(contig, 0, length)),
                                              np.array(b.values(contig, 0, length)))
    weights = [torch.load(folder / "models" / "edice" / "weights.pt", weights_only=True)
               for folder in (kept, second.out)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    # the printed summary, per-track table and locus are identical (only the time differs)
    assert first.text().splitlines()[1:] == second.text().splitlines()[1:]


def test_demo_refuses_to_replace_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(InputError, match="demo folder"):
        run_demo(tmp_path / "mine", spec=TINY)
    with pytest.raises(InputError, match="current directory"):
        run_demo(Path("."), spec=TINY)
    assert (tmp_path / "mine" / "notes.txt").exists()
