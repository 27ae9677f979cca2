"""Sampling on the budget manifold: every non-grid sampler's trial is a feasible candidate.

Grid samplers walk :func:`scalesearch.space.feasible_grid`. The other samplers call :func:`suggest`,
which samples on the budget manifold so no trial is spent on an infeasible point:
for every lattice (α, β) pair the γ that brings the cost closest to the budget is
solved once (γ = sqrt(B / (α β²)) for ``nominal``; the integer target resolution
whose measured ratio is closest to B for ``measured``), and only pairs whose γ lies
in the γ range and whose cost is within tolerance are kept. Optuna then samples
``alpha`` over the feasible α span and ``beta`` over the span of *all* feasible β
(a fixed range, so Optuna never sees one parameter with changing bounds); both
snap to the nearest feasible lattice value, and γ follows. The candidate actually
used is stored in the trial's user attributes ``alpha``, ``beta`` and ``gamma``.
"""
from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import Any

from ..arch._spec import BaseNetwork
from ._candidates import Candidate, target_ratio, within_tolerance
from ..errors import ScaleSearchError
from ._space import EPS, Range, SearchSpace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Manifold:
    alphas: tuple[float, ...]  # feasible α values, sorted
    betas: tuple[float, ...]  # every β feasible for some α, sorted
    by_alpha: dict[float, dict[float, float]]  # α → {β: γ}


def _solve_nominal(alpha: float, beta: float, budget: float) -> tuple[float, float]:
    gamma = round(math.sqrt(budget / (alpha * beta**2)), 4)
    return gamma, alpha * beta**2 * gamma**2


def _solve_measured(base: BaseNetwork, alpha: float, beta: float, budget: float, gamma: Range) -> tuple[float, float] | None:
    """The target side in the γ range whose measured ratio is closest to `budget`."""
    lo = math.ceil(gamma.min * base.resolution - EPS)
    hi = math.floor(gamma.max * base.resolution + EPS)
    if lo > hi:
        return None
    # MACs never fall as the input grows (every conv output side is monotone), so bisect.
    left, right = lo, hi + 1
    while left < right:
        mid = (left + right) // 2
        if target_ratio(base, alpha, beta, mid) >= budget:
            right = mid
        else:
            left = mid + 1
    options = [r for r in (left - 1, left) if lo <= r <= hi]
    res = min(options, key=lambda r: (abs(target_ratio(base, alpha, beta, r) / budget - 1), r))
    return round(res / base.resolution, 4), target_ratio(base, alpha, beta, res)


@functools.lru_cache(maxsize=64)
def _manifold(base: BaseNetwork, alpha: Range, beta: Range, gamma: Range, budget: float, tolerance: float, constraint: str) -> _Manifold:
    by_alpha: dict[float, dict[float, float]] = {}
    for a in alpha.values():
        for b in beta.values():
            if constraint == "nominal":
                solved: tuple[float, float] | None = _solve_nominal(a, b, budget)
            else:
                solved = _solve_measured(base, a, b, budget, gamma)
            if solved is None:
                continue
            g, cost = solved
            if gamma.min - EPS <= g <= gamma.max + EPS and within_tolerance(cost, budget, tolerance):
                by_alpha.setdefault(a, {})[b] = g
    betas = tuple(sorted({b for row in by_alpha.values() for b in row}))
    log.debug("manifold: %d feasible (alpha, beta) pairs", sum(len(row) for row in by_alpha.values()))
    return _Manifold(tuple(sorted(by_alpha)), betas, by_alpha)


def _snap(x: float, values: tuple[float, ...] | list[float]) -> float:
    return min(values, key=lambda v: (abs(v - x), v))


def manifold_size(space: SearchSpace, base: BaseNetwork) -> int:
    """How many distinct candidates :func:`suggest` can return."""
    m = _manifold(base, space.alpha, space.beta, space.gamma, space.budget, space.tolerance, space.constraint)
    return sum(len(row) for row in m.by_alpha.values())


def suggest(trial: Any, space: SearchSpace, base: BaseNetwork) -> Candidate:
    """Sample a feasible candidate for an Optuna `trial` on the budget manifold (see module doc).

    Feasibility is judged at the target (full size, 1000 classes), so the data does not enter.
    """
    m = _manifold(base, space.alpha, space.beta, space.gamma, space.budget, space.tolerance, space.constraint)
    if not m.alphas:
        raise ScaleSearchError(
            f"no (α, β) pair of search space {space.name!r} reaches budget {space.budget:g}x within "
            f"{space.tolerance * 100:g}% ({space.constraint}) with γ in [{space.gamma.min:g}, {space.gamma.max:g}]"
        )
    alpha = _snap(trial.suggest_float("alpha", m.alphas[0], m.alphas[-1], step=space.alpha.step), m.alphas)
    row = m.by_alpha[alpha]
    beta = _snap(trial.suggest_float("beta", m.betas[0], m.betas[-1], step=space.beta.step), sorted(row))
    gamma = row[beta]
    for key, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        trial.set_user_attr(key, value)
    return Candidate(alpha, beta, gamma)


__all__ = ["manifold_size", "suggest"]
