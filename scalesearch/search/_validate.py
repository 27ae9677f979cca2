"""Every command's input checked before it creates, queues or writes anything: stated limits and one table of rules.

The limits below bound what a network, a proxy run and a family may be, so that no
input can hang the tool or ask for terabytes: search spaces, base files and
command-line options are all held to them. :func:`inputs` is the one way a CLI
command is checked: it wraps the command, and before its body runs, every
option that has a rule in :data:`RULES` is checked (a value the user left at
None is not). Checks that need the whole plan (the memory a proxy run needs)
are :func:`require_training_memory`, called before a study is created or a
trial queued.

>>> check_phi(2.5)
2.5
>>> check_phi(float("nan"))
Traceback (most recent call last):
...
scalesearch.errors.ScaleSearchError: --phi must be a finite number from 0 to 16, got nan
"""
from __future__ import annotations

import functools
import inspect
import math
from typing import TYPE_CHECKING, Any, Callable

from .errors import ScaleSearchError

if TYPE_CHECKING:
    from .arch import BaseNetwork
    from .candidates import Candidate
    from .space import SearchSpace

# --- limits: each a guard against a typo, far above any real use -------------------------------------------
MAX_PHI = 16  # EfficientNet-L2's width 4.3 is 1.1^15.3: no published member needs more
MAX_MEMBERS = 100  # family members per --phi range
MAX_BLOCKS = 10_000  # MBConv blocks in one network (B7 has 55; costing 10,000 takes ~0.1 s)
MAX_REPEATS = 100  # blocks per stage of a base file
MAX_KERNEL = 31  # the largest depthwise kernels in use (RepLKNet) are 31
MAX_EXPAND = 32
MAX_CHANNELS = 100_000  # channels of any layer, base or scaled
MAX_SIDE = 4096  # px of any input a network is built or trained at
MAX_COEFF = 10.0  # α, β, γ and width/depth multipliers
MAX_BATCH = 4096  # images per training step or timed forward pass
MAX_IMAGES = 10_000_000
MAX_EPOCHS = 1000
MAX_SEEDS = 100
MAX_TRIALS = 100_000
MAX_WORKERS = 256
MAX_CLASSES = 100_000
MAX_IN_CHANNELS = 64
# Training keeps every layer's output for the backward pass, and BatchNorm and SiLU keep
# their own: a training step of B0 proxies at 77 and 160 px (batch 64, CPU) peaked at 3.4-3.7
# times the float32 activations, input, weights and optimizer included.
ACT_COPIES = 4
PARAM_COPIES = 4  # weights, gradients and AdamW's two moments


