"""Analytic cost model vs fvcore on the built module: time and conv+linear multiply-adds (issue #2).

The analytic count reads the spec; fvcore builds the network and traces a forward
pass. Goal: at least 1000× faster with identical conv+linear counts.
"""
from __future__ import annotations

import fvcore.nn  # noqa: F401  imported up front so fvcore's first timing leaves its import out

from scalesearch.arch import load_base, scale
from scalesearch.arch import fvcore_count, network_cost

from .common import best_of, console, section, table

NETWORKS = ("b0", "b3", "b7")


def run(quick: bool = False, device: str = "cpu") -> str:
    analytic_repeats, fvcore_repeats = (20, 1) if quick else (200, 3)
    rows = []
    for name in NETWORKS:
        spec = scale(load_base(name))  # the preset at its own resolution, 1000 classes, 3 channels
        console.log(f"cost model: {name} at {spec.resolution} px")
        t_analytic, cost = best_of(lambda: network_cost(spec), analytic_repeats)
        t_fvcore, counted = best_of(lambda: fvcore_count(spec), fvcore_repeats)
        fv = counted["conv_linear_macs"]
        rows.append([name.upper(), spec.resolution, f"{t_analytic * 1e3:.3f}", f"{t_fvcore:.2f}",
                     f"{t_fvcore / t_analytic:,.0f}", f"{cost.macs / 1e9:.4f}", f"{fv / 1e9:.4f}",
                     "yes" if cost.macs == fv else f"no ({cost.macs - fv:+,} MACs)"])
    headers = ["network", "resolution (px)", "analytic (ms)", "fvcore (s)", "speed-up (×)",
               "analytic conv+linear (GMACs)", "fvcore conv+linear (GMACs)", "identical"]
    note = (f"Best of {analytic_repeats} analytic and {fvcore_repeats} fvcore runs; fvcore's time includes "
            "building the module (`scalesearch.arch.fvcore_count`). Goal: ≥ 1000× faster with identical counts.")
    return section("Cost model vs fvcore", "cpu", table(headers, rows), note)
