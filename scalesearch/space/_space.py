"""The search space: which (α depth, β width, γ resolution) to try, and which fit the budget.

A search space is a TOML file (shipped ones live in ``search_spaces/`` at the top of the repository and inside the installed package, listed by ``scalesearch spaces``)::

    description = "..."      # one line
    source = "..."           # where the numbers come from
    budget = 2.0             # target cost multiplier at phi=1 ("2x" also works); overridden by --budget
    tolerance = 0.05         # relative: |cost / budget - 1| <= tolerance
    constraint = "measured"  # "measured": multiply-adds of the built candidate at its target side
                             #   (base.resolution × γ) / those of the base at base.resolution,
                             #   both with 1000 classes and 3 channels as the paper counts;
                             # "nominal": alpha * beta**2 * gamma**2;
                             # "acts": activations (conv and linear outputs) at the target side / the base's;
                             # "latency": measured inference latency at the target side / the base's
                             #   (scalesearch.arch; grid sampler only)
    [alpha]                  # depth; required, like [beta] (width) and [gamma] (resolution)
    min = 1.0                # > 0, default 1.0
    max = 1.4                # >= min
    step = 0.05              # > 0; values are min, min + step, ... <= max
    [search]
    sampler = "grid"         # grid | tpe | random | qmc | cmaes
    trials = 30              # for the non-grid samplers
    pruner = "none"          # none | median | sha | hyperband
    [proxy]                  # the short training run that scores a candidate
    resolution = 32          # base side in px; a candidate trains at resolution_for(32, γ)
    epochs = 2
    train = 1200             # training images
    val = 500                # validation images
    batch_size = 64
    optimizer = "adamw"      # adamw | sgd | rmsprop
    lr = 0.004
    lr_scaling = "none"      # none | width: a wider layer's rate × its fan-in at β = 1 over its own (μP)
    momentum = 0.9           # sgd and rmsprop
    weight_decay = 0.01      # not on BatchNorm and biases
    schedule = "cosine"      # cosine | constant | step
    warmup_epochs = 0        # < epochs
    label_smoothing = 0.1
    bn_momentum = 0.1        # PyTorch's BatchNorm momentum (official 0.01 is for long runs)
    drop_path = 0.0          # stochastic depth rate of the last block (official 0.2)
    ema = 0.0                # > 0: score a moving average of the weights (decay per step)
    seeds = 1                # training runs per candidate
    seed = 0
    [proxy.cuda]             # any [proxy] keys, replacing them when the run trains on a GPU
    max_seeds = 8            #   ([proxy.cpu] likewise on the CPU; command-line options still win)

Every key is optional except the three ranges. A wrong key or value raises
:class:`~scalesearch.errors.ScaleSearchError` naming the file and the dotted key.

Candidates and their cost live in :mod:`scalesearch.space`; sampling on the
budget manifold in :mod:`scalesearch.space`.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ._checks import Check, choice, fail, integer, number, read_table, section, text
from ..errors import ScaleSearchError
from ..files import read_toml, toml_text
from ..limits import MAX_BATCH, MAX_COEFF, MAX_EPOCHS, MAX_IMAGES, MAX_SEEDS, MAX_SIDE, MAX_TRIALS


_PACKAGE = Path(__file__).resolve().parents[1]
# The shipped spaces: a wheel installs the repository's search_spaces/ inside the package (pyproject.toml maps
# it there); a source checkout or an editable install reads it where it lives, at the repository's top.
SPACES_DIR = next((d for d in (_PACKAGE / "search_spaces", _PACKAGE.parent / "search_spaces") if d.is_dir()),
                  _PACKAGE / "search_spaces")

CONSTRAINTS = ("measured", "nominal", "acts", "latency")
# What each constraint's ratio counts, for tables and exports.
CONSTRAINT_UNITS = {
    "measured": "multiply-adds of the built network at its target side / the base's at its own",
    "nominal": "alpha * beta**2 * gamma**2",
    "acts": "conv and linear output elements of the built network at its target side / the base's at its own",
    "latency": "measured inference seconds per batch of the built network at its target side / the base's at its own",
}
SAMPLERS = ("grid", "tpe", "random", "qmc", "cmaes")
PRUNERS = ("none", "median", "sha", "hyperband")
OPTIMIZERS = ("sgd", "adamw", "rmsprop")
SCHEDULES = ("cosine", "constant", "step")
LR_SCALINGS = ("none", "width")
SCORES = ("loss", "acc")
PROXY_DEVICES = ("cpu", "cuda")  # device kinds a space may give their own [proxy.<kind>] settings

# A guard, not a science: beyond this the grid takes minutes to assess and
# cannot be trained anyway; a coarser step is almost certainly what was meant.
MAX_GRID_POINTS = 100_000

# Slack for decimal boundaries: 1.9 / 2 - 1 is -0.050000000000000044 in binary.
EPS = 1e-9


def parse_budget(text: str | float) -> float:
    """``"2x"``, ``"2X"``, ``"2"``, ``2.0`` → 2.0; the budget must exceed 1."""
    raw = text.strip() if isinstance(text, str) else text
    if isinstance(raw, str) and raw[-1:] in ("x", "X"):
        raw = raw[:-1]
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(text, bool) or not value > 1 or math.isinf(value):
        raise ScaleSearchError(f"budget must be a number > 1 such as 2x, got {text!r}")
    return value


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


def parse_duration(text: str | float) -> float:
    """``"10m"``, ``"1h"``, ``"1h30m"``, ``"90s"``, ``90`` → seconds; ``"none"`` or 0 → 0 (no time budget)."""
    if isinstance(text, bool):
        raise ScaleSearchError(f"time must be a duration such as 10m, 1h or 90s (or none), got {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        raw = text.strip().lower().replace(" ", "")
        match = _DURATION.fullmatch(raw) if raw not in ("", "none") else None
        if raw == "none":
            return 0.0
        if match is None or not any(match.groups()):
            raise ScaleSearchError(f"time must be a duration such as 10m, 1h or 90s (or none), got {text!r}")
        h, m, sec = (float(g) if g else 0.0 for g in match.groups())
        value = 3600 * h + 60 * m + sec
    if not math.isfinite(value) or value > MAX_TIME or (value != 0 and value < MIN_TIME):
        raise ScaleSearchError(f"time must be none or {MIN_TIME:g} s to {MAX_TIME / 86400:g} days (a run keeps some of "
                               f"it for writing its results), got {text!r}")
    return value


# A week: beyond it a typo (10000h) is likelier than a plan. Under half a minute nothing would train.
MAX_TIME = 7 * 86400.0
MIN_TIME = 30.0


# --------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Range:
    """An inclusive lattice ``min, min + step, …`` up to ``max``."""

    min: float
    max: float
    step: float

    def count(self) -> float:
        """How many values, by arithmetic alone (inf when too many to count): a tiny step must be
        refused before a tuple of a billion floats is built."""
        steps = (self.max - self.min) / self.step + EPS
        return math.floor(steps) + 1 if steps < 1e15 else math.inf

    def values(self) -> tuple[float, ...]:
        n = self.count()
        if n > MAX_GRID_POINTS:
            raise ScaleSearchError(f"a range of {_many(n)} values (min {self.min:g}, max {self.max:g}, step {self.step:g}) "
                                   f"is more than the {MAX_GRID_POINTS:,} grid points allowed; use a larger step")
        # Counting steps (not accumulating) and rounding keeps 1.15 from becoming 1.1500000000000001.
        return tuple(round(self.min + i * self.step, 6) for i in range(n))


@dataclass(frozen=True)
class ProxySettings:
    """The short training run that scores a candidate (see :mod:`scalesearch.proxy`)."""

    resolution: int | str = "auto"
    width: float = 0.35
    epochs: int = 2
    train: int = 1200
    val: int = 1500
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 0.004
    lr_scaling: str = "none"
    momentum: float = 0.9
    weight_decay: float = 0.01
    schedule: str = "cosine"
    warmup_epochs: int = 0
    label_smoothing: float = 0.1
    bn_momentum: float = 0.1
    drop_path: float = 0.0
    ema: float = 0.0
    seeds: int = 1
    max_seeds: int = 32
    score: str = "loss"
    seed: int = 0


@dataclass(frozen=True)
class SearchSpace:
    """A validated search-space file; build one with :func:`load_space`."""

    name: str
    path: str
    description: str
    source: str
    alpha: Range
    beta: Range
    gamma: Range
    budget: float = 2.0
    tolerance: float = 0.05
    constraint: str = "measured"
    sampler: str = "grid"
    trials: int = 30
    pruner: str = "none"
    contenders: int = 6
    phi2: int = 2
    time: float = 600.0  # seconds the whole run may take (0: no budget; rounds go on until resolved or max_seeds)
    proxy: ProxySettings = ProxySettings()
    # [proxy.<kind>] tables: (device kind, ((setting, value), …)) that replace proxy settings on that device
    device_proxy: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()

    def for_device(self, kind: str) -> SearchSpace:
        """The space as a run on a `kind` device ("cpu", "cuda") uses it: its [proxy.<kind>] table applied."""
        return self.with_overrides(**dict(dict(self.device_proxy).get(kind, ())))

    def with_overrides(self, **changes: Any) -> SearchSpace:
        """A copy with top-level or proxy fields replaced (``epochs=2``, ``budget="3x"``); None is ignored."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if isinstance(changes.get("seeds"), int) and "max_seeds" not in changes:  # more seeds for all keeps racing's cap
            changes["max_seeds"] = max(changes["seeds"], self.proxy.max_seeds)
        top = {f.name for f in fields(self)} - {"name", "path", "proxy", "device_proxy"}
        proxy_keys = {f.name for f in fields(ProxySettings)}
        unknown = sorted(set(changes) - top - proxy_keys)
        if unknown:
            raise ScaleSearchError(f"unknown search-space setting {unknown[0]!r}; expected one of {', '.join(sorted(top | proxy_keys))}")
        data = _to_toml_dict(self)
        for key, value in changes.items():
            if key in proxy_keys:
                data["proxy"][key] = value
            elif key in _SEARCH_KEYS:
                data["search"][key] = value
            elif isinstance(value, Range):
                data[key] = asdict(value)
            else:
                data[key] = value
        return _parse(data, where=f"search space {self.name!r} with overrides", name=self.name, path=self.path)


