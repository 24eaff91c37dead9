"""Training only some entries of a model's parameters."""

import pytest
import torch

from epimpute.training.freeze import restrict_training


def layer():
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        model.bias.copy_(torch.tensor([0.5, -0.5]))
    return model


def test_a_step_moves_only_the_masked_entries():
    model = layer()
    mask = torch.tensor([[False, False, False], [True, False, True]])
    optimizer, release = restrict_training(
        model, {"weight": mask}, lambda ps: torch.optim.SGD(ps, lr=0.5))
    assert not model.bias.requires_grad  # not named: frozen whole
    x = torch.tensor([[1.0, 2.0, 4.0]])
    model(x).sum().backward()  # d/dW = x for both rows
    assert model.weight.grad.tolist() == [[0, 0, 0], [1, 0, 4]]
    optimizer.step()
    # SGD: 4 - 0.5 * 1 = 3.5 and 6 - 0.5 * 4 = 4; everything else as it was
    assert model.weight.tolist() == [[1, 2, 3], [3.5, 5, 4]]
    assert model.bias.tolist() == [0.5, -0.5]
    release()
    assert model.weight.requires_grad and model.bias.requires_grad
    model.zero_grad()
    model(x).sum().backward()
    assert model.weight.grad.tolist() == [[1, 2, 4], [1, 2, 4]]  # the hook is gone


def test_weight_decay_and_adam_moments_cannot_move_frozen_entries():
    model = layer()
    mask = torch.tensor([[True, False, False], [False, False, False]])
    optimizer, _ = restrict_training(
        model, {"weight": mask}, lambda ps: torch.optim.AdamW(ps, lr=0.1, weight_decay=1.0))
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.ones(1, 3)).sum().backward()
        optimizer.step()
    weight = model.weight.detach()
    assert weight[0, 1:].tolist() == [2, 3] and weight[1].tolist() == [4, 5, 6]
    # the free entry: each AdamW step with a constant gradient of 1 is
    # w <- w * (1 - 0.1 * 1.0) - 0.1 * m_hat / (sqrt(v_hat) + eps), with m_hat = v_hat = 1
    expected = 1.0
    for _ in range(3):
        expected = expected * 0.9 - 0.1 / (1 + 1e-8)
    assert weight[0, 0].item() == pytest.approx(expected, rel=1e-6)


def test_bad_masks_are_refused():
    model = layer()
    with pytest.raises(ValueError, match="no parameter named nope"):
        restrict_training(model, {"nope": torch.ones(1, dtype=torch.bool)},
                          lambda ps: torch.optim.SGD(ps, lr=1.0))
    with pytest.raises(ValueError, match=r"mask of weight has shape \(3, 2\)"):
        restrict_training(model, {"weight": torch.ones(3, 2, dtype=torch.bool)},
                          lambda ps: torch.optim.SGD(ps, lr=1.0))
