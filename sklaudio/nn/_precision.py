"""Precision helpers: losses that cancel large terms run in float32 even under autocast."""

from __future__ import annotations

import contextlib

import torch


def full_precision(device: torch.device):
    """A context in which autocast is off on ``device``."""
    try:
        return torch.autocast(device.type, enabled=False)
    except RuntimeError:  # a device type autocast does not know (meta): nothing to turn off
        return contextlib.nullcontext()


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """Half-precision tensors as float32; float32 and float64 as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
