"""The grid within budget: every point of a space assessed, counted under each constraint, the feasible kept.

Under the latency constraint the points a MACs pre-filter keeps are timed first
(:func:`scalesearch.space.measure_grid`).

>>> from scalesearch.arch import load_base
>>> from scalesearch.space import load_space
>>> report = feasible_grid(load_space("paper"), load_base("b0"))
>>> report.total, report.feasible_nominal, report.feasible_measured
(567, 69, 29)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from ..arch._latency import Meter, Progress
from ..arch._spec import BaseNetwork
from ..errors import ScaleSearchError
from ._candidates import Assessment, Candidate, _under, assess, within
from ._latency_budget import LatencyCheck, measure_grid
from ._space import CONSTRAINTS, SearchSpace

log = logging.getLogger(__name__)


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
    `meter` (:func:`scalesearch.space.measure_grid`), unless `latency` holds
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
