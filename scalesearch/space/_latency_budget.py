"""A budget in measured latency: which grid points' built networks run within tolerance of budget × the base's latency.

Latency is measured (:mod:`scalesearch.arch`), so it costs time a MACs count
does not: only points an analytic pre-filter leaves in play are measured, those
whose target MACs ratio lies within a factor `band` of the budget (default 2:
for a 2x budget, 1x to 4x the base's MACs). On 2 CPU cores, batch 1, B0's
candidates ran at 0.55-0.95 of their MACs ratio, so a 2x latency budget sits
near 2.1-3.6x MACs; :attr:`LatencyCheck.near_edge` says when a feasible point
lies close to the band's edge, where the pre-filter may have cut neighbours.

The base is measured before and after the candidates: the two must agree (within
:data:`REFERENCE_AGREE`) or it is measured again, and the fastest is the
reference. How far they disagreed is the run's repeatability, recorded with the result.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..arch._spec import BaseNetwork
from ._candidates import Assessment, Candidate, candidate_spec, resolution_for
from ..arch._latency import Latency, Meter, Progress, distinguishable

BAND = 2.0
# The base's repeated measurements must agree this well (max / min - 1), or it is measured again (up to 4 times).
REFERENCE_AGREE, REFERENCE_MAX = 0.05, 4
# A feasible point whose MACs ratio is within this factor of the band's edge may have feasible neighbours beyond it.
EDGE = 1.1


@dataclass(frozen=True)
class LatencyCheck:
    """Measured latencies of the points the pre-filter kept, as ratios to the base at its own resolution."""

    base: Latency
    base_medians: tuple[float, ...]  # the base's measurements this run (seconds); empty when it came from the cache
    ratios: dict[Candidate, float]  # measured latency / the base's, for every point the pre-filter kept
    seconds: dict[Candidate, float]
    points: int  # grid points offered
    band: float
    networks: int  # distinct networks among the kept points
    measured: int  # networks measured this run (the rest came from the cache)
    time_s: float  # wall time of pre-filter and measurement
    near_edge: tuple[Candidate, ...] = field(default=())
    unsettled: int = 0  # distinct networks whose rounds never agreed (load throughout their measurement)

    @property
    def kept(self) -> int:
        return len(self.ratios)

    @property
    def agreement(self) -> float | None:
        """How far the base's two fastest measurements this run disagreed (second / fastest − 1); None if not repeated.

        Load only adds time, so a measurement hit by it is outvoted by later ones; all
        of them are kept in ``base_medians``.
        """
        if len(self.base_medians) < 2:
            return None
        fastest = sorted(self.base_medians)
        return fastest[1] / fastest[0] - 1

    @property
    def cv(self) -> float | None:
        """Relative noise of an accepted measurement: the coefficient of variation of the base's two fastest this run.

        The fastest two, as a measurement hit by load was outvoted; None when the base came from the cache.
        """
        if len(self.base_medians) < 2:
            return None
        fastest = sorted(self.base_medians)[:2]
        return statistics.stdev(fastest) / statistics.fmean(fastest)

    def borderline(self, budget: float, tolerance: float) -> list[Candidate]:
        """Points whose ratio cannot be told apart from an edge of the tolerance band given :attr:`cv`.

        Their feasibility is decided by noise as much as by the network; the run counts them.
        """
        if self.cv is None:
            return []
        edges = (budget * (1 - tolerance), budget * (1 + tolerance))
        return [c for c, r in self.ratios.items() if any(not distinguishable(r, e, self.cv) for e in edges)]

    def summary(self) -> dict:
        """What a study records: the conditions, the base, the repeatability and the cost of measuring."""
        return {"conditions": self.base.conditions.__dict__, "base_seconds": self.base.seconds,
                "base_medians": list(self.base_medians), "agreement": self.agreement, "cv": self.cv, "band": self.band,
                "points": self.points, "kept": self.kept, "networks": self.networks, "measured": self.measured,
                "time_s": self.time_s, "near_edge": len(self.near_edge),
                "unsettled": self.unsettled}


    def annotate(self, a: Assessment) -> Assessment:
        """`a` with its measured latency (ratio and seconds), or None for both where it was not measured."""
        return replace(a, latency_target=self.ratios.get(a.candidate), latency_s=self.seconds.get(a.candidate))

    def record(self) -> dict:
        """Everything, as JSON-ready data: a study keeps it so workers and resumed runs judge the same points."""
        return self.summary() | {
            "base": self.base.to_dict(),
            "measured_points": [[c.alpha, c.beta, c.gamma, r, self.seconds[c]] for c, r in self.ratios.items()],
            "near_edge_points": [[c.alpha, c.beta, c.gamma] for c in self.near_edge]}

    @classmethod
    def from_record(cls, d: dict) -> LatencyCheck:
        pts = [(Candidate(a, b, g), r, s) for a, b, g, r, s in d["measured_points"]]
        return cls(Latency.from_dict(d["base"]), tuple(d["base_medians"]), {c: r for c, r, _ in pts},
                   {c: s for c, _, s in pts}, d["points"], d["band"], d["networks"], d["measured"], d["time_s"],
                   tuple(Candidate(*x) for x in d["near_edge_points"]), d["unsettled"])


def meter_for(device: str, batch: int | None, results_dir: str | Path) -> Meter:
    """A meter on `device` (``auto`` as the proxy picks it) with the proxy's thread count and the results folder's cache."""
    from ..arch._latency import resolve_device
    from ..device import configure, pick_device

    dev = pick_device(device) if device == "auto" else resolve_device(device)
    configure(dev)  # the thread count the proxy trains with is the one latency is measured with
    return Meter(dev, 1 if batch is None else batch, cache=Path(results_dir) / "latency-cache.json")


def _base_latency(meter: Meter, spec, side: int, between) -> tuple[Latency, tuple[float, ...]]:
    """The reference and its medians this run: from the cache (no medians), or timed before and after `between()`
    until two measurements agree (then cached)."""
    cached = meter.cached(spec, side)
    if cached:
        between()
        return cached, ()
    first = meter.measure(spec, side)
    between()
    reference, medians = _reference(meter, spec, side, [first])
    meter.remember(spec, side, reference)
    return reference, medians


def prefilter(assessments: list[Assessment], budget: float, band: float = BAND) -> list[Assessment]:
    """The points whose target MACs ratio is within a factor `band` of `budget`: the only ones worth measuring."""
    return [a for a in assessments if budget / band <= a.measured_target <= budget * band]


def measure_grid(base: BaseNetwork, assessments: list[Assessment], budget: float, meter: Meter,
                 band: float = BAND, on_progress: Progress | None = None) -> LatencyCheck:
    """Latency ratios of the points the pre-filter keeps: each built at full width at its target side."""
    start = time.perf_counter()
    kept = prefilter(assessments, budget, band)
    base_spec, side = candidate_spec(base, Candidate(1.0, 1.0, 1.0)), base.resolution
    items = [(candidate_spec(base, a.candidate), resolution_for(base.resolution, a.candidate.gamma)) for a in kept]
    box: dict[str, list[Latency]] = {}

    def candidates() -> None:
        box["lats"] = _second_pass(meter, items, meter.many(items, on_progress))

    before = meter.measured
    reference, medians = _base_latency(meter, base_spec, side, candidates)
    lats, measured = box["lats"], meter.measured - before - len(medians)
    ratios = {a.candidate: lat.seconds / reference.seconds for a, lat in zip(kept, lats)}
    lo, hi = budget / band * EDGE, budget * band / EDGE
    edge = tuple(a.candidate for a in kept if not lo <= a.measured_target <= hi)
    return LatencyCheck(reference, medians, ratios, {a.candidate: lat.seconds for a, lat in zip(kept, lats)},
                        len(assessments), band, len({meter.key(*i) for i in items}), measured, time.perf_counter() - start, edge,
                        len({meter.key(*i) for i, lat in zip(items, lats) if not lat.settled}))


def _second_pass(meter: Meter, items: list, lats: list[Latency]) -> list[Latency]:
    """Networks whose rounds never agreed (load throughout) measured once more, after the others; the faster kept."""
    again: dict[str, Latency] = {}
    for (spec, side), lat in zip(items, lats):
        key = meter.key(spec, side)
        if not lat.settled and key not in again:
            fresh = meter.measure(spec, side)
            again[key] = min(lat, fresh, key=lambda x: x.seconds)
            meter.remember(spec, side, again[key])
    return [again.get(meter.key(spec, side), lat) for (spec, side), lat in zip(items, lats)]


def _reference(meter: Meter, spec, side: int, first: list[Latency]) -> tuple[Latency, tuple[float, ...]]:
    """The base measured again until two measurements agree within REFERENCE_AGREE; the fastest of them."""
    runs = list(first)
    while len(runs) < REFERENCE_MAX:
        runs.append(meter.measure(spec, side))
        fastest = sorted(r.seconds for r in runs)[:2]
        if fastest[1] <= fastest[0] * (1 + REFERENCE_AGREE):
            break
    return min(runs, key=lambda r: r.seconds), tuple(r.seconds for r in runs)


def near_edge_note(check: LatencyCheck, feasible: list[Candidate]) -> str | None:
    """A one-line warning when a feasible point sits near the pre-filter's edge, else None."""
    close = [c for c in feasible if c in set(check.near_edge)]
    if not close:
        return None
    return (f"{len(close)} latency-feasible point(s) lie near the pre-filter's edge (MACs ratio within {EDGE:g}x of "
            f"budget × or ÷ {check.band:g}): points beyond it were not measured")
