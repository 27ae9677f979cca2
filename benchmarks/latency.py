"""The latency budget on the default space (issue 16): what pre-filter and measurement cost, and what each budget keeps.

B0 at 2x on ``scalesearch/spaces/default.toml`` (729 points): every point is
assessed analytically (nominal, MACs and activations ratios at the target side),
the latency pre-filter keeps those within a factor 2 of the budget in MACs, and
each distinct kept network is measured at its target side (batch 1, the proxy's
precision and memory format for the device) against B0 at 224 px, with no cache,
so every network is timed. It reports the time of each step, how many points each
constraint leaves feasible and how the sets overlap, and the base's repeatability.

    .venv/bin/python -m benchmarks --only latency [--quick] [--device cpu|cuda]

`--quick` times for a tenth of the usual run time per round: a smoke test, noisier figures.
"""
from __future__ import annotations

import time

from scalesearch.arch import _latency as latency
from scalesearch.arch import load_base
from scalesearch.space import assess, grid, within
from scalesearch.space._candidates import within_tolerance
from scalesearch.arch import Meter
from scalesearch.space import measure_grid
from scalesearch.space import load_space

from .common import console, section, table

BUDGET, TOLERANCE = 2.0, 0.05


def run(quick: bool = False, device: str = "cpu") -> str:
    space, base = load_space("default"), load_base("b0")
    start = time.perf_counter()
    every = [assess(base, c, 32) for c in grid(space)]
    t_assess = time.perf_counter() - start
    meter = Meter(device, batch=1, min_run_time=latency.MIN_RUN_TIME / (10 if quick else 1))
    last = [time.perf_counter()]

    def progress(done: int, total: int, lat: latency.Latency, reused: bool) -> None:
        if time.perf_counter() - last[0] > 10 or done == total:
            console.log(f"latency: {done}/{total} points, {meter.measured} networks measured")
            last[0] = time.perf_counter()

    check = measure_grid(base, every, BUDGET, meter, on_progress=progress)
    feasible = {
        "nominal (α·β²·γ²)": {a.candidate for a in every if within(a, BUDGET, TOLERANCE, "nominal")},
        "measured (MACs)": {a.candidate for a in every if within(a, BUDGET, TOLERANCE, "measured")},
        "acts (activations)": {a.candidate for a in every if within(a, BUDGET, TOLERANCE, "acts")},
        "latency (measured)": {c for c, r in check.ratios.items() if within_tolerance(r, BUDGET, TOLERANCE)},
    }
    macs = feasible["measured (MACs)"]
    ratio = {a.candidate: a.measured_target for a in every}
    rows = [[name, len(pts), len(pts & macs), _range([ratio[c] for c in pts])] for name, pts in feasible.items()]
    counts = table(["constraint (2x ± 5%)", "feasible points", "of them MACs-feasible", "their MACs ratio"], rows)
    steps = table(["step", "points / networks", "time (s)"], [
        ["analytic assessment of every point", f"{len(every)} points", f"{t_assess:.2f}"],
        [f"pre-filter (MACs ratio within ×÷{check.band:g} of the budget) and measurement of the kept points' "
         f"networks and the base ({len(check.base_medians)}×)", f"{check.kept} points, {check.networks} networks",
         f"{check.time_s:.1f}"],
    ])
    agreement = "n/a" if check.agreement is None else f"{check.agreement:.1%}"
    edge = set(check.near_edge) & feasible["latency (measured)"]
    note = (f"Conditions: {check.base.conditions.describe()}. B0 at 224 px: {check.base.seconds * 1e3:.2f} ms "
            f"(measured {len(check.base_medians)} times, before and after the candidates: "
            f"{', '.join(f'{s * 1e3:.2f}' for s in check.base_medians)} ms; the two fastest {agreement} apart). "
            f"{meter.seconds / max(1, meter.measured):.2f} s per measured network. Latency ratios of the kept points: "
            f"{min(check.ratios.values()):.2f}–{max(check.ratios.values()):.2f}; "
            f"{len(edge)} latency-feasible points lie near the pre-filter's edge; {check.unsettled} networks' two "
            f"fastest rounds never agreed within {latency.AGREE:.0%} (load).")
    return section("Latency budget: pre-filter, measurement and feasible points (B0, 2x, default space)", device,
                   steps + "\n\n" + counts, note)


def _range(values: list[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f}" if values else "—"
