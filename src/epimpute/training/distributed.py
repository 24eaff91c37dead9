"""Training on several processes with PyTorch's DistributedDataParallel.

A run started by ``torchrun`` (or any launcher that sets the same variables) is detected
from its environment: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address
``MASTER_ADDR`` / ``MASTER_PORT``. Each process trains on its own share of the training
blocks; gradients are averaged across processes after every step, so every process holds
the same weights. Only the first process (rank 0) writes checkpoints and the model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import distributed as dist

from epimpute.errors import InputError

__all__ = ["World", "from_environment", "on_main"]

_REQUIRED = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes.

    Attributes
    ----------
    rank, world_size, local_rank
        Global index, number of processes, index on this node (selects the GPU).
    """

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def place(self, device: torch.device) -> torch.device:
        """This process's device: ``cuda:LOCAL_RANK`` when ``device`` is CUDA."""
        return torch.device("cuda", self.local_rank) if device.type == "cuda" else device

    def start(self, device: torch.device) -> None:
        """Join the process group: NCCL when training on CUDA, else Gloo."""
        if device.type == "cuda":
            torch.cuda.set_device(self.place(device))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                    rank=self.rank, world_size=self.world_size)

    def stop(self) -> None:
        """Leave the process group."""
        if dist.is_initialized():
            dist.destroy_process_group()

    def any(self, flag: bool) -> bool:  # noqa: FBT001 (the value reduced, not an option)
        """Whether ``flag`` is true on any process (every process must call this)."""
        value = torch.tensor([1.0 if flag else 0.0], device=_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def minimum(self, number: int) -> int:
        """The smallest of every process's ``number``."""
        value = torch.tensor([float(number)], dtype=torch.float64, device=_device())
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return int(value.item())

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value``, in rank order (on every process)."""
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def broadcast(self, value: T) -> T:
        """Rank 0's ``value`` on every process."""
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_tensors(self, tensors: list[torch.Tensor]) -> None:
        """Overwrite ``tensors`` with rank 0's, in place."""
        for tensor in tensors:
            carrier = tensor.to(torch.float64)
            dist.broadcast(carrier, src=0)
            tensor.copy_(carrier.to(tensor.dtype))


def _device() -> torch.device:
    return (torch.device("cuda", torch.cuda.current_device())
            if dist.get_backend() == "nccl" else torch.device("cpu"))


def from_environment(environ: Mapping[str, str] | None = None) -> World | None:
    """The :class:`World` described by the launcher's environment variables.

    ``None`` when none of them is set, or for a single process (``WORLD_SIZE=1``).
    InputError when some are set but not all (for example ``WORLD_SIZE`` without a
    rendezvous address) or when they are not consistent integers.
    """
    env = os.environ if environ is None else environ
    present = [name for name in _REQUIRED if name in env]
    if not present:
        return None
    if env.get("WORLD_SIZE") == "1" and set(present) <= {"RANK", "WORLD_SIZE", "LOCAL_RANK"}:
        return None
    missing = [name for name in _REQUIRED if name not in env]
    if missing:
        raise InputError(
            f"incomplete distributed environment: {', '.join(present)} set but "
            f"{', '.join(missing)} not; start several processes with torchrun (e.g. "
            f"'torchrun --standalone --nproc-per-node 2 -m epimpute train ...') or unset "
            f"{', '.join(present)}")
    try:
        rank, world_size, local_rank, _ = (int(env[name]) for name in
                                           ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"))
    except ValueError:
        raise InputError("distributed environment: RANK, WORLD_SIZE, LOCAL_RANK and "
                         "MASTER_PORT must be integers, got "
                         + ", ".join(f"{n}={env[n]!r}" for n in _REQUIRED)) from None
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise InputError(f"distributed environment: RANK={rank} is not in "
                         f"[0, WORLD_SIZE={world_size})")
    if world_size == 1:
        return None
    return World(rank, world_size, local_rank)


def on_main(world: World | None, action: Callable[[], T]) -> T:
    """Run ``action`` on rank 0 only and hand its result to every process; an InputError
    it raises is raised on every process, so they all stop the same way."""
    if world is None:
        return action()
    result: Any = None
    error = ""
    if world.is_main:
        try:
            result = action()
        except InputError as raised:
            error = str(raised)
    result, error = world.broadcast((result, error))
    if error:
        raise InputError(error)
    return result
