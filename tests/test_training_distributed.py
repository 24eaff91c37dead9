"""Training on several processes: the launcher's environment, and real 2-process runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from epimpute.errors import InputError
from epimpute.model_dir import CHECKPOINT_FILE, load_model
from epimpute.training.checkpoint import load_checkpoint
from epimpute.training.distributed import World, from_environment

SRC = str(Path(__file__).resolve().parents[1] / "src")
FULL = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29511"}


def test_environment_describes_the_world():
    assert from_environment({}) is None
    assert from_environment({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}) is None
    assert from_environment(FULL) == World(rank=1, world_size=2, local_rank=1)
    assert not World(1, 2, 1).is_main and World(0, 2, 0).is_main


@pytest.mark.parametrize("environ, words", [
    ({"WORLD_SIZE": "2"}, "MASTER_ADDR"),
    ({k: v for k, v in FULL.items() if k != "MASTER_PORT"}, "MASTER_PORT"),
    ({**FULL, "RANK": "two"}, "integers"),
    ({**FULL, "RANK": "2"}, "RANK=2"),
])
def test_incomplete_or_wrong_environment_is_an_input_error(environ, words):
    with pytest.raises(InputError, match=words):
        from_environment(environ)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in FULL}
    return {**env, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", **extra}


def test_cli_exits_2_when_the_environment_is_incomplete(small_compendium, tmp_path):
    store, _ = small_compendium
    done = subprocess.run(
        [sys.executable, "-m", "epimpute", "-q", "train", str(store.path), "--out",
         str(tmp_path / "model")], env=_env(WORLD_SIZE="2"), capture_output=True, text=True,
        check=False)
    assert done.returncode == 2
    assert "MASTER_ADDR" in done.stderr and "torchrun" in done.stderr
    assert not (tmp_path / "model").exists()


def _torchrun(store, out, config, *extra):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "-m", "epimpute", "-q", "train", str(store.path),
               "--model", "edice", "--out", str(out), "--device", "cpu", "--config",
               str(config), *extra]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_processes_train_a_loadable_model_and_resume(small_compendium, tmp_path):
    store, _ = small_compendium
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "model": {"d_model": 16, "n_heads": 2, "feedforward": 32, "decoder_hidden": [32],
                  "windows": [1, 3, 9]},
        "training": {"batch_size": 256, "epoch_bins": 2048, "max_epochs": 2, "patience": 5,
                     "validation_max_bins": 1000, "block_bins": 2000}}))
    out = tmp_path / "model"
    _torchrun(store, out, config, "--max-minutes", "1e-9")  # one step, then stop
    first = json.loads((out / "config.json").read_text())["provenance"]
    assert first["processes"] == 2
    assert first["history"]["stopped_because"] == "time budget"
    assert len(first["history"]["epochs"]) == 1
    # one step of 128 bins (half a batch) on each of the two processes
    assert first["history"]["bins_seen"] == 256
    state = load_checkpoint(out / CHECKPOINT_FILE)
    assert len(state["ranks"]) == 2  # both processes' random state, for resuming
    assert not torch.equal(state["ranks"][0][1], state["ranks"][1][1])

    _torchrun(store, out, config, "--resume")
    second = json.loads((out / "config.json").read_text())["provenance"]["history"]
    assert [e["epoch"] for e in second["epochs"]] == [1, 2]
    assert second["epochs"][0] == first["history"]["epochs"][0]
    assert second["stopped_because"] == "max epochs"
    assert second["bins_seen"] == 256 + 2048  # epoch 2: 2048 bins, 1024 per process

    imputer = load_model(out)
    contig = next(iter(store.contigs))
    rows = [store.track_index(key) for key in imputer.layout.keys]
    signal = store.read(contig, 0, 400, tracks=rows)
    margin = imputer.context_bins
    predicted = imputer.impute_region(signal, np.ones(len(rows), dtype=bool),
                                      [(0, 0), (1, 2)], contig=contig, start=margin)
    assert predicted.shape == (2, 400 - 2 * margin) and np.isfinite(predicted).all()
