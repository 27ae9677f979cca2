"""The families a comparison trains: compound scaling and each dimension alone, at equal measured cost per φ.

For coefficients (α, β, γ) the compound member at φ scales depth by α^φ, width by β^φ and the side
by γ^φ. Each single-dimension member scales one of them alone, by the multiplier whose built network
costs what the compound member costs at φ, in multiply-adds at the target side (1000 classes, 3
channels), as the search's ``constraint = "measured"`` judges cost. Rounding of repeats, channels and
side makes an exact match impossible, so the multiplier is searched on a 10⁻⁴ lattice with the real
builder's rounding, the nearest member in log cost is taken, and its ``macs_ratio`` (its MACs over the
compound member's) is kept and flagged when it is further from 1 than the tolerance. The target is the
compound member's *measured* cost (the paper's 1.2/1.1/1.15 costs 2.57× at φ = 1, not 2×). φ = 0 is
the base, one network shared by every family.

>>> from scalesearch.arch import load_base
>>> members = family_members(load_base("b0"), (1.2, 1.1, 1.15), phi_max=1)
>>> [(m.family, m.phi, m.multiplier, round(m.ratio, 3)) for m in members]  # doctest: +NORMALIZE_WHITESPACE
[('compound', 0, 1.0, 1.0), ('compound', 1, 1.0, 1.0), ('width', 1, 1.65, 1.006), ('depth', 1, 2.3, 0.997),
 ('resolution', 1, 1.57, 0.957)]
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Callable

from ..arch._cost import network_cost
from ..arch._spec import BaseNetwork
from ..errors import ScaleSearchError
from ..limits import MAX_COEFF
from ._candidates import Candidate, candidate_spec

FAMILIES = ("compound", "width", "depth", "resolution")
SINGLE = FAMILIES[1:]
LATTICE = 10_000  # multipliers are searched in steps of 1 / LATTICE (Candidate.key's precision)


def check_families(families: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The single-dimension families asked for ("width,depth" or a sequence): a subset of :data:`SINGLE`, in order.

    >>> check_families("resolution, width")
    ('resolution', 'width')
    """
    names = tuple(n.strip() for n in (families.split(",") if isinstance(families, str) else families))
    if not names or any(n not in SINGLE for n in names) or len(set(names)) != len(names):
        shown = families if isinstance(families, str) else ",".join(map(str, families))
        raise ScaleSearchError(f"--family must be one or more of {', '.join(SINGLE)}, comma-separated, each once; "
                               f"got {shown!r}")
    return names


@dataclass(frozen=True)
class Member:
    """One trained point: a family at φ, its absolute multipliers and its measured cost at the target."""

    family: str  # compound, width, depth or resolution
    phi: int
    candidate: Candidate  # depth, width and side multipliers on the base
    macs: int  # multiply-adds at the target side, 1000 classes, 3 channels
    ratio: float  # macs / the compound member's at this φ (an interaction curve's: / its first point's)
    setting: tuple[float, float] = (1.0, 1.0)  # the fixed (depth, side) multipliers of an interaction curve

    @property
    def multiplier(self) -> float:
        """The family's own multiplier (compound: 1; its coefficients are α^φ, β^φ, γ^φ)."""
        c = self.candidate
        return {"width": c.beta, "depth": c.alpha, "resolution": c.gamma}.get(self.family, 1.0)

    def flagged(self, tolerance: float) -> bool:
        """Its cost is further from the compound member's than the search's tolerance allows."""
        return abs(self.ratio - 1) > tolerance + 1e-9


def alone(family: str, m: float, setting: tuple[float, float] = (1.0, 1.0)) -> Candidate:
    """`family` scaled by `m` alone, from the fixed (depth, side) multipliers `setting` (width stays 1 otherwise)."""
    depth, side = setting
    return {"width": Candidate(depth, m, side), "depth": Candidate(m, 1.0, side), "resolution": Candidate(depth, 1.0, m)}[family]


