"""Timing a family's members, bounded and visible: estimated from MACs first, progress with an ETA as it goes.

A member's latency grows with its multiply-adds: φ = 7 of a 2x family costs some
2^7 = 128 times the base, so on a CPU one forward pass can take seconds and its
timing (warm-up, then rounds until two agree, see :mod:`scalesearch.arch`)
minutes. Before timing, each member's pass is estimated from the base's measured
latency × its MACs ratio to the base; members whose pass would exceed `limit_s`
are not timed, and the report says so (``scalesearch extrapolate STUDY --latency``
times them on request). While timing, a line per member gives the time so far
and what is left, the estimate corrected by the pace measured so far.

>>> timing_seconds(0.01), timing_seconds(2.0)
(0.64, 16.0)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from ..arch._spec import BaseNetwork
from ..arch._cost import network_cost
from ..results._family import member
from ..arch._latency import MIN_ROUNDS, MIN_RUN_TIME, WARMUP, Meter
from ..space._latency_budget import _base_latency, _second_pass, meter_for

# A run under the latency constraint times only members whose one forward pass is estimated below this:
# on 2 CPU cores (batch 1) B0 takes 16 ms, so a 2x family's members up to φ = 6 are timed (about a minute).
FAMILY_PASS_LIMIT_S = 1.0

Report = Callable[[str], None]


@dataclass
class FamilyTiming:
    """Each timed member (phi, latency_s, latency_ratio) and the members not timed (phi, estimated_s)."""

    rows: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)


def timing_seconds(pass_s: float) -> float:
    """About how long timing one network takes: warm-up passes, then MIN_ROUNDS rounds of at least MIN_RUN_TIME."""
    return round(pass_s * (WARMUP + 1) + MIN_ROUNDS * max(MIN_RUN_TIME, 2 * pass_s), 6)


def estimates(base: BaseNetwork, alpha: float, beta: float, gamma: float, phis: list[float], base_s: float) -> list[float]:
    """Seconds per forward pass of each member: the base's measured seconds × the member's MACs over φ = 0's."""
    macs0 = network_cost(member(base, alpha, beta, gamma, 0)).macs
    return [base_s * network_cost(member(base, alpha, beta, gamma, phi)).macs / macs0 for phi in phis]


def time_family(base: BaseNetwork, alpha: float, beta: float, gamma: float, phis: list[float], meter: Meter,
                limit_s: float | None = None, report: Report | None = None) -> FamilyTiming:
    """Each member timed at its own side (seconds per batch, ratio to φ = 0), members over `limit_s` left out.

    `report` hears the plan (what is timed, the estimate, what is left out) and a line per member.
    """
    say = report or (lambda text: None)
    ref = member(base, alpha, beta, gamma, 0)
    if not meter.cached(ref, ref.resolution):
        say("family latency: timing the base (φ = 0) first, until two measurements agree: the estimate starts from it")
    base_s = _base_latency(meter, ref, ref.resolution, lambda: None)[0].seconds
    est = dict(zip(phis, estimates(base, alpha, beta, gamma, phis, base_s)))
    todo = [phi for phi in phis if limit_s is None or est[phi] <= limit_s]
    out = FamilyTiming(skipped=[{"phi": phi, "estimated_s": est[phi]} for phi in phis if phi not in todo])
    cost = {phi: 0.0 if meter.cached(*_item(base, alpha, beta, gamma, phi)) else timing_seconds(est[phi]) for phi in todo}
    say(_plan_line(todo, base_s, cost, out.skipped, limit_s))
    items, lats, start, done_est = [], [], time.perf_counter(), 0.0
    for i, phi in enumerate(todo, 1):
        items.append(_item(base, alpha, beta, gamma, phi))
        lats.append(meter.latency(*items[-1]))
        done_est += cost[phi]
        elapsed = time.perf_counter() - start
        left = sum(cost[p] for p in todo[i:]) * (elapsed / done_est if done_est > 0 else 1.0)  # at the pace so far
        say(f"family latency: φ = {phi:g} {lats[-1].seconds * 1e3:.1f} ms ({i} of {len(todo)}; {elapsed:.0f} s so far, "
            f"about {left:.0f} s left)")
    lats = _second_pass(meter, items, lats)
    out.rows = [{"phi": phi, "latency_s": lat.seconds, "latency_ratio": lat.seconds / base_s} for phi, lat in zip(todo, lats)]
    return out


def with_family_latency(fam: pd.DataFrame, base: BaseNetwork, alpha: float, beta: float, gamma: float, device: str = "auto",
                        batch: int | None = None, results_dir: str | Path = "results",
                        report: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, str]:
    """A family table (:func:`scalesearch.results.family_table`) with each member's measured latency added,
    and a line saying where and how it was measured; `report` hears the estimate and each member as it is timed."""
    from ..search._family_timing import time_family

    meter = meter_for(device, batch, results_dir)
    rows = time_family(base, alpha, beta, gamma, fam["phi"].tolist(), meter, report=report).rows
    note = (f"latency: {meter.conditions.describe()}; {meter.measured} timed in {meter.seconds:.1f} s, "
            f"{meter.reused} from the cache")
    return fam.assign(latency_ms=[r["latency_s"] * 1e3 for r in rows], latency_ratio=[r["latency_ratio"] for r in rows]), note


def _item(base: BaseNetwork, alpha: float, beta: float, gamma: float, phi: float) -> tuple:
    spec = member(base, alpha, beta, gamma, phi)
    return spec, spec.resolution


def _plan_line(todo: list[float], base_s: float, cost: dict, skipped: list[dict], limit_s: float | None) -> str:
    phis = ", ".join(f"{p:g}" for p in todo) or "none"
    line = (f"family latency: timing φ = {phis}: about {sum(cost.values()):.0f} s (estimated from each member's MACs "
            f"and the base's {base_s * 1e3:.1f} ms; cached members take none)")
    if skipped:
        line += (f"; not timed, one pass estimated over the {limit_s:g} s limit: "
                 + ", ".join(f"φ = {s['phi']:g} ({s['estimated_s']:.1f} s)" for s in skipped)
                 + " (scalesearch extrapolate STUDY --latency times them)")
    return line
