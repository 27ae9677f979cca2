"""Every command's options checked before it creates, queues or writes anything: one table of rules.

:func:`inputs` is the one way a CLI command is checked: it wraps the command, and
before its body runs, every option that has a rule in :data:`RULES` is checked
against the limits of :mod:`scalesearch.limits` (a value the user left at None is
not). Checks that need the whole plan (the memory a proxy run needs) are
:func:`scalesearch.proxy.require_training_memory`, called before a study is created
or a trial queued.
"""
from __future__ import annotations

import functools
import inspect
import math
from typing import Any, Callable

from ..device import pick_device
from ..errors import ScaleSearchError
from ..limits import (MAX_BATCH, MAX_CLASSES, MAX_COEFF, MAX_EPOCHS, MAX_IMAGES, MAX_IN_CHANNELS, MAX_SEEDS,
                      MAX_SIDE, MAX_TRIALS, MAX_WORKERS, check_phi)
from ..results._family import parse_phis
from ..space._families import check_families
from ..space._space import parse_budget
from ._urls import check as check_url


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
    if isinstance(value, str):
        parse_phis(value)
    else:
        check_phi(value, flag)


def _phi_above_one(flag: str, value: Any) -> None:
    check_phi(value, flag)
    if not value > 1:
        raise ScaleSearchError(f"{flag} must be > 1 (φ = 1 is the search itself), got {value:g}")


def _device(flag: str, value: str) -> None:
    pick_device(value, role="latency device" if flag == "--latency-device" else "device")


def _devices(flag: str, value: str) -> None:
    names = [d.strip() for d in value.split(",")]
    if not all(names):
        raise ScaleSearchError(f"{flag} must be a comma-separated list such as cuda:0,cuda:1, got {value!r}")
    for name in names:
        _device(flag, name)


def _budget(flag: str, value: str) -> None:
    parse_budget(value)


def _families(flag: str, value: str) -> None:
    check_families(value)


def _not_empty(flag: str, value: str) -> None:
    if not value.strip():
        raise ScaleSearchError(f"{flag} must not be empty; leave it out for the default")


# What each command does with its storage (see scalesearch.search.check); the others only read.
STORAGE_MODES = {"run": "create", "worker": "write", "verify": "write", "compare": "create"}


def _storage(mode: str) -> Callable[[str, str], None]:
    def check(flag: str, value: str) -> None:
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
    "coefficients": _not_empty, "family": _families,
}
COMMAND_RULES = {("verify", "phi"): _phi_above_one}
FLAGS = {"train_images": "--train", "val_images": "--val", "storage_url": "--storage", "output": "-o",
         "name": "STUDY", "fmt": "--format"}
COMMAND_FLAGS = {("compare", "coefficients"): "--from"}


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
        rule(COMMAND_FLAGS.get((command, param)) or FLAGS.get(param, "--" + param.replace("_", "-")), value)
