"""Checkpoints: atomic writes, reading without running code."""

import pickle

import pytest
import torch

from epimpute.errors import InputError
from epimpute.training.checkpoint import load_checkpoint, save_checkpoint


class NotAllowed:
    """An arbitrary object: a checkpoint holding one must not be loaded."""


def test_round_trip_of_nested_state(tmp_path):
    state = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "epoch": 3, "best": 0.25,
             "history": [{"loss": 1.5}, {"loss": 0.75}], "stopped": "patience",
             "rng": torch.tensor([1, 2, 3], dtype=torch.uint8)}
    path = tmp_path / "c.pt"
    save_checkpoint(path, state)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert loaded["rng"].dtype == torch.uint8 and loaded["rng"].tolist() == [1, 2, 3]
    assert {k: loaded[k] for k in ("epoch", "best", "history", "stopped")} == {
        "epoch": 3, "best": 0.25, "history": [{"loss": 1.5}, {"loss": 0.75}],
        "stopped": "patience"}
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"epoch": 1})
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        save_checkpoint(path, {"epoch": 2, "callback": lambda: None})
    assert load_checkpoint(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_objects_in_a_checkpoint_are_refused_on_load(tmp_path):
    path = tmp_path / "c.pt"
    torch.save({"epoch": 1, "thing": NotAllowed()}, path)
    with pytest.raises(InputError, match="cannot be read as a checkpoint"):
        load_checkpoint(path)