def target_macs(base: BaseNetwork, c: Candidate) -> int:
    """Multiply-adds of `c`'s network at its target side (base.resolution × γ), as the measured constraint counts."""
    return network_cost(candidate_spec(base, c)).macs


def compound(base: BaseNetwork, coefficients: tuple[float, float, float], phi: int) -> Candidate:
    a, b, g = coefficients
    return Candidate(round(a**phi, 6), round(b**phi, 6), round(g**phi, 6))


def matched(base: BaseNetwork, family: str, target: int, setting: tuple[float, float] = (1.0, 1.0)) -> Candidate:
    """The `family`-only member (from `setting`) whose measured MACs are nearest `target` in log ratio.

    Cost grows monotonically with each multiplier, so the lattice is bisected: the first multiplier
    that reaches `target` and the one below it are the two candidates.
    """
    cost = lambda j: target_macs(base, alone(family, j / LATTICE, setting))
    top = int(MAX_COEFF * LATTICE)
    if cost(top) < target:
        times = target / target_macs(base, Candidate(1.0, 1.0, 1.0))
        raise ScaleSearchError(f"{family} scaling alone cannot reach {times:.2f}× the base's MACs with a multiplier up "
                               f"to {MAX_COEFF:g}; lower --phi or leave {family} out of --family")
    first = LATTICE
    hit = bisect.bisect_left(range(first, top + 1), target, key=cost) + first
    near = min((j for j in (hit - 1, hit) if j >= first), key=lambda j: abs(math.log(cost(j) / target)))
    return alone(family, _tidy(cost, near, first, top) / LATTICE, setting)


def _tidy(cost: Callable[[int], int], j: int, first: int, top: int) -> int:
    """The lattice point with the fewest decimals that builds the same network as `j` (1.6 rather than 1.5987)."""
    lo = bisect.bisect_left(range(first, top + 1), cost(j), key=cost) + first
    hi = bisect.bisect_right(range(first, top + 1), cost(j), key=cost) + first - 1
    for step in (LATTICE, LATTICE // 10, LATTICE // 100, LATTICE // 1000, 1):
        tidy = -(-lo // step) * step
        if tidy <= hi:
            return tidy
    return j


def family_members(base: BaseNetwork, coefficients: tuple[float, float, float], phi_max: int = 2,
                   families: tuple[str, ...] = SINGLE) -> list[Member]:
    """Every member the comparison trains: the compound family φ = 0 … `phi_max` (φ = 0, the base, stands
    for every family) and, for φ ≥ 1, each of `families` matched to the compound member's measured MACs."""
    out = []
    for phi in range(phi_max + 1):
        c = compound(base, coefficients, phi)
        target = target_macs(base, c)
        out.append(Member("compound", phi, c, target, 1.0))
        for family in families if phi else ():
            m = matched(base, family, target)
            out.append(Member(family, phi, m, target_macs(base, m), target_macs(base, m) / target))
    return out


def interaction_members(base: BaseNetwork, coefficients: tuple[float, float, float], phi_max: int = 2) -> list[Member]:
    """The paper's Figure 4 at proxy scale: the width-only multipliers of φ = 0 … `phi_max` applied from the fixed
    (depth, side) settings (1, 1), (α^k, 1) and (α^k, γ^k), k = `phi_max`: does the width curve saturate later on a
    deeper, larger base? Each member's ratio is over its curve's first point (width 1)."""
    top = compound(base, coefficients, phi_max)
    widths = [1.0] + [matched(base, "width", target_macs(base, compound(base, coefficients, phi))).beta
                      for phi in range(1, phi_max + 1)]
    out = []
    for setting in ((1.0, 1.0), (top.alpha, 1.0), (top.alpha, top.gamma)):
        start = target_macs(base, alone("width", 1.0, setting))
        for phi, w in enumerate(widths):
            c = alone("width", w, setting)
            out.append(Member("width", phi, c, target_macs(base, c), target_macs(base, c) / start, setting))
    return out
