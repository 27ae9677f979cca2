"""The proxy's design: the cheapest side at which proxy runs keep the target's cost ratios.

Candidates are chosen because they cost the same at the target (within the
budget's tolerance); a proxy is only a fair judge if they also cost about the
same there. Shrinking the input breaks that: B0's last stages see 1×1 maps at
32 px, and any γ > 1 rounds them up to 2×2, so candidates equal at 224 px cost
up to 2.3× apart at 32 px and the proxy rewards crossing a rounding step. The
cost model is exact and cheap, so the side is chosen by computation, not by
hand: for every side in a range, the proxy MACs ratio of each feasible candidate
(its network on the base narrowed by the proxy width, at side × γ, over the
narrowed base at that side) is compared with its ratio at the target, and the
cheapest side whose worst deviation is within :data:`MAX_DEVIATION` wins (the
least deviating side when none is).

>>> from scalesearch.arch import load_base
>>> from scalesearch.space import feasible_grid
>>> from scalesearch.space import load_space
>>> b0, space = load_base("b0"), load_space("default").with_overrides(resolution=32)
>>> cands = [a.candidate for a in feasible_grid(space, b0, 10, 1).feasible]
>>> round(deviation(b0, cands, 32, 0.5, 10, 1)[1], 2)  # proxy MACs max/min at 32 px
2.26
>>> d = design(b0, cands, width=0.5, num_classes=10, in_channels=1)
>>> d.side, round(d.deviation, 2), round(d.spread, 2)
(77, 0.14, 1.25)
"""
from __future__ import annotations

from dataclasses import dataclass

from ..arch._spec import BaseNetwork
from ._candidates import Candidate, assess
from ._space import SearchSpace

# Worst relative gap allowed between a candidate's proxy and target cost ratios.
MAX_DEVIATION = 0.15
SIDES = range(24, 161)


@dataclass(frozen=True)
class ProxyDesign:
    """The chosen proxy: side for γ = 1, base width, and how faithfully it keeps the target's cost ratios."""

    side: int
    width: float
    deviation: float  # max over candidates of |proxy ratio / target ratio − 1|
    spread: float  # max / min of the candidates' proxy MACs
    base_macs: int  # the narrowed base at `side`, in MACs
    auto: bool


def deviation(base: BaseNetwork, candidates: list[Candidate], side: int, width: float,
              num_classes: int, in_channels: int) -> tuple[float, float, int]:
    """(worst |proxy ratio / target ratio − 1|, max/min proxy MACs, base proxy MACs) at `side`."""
    rows = [assess(base, c, side, num_classes, in_channels, width) for c in candidates]
    worst = max(abs(a.measured_proxy / a.measured_target - 1) for a in rows)
    macs = [a.macs_proxy for a in rows]
    base_macs = round(rows[0].macs_proxy / rows[0].measured_proxy)
    return worst, max(macs) / min(macs), base_macs


def design(base: BaseNetwork, candidates: list[Candidate], width: float, num_classes: int, in_channels: int,
           side: int | str = "auto") -> ProxyDesign:
    """The proxy for `candidates`: `side` as given, or the cheapest faithful one when it is "auto"."""
    if side != "auto":
        return ProxyDesign(int(side), width, *deviation(base, candidates, int(side), width, num_classes, in_channels), auto=False)
    scored = [(s, *deviation(base, candidates, s, width, num_classes, in_channels)) for s in SIDES]
    faithful = [r for r in scored if r[1] <= MAX_DEVIATION]
    s, worst, spread, macs = min(faithful, key=lambda r: (r[3], r[0])) if faithful else min(scored, key=lambda r: (r[1], r[0]))
    return ProxyDesign(s, width, worst, spread, macs, auto=True)


def resolve(space: SearchSpace, base: BaseNetwork, candidates: list[Candidate], num_classes: int,
            in_channels: int) -> tuple[SearchSpace, ProxyDesign]:
    """`space` with its proxy side fixed (chosen when "auto") and the design that says why."""
    d = design(base, candidates, space.proxy.width, num_classes, in_channels, space.proxy.resolution)
    return space.with_overrides(resolution=d.side), d
