"""Which score of a proxy run ranks networks best: val loss, val top-1, Brier, or the loss at a fitted temperature?

The same trainings give every score, so the comparison is paired to the last bit: the 8 networks of
:mod:`benchmarks.proxy_design` are trained once per seed with the default proxy, as the race trains
them (only the last epoch evaluated), and their val logits are scored four ways, each higher-is-better:

- loss: minus the mean cross-entropy (the default, ``score = "loss"``);
- top-1: the fraction right (``score = "acc"``);
- Brier: minus the mean squared error of the probabilities;
- calibrated loss: minus the cross-entropy after one temperature per run, fitted on the other half of
  the val images (cross-fitted, so no image scores a temperature fitted on itself). It asks whether the
  seeds' noise is mostly in how confident a network is rather than in what it has learned.

For each score the linear surface is fitted as in the proxy-design table: noise σ, spread, signal/noise
per run (spread² / σ², free of the score's unit), the two F-tests, the slopes, and Kendall τ-b of its
fitted scores with the loss's.

    .venv/bin/python -m benchmarks --only scores [--quick]
    .venv/bin/python -m benchmarks.scores --jobs 2      # two runs at a time, one thread each

Runs are appended to ``bench-results/scores/runs.csv``; the same command resumes.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from scalesearch.proxy import _train as proxy
from scalesearch.results._record import shape_attrs
from scalesearch.stats import _surface as surface

from .common import append_runs, console, machine_line, section, table
from .proxy_design import DEFAULT, NETWORKS, SEEDS, f_tests, networks, observations, setup

SCORES = {"loss": "val loss (default)", "acc": "val top-1", "brier": "Brier", "calibrated": "loss at a fitted temperature"}


def cross_entropy(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    z = logits / temperature
    return float(np.mean(special.logsumexp(z, axis=1) - z[np.arange(len(y)), y]))


def fitted_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the cross-entropy of `logits` (searched over log T in [-4, 4])."""
    r = optimize.minimize_scalar(lambda t: cross_entropy(logits, y, np.exp(t)), bounds=(-4, 4), method="bounded")
    return float(np.exp(r.x))


def scores(logits: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The four scores of one run's val logits, each higher-is-better."""
    halves = [np.arange(len(y)) % 2 == k for k in (0, 1)]
    calibrated = sum(cross_entropy(logits[h], y[h], fitted_temperature(logits[~h], y[~h])) * h.sum() for h in halves)
    p = special.softmax(logits, axis=1)
    p[np.arange(len(y)), y] -= 1
    return {"loss": -cross_entropy(logits, y), "acc": float(np.mean(logits.argmax(1) == y)),
            "brier": -float(np.mean(np.sum(p**2, axis=1))), "calibrated": -calibrated / len(y)}


def one_run(job: tuple) -> dict:
    c, seed, quick = job
    spec, data, settings, side, _ = setup(DEFAULT, c, seed, quick)  # the default proxy, as proxy_design trains it
    start = time.process_time()
    r = proxy.train(spec, data, settings, side, seed, every_epoch=False, keep_logits=True)
    row = {"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma, "seed": seed, "side": side,
           "cpu_s": time.process_time() - start, **shape_attrs(spec)}
    return row | scores(r.val_logits.double().numpy(), data.val_y.cpu().numpy())


def collect(path: Path, quick: bool, jobs: int, seeds: int) -> pd.DataFrame:
    done = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["alpha", "beta", "gamma", "seed"])
    have = {(r.alpha, r.beta, r.gamma, r.seed) for r in done.itertuples()}
    todo = [(c, s, quick) for s in SEEDS[:seeds] for c in networks(NETWORKS, quick) if (c.alpha, c.beta, c.gamma, s) not in have]
    line = lambda row: (f"({row['alpha']:g}, {row['beta']:g}, {row['gamma']:g}) seed {row['seed']}: val loss "
                        f"{-row['loss']:.3f}, top-1 {row['acc']:.1%}, {row['cpu_s']:.0f} CPU-s")
    return append_runs(path, todo, one_run, jobs, line, len(have))


HEADERS = ["score", "noise σ (its unit)", "spread (its unit)", "signal/noise per run", "networks differ (F-test p)",
           "linear surface's lack of fit (p)", "slopes: depth / width / side (its unit)", "best of the 8", "τ-b with the loss's"]


def report(runs: pd.DataFrame) -> str:
    rows, fits = [], {}
    for name, label in SCORES.items():
        obs = observations(runs.assign(score=runs[name]))
        fits[name] = s = surface.fit(obs, form="linear")
        differ, lack = f_tests(obs)
        spread = float(np.std(s.table["fit"], ddof=1))
        slopes = " / ".join(f"{s.slopes.get(k, float('nan')):+.3f}" for k in ("log_depth", "log_width", "log_side"))
        tau = stats.kendalltau(fits["loss"].table["fit"], s.table["fit"].reindex(fits["loss"].table["fit"].index)).statistic
        rows.append([label, f"{s.sigma:.4f}", f"{spread:.4f}", f"{spread**2 / s.sigma**2:.2f}", f"{differ:.3f}",
                     f"{lack:.3f}", slopes, f"({s.table['fit'].idxmax()})", "" if name == "loss" else f"{tau:+.2f}"])
    return (f"{runs['seed'].nunique()} paired seeds ({', '.join(map(str, sorted(runs['seed'].unique())))}), "
            f"{len(runs)} trainings, {runs['cpu_s'].mean():.1f} CPU-s each; every score from the same trainings.\n\n"
            + table(HEADERS, rows))


def run(quick: bool = False, device: str = "cpu", jobs: int = 1, seeds: int = len(SEEDS)) -> str:
    if device != "cpu":
        console.log("scores trains on the CPU, as proxy_design does")
    path = Path("bench-results") / ("scores-quick" if quick else "scores") / "runs.csv"
    console.log(machine_line("cpu"))
    runs = collect(path, quick, jobs, 2 if quick else seeds)
    return section("Scores of a proxy run: which ranks networks best" + (" (quick)" if quick else ""), "cpu", report(runs))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, each on one thread")
    parser.add_argument("--seeds", type=int, default=len(SEEDS), choices=range(2, len(SEEDS) + 1), metavar=f"2..{len(SEEDS)}")
    args = parser.parse_args()
    print(run(args.quick, jobs=args.jobs, seeds=args.seeds))

__all__ = ["run", "report", "scores", "fitted_temperature"]
