"""The memory a proxy run needs, checked before a study is created or a trial queued."""
from __future__ import annotations

from typing import Any

import torch

from ..arch._spec import BaseNetwork
from ..data._folder import available_memory
from ..errors import ScaleSearchError
from ..space._candidates import Candidate, assess
from ..space._space import SearchSpace

# Training keeps every layer's output for the backward pass, and BatchNorm and SiLU keep
# their own: a training step of B0 proxies at 77 and 160 px (batch 64, CPU) peaked at 3.4-3.7
# times the float32 activations, input, weights and optimizer included.
ACT_COPIES = 4
PARAM_COPIES = 4  # weights, gradients and AdamW's two moments


def training_bytes(base: BaseNetwork, c: Candidate, space: SearchSpace, num_classes: int, in_channels: int) -> int:
    """What training candidate `c` (already raised to its φ) as the proxy holds at once, roughly."""
    p = space.proxy
    a = assess(base, c, int(p.resolution), num_classes, in_channels, p.width)
    return 4 * (ACT_COPIES * a.acts_proxy * p.batch_size + PARAM_COPIES * a.params)


def available_bytes(device: Any) -> tuple[int, str]:
    """(bytes free, where) on a torch device: the GPU's free memory, or the machine's available memory."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0], f"free on {torch.cuda.get_device_name(device)}"
    return available_memory(), "of memory available"


def require_training_memory(base: BaseNetwork, candidates: list[Candidate], space: SearchSpace, num_classes: int,
                            in_channels: int, device: Any, phis: tuple[float, ...] = (1,)) -> None:
    """Refuse, before a study is created or a trial queued, proxies of `candidates` at `phis` that cannot fit on `device`."""
    sized = [(training_bytes(base, Candidate(c.alpha**phi, c.beta**phi, c.gamma**phi), space, num_classes, in_channels),
              c, phi) for c in candidates for phi in phis]
    if not sized:
        return
    need, c, phi = max(sized, key=lambda x: x[0])
    free, where = available_bytes(device)
    if need > free:
        raise ScaleSearchError(
            f"training the largest proxy (α={c.alpha:g} β={c.beta:g} γ={c.gamma:g} at φ = {phi:g}, batch "
            f"{space.proxy.batch_size}) needs about {_gib(need)}, more than the {_gib(free)} {where}; use a smaller "
            "--proxy-resolution or --batch-size")


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"
