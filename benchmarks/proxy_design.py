"""Which proxy carries the most signal per CPU-second, and does its ranking hold with more training?

A fixed spread of the default grid's networks (farthest-first, as a cut-short first round picks
them) is trained under several proxy designs on the same paired seeds. For each design, the score
surface of :mod:`scalesearch.stats` is fitted to its runs, and the table gives:

- noise σ: one run's departure from the fitted surface plus its seed's effect (val loss, nats);
- spread: the standard deviation of the networks' fitted scores, the signal a ranking reads;
- signal/noise per run = spread² / σ², and per CPU-second of one run (process time, so a
  busy host slows it down without changing it much).

The second design trains 5× the default's images × epochs on FIDELITY_SEEDS seeds: the default's
fitted ranking is compared with it by Kendall's τ-b (the fidelity of the short proxy), and the
surface slopes show what the short horizon does to width against depth.

    .venv/bin/python -m benchmarks --only proxy_design [--quick]
    .venv/bin/python -m benchmarks.proxy_design --jobs 2          # two runs at a time, one thread each
    .venv/bin/python -m benchmarks.proxy_design --jobs 2 --only default 96   # some designs
    .venv/bin/python -m benchmarks.proxy_design --jobs 2 --seeds 6 --only "default (77" "lr 0.008"   # on six seeds

The main table fits every design on the same first PAIRED seeds; designs trained on all of SEEDS get a
second table, paired on those, with each one's Kendall τ-b against the default's ranking. The learning-rate
and batch-size rows show what the proxy's horizon does: a proxy that learns less in its steps tilts harder; the
width-scaled rows (each layer's rate scaled to its width, μP) ask how much of the tilt towards width is one fixed
rate's larger steps for wider layers.

Results are appended to ``bench-results/proxy-design/runs.csv`` run by run; the same command
resumes, training only what is missing.
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from scalesearch.arch import BaseNetwork, NetworkSpec, load_base
from scalesearch.data import DeviceData, load_data, subset
from scalesearch.proxy import _train as proxy
from scalesearch.results._record import shape_attrs
from scalesearch.search._queue import spread_order
from scalesearch.space import ProxySettings, at_base_width, candidate_spec, feasible_grid, load_space, resolution_for
from scalesearch.stats import _surface as surface

from .common import append_runs, console, machine_line, section, table

SEEDS = (200, 201, 202, 203, 204, 205)  # apart from the seeds of the default, the calibration and the surface benchmark
PAIRED = 3  # seeds every design trains; `--seeds 6` trains the chosen designs on all of SEEDS
FIDELITY_SEEDS = 2
NETWORKS = 8
# name: (changes to the default [proxy] settings, a base other than b0 or None, seeds)
DESIGNS: dict[str, tuple[dict, str | None, int]] = {  # trained in this order: the fidelity check first
    "default (77 px, 1200 images, 2 epochs)": ({}, None, PAIRED),
    "6000 images (5x training)": ({"train": 6000}, None, FIDELITY_SEEDS),
    "native 28 px, stage 2 at stride 1": ({"resolution": 28}, "stride16", PAIRED),
    "4 epochs": ({"epochs": 4}, None, PAIRED),
    "width 0.5": ({"width": 0.5}, None, PAIRED),
    "96 px (a larger side)": ({"resolution": 96}, None, PAIRED),
    "1 epoch of 2400 images (the default's cost)": ({"train": 2400, "epochs": 1}, None, PAIRED),
    "weights' EMA 0.8 evaluated": ({"ema": 0.8}, None, PAIRED),
    "weights' EMA 0.9 evaluated": ({"ema": 0.9}, None, PAIRED),
    "batch 32 (twice the steps)": ({"batch_size": 32}, None, PAIRED),
    "batch 16 (four times the steps)": ({"batch_size": 16}, None, PAIRED),
    "lr 0.008 (twice the default's)": ({"lr": 0.008}, None, PAIRED),
    "lr 0.002 (half the default's)": ({"lr": 0.002}, None, PAIRED),
    "width-scaled lr (muP), lr 0.004": ({"lr_scaling": "width"}, None, PAIRED),
    "width-scaled lr (muP), lr 0.008": ({"lr_scaling": "width", "lr": 0.008}, None, PAIRED),
}
DEFAULT, LONG = list(DESIGNS)[:2]


def stride16(base: BaseNetwork) -> BaseNetwork:
    """`base` with its first stride-2 stage at stride 1: total stride 16, so 28 px leaves 2 × 2 maps."""
    stages = list(base.stages)
    first = next(i for i, s in enumerate(stages) if s.stride == 2)
    stages[first] = replace(stages[first], stride=1)
    return replace(base, name=f"{base.name}-s16", stages=tuple(stages))


def networks(count: int, quick: bool) -> list:
    """`count` distinct networks of the default grid, farthest-first (twins count once)."""
    space = load_space("default")
    base = load_base("tiny-mbconv" if quick else "b0")
    seen, out = set(), []
    for a in feasible_grid(space, base).feasible:
        spec = candidate_spec(base, a.candidate, a.proxy_resolution)
        if (key := (spec.stages, a.target_resolution)) not in seen:
            seen.add(key)
            out.append(a.candidate)
    return spread_order(out)[:count]


def setup(design: str, c, seed: int, quick: bool) -> tuple[NetworkSpec, DeviceData, ProxySettings, int, NetworkSpec]:
    """What `design` trains for network `c` on `seed`, on one thread: the network, its data, the proxy
    settings, the side and the network at β = 1 (for a width-scaled rate)."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    changes, base_name, _ = DESIGNS[design]
    space = load_space("default")
    settings = replace(space.proxy, **{k: v for k, v in changes.items() if k != "resolution"})
    if quick:
        settings = replace(settings, train=min(settings.train, 256), val=128, epochs=1)
    base = load_base("tiny-mbconv" if quick else "b0")
    base = stride16(base) if base_name == "stride16" else base
    side = resolution_for(changes.get("resolution", 77), c.gamma)
    spec = candidate_spec(base, c, side, settings.width)
    reference = at_base_width(base, c, side, settings.width)
    ds = load_data("synthetic:512" if quick else "embedded", val=settings.val, seed=space.proxy.seed)
    data = DeviceData(subset(ds, min(settings.train, len(ds.train_y)), None, seed), torch.device("cpu"))
    return spec, data, settings, side, reference


