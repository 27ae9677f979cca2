"""Validated TOML tables: every key checked, errors as one line naming the file and the dotted key.

A check takes a raw value and returns it clean, or raises ``ValueError(expected)``;
:func:`read_table` turns that into ``<file>: <prefix.key> must be <expected>, got <value>``.

>>> read_table({"epochs": 2}, {"epochs": integer(1)}, "proxy.", "space.toml")
{'epochs': 2}
>>> read_table({"epochs": 0}, {"epochs": integer(1)}, "proxy.", "space.toml")
Traceback (most recent call last):
...
scalesearch.errors.ScaleSearchError: space.toml: proxy.epochs must be an integer >= 1, got 0
"""
from __future__ import annotations

import math
from typing import Any, Callable

from ..errors import ScaleSearchError

Check = Callable[[Any], Any]  # returns the clean value or raises ValueError(expected)


def number(low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False) -> Check:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    expected = "a number" + (" " + " and ".join(parts) if parts else "")

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(expected)
        value = float(value)
        if low is not None and (value <= low if low_open else value < low):
            raise ValueError(expected)
        if high is not None and (value >= high if high_open else value > high):
            raise ValueError(expected)
        return value

    return check


def integer(low: int, high: int | None = None) -> Check:
    expected = f"an integer >= {low}" + ("" if high is None else f" and <= {high:,}")

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            raise ValueError(expected)
        return value

    return check


def choice(options: tuple[str, ...]) -> Check:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError("one of " + ", ".join(repr(o) for o in options))
        return value

    return check


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a string")
    return value


def fail(where: str, key: str, expected: str, value: Any) -> ScaleSearchError:
    return ScaleSearchError(f"{where}: {key} must be {expected}, got {value!r}")


def section(data: dict[str, Any], name: str, where: str, required: bool = False) -> dict[str, Any]:
    if name not in data:
        if required:
            raise ScaleSearchError(f"{where}: missing section [{name}] (min, max and step of the {name} multiplier)")
        return {}
    table = data[name]
    if not isinstance(table, dict):
        raise fail(where, name, "a table such as [" + name + "]", table)
    return table


def read_table(table: dict[str, Any], checks: dict[str, Check], prefix: str, where: str) -> dict[str, Any]:
    """Validate every key of `table` against `checks`; keys are reported as ``prefix.key``."""
    unknown = sorted(set(table) - set(checks))
    if unknown:
        raise ScaleSearchError(f"{where}: unknown key {prefix + unknown[0]!r}; expected one of {', '.join(prefix + k for k in checks)}")
    clean = {}
    for key, value in table.items():
        try:
            clean[key] = checks[key](value)
        except ValueError as exc:
            raise fail(where, prefix + key, str(exc), value) from None
    return clean
