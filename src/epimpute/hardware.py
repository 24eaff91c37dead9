"""Where and in which floating-point precision the networks run."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Literal

import torch

from epimpute.errors import InputError

Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")


def resolve_device(name: str) -> torch.device:
    """Turn ``"auto"`` into CUDA when available, else CPU; validate explicit names.

    Raises
    ------
    InputError
        ``name`` is no device name, or names a CUDA device this machine lacks.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise InputError(f"--device {name}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: no CUDA device is available")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise InputError(f"--device {name}: this machine has {count} CUDA device(s)")
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware (CUDA, or a CPU with
    AVX512-BF16 or AMX); elsewhere bf16 is emulated and slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, probe, lambda: False)()) for probe in probes)


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Resolve a precision setting: ``auto`` is bf16 where the hardware has it, else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not '{precision}'")
    if precision == "auto":
        return native_bf16(device)
    return precision == "bf16"


def autocast(device: torch.device, *, enabled: bool) -> AbstractContextManager:
    """bf16 autocast on ``device`` (weights and accumulations stay fp32) when enabled."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)
