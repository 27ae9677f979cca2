"""Calibration of the main job's answer: does one run's 95% set hold another seed's winner?

Each run is the default command (``scalesearch run --base b0 --budget 2x``, its 10-minute time
budget included) on a copy of the shipped default space that differs only in ``seed``, which
changes every seed's training subset, order and init. For every ordered pair of runs (A, B) it
checks whether A's winner lies in B's 95% set; over all pairs that rate should be at least 95%
if the sets are honest (the goal is 90%). It also reports the sets' sizes (distinct networks),
Kendall's τ-b between the two runs' fitted scores over their common candidates, and each run's
wall time, winner and verdict.

    .venv/bin/python -m benchmarks --only calibration [--quick]
    .venv/bin/python -m benchmarks.calibration 11 12 13 14 15   # other seeds
    .venv/bin/python -m benchmarks.calibration --workers 1 10 20   # in one process, as before the CPU default used cores
    .venv/bin/python -m benchmarks.calibration --set lr_scaling=width --set lr=0.008 10 20 30 40   # run options changed

Runs stay in ``bench-results/calibration/seed<N>/`` (with ``--set``, in a folder named for the changes); a finished run (its ``wall.json`` written) is read
again, not resumed, so the tables re-render from the stored studies; delete the folder to run it afresh.
"""
from __future__ import annotations

import json
import sys
import time
from itertools import combinations
from pathlib import Path

import pandas as pd

import optuna

from scalesearch.stats import _race as race
from scalesearch.results import _ranking as results, compare_rankings
from scalesearch import search
from scalesearch.space import load_space

from .common import changes_folder, console, machine_line, run_changes, section, table

SEEDS = (1, 2, 3, 4)
optuna.logging.set_verbosity(optuna.logging.WARNING)


