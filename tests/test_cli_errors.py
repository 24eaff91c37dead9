"""Bad input and faults end every command with exit status 2 and a message, and leave the
filesystem as it was (no half-written outputs, no temporary files)."""

import errno
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from epimpute.cli import main
from epimpute.model_dir import save_model
from epimpute.models.average import AverageImputer
from epimpute.models.layout import Layout
from epimpute.store import Store
from epimpute.store.store import StoreWriter

TINY = {"model": {"d_model": 16, "n_heads": 2, "feedforward": 32, "decoder_hidden": [32],
                  "windows": [1, 3, 9]},
        "training": {"batch_size": 256, "epoch_bins": 1024, "max_epochs": 1,
                     "block_bins": 1000, "validation_max_bins": 1000}}


def leftovers(folder):
    """Temporary names of atomic writes anywhere below ``folder``."""
    return [p for p in folder.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def sheet(tmp_path):
    """Four array tracks (two cell types x two assays) of 400 bins and their sheet."""
    rng = np.random.default_rng(0)
    rows = ["cell_type\tassay\tpath"]
    for cell in ("E1", "E2"):
        for assay in ("H3K4me3", "H3K27ac"):
            np.savez(tmp_path / f"{cell}.{assay}.npz", chrA=rng.exponential(1, 400).astype("f4"))
            rows.append(f"{cell}\t{assay}\t{cell}.{assay}.npz")
    path = tmp_path / "samples.tsv"
    path.write_text("\n".join(rows) + "\n")
    return path


def run(*argv):
    return main(["-q", *map(str, argv)])


# --- ingest --------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["../../evil", "/abs/path/X", ".hidden"])
def test_ingest_rejects_names_that_are_paths(sheet, tmp_path, capsys, cell):
    sheet.write_text(sheet.read_text().replace("E1\tH3K4me3", f"{cell}\tH3K4me3"))
    assert run("ingest", sheet, "--out", tmp_path / "s.zarr") == 2
    err = capsys.readouterr().err
    assert "line 2: cell_type" in err and "is not a valid name" in err
    assert not (tmp_path / "s.zarr").exists() and not leftovers(tmp_path)


def test_ingest_never_replaces_the_working_directory(sheet, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert run("ingest", sheet, "--out", ".", "--overwrite") == 2
    assert "refusing to write the store onto the current directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_ingest_fails_when_the_destination_appears_meanwhile(sheet, tmp_path, monkeypatch,
                                                             capsys):
    ingest_module = sys.modules["epimpute.store.ingest"]

    out = tmp_path / "s.zarr"
    real_run = ingest_module._run

    def run_then_someone_else_writes(plan, store_path, **options):
        real_run(plan, store_path, **options)
        out.mkdir()
        (out / "theirs.txt").write_text("written meanwhile")

    monkeypatch.setattr(ingest_module, "_run", run_then_someone_else_writes)
    assert run("ingest", sheet, "--out", out) == 2
    assert "appeared while the store was being written" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["theirs.txt"]
    assert not leftovers(tmp_path)


def test_ingest_disk_full_is_an_error_without_leftovers(sheet, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(StoreWriter, "write", disk_full)
    assert run("ingest", sheet, "--out", tmp_path / "s.zarr") == 2
    assert "no space left on the device" in capsys.readouterr().err
    assert not (tmp_path / "s.zarr").exists() and not leftovers(tmp_path)


def test_sigterm_during_ingest_removes_the_temporary_store(sheet, tmp_path, monkeypatch,
                                                           capsys):
    real_write = StoreWriter.write

    def write_then_terminated(self, *args, **kwargs):
        real_write(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(StoreWriter, "write", write_then_terminated)
    previous = signal.getsignal(signal.SIGTERM)
    assert run("ingest", sheet, "--out", tmp_path / "s.zarr") == 143
    assert signal.getsignal(signal.SIGTERM) == previous
    assert not (tmp_path / "s.zarr").exists() and not leftovers(tmp_path)


def test_temporary_stores_of_dead_processes_are_reclaimed(sheet, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".s.zarr.tmp-{dead.pid}"
    stale.mkdir()
    (stale / "big").write_bytes(b"0" * 1000)
    alive = tmp_path / f".s.zarr.tmp-{os.getppid()}"  # a live process's: kept
    alive.mkdir()
    assert run("ingest", sheet, "--out", tmp_path / "s.zarr") == 0
    assert not stale.exists() and alive.is_dir()


# --- train ---------------------------------------------------------------------------------


@pytest.fixture
def store(sheet, tmp_path):
    assert run("ingest", sheet, "--out", tmp_path / "s.zarr") == 0
    return tmp_path / "s.zarr"


def config(tmp_path, training=None, model=None):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model": {**TINY["model"], **(model or {})},
                                "training": {**TINY["training"], **(training or {})}}))
    return path


@pytest.mark.parametrize(("training", "message"), [
    ({"batch_size": -5}, "'batch_size' must be at least 1, got -5"),
    ({"max_epochs": 0}, "'max_epochs' must be at least 1, got 0"),
    ({"batch_size": "big"}, "'batch_size' must be an integer, got 'big'"),
    ({"learning_rate": "fast"}, "'learning_rate' must be a number"),
    ({"validation_fraction": 1.5}, "'validation_fraction' must be at least 0 and below 1"),
])
def test_train_refuses_bad_configuration_before_writing(store, tmp_path, capsys, training,
                                                        message):
    out = tmp_path / "model"
    assert run("train", store, "--out", out, "--config", config(tmp_path, training)) == 2
    err = capsys.readouterr().err
    assert message in err and "[training]" in err
    assert not out.exists()


@pytest.mark.parametrize(("options", "message"), [
    (["--seed", "-1"], "--seed must be a non-negative integer"),
    (["--device", "tpu"], "--device tpu"),
    (["--max-minutes", "nan"], "--max-minutes must be a positive number"),
    (["--max-minutes", "0"], "--max-minutes must be a positive number"),
    (["--max-minutes", "-1"], "--max-minutes must be a positive number"),
    (["--exclude", "*:*"], "no track is left to train on"),
    (["--exclude", "*:H3K4me3"], "assay(s) H3K4me3 would have no training track"),
    (["--exclude", "E9:H3K4me3"], "--exclude names tracks that are not in"),
])
def test_train_refuses_bad_settings_before_writing(store, tmp_path, capsys, options, message):
    out = tmp_path / "model"
    assert run("train", store, "--model", "average", "--out", out, *options) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_train_on_absent_cuda_is_an_error(store, tmp_path, capsys):
    assert run("train", store, "--model", "average", "--out", tmp_path / "m",
               "--device", "cuda") == 2
    assert "no CUDA device is available" in capsys.readouterr().err


def test_train_output_that_is_a_file_or_an_input(store, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert run("train", store, "--model", "average", "--out", tmp_path / "file") == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert run("train", store, "--model", "average", "--out", store) == 2
    assert "refusing to write the model onto the input" in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "x" and Store.open(store).tracks


def test_failed_train_leaves_nothing_so_a_retry_succeeds(store, tmp_path, monkeypatch, capsys):
    out = tmp_path / "model"
    monkeypatch.setattr(torch, "save", disk_full)
    assert run("train", store, "--model", "average", "--out", out) == 2
    assert "no space left on the device" in capsys.readouterr().err
    assert not out.exists() and not leftovers(tmp_path)
    monkeypatch.undo()
    assert run("train", store, "--model", "average", "--out", out) == 0
    assert (out / "config.json").is_file()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_folder(store, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert run("train", store, "--model", "average", "--out", locked / "m") == 2
    assert "Permission denied" in capsys.readouterr().err


def test_resume_from_a_truncated_checkpoint(store, tmp_path, capsys):
    out = tmp_path / "edice"
    args = ["train", store, "--out", out, "--config", config(tmp_path), "--device", "cpu",
            "--seed", "1"]
    assert run(*args) == 0
    checkpoint = out / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    assert run(*args, "--resume") == 2
    assert "checkpoint.pt: cannot be read as a checkpoint" in capsys.readouterr().err


# --- impute --------------------------------------------------------------------------------


@pytest.fixture
def average(store, tmp_path):
    assert run("train", store, "--model", "average", "--out", tmp_path / "avg") == 0
    return tmp_path / "avg"


def test_impute_refuses_to_replace_predictions_without_overwrite(store, average, tmp_path,
                                                                  capsys):
    out = tmp_path / "imputed"
    args = ["impute", average, store, "--target", "E1:H3K4me3", "--out", out, "--format", "npz"]
    assert run(*args) == 0
    (out / "E1.H3K4me3.npz").write_bytes(b"mine")
    assert run(*args) == 2
    assert "already holds E1.H3K4me3.npz; use --overwrite" in capsys.readouterr().err
    assert (out / "E1.H3K4me3.npz").read_bytes() == b"mine"
    assert run(*args, "--overwrite") == 0
    with np.load(out / "E1.H3K4me3.npz") as saved:
        assert saved["chrA"].shape == (400,)


def test_impute_disk_full_leaves_no_partial_file_nor_empty_folder(store, average, tmp_path,
                                                                   monkeypatch, capsys):
    from epimpute.io.npz_stream import NpzStreamWriter

    real_write = NpzStreamWriter.write
    calls = []

    def fill_the_disk(self, values):
        calls.append(len(values))
        real_write(self, values[: len(values) // 2])  # half the bytes reach the disk
        disk_full()

    monkeypatch.setattr(NpzStreamWriter, "write", fill_the_disk)
    out = tmp_path / "imputed"
    assert run("impute", average, store, "--target", "E1:H3K4me3", "--out", out,
               "--format", "npz") == 2
    assert calls and "no space left on the device" in capsys.readouterr().err
    assert not out.exists() and not leftovers(tmp_path)


def test_impute_refuses_an_assay_the_model_never_trained(store, tmp_path, capsys):
    layout = Layout.from_keys(["E1:H3K27ac", "E2:H3K27ac"], bin_size=25,
                              assays=["H3K27ac", "H3K4me3"])
    model = save_model(tmp_path / "blind", AverageImputer(layout))
    assert run("impute", model, store, "--target", "E1:H3K4me3", "--out",
               tmp_path / "imputed") == 2
    assert "trained without any track of assay H3K4me3" in capsys.readouterr().err
    assert not (tmp_path / "imputed").exists()


def test_impute_into_an_input_is_refused(store, average, capsys):
    assert run("impute", average, store, "--target", "E1:H3K4me3", "--out", store) == 2
    assert "refusing to write imputations into the input" in capsys.readouterr().err


# --- extend --------------------------------------------------------------------------------


def test_extend_with_an_unrelated_store_or_probe_share_with_freeze(average, sheet, tmp_path,
                                                                     capsys):
    other = sheet.with_name("other.tsv")
    other.write_text("".join(line.replace("E", "X", 1) if line.startswith("E") else line
                             for line in sheet.read_text().splitlines(keepends=True)))
    assert run("ingest", other, "--out", tmp_path / "other.zarr") == 0
    assert run("extend", average, tmp_path / "other.zarr", "--out", tmp_path / "ext") == 2
    assert "holds none of the model's 4 input tracks" in capsys.readouterr().err
    assert run("extend", average, tmp_path / "s.zarr", "--out", tmp_path / "ext",
               "--mode", "freeze", "--probe-share", "0.3") == 2
    assert "--probe-share applies only to --mode finetune" in capsys.readouterr().err
    assert not (tmp_path / "ext").exists() and not leftovers(tmp_path)


def test_sigterm_during_impute_leaves_no_partial_file(store, average, tmp_path, monkeypatch):
    from epimpute.io.npz_stream import NpzStreamWriter

    real_write = NpzStreamWriter.write

    def write_then_terminated(self, values):
        real_write(self, values)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(NpzStreamWriter, "write", write_then_terminated)
    out = tmp_path / "imputed"
    assert run("impute", average, store, "--target", "E1:H3K4me3", "--out", out,
               "--format", "npz") == 143
    assert not out.exists() and not leftovers(tmp_path)


def test_a_store_with_names_that_are_paths_is_refused(store, tmp_path, capsys):
    import zarr

    group = zarr.open_group(store, mode="r+")
    metadata = dict(group.attrs["epimpute"])
    metadata["tracks"] = [dict(t, cell_type="../up") if i == 0 else t
                          for i, t in enumerate(metadata["tracks"])]
    group.attrs["epimpute"] = metadata
    assert run("train", store, "--model", "average", "--out", tmp_path / "m") == 2
    assert "cell type '../up' is not a valid name" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_impute_error_removes_the_folders_it_created(store, average, tmp_path, monkeypatch):
    from epimpute.io.npz_stream import NpzStreamWriter

    monkeypatch.setattr(NpzStreamWriter, "write", disk_full)
    out = tmp_path / "new" / "deeper" / "imputed"
    assert run("impute", average, store, "--target", "E1:H3K4me3", "--out", out,
               "--format", "npz") == 2
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()
    assert run("impute", average, store, "--target", "E1:H3K4me3", "--out", out,
               "--format", "npz") == 0
    assert (out / "E1.H3K4me3.npz").is_file()
