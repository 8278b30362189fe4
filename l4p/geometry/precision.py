"""Geometry runs in float32 or float64, whatever autocast the caller is under.

Solvers (SVD, determinants, LU solves, least squares, the DLT, Sim(3) fits) have no
bfloat16/float16 kernels on the CPU (``"lu_cpu" not implemented for 'BFloat16'``), and where a
GPU has them they lose digits that poses and intrinsics need. `full_precision` wraps a geometry
entry point so that it runs with autocast disabled on every device type and its low-precision
floating tensor arguments are promoted to float32. float32/float64 inputs pass unchanged, so
fp32 results (and the released-parity tests) are bit-identical with and without the wrapper.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import torch

F = TypeVar("F", bound=Callable[..., Any])

_LOW_PRECISION = (torch.float16, torch.bfloat16)
_AUTOCAST_DEVICES = ("cpu", "cuda", "xpu", "mps")


def _promote(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.dtype in _LOW_PRECISION:
        return value.float()
    return value


def _active_autocast() -> list[str]:
    active = []
    for device in _AUTOCAST_DEVICES:
        try:
            if torch.is_autocast_enabled(device):
                active.append(device)
        except (RuntimeError, TypeError):  # device type unknown to this build of torch
            continue
    return active


def full_precision(fn: F) -> F:
    """Run `fn` outside autocast, with bf16/fp16 tensor arguments promoted to float32."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with contextlib.ExitStack() as stack:
            for device in _active_autocast():
                stack.enter_context(torch.autocast(device_type=device, enabled=False))
            args = tuple(_promote(a) for a in args)
            kwargs = {k: _promote(v) for k, v in kwargs.items()}
            return fn(*args, **kwargs)

    return cast(F, wrapper)
