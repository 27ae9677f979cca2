"""Candidates (α depth, β width, γ resolution): the network each builds, its cost, and the grid within budget.

Cost is exact, from :mod:`scalesearch.cost`: nominal (the paper's α·β²·γ²),
measured (the built network's multiply-adds) at the target side and at the
proxy's, and activations at the target side; latency is measured
(:mod:`scalesearch.latency_budget`) for the points a MACs pre-filter keeps. A
space's ``constraint`` says which one the budget is checked against.

>>> from scalesearch.arch import load_base
>>> from scalesearch.space import load_space
>>> report = feasible_grid(load_space("paper"), load_base("b0"))
>>> report.total, report.feasible_nominal, report.feasible_measured
(567, 69, 29)
>>> a = assess(load_base("b0"), Candidate(1.2, 1.1, 1.15), proxy_resolution=32)
>>> round(a.nominal, 2), round(a.measured_target, 2), a.target_resolution, a.proxy_resolution
(1.92, 2.57, 258, 37)
>>> within(a, 2.0, 0.05, "nominal"), within(a, 2.0, 0.05, "measured"), round(a.acts_target, 2), within(a, 2.0, 0.05, "acts")
(True, False, 2.04, True)
"""
from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .arch import BaseNetwork, NetworkSpec, scale
from .cost import Cost, network_cost
from .errors import ScaleSearchError
from .space import CONSTRAINTS, EPS, SearchSpace

if TYPE_CHECKING:
    from .latency import Meter, Progress
    from .latency_budget import LatencyCheck

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """One point (α depth, β width, γ resolution) of the search."""

    alpha: float
    beta: float
    gamma: float

    @property
    def nominal(self) -> float:
        """The paper's cost model: FLOPs grow as α·β²·γ²."""
        return self.alpha * self.beta**2 * self.gamma**2


def resolution_for(base_resolution: int, gamma: float) -> int:
    """The side in px for `gamma`, rounded half up.

    Python's ``round`` rounds halves to even (``round(36.5) == 36`` but
    ``round(37.5) == 38``), which would make neighbouring γ values scale
    inconsistently; half up is what a reader expects.
    """
    return int(base_resolution * gamma + 0.5)


def narrowed(base: BaseNetwork, width: float) -> BaseNetwork:
    """`base` with every channel count × `width` before the candidate's own β (the proxy's base)."""
    return base if width == 1.0 else replace(base, width=base.width * width)


def candidate_spec(base: BaseNetwork, c: Candidate, resolution: int | None = None, width: float = 1.0) -> NetworkSpec:
    """The network a candidate builds: width β (on the base narrowed by `width`), depth α, side base.resolution × γ unless given."""
    res = resolution_for(base.resolution, c.gamma) if resolution is None else resolution
    return scale(narrowed(base, width), width=c.beta, depth=c.alpha, resolution=res)


@functools.lru_cache(maxsize=4096)
def _scaled(base: BaseNetwork, alpha: float, beta: float) -> NetworkSpec:
    # The multipliers are cleared because cost ignores them: many (α, β) round to the
    # same network, and the cost cache below should see them as one.
    return replace(scale(base, width=beta, depth=alpha), width_mult=1.0, depth_mult=1.0)


@functools.lru_cache(maxsize=65536)
def _cost(spec: NetworkSpec, resolution: int, num_classes: int, in_channels: int) -> Cost:
    return network_cost(spec, resolution, num_classes, in_channels)


def _base_macs(base: BaseNetwork, resolution: int, num_classes: int = 1000, in_channels: int = 3) -> int:
    return _cost(_scaled(base, 1.0, 1.0), resolution, num_classes, in_channels).macs


def _base_acts(base: BaseNetwork) -> int:
    return _cost(_scaled(base, 1.0, 1.0), base.resolution, 1000, 3).acts


def target_ratio(base: BaseNetwork, alpha: float, beta: float, resolution: int) -> float:
    """Measured MACs ratio at full size (1000 classes, 3 channels), as the paper counts."""
    return _cost(_scaled(base, alpha, beta), resolution, 1000, 3).macs / _base_macs(base, base.resolution)


@dataclass(frozen=True)
class Assessment:
    """A candidate's cost, nominal and measured, at the target and at the proxy.

    ``measured_target`` compares with the paper (1000 classes, 3 channels, base
    at its own resolution), as does ``acts_target`` (pycls's activations);
    ``measured_proxy`` is what the proxy run pays relative to the base trained
    the same way. ``params`` and ``acts_proxy`` are of the proxy network (its
    classes and channels). ``latency_target`` and ``latency_s`` are set only where
    latency was measured (:func:`feasible_grid` under the latency constraint).
    """

    candidate: Candidate
    nominal: float
    measured_target: float
    measured_proxy: float
    target_resolution: int
    proxy_resolution: int
    macs_target: int
    macs_proxy: int
    params: int
    acts_proxy: int
    acts_target: float = math.nan
    latency_target: float | None = None
    latency_s: float | None = None


