"""The torch device a search trains and times on: which one, its threads, its precision, its clock.

Proxy training and latency timing share these so that a network is timed as it is trained.
"""
from __future__ import annotations

import os

import torch

from .errors import ScaleSearchError


def pick_device(name: str | torch.device = "auto", role: str = "device") -> torch.device:
    """`auto` takes the first GPU when there is one; `cuda:N` must exist. `role` names it in errors."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ScaleSearchError(f"unknown {role} {str(name)!r}: expected auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise ScaleSearchError(f"{role} {str(name)!r} is not available: this machine has {count} CUDA device(s)")
    return device


def configure(device: torch.device) -> None:
    """Process-wide speed settings for `device`; call once per worker."""
    if device.type == "cuda":
        # No cudnn autotuning: every candidate brings new shapes, and a proxy run is too short
        # to repay the search. On an H100 the default run's candidates took 2 s when their
        # shapes had been tuned before and 21-75 s when they had not.
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        # One thread per core this process may use (affinity aware), unless OMP_NUM_THREADS says
        # otherwise: more threads than free cores make every op wait on spinning threads.
        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS") or usable_cores())))


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast precision proxies run in on `device` (None: plain float32)."""
    return torch.bfloat16 if device.type == "cuda" else None


def autocast(device: torch.device) -> torch.autocast:
    dtype = amp_dtype(device)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a clock measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