def check_phi(value: float, flag: str = "--phi") -> float:
    """φ as every command takes it: a finite number from 0 to MAX_PHI."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_PHI:
        shown = f"{value:g}" if isinstance(value, float) else repr(value)
        raise ScaleSearchError(f"{flag} must be a finite number from 0 to {MAX_PHI}, got {shown}")
    return value


def _bounded(low: float, high: float, integer: bool = False, low_open: bool = False) -> Callable[[str, Any], None]:
    kind = "an integer" if integer else "a number"

    def check(flag: str, value: Any) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (value > low if low_open else value >= low) and value <= high
        if not ok or (integer and not float(value).is_integer()):
            shown = f"{value:g}" if isinstance(value, float) else repr(value)
            raise ScaleSearchError(f"{flag} must be {'>' if low_open else '>='} {low:g} and <= {high:g} ({kind}), "
                                   f"got {shown}")
    return check


def _phi(flag: str, value: Any) -> None:
    from .family import parse_phis

    if isinstance(value, str):
        parse_phis(value)
    else:
        check_phi(value, flag)


def _phi_above_one(flag: str, value: Any) -> None:
    check_phi(value, flag)
    if not value > 1:
        raise ScaleSearchError(f"{flag} must be > 1 (φ = 1 is the search itself), got {value:g}")


def _device(flag: str, value: str) -> None:
    from .proxy import pick_device

    pick_device(value, role="latency device" if flag == "--latency-device" else "device")


def _devices(flag: str, value: str) -> None:
    names = [d.strip() for d in value.split(",")]
    if not all(names):
        raise ScaleSearchError(f"{flag} must be a comma-separated list such as cuda:0,cuda:1, got {value!r}")
    for name in names:
        _device(flag, name)


def _budget(flag: str, value: str) -> None:
    from .space import parse_budget

    parse_budget(value)


def _not_empty(flag: str, value: str) -> None:
    if not value.strip():
        raise ScaleSearchError(f"{flag} must not be empty; leave it out for the default")


# What each command does with its storage (see scalesearch.urls.check); the others only read.
STORAGE_MODES = {"run": "create", "worker": "write", "verify": "write"}


def _storage(mode: str) -> Callable[[str, str], None]:
    def check(flag: str, value: str) -> None:
        from .urls import check as check_url

        check_url(value, mode)
    return check


_coeff, _side, _batch = _bounded(0, MAX_COEFF, low_open=True), _bounded(8, MAX_SIDE, True), _bounded(1, MAX_BATCH, True)
# Option (parameter) name -> check(flag, value); the same name means the same rule in every command.
RULES: dict[str, Callable[[str, Any], None]] = {
    "phi": _phi, "alpha": _coeff, "beta": _coeff, "gamma": _coeff, "width": _coeff, "depth": _coeff,
    "resolution": _side, "proxy_resolution": _side, "batch_size": _batch, "latency_batch": _batch,
    "num_classes": _bounded(1, MAX_CLASSES, True), "in_channels": _bounded(1, MAX_IN_CHANNELS, True),
    "train_images": _bounded(1, MAX_IMAGES, True), "val_images": _bounded(1, MAX_IMAGES, True),
    "epochs": _bounded(1, MAX_EPOCHS, True), "seeds": _bounded(1, MAX_SEEDS, True),
    "max_seeds": _bounded(1, MAX_SEEDS, True), "trials": _bounded(1, MAX_TRIALS, True),
    "workers": _bounded(1, MAX_WORKERS, True), "top": _bounded(1, MAX_TRIALS, True),
    "tolerance": _bounded(0, 1, low_open=True), "budget": _budget, "device": _device, "latency_device": _device, "devices": _devices,
    "study": _not_empty, "name": _not_empty, "output": _not_empty, "results_dir": _not_empty, "data": _not_empty,
}
COMMAND_RULES = {("verify", "phi"): _phi_above_one}
FLAGS = {"train_images": "--train", "val_images": "--val", "storage_url": "--storage", "output": "-o",
         "name": "STUDY", "fmt": "--format"}


def inputs(command: Callable) -> Callable:
    """Wrap a CLI command so that all its options are checked (:data:`RULES`) before its body runs."""
    name = command.__name__.removesuffix("_command")
    signature = inspect.signature(command)

    @functools.wraps(command)
    def checked(*args: Any, **kwargs: Any) -> Any:
        for param, value in signature.bind(*args, **kwargs).arguments.items():
            check_option(name, param, value)
        return command(*args, **kwargs)

    return checked


def check_option(command: str, param: str, value: Any) -> None:
    """One option of `command` against its rule; None (left to the default) passes."""
    if value is None:
        return
    if param == "storage_url":
        rule = _storage(STORAGE_MODES.get(command, "read"))
    else:
        rule = COMMAND_RULES.get((command, param)) or RULES.get(param)
    if rule is not None:
        rule(FLAGS.get(param, "--" + param.replace("_", "-")), value)


# --- the memory a proxy run needs ---------------------------------------------------------------------------

def training_bytes(base: BaseNetwork, c: Candidate, space: SearchSpace, num_classes: int, in_channels: int) -> int:
    """What training candidate `c` (already raised to its φ) as the proxy holds at once, roughly."""
    from .candidates import assess

    p = space.proxy
    a = assess(base, c, int(p.resolution), num_classes, in_channels, p.width)
    return 4 * (ACT_COPIES * a.acts_proxy * p.batch_size + PARAM_COPIES * a.params)


def available_bytes(device: Any) -> tuple[int, str]:
    """(bytes free, where) on a torch device: the GPU's free memory, or the machine's available memory."""
    import torch

    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0], f"free on {torch.cuda.get_device_name(device)}"
    from .folder import available_memory

    return available_memory(), "of memory available"


def require_training_memory(base: BaseNetwork, candidates: list[Candidate], space: SearchSpace, num_classes: int,
                            in_channels: int, device: Any, phis: tuple[float, ...] = (1,)) -> None:
    """Refuse, before a study is created or a trial queued, proxies of `candidates` at `phis` that cannot fit on `device`."""
    from .candidates import Candidate

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