def one_run(job: tuple) -> dict:
    """Train one (design, network, seed) on one thread; the row to append."""
    design, c, seed, quick = job
    spec, data, settings, side, reference = setup(design, c, seed, quick)
    start = time.process_time()
    r = proxy.train(spec, data, settings, side, seed, reference=reference)
    return {"design": design, "alpha": c.alpha, "beta": c.beta, "gamma": c.gamma, "seed": seed, "side": side,
            "score": -r.val_loss[-1], "acc": r.final_acc, "cpu_s": time.process_time() - start, **shape_attrs(spec)}


def collect(path: Path, quick: bool, jobs: int, only: list[str] | None = None, seeds: int | None = None) -> pd.DataFrame:
    """Train what `path` lacks of every design (or of those whose names hold one of `only`'s words), on each
    design's seeds or, if given, on the first `seeds` of SEEDS."""
    done = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["design", "alpha", "beta", "gamma", "seed"])
    have = {(r.design, r.alpha, r.beta, r.gamma, r.seed) for r in done.itertuples()}
    chosen = {d: v for d, v in DESIGNS.items() if not only or any(word in d for word in only)}
    todo = [(d, c, s, quick) for d, (_, _, n) in chosen.items() for s in SEEDS[:seeds or n] for c in networks(NETWORKS, quick)
            if (d, c.alpha, c.beta, c.gamma, s) not in have]
    line = lambda row: (f"{row['design']}: ({row['alpha']:g}, {row['beta']:g}, {row['gamma']:g}) seed {row['seed']}: "
                        f"val loss {-row['score']:.3f}, {row['cpu_s']:.0f} CPU-s")
    return append_runs(path, todo, one_run, jobs, line, len(have))


def observations(runs: pd.DataFrame) -> pd.DataFrame:
    key = runs[["alpha", "beta", "gamma"]].astype(str).agg(",".join, axis=1)
    return pd.DataFrame({"key": key, "seed": runs["seed"], "score": runs["score"],
                         "log_depth": np.log(runs["depth_blocks"].astype(float)),
                         "log_width": np.log(runs["width_channels"].astype(float)), "log_side": np.log(runs["side"])})


def f_tests(obs: pd.DataFrame) -> tuple[float, float]:
    """p-values of two nested F-tests on seed-adjusted scores: do the networks differ at all (networks + seeds
    against seeds alone), and does the linear surface miss something (networks + seeds against linear + seeds)."""
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    full = smf.ols("score ~ C(key) + C(seed)", obs).fit()
    seeds = smf.ols("score ~ C(seed)", obs).fit()
    linear = smf.ols("score ~ log_depth + log_width + log_side + C(seed)", obs).fit()
    return float(anova_lm(seeds, full)["Pr(>F)"].iloc[1]), float(anova_lm(linear, full)["Pr(>F)"].iloc[1])


