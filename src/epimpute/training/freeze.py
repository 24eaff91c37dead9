"""Training only some entries of a model's parameters (extending a model in ``freeze`` mode).

A *trainable mask* maps a parameter's name to a bool tensor of its shape: True where the
entry may change. Parameters not named are frozen whole. Gradients of frozen entries are
zeroed as they are computed, and after every optimiser step the frozen entries are written
back from a copy, so neither Adam's moments nor weight decay can move them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

__all__ = ["TrainableMask", "restrict_training"]

TrainableMask = Mapping[str, torch.Tensor]


def restrict_training(
    model: nn.Module, masks: TrainableMask, optimizer_factory: Callable[[list[nn.Parameter]],
                                                                        torch.optim.Optimizer]
) -> tuple[torch.optim.Optimizer, Callable[[], None]]:
    """Build an optimiser that changes only the entries ``masks`` allows.

    Parameters
    ----------
    model
        The model; its parameters not in ``masks`` get ``requires_grad=False``.
    masks
        Parameter name to bool tensor of the parameter's shape.
    optimizer_factory
        Called with the parameters that have a trainable entry.

    Returns
    -------
    tuple
        The optimiser, and a function that removes the hooks and restores every
        parameter's ``requires_grad`` (call it when training is over).
    """
    parameters = dict(model.named_parameters())
    unknown = sorted(set(masks) - set(parameters))
    if unknown:
        raise ValueError(f"no parameter named {', '.join(unknown)}")
    flags = {name: p.requires_grad for name, p in parameters.items()}
    handles = []
    chosen: list[nn.Parameter] = []
    frozen: list[tuple[nn.Parameter, torch.Tensor, torch.Tensor]] = []
    for name, parameter in parameters.items():
        mask = masks.get(name)
        if mask is None or not bool(mask.any()):
            parameter.requires_grad_(requires_grad=False)
            continue
        if mask.shape != parameter.shape:
            raise ValueError(f"mask of {name} has shape {tuple(mask.shape)}, the parameter "
                             f"{tuple(parameter.shape)}")
        keep = mask.to(device=parameter.device, dtype=parameter.dtype)
        handles.append(parameter.register_hook(lambda grad, keep=keep: grad * keep))
        frozen.append((parameter, ~mask.to(parameter.device), parameter.detach().clone()))
        chosen.append(parameter)
    optimizer = optimizer_factory(chosen)

    def write_back(*_: object) -> None:
        with torch.no_grad():
            for parameter, fixed, original in frozen:
                parameter[fixed] = original[fixed]

    handles.append(optimizer.register_step_post_hook(write_back))

    def release() -> None:
        for handle in handles:
            handle.remove()
        for name, parameter in parameters.items():
            parameter.requires_grad_(flags[name])

    return optimizer, release
