"""The generic training loop on a one-parameter model whose updates are known by hand."""

import math

import torch
from torch import nn

from epimpute.training.loop import Budget, LoopSpec, RunSettings, fit


class Scalar(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.0))


def spec_for(model: Scalar, validation: list[float], steps_per_epoch: int = 2) -> LoopSpec:
    """Loss w: SGD(lr=1) moves w by -1 per step. Validation values are scripted."""
    scores = iter(validation)
    return LoopSpec(batches=lambda epoch: [(None, 10)] * steps_per_epoch,
                    loss=lambda batch: model.w * 1.0,
                    validate=lambda: next(scores))


def test_early_stopping_keeps_the_best_epoch():
    model = Scalar()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    history = fit(model, opt, spec_for(model, [5, 3, 4, 4, 9, 9]), max_epochs=10, patience=2,
                  settings=RunSettings())
    assert history.best_epoch == 2 and history.best_validation == 3
    assert history.stopped_because == "early stopping"
    assert len(history.epochs) == 4
    assert model.w.item() == -4.0  # weights after epoch 2 (two steps per epoch)
    assert history.bins_seen == 4 * 2 * 10


def test_keep_last_keeps_the_last_epochs_weights():
    model = Scalar()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    history = fit(model, opt, spec_for(model, [5, 3, 4, 4, 9, 9]), max_epochs=10, patience=2,
                  settings=RunSettings(), keep_last=True)
    assert history.best_epoch == 2 and len(history.epochs) == 4  # stops as before
    assert model.w.item() == -8.0  # weights after epoch 4, not the best epoch's -4


def test_moving_average_is_validated_and_kept():
    model = Scalar()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    fit(model, opt, spec_for(model, [1.0], steps_per_epoch=3), max_epochs=1, patience=1,
        settings=RunSettings(), ema_decay=0.5)
    # w after steps: -1, -2, -3; average: 0 -> -0.5 -> -1.25 -> -2.125
    assert math.isclose(model.w.item(), -2.125)


def test_budget():
    assert not Budget(None).expired()
    assert Budget(0.0).expired()