# ------------------------------------------------------------------- validation

def _side(value: Any) -> int | str:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 8 <= value <= MAX_SIDE):
        return value
    raise ValueError(f"an integer from 8 to {MAX_SIDE} or 'auto'")


def _time(value: Any) -> float:
    try:
        return parse_duration(value)
    except ScaleSearchError:
        raise ValueError(f"a duration such as '10m', '1h' or '90s' ({MIN_TIME:g} s to {MAX_TIME / 86400:g} days), or 'none'") from None


def _budget(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("a number > 1 such as 2 or '2x'")
    try:
        return parse_budget(value)
    except ScaleSearchError:
        raise ValueError("a number > 1 such as 2 or '2x'") from None


_TOP: dict[str, Check] = {
    "description": text,
    "source": text,
    "budget": _budget,
    "tolerance": number(0, 1, low_open=True, high_open=True),
    "constraint": choice(CONSTRAINTS),
}
_SEARCH: dict[str, Check] = {"sampler": choice(SAMPLERS), "trials": integer(1, MAX_TRIALS), "pruner": choice(PRUNERS),
                              "contenders": integer(0), "phi2": integer(0), "time": _time}
_SEARCH_KEYS = frozenset(_SEARCH)
_PROXY: dict[str, Check] = {
    "resolution": _side,
    "width": number(0, 4, low_open=True),
    "epochs": integer(1, MAX_EPOCHS),
    "train": integer(1, MAX_IMAGES),
    "val": integer(1, MAX_IMAGES),
    "batch_size": integer(1, MAX_BATCH),
    "optimizer": choice(OPTIMIZERS),
    "lr": number(0, low_open=True),
    "lr_scaling": choice(LR_SCALINGS),
    "momentum": number(0, 1, high_open=True),
    "weight_decay": number(0),
    "schedule": choice(SCHEDULES),
    "warmup_epochs": integer(0),
    "label_smoothing": number(0, 1, high_open=True),
    "bn_momentum": number(0, 1, low_open=True),
    "drop_path": number(0, 1, high_open=True),
    "ema": number(0, 1, high_open=True),
    "seeds": integer(1, MAX_SEEDS),
    "max_seeds": integer(1, MAX_SEEDS),
    "score": choice(SCORES),
    "seed": integer(0),
}
_RANGE: dict[str, Check] = {"min": number(0, MAX_COEFF, low_open=True), "max": number(0, MAX_COEFF, low_open=True),
                            "step": number(0, low_open=True)}
_AXES = ("alpha", "beta", "gamma")
_SECTIONS = ("search", "proxy") + _AXES


def _range(data: dict[str, Any], axis: str, where: str) -> Range:
    table = read_table(section(data, axis, where, required=True), _RANGE, axis + ".", where)
    for key in ("max", "step"):
        if key not in table:
            raise ScaleSearchError(f"{where}: missing key '{axis}.{key}'")
    r = Range(table.get("min", 1.0), table["max"], table["step"])
    if r.max < r.min:
        raise fail(where, f"{axis}.max", f"a number >= {axis}.min ({r.min:g})", r.max)
    return r


def _parse(data: dict[str, Any], where: str, name: str, path: str) -> SearchSpace:
    unknown = sorted(set(data) - set(_TOP) - set(_SECTIONS))
    if unknown:
        raise ScaleSearchError(f"{where}: unknown key {unknown[0]!r}; expected one of {', '.join(list(_TOP) + ['[' + s + ']' for s in _SECTIONS])}")
    top = read_table({k: v for k, v in data.items() if k in _TOP}, _TOP, "", where)
    search = read_table(section(data, "search", where), _SEARCH, "search.", where)
    table = dict(section(data, "proxy", where))
    devices = tuple((kind, tuple(read_table(section(table, kind, where), _PROXY, f"proxy.{kind}.", where).items()))
                    for kind in PROXY_DEVICES if kind in table)
    proxy = ProxySettings(**read_table({k: v for k, v in table.items() if k not in PROXY_DEVICES}, _PROXY, "proxy.", where))
    if proxy.warmup_epochs >= proxy.epochs:
        raise fail(where, "proxy.warmup_epochs", f"an integer < proxy.epochs ({proxy.epochs})", proxy.warmup_epochs)
    if proxy.lr_scaling == "width" and proxy.optimizer == "sgd":  # μP's rule for SGD is another one
        raise fail(where, "proxy.lr_scaling", '"none" with optimizer "sgd" ("width" is μP\'s rule for adamw and rmsprop)',
                   proxy.lr_scaling)
    if proxy.max_seeds < proxy.seeds:
        raise fail(where, "proxy.max_seeds", f"an integer >= proxy.seeds ({proxy.seeds})", proxy.max_seeds)
    ranges = {axis: _range(data, axis, where) for axis in _AXES}
    _check_grid_size(ranges, where)
    return SearchSpace(name=name, path=path, description=top.pop("description", ""), source=top.pop("source", ""),
                       **ranges, **top, **search, proxy=proxy, device_proxy=devices)


def _check_grid_size(ranges: dict[str, Range], where: str) -> None:
    """Refuse a grid above MAX_GRID_POINTS from the ranges' arithmetic, before any value is made."""
    points = math.prod(r.count() for r in ranges.values())
    if points > MAX_GRID_POINTS:
        axis, r = max(ranges.items(), key=lambda item: item[1].count())
        raise ScaleSearchError(f"{where}: the ranges give {_many(points)} grid points, more than the limit of "
                               f"{MAX_GRID_POINTS:,} (scalesearch.space.MAX_GRID_POINTS); use larger steps, e.g. "
                               f"{axis}.step (now {r.step:g}, {_many(r.count())} values from {r.min:g} to {r.max:g})")


def _many(n: float) -> str:
    return f"{n:,.0f}" if n < 1e15 else "more than 10^15"


def _to_toml_dict(space: SearchSpace) -> dict[str, Any]:
    """The inverse of :func:`_parse`, so overrides go through the same checks as files."""
    data: dict[str, Any] = {k: getattr(space, k) for k in _TOP}
    data.update({axis: asdict(getattr(space, axis)) for axis in _AXES})
    data["search"] = {k: getattr(space, k) for k in _SEARCH}
    data["proxy"] = asdict(space.proxy) | {kind: dict(table) for kind, table in space.device_proxy}
    return data


def _display(path: Path) -> str:
    """The path as a user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def known_spaces() -> list[str]:
    """Names accepted by :func:`load_space` besides a path to a TOML file."""
    return sorted(p.stem for p in SPACES_DIR.glob("*.toml"))


def load_space(name_or_path: str | Path = "default") -> SearchSpace:
    """A shipped space by name (see :func:`known_spaces`) or a path to a space TOML file."""
    key = str(name_or_path)
    path = Path(key)
    if not path.suffix and (SPACES_DIR / f"{key}.toml").is_file():
        path = SPACES_DIR / f"{key}.toml"
    if path.suffix != ".toml" or not path.is_file():
        missing = " (no such file)" if path.suffix == ".toml" else ""
        raise ScaleSearchError(f"unknown search space {key!r}{missing}: choose one of {', '.join(known_spaces())} "
                               "(see `scalesearch spaces`) or give a path to a .toml file")
    where = _display(path)
    return _parse(read_toml(path, where), where=where, name=path.stem, path=str(path))


def space_toml(space: SearchSpace) -> str:
    """`space` as a search-space TOML file (the inverse of :func:`load_space`)."""
    return toml_text(_to_toml_dict(space))


__all__ = [
    "SPACES_DIR", "CONSTRAINTS", "SAMPLERS", "PRUNERS", "OPTIMIZERS", "SCHEDULES", "LR_SCALINGS", "SCORES", "MAX_GRID_POINTS", "Range",
    "ProxySettings", "SearchSpace", "parse_budget", "parse_duration", "known_spaces", "load_space", "space_toml",
]