def one_run(seed: int, folder: Path, quick: bool, device: str, budget: str | None = None, workers: int | None = None,
            changes: dict | None = None) -> dict:
    """The default command on seed `seed`'s copy of the space, as `scalesearch run` trains it (one worker process
    per core on the CPU unless `workers` says otherwise; `changes`: run options, as the command line's), or the
    stored run when it finished before."""
    space = Path(load_space("default").path).read_text().replace("\nseed = 0", f"\nseed = {seed}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"default-seed{seed}.toml"
    path.write_text(space)
    extra = {"train": 256, "val": 128, "epochs": 1, "time": "90s"} if quick else {}
    extra |= ({"time": budget} if budget else {}) | (changes or {})
    where = folder / (f"seed{seed}" + (f"-{budget}" if budget else ""))
    done = where / "wall.json"
    if done.exists():  # a finished run is read again, never resumed: a resume would train on for a fresh budget
        study, _ = search.load_recorded(results_dir=str(where))
        wall = json.loads(done.read_text())
    else:
        start = time.monotonic()
        result = search.run("tiny-mbconv" if quick else "b0", space=str(path), device=device, workers=workers,
                            data="synthetic:512" if quick else "embedded", results_dir=str(where), **extra)
        study = result.study
        wall = {"seconds": time.monotonic() - start, "workers": workers or search.auto_workers(device)}
        done.write_text(json.dumps(wall))
    seconds = wall["seconds"]
    trials = results.trials_frame(study)
    ranked = results.ranking(trials)
    v = results.study_verdict(study, trials)
    console.log(f"seed {seed}: {len(ranked)} ranked, set of {v.networks} networks, {seconds:.0f} s")
    return {"seed": seed, "time": budget or "default", "seconds": seconds, "ranked": ranked, "verdict": v, "trained": int((trials["seconds"] > 0).sum()),
            "fit": race.fit(trials), "workers": wall.get("workers", 1)}


def pair_rows(runs: list[dict]) -> tuple[list, float]:
    """Per unordered pair: τ-b of score_fit, and whether each winner is in the other's set; the coverage rate."""
    rows, hits = [], []
    for a, b in combinations(runs, 2):
        r = compare_rankings(a["ranked"], (a["verdict"].winner, a["verdict"].tied),
                                     b["ranked"], (b["verdict"].winner, b["verdict"].tied))
        hits += [r.a_in_b, r.b_in_a]
        rows.append([f"{a['seed']} vs {b['seed']}", r.common, f"{r.tau:+.2f}", "yes" if r.winners[0] == r.winners[1] else "no",
                     "yes" if r.a_in_b else "no", "yes" if r.b_in_a else "no"])
    return rows, sum(hits) / len(hits) if hits else float("nan")


RUN_HEADERS = ["workers", "trials trained", "95% set (networks)", "winner (α, β, γ)", "P(best) %", "verdict", "on the boundary",
               "surface", "linear lack of fit (p)", "networks' spread τ (nats)", "wall time (s)"]
PAIR_HEADERS = ["runs", "common candidates", "Kendall τ-b (score_fit)", "same winner", "A's winner in B's set",
                "B's winner in A's set"]


def run_cells(r: dict) -> list:
    """One run's cells under RUN_HEADERS."""
    v, s = r["verdict"], r["fit"]
    return [r["workers"], r["trained"], v.networks, "(" + ", ".join(f"{x:g}" for x in v.winner) + ")", f"{100 * v.p_best:.0f}",
            v.words, "yes" if v.boundary else "no", s.form, f"{s.lack_of_fit:.3f}", f"{s.tau:.3f}", f"{r['seconds']:.0f}"]


def report(runs: list[dict], device: str, quick: bool) -> str:
    per_run = [[r["seed"], len(r["ranked"]), *run_cells(r)] for r in runs]
    pairs, coverage = pair_rows(runs)
    taus = pd.Series([float(p[2]) for p in pairs])
    sizes = pd.Series([r["verdict"].networks for r in runs])
    distinct = pd.Series([r["ranked"]["score_fit"].nunique() for r in runs])
    body = (table(["seed", "candidates", *RUN_HEADERS], per_run) + "\n\n" + table(PAIR_HEADERS, pairs) + "\n\n" +
            f"Coverage: a run's winner lay in another run's 95% set in {100 * coverage:.0f}% of "
            f"{2 * len(pairs)} ordered pairs (goal ≥ 90%). Set size: mean {sizes.mean():.1f} networks "
            f"(of {distinct.mean():.0f} distinct), range {sizes.min()}–{sizes.max()}. τ-b between fitted scores: "
            f"mean {taus.mean():+.2f}, range {taus.min():+.2f} … {taus.max():+.2f}.")
    return section("Calibration: the default search over paired seeds" + (" (quick: tiny base, synthetic data)" if quick else ""),
                   device, body)


def run(quick: bool = False, device: str = "cpu", seeds: tuple[int, ...] = SEEDS, workers: int | None = None,
        changes: dict | None = None) -> str:
    folder = Path("bench-results") / ("calibration-quick" if quick else "calibration") / (
        f"workers{workers}" if workers else "") / changes_folder(changes)
    console.log(machine_line(device))
    runs = [one_run(seed, folder, quick, device, workers=workers, changes=changes) for seed in seeds]
    return report(runs, device, quick)


def longer(seed: int, budget: str, device: str = "cpu") -> str:
    """The same seed's default run against one with a longer time budget: the set should shrink, the answer's
    kind (winner, boundary) stay."""
    folder = Path("bench-results") / "calibration"
    console.log(machine_line(device))
    runs = [one_run(seed, folder, False, device), one_run(seed, folder, False, device, budget)]
    rows = [[r["time"], *run_cells(r)] for r in runs]
    return section(f"A longer time budget: seed {seed}, the default against --time {budget}", device,
                   table(["--time", *RUN_HEADERS], rows) + "\n\n" + table(PAIR_HEADERS, pair_rows(runs)[0]))


if __name__ == "__main__":  # python -m benchmarks.calibration [--workers N] [--set KEY=VALUE ...] [SEED ...] | --time 1h SEED
    args = sys.argv[1:]
    if args[:1] == ["--time"]:
        print(longer(int(args[2]), args[1]))
    else:
        count = int(args[1]) if args[:1] == ["--workers"] else None
        args = args[2 if count else 0:]
        changes, args = run_changes(args)
        print(run(seeds=tuple(int(s) for s in args) or SEEDS, workers=count, changes=changes or None))

__all__ = ["run", "report", "pair_rows", "longer"]
