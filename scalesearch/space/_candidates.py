"""Candidates (α depth, β width, γ resolution): the network each builds and its cost.

Cost is exact, from :mod:`scalesearch.arch`: nominal (the paper's α·β²·γ²),
measured (the built network's multiply-adds) at the target side and at the
proxy's, and activations at the target side; latency is measured
(:mod:`scalesearch.space`) for the points a MACs pre-filter keeps. A
space's ``constraint`` says which one the budget is checked against.

>>> from scalesearch.arch import load_base
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

from ..arch._spec import BaseNetwork, NetworkSpec, scale
from ..arch._cost import Cost, network_cost
from ..errors import ScaleSearchError
from ._space import CONSTRAINTS, EPS

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

    @property
    def key(self) -> tuple[float, float, float]:
        """The candidate as a dictionary key, immune to float noise in the stored coefficients."""
        return (round(self.alpha, 4), round(self.beta, 4), round(self.gamma, 4))


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


def at_base_width(base: BaseNetwork, c: Candidate, resolution: int | None = None, width: float = 1.0) -> NetworkSpec:
    """The candidate's network at β = 1 (its depth and side kept): what a width-scaled learning rate is set against."""
    return candidate_spec(base, replace(c, beta=1.0), resolution, width)


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


__all__ = [
    "Candidate", "Assessment", "resolution_for", "narrowed", "candidate_spec", "target_ratio", "assess",
    "within_tolerance", "within",
]
