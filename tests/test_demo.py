import json

import pandas as pd
import pytest

from epimpute.demo import run_demo
from epimpute.synthetic import SyntheticSpec, generate


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


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    spec = SyntheticSpec(n_cell_types=3, contigs={"chrA": 150_000},
                         assays=("H3K4me3", "H3K27ac", "H3K36me3"), missing_fraction=0.25)
    report = run_demo(tmp_path / "demo", max_minutes=0.05, spec=spec)
    assert "held back and imputed" in report
    metrics = pd.read_csv(tmp_path / "demo" / "report" / "metrics.tsv", sep="\t")
    assert set(metrics["model"]) == {"average", "edice"}
    assert (tmp_path / "demo" / "report" / "report.html").exists()
    assert json.loads((tmp_path / "demo" / "demo.json").read_text())["seed"] == 0
    # a second run replaces the first
    run_demo(tmp_path / "demo", max_minutes=0.05, spec=spec)