def design_row(name: str, runs: pd.DataFrame) -> tuple[list, surface.Surface, float]:
    obs = observations(runs)
    s = surface.fit(obs, form="linear")
    differ, lack = f_tests(obs)
    spread = float(np.std(s.table["fit"], ddof=1))
    snr, cpu = spread**2 / s.sigma**2, float(runs["cpu_s"].mean())
    slopes = s.slopes
    return [name, runs["seed"].nunique(), f"{cpu:.1f}", f"{s.sigma:.4f}", f"{spread:.4f}", f"{snr:.2f}",
            f"{1000 * snr / cpu:.2f}", f"{slopes.get('log_depth', float('nan')):+.3f}",
            f"{slopes.get('log_width', float('nan')):+.3f}", f"{slopes.get('log_side', float('nan')):+.3f}",
            f"{differ:.3f}", f"{lack:.3f}", f"{100 * runs['acc'].mean():.1f}"], s, differ


HEADERS = ["design", "seeds", "CPU-s per run", "noise σ (nats)", "spread (nats)", "signal/noise per run",
           "per 1000 CPU-s", "slope log depth", "slope log width", "slope log side", "networks differ (F-test p)",
           "linear surface's lack of fit (p)", "mean val top-1 (%)"]


def rows_on(runs: pd.DataFrame, seeds: tuple[int, ...]) -> tuple[list, dict, dict]:
    """A row per design with at least two of `seeds`, fitted on those seeds only (so rows stay paired)."""
    rows, fits, differ = [], {}, {}
    for name in DESIGNS:
        part = runs[(runs["design"] == name) & runs["seed"].isin(seeds)]
        if part["seed"].nunique() >= 2:
            row, fits[name], differ[name] = design_row(name, part)
            rows.append(row)
    return rows, fits, differ


def tau_with(base: surface.Surface, other: surface.Surface) -> float:
    """Kendall τ-b between two designs' fitted scores over `base`'s networks."""
    fit = base.table["fit"]
    return float(stats.kendalltau(fit, other.table["fit"].reindex(fit.index)).statistic)


def report(runs: pd.DataFrame) -> str:
    rows, fits, differ = rows_on(runs, SEEDS[:PAIRED])
    body = table(HEADERS, rows)
    if DEFAULT in fits and LONG in fits:
        top = lambda f: f.table["fit"].idxmax()
        body += (f"\n\nFidelity: Kendall τ-b between the default's fitted scores and those of {LONG}, over "
                 f"{len(fits[DEFAULT].table)} networks: {tau_with(fits[DEFAULT], fits[LONG]):+.2f} (goal ≥ 0.6). Best network: default ({top(fits[DEFAULT])}), "
                 f"5x training ({top(fits[LONG])}). Slopes are the fitted score's change per unit log of the built "
                 "network's blocks, mean channels and side, within one budget (so they trade against each other).")
        if differ[LONG] > 0.05:
            body += (f" With {LONG} the networks do not differ detectably (F-test p = {differ[LONG]:.2f}): the longer "
                     "training's own ranking is mostly noise, so this τ-b says little either way.")
    full = [n for n in DESIGNS if runs.loc[runs["design"] == n, "seed"].nunique() == len(SEEDS)]
    if len(full) >= 2:
        rows, fits, _ = rows_on(runs[runs["design"].isin(full)], SEEDS)
        body += f"\n\nThe designs trained on all {len(SEEDS)} seeds ({', '.join(map(str, SEEDS))}), paired:\n\n"
        body += table(HEADERS, rows)
        if DEFAULT in fits:
            body += "\n\nKendall τ-b of each design's fitted scores with the default's: " + ", ".join(
                f"{n} {tau_with(fits[DEFAULT], f):+.2f}" for n, f in fits.items() if n != DEFAULT) + "."
    return body


def run(quick: bool = False, device: str = "cpu", jobs: int = 1, only: list[str] | None = None,
        seeds: int | None = None) -> str:
    if device != "cpu":
        console.log("proxy_design measures CPU-seconds: it trains on the CPU")
    path = Path("bench-results") / ("proxy-design-quick" if quick else "proxy-design") / "runs.csv"
    console.log(machine_line("cpu"))
    runs = collect(path, quick, jobs, only, seeds)
    return section("Proxy designs: signal per CPU-second and fidelity" + (" (quick)" if quick else ""), "cpu",
                   report(runs))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, each on one thread")
    parser.add_argument("--only", nargs="+", help="designs whose names hold one of these words, e.g. default 96")
    parser.add_argument("--seeds", type=int, choices=range(2, len(SEEDS) + 1), metavar=f"2..{len(SEEDS)}",
                        help=f"train the chosen designs on this many of the seeds (default: {PAIRED}; the fidelity design 2)")
    args = parser.parse_args()
    print(run(args.quick, jobs=args.jobs, only=args.only, seeds=args.seeds))

__all__ = ["run", "report", "collect", "DESIGNS"]
