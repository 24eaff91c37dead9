"""Every output records the epimpute version, the command that made it and the UTC time."""

import json
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import pandas as pd
from conftest import write_array_compendium

import epimpute
from epimpute import api
from epimpute.cli import main
from epimpute.imputation import RECORD_FILE
from epimpute.provenance import API_COMMAND, provenance, recording_command
from epimpute.store import Store
from epimpute.synthetic import SyntheticSpec

SPEC = SyntheticSpec(n_cell_types=3, contigs={"chr1": 60_000},
                     assays=("H3K4me3", "H3K27ac", "H3K36me3"), missing_fraction=0.0, seed=3)


def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def test_version_matches_the_package_metadata(capsys):
    assert version("epimpute") == epimpute.__version__
    try:
        main(["--version"])
    except SystemExit as stop:
        assert stop.code == 0
    assert capsys.readouterr().out.strip() == f"epimpute {version('epimpute')}"


def test_python_m_epimpute_runs_the_command_line():
    done = subprocess.run([sys.executable, "-m", "epimpute", "--version"], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == f"epimpute {epimpute.__version__}"


def test_command_is_recorded_only_inside_the_block():
    with recording_command(["epimpute", "train", "a b.zarr"]):
        assert provenance()["command"] == "epimpute train 'a b.zarr'"
    assert provenance()["command"] == API_COMMAND


def test_store_model_and_imputation_record_the_command(tmp_path):
    sheet, _ = write_array_compendium(tmp_path / "in", SPEC)
    started = datetime.now(timezone.utc).replace(microsecond=0)
    argv = ["-q", "ingest", str(sheet), "--out", str(tmp_path / "c.zarr"), "--transformed"]
    assert main(argv) == 0
    store = Store.open(tmp_path / "c.zarr")
    created = store.metadata["created"]
    assert created["command"] == "epimpute " + " ".join(argv)
    assert created["epimpute_version"] == epimpute.__version__
    assert started <= _utc(created["utc"]) <= datetime.now(timezone.utc)

    argv = ["-q", "train", str(tmp_path / "c.zarr"), "--model", "average", "--out",
            str(tmp_path / "model"), "--exclude", "cell1:H3K4me3"]
    assert main(argv) == 0
    record = json.loads((tmp_path / "model" / "config.json").read_text())
    assert record["created"]["command"] == "epimpute " + " ".join(argv)
    assert record["created"]["epimpute_version"] == epimpute.__version__

    out = tmp_path / "imputed"
    argv = ["-q", "impute", str(tmp_path / "model"), str(tmp_path / "c.zarr"), "--target",
            "cell1:H3K4me3", "--out", str(out), "--format", "npz"]
    assert main(argv) == 0
    record = json.loads((out / RECORD_FILE).read_text())
    assert record["created"]["command"] == "epimpute " + " ".join(argv)
    assert record["files"] == ["cell1.H3K4me3.npz"] and (out / "cell1.H3K4me3.npz").exists()
    assert record["targets"] == ["cell1:H3K4me3"] and record["model"] == "average"
    assert record["scale"] == "arcsinh"
    assert Path(record["store"]) == tmp_path / "c.zarr"


def test_outputs_made_from_python_say_so(tmp_path):
    sheet, _ = write_array_compendium(tmp_path / "in", SPEC)
    store = api.ingest(sheet, tmp_path / "c.zarr", transformed=True)
    assert store.metadata["created"]["command"] == API_COMMAND
    model = api.train(store, tmp_path / "model", model="average")
    assert json.loads((model / "config.json").read_text())["created"]["command"] == API_COMMAND
    api.impute(model, store, tmp_path / "imputed", targets=["cell2:H3K27ac"],
               format="bigwig")
    record = json.loads((tmp_path / "imputed" / RECORD_FILE).read_text())
    assert record["created"]["command"] == API_COMMAND and record["scale"] == "-log10 p"
    # the record beside the files is not mistaken for a track by the evaluation
    truth = api.ingest(sheet, tmp_path / "truth.zarr", transformed=True)
    table = api.evaluate(truth, {"average": tmp_path / "imputed"}, tmp_path / "report",
                         bootstrap=0, plots=False)
    assert set(zip(table["cell_type"], table["assay"])) == {("cell2", "H3K27ac")}
    assert pd.read_csv(tmp_path / "report" / "summary.tsv", sep="\t")["tracks"].max() == 1