def assess(base: BaseNetwork, c: Candidate, proxy_resolution: int, num_classes: int = 10, in_channels: int = 3,
           proxy_width: float = 1.0) -> Assessment:
    """Nominal and measured cost of `c` on `base`, at the target and at the proxy.

    The proxy is `c` built on the base narrowed by `proxy_width`, at `proxy_resolution` × γ.
    """
    target_res = resolution_for(base.resolution, c.gamma)
    proxy_res = resolution_for(proxy_resolution, c.gamma)
    target = _cost(_scaled(base, c.alpha, c.beta), target_res, 1000, 3)
    small = narrowed(base, proxy_width)
    proxy = _cost(_scaled(small, c.alpha, c.beta), proxy_res, num_classes, in_channels)
    return Assessment(
        candidate=c,
        nominal=c.nominal,
        measured_target=target.macs / _base_macs(base, base.resolution),
        measured_proxy=proxy.macs / _base_macs(small, proxy_resolution, num_classes, in_channels),
        target_resolution=target_res,
        proxy_resolution=proxy_res,
        macs_target=target.macs,
        macs_proxy=proxy.macs,
        params=proxy.params,
        acts_proxy=proxy.acts,
        acts_target=target.acts / _base_acts(base),
    )


def within_tolerance(cost: float, budget: float, tolerance: float) -> bool:
    return abs(cost / budget - 1) <= tolerance + EPS


def _under(a: Assessment, constraint: str) -> float:
    """The cost ratio `constraint` judges; a latency never measured (pre-filtered out) is infinite."""
    if constraint not in CONSTRAINTS:
        raise ScaleSearchError(f"constraint must be one of {', '.join(CONSTRAINTS)}, got {constraint!r}")
    if constraint == "latency":
        return math.inf if a.latency_target is None else a.latency_target
    return {"nominal": a.nominal, "measured": a.measured_target, "acts": a.acts_target}[constraint]


def within(a: Assessment, budget: float, tolerance: float, constraint: str) -> bool:
    """Whether |cost / budget − 1| <= tolerance, cost being nominal, measured MACs, activations or latency at the target."""
    return within_tolerance(_under(a, constraint), budget, tolerance)


# ------------------------------------------------------------------------- grid


def grid(space: SearchSpace) -> list[Candidate]:
    """The full Cartesian product of the three ranges, in (α, β, γ) order."""
    return [Candidate(a, b, g) for a in space.alpha.values() for b in space.beta.values() for g in space.gamma.values()]


@dataclass(frozen=True)
class GridReport:
    """The grid points within budget, with counts under each constraint (latency only where it was measured)."""

    feasible: list[Assessment]  # under the space's constraint, sorted by (α, β, γ)
    total: int
    feasible_nominal: int
    feasible_measured: int
    closest: list[Assessment]  # the 5 nearest to the budget when none is feasible, else empty
    feasible_acts: int = 0
    feasible_latency: int | None = None  # None: latency was not measured (another constraint)
    latency: LatencyCheck | None = None  # the measurement behind the latency constraint


def feasible_grid(space: SearchSpace, base: BaseNetwork, num_classes: int = 10, in_channels: int = 3, *,
                  meter: Meter | None = None, latency: LatencyCheck | None = None,
                  on_progress: Progress | None = None) -> GridReport:
    """Assess every grid point of `space` on `base` against its budget and tolerance.

    Under the latency constraint the points a MACs pre-filter keeps are measured with
    `meter` (:func:`scalesearch.latency_budget.measure_grid`), unless `latency` holds
    a measurement already made (a resumed or joined study reads the one it recorded).
    """
    side = space.proxy.resolution if isinstance(space.proxy.resolution, int) else base.resolution
    every = [assess(base, c, side, num_classes, in_channels, space.proxy.width) for c in grid(space)]
    if space.constraint == "latency":
        every, latency = _with_latency(every, base, space, meter, latency, on_progress)
    ok = {k: [a for a in every if within(a, space.budget, space.tolerance, k)] for k in CONSTRAINTS}
    feasible = ok[space.constraint]
    closest: list[Assessment] = []
    if not feasible:
        closest = sorted(every, key=lambda a: abs(_under(a, space.constraint) / space.budget - 1))[:5]
    log.debug("space %s on %s: %d of %d grid points feasible (%s)", space.name, base.name, len(feasible), len(every), space.constraint)
    return GridReport(feasible, len(every), len(ok["nominal"]), len(ok["measured"]), closest, len(ok["acts"]),
                      len(ok["latency"]) if latency else None, latency)


def _with_latency(every: list[Assessment], base: BaseNetwork, space: SearchSpace, meter: Meter | None,
                  latency: LatencyCheck | None, on_progress: Progress | None) -> tuple[list[Assessment], LatencyCheck]:
    from .latency_budget import measure_grid

    if latency is None:
        if meter is None:
            raise ScaleSearchError("constraint latency needs a device to measure on (a latency Meter)")
        latency = measure_grid(base, every, space.budget, meter, on_progress=on_progress)
    return [latency.annotate(a) for a in every], latency


def require_feasible(report: GridReport, space: SearchSpace) -> None:
    """Raise a one-line error naming the closest points when the grid has no feasible point."""
    if report.feasible:
        return
    near = ", ".join(
        f"(α={a.candidate.alpha:g}, β={a.candidate.beta:g}, γ={a.candidate.gamma:g}) → {_under(a, space.constraint):.2f}x"
        for a in report.closest
    )
    raise ScaleSearchError(
        f"no point of search space {space.name!r} is within {space.tolerance * 100:g}% of budget "
        f"{space.budget:g}x ({space.constraint}); closest: {near}"
    )


__all__ = [
    "Candidate", "Assessment", "GridReport", "resolution_for", "narrowed", "candidate_spec", "target_ratio", "assess",
    "within_tolerance", "within", "grid", "feasible_grid", "require_feasible",
]
