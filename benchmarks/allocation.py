"""Where a run should spend its seeds, simulated with the race's own code on a surface whose truth is known.

Real calibration runs take 10 minutes each, too slow to compare rules for spending a time budget over
enough seeds. So the default grid's 24 candidates (19 distinct networks, their built blocks, channels and
sides) get a known true score: a linear tilt in the features (the default proxy's measured slopes, ×
``scale``) plus each network's own departure (sd ``tau``); every trial adds a seed effect and noise
(sd ``sigma``, the measured one-run noise). Each rule then runs twice on the same truth with independent
noise, as two seeds of the default command would, for a budget counted in trainings (twins share one):

- ``focus``: the rule before the surface round (code at b00b8ae): the set's networks get seeds up to
  ``max_seeds`` 8, and the run stops there;
- ``shipped``: :func:`scalesearch.stats.next_round` as it is;
- ``uniform``: every network in turn, least certain first (no racing at all).

Reported per rule, over replicates (a fresh truth each): Kendall τ-b between the two runs' fitted
scores (the calibration's bar) and against the truth, how often the true best lies in a run's 95% set,
how often one run's winner lies in the other's set, the winner's stated P(best) against how often it is the
true best (equal on average when P(best) is calibrated), the set's size, how often the F-tests find that the
networks differ at all (the verdict says when they do not), and the trainings used.

    .venv/bin/python -m benchmarks --only allocation [--quick]
    .venv/bin/python -m benchmarks.allocation --rules shipped --trainings 35 90 --tilt 0.7   # some rows
    .venv/bin/python -m benchmarks.allocation --rules shipped --trainings 40 --tilt 0.7 --tau 0.015  # another truth
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from scalesearch.arch._spec import network_key
from scalesearch.results._record import shape_attrs
from scalesearch.search import RunOptions, prepare
from scalesearch.space._candidates import candidate_spec
from scalesearch.stats import _race as race

from .common import section, table

SLOPES = np.array([-0.12, 0.19, -0.15])  # score per unit log blocks / channels / side (proxy_design, default)
SIGMA, TAU = 0.065, 0.03  # one run's noise and the networks' departures, nats (calibration and proxy_design)
SEED_SD = 0.05  # a seed's effect on every network alike
TRAININGS = 90  # what the default 10 minutes train on the 2-core reference host (first round included)
RULES = ("focus", "shipped", "uniform")


def grid() -> pd.DataFrame:
    """The default grid's candidates with their built network's key and features, as the worker records them."""
    plan = prepare(RunOptions(base="b0", space="default", data="embedded"))
    rows = []
    for a in plan.report.feasible:
        c, cost = a.candidate, plan.proxy_cost(a.candidate)
        spec = candidate_spec(plan.base, c, cost.proxy_resolution, plan.space.proxy.width)
        rows.append({"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma, "network": network_key(spec),
                     "proxy_resolution": cost.proxy_resolution, **shape_attrs(spec)})
    return pd.DataFrame(rows)


def truth(cands: pd.DataFrame, rng: np.random.Generator, scale: float) -> pd.Series:
    nets = cands.drop_duplicates("network").set_index("network")
    x = np.log(nets[["depth_blocks", "width_channels", "proxy_resolution"]].to_numpy(float))
    return pd.Series(x @ (scale * SLOPES) + rng.normal(0, TAU, len(nets)), index=nets.index)


def simulate(cands: pd.DataFrame, true: pd.Series, rng: np.random.Generator, rule: str, budget: int) -> tuple:
    """One run: (its surface fit, its verdict, trainings used)."""
    rows, shifts, spent = [], {}, 0
    by_point = {(r.alpha, r.beta, r.gamma): r._asdict() for r in cands.itertuples(index=False)}

    def train(a, b, g, seed, phi):
        r = dict(by_point[(a, b, g)], phi=phi, seed=seed, state="COMPLETE")
        shift = shifts.setdefault(seed, rng.normal(0, SEED_SD))
        r["score"] = (true[r["network"]] if phi == 1 else 0.0) + shift + rng.normal(0, SIGMA)
        r["network"] = r["network"] if phi == 1 else f"{a}/{b}/{g}@2"  # φ = 2 only splits twins
        rows.append(r)

    for net, group in cands.groupby("network", sort=False):
        spent += 1
        for r in group.itertuples():
            train(r.alpha, r.beta, r.gamma, 0, 1)
    while spent < budget:
        todo = next_trials(pd.DataFrame(rows), rule)
        if not todo:
            break
        seen = set()
        for a, b, g, seed, phi in todo:
            key = (by_point[(a, b, g)]["network"], seed, phi)
            cost = 0 if phi == 1 and key in seen else 1
            if spent + cost > budget:
                break
            seen.add(key)
            spent += cost
            train(a, b, g, seed, phi)
    trials = pd.DataFrame(rows)
    return race.fit(trials), race.verdict(trials), spent


def next_trials(trials: pd.DataFrame, rule: str) -> list:
    if rule == "uniform":
        obs = race.observations(trials, 1)
        used = obs.groupby("key")["seed"].agg(set)
        return race._surface_round(race.fit(trials), used, race.members(trials, 1), [0], 10**6)[1]
    if rule == "focus":
        share, race.SET_SHARE = race.SET_SHARE, 10**6  # no cap from the least-measured network …
        try:
            name, todo = race.next_round(trials, [0], 8, 6, 2)
        finally:
            race.SET_SHARE = share
        return [] if name.startswith("the surface") else todo  # … and no surface round: it stopped there
    return race.next_round(trials, [0], 32, 6, 2)[1]


def replicate(cands: pd.DataFrame, rep: int, rule: str, budget: int, scale: float) -> dict:
    true = truth(cands, np.random.default_rng(1000 + rep), scale)
    runs = [simulate(cands, true, np.random.default_rng(100 * rep + k), rule, budget) for k in (0, 1)]
    fits = [s.table["fit"].reindex(true.index) for s, _, _ in runs]
    best = true.idxmax()
    return {"τ-b between runs": stats.kendalltau(*fits).statistic,
            "τ-b to the truth": np.mean([stats.kendalltau(f, true).statistic for f in fits]),
            "true best in set": np.mean([best in s.confidence_set for s, _, _ in runs]),
            "winner in the other's set": np.mean([runs[0][0].leader in runs[1][0].confidence_set,
                                                  runs[1][0].leader in runs[0][0].confidence_set]),
            "winner's P(best)": np.mean([s.table["p_best"].iloc[0] for s, _, _ in runs]),
            "winner is the true best": np.mean([s.leader == best for s, _, _ in runs]),
            "set size": np.mean([len(s.confidence_set) for s, _, _ in runs]),
            "networks differ (p < 0.05)": np.mean([s.differ < 0.05 for s, _, _ in runs]),
            "resolved": np.mean([v.resolved for _, v, _ in runs]), "trainings": np.mean([n for *_, n in runs])}


def run(quick: bool = False, device: str = "cpu", reps: int | None = None,
        settings: tuple = ((TRAININGS, 1.0), (TRAININGS, 0.7), (6 * TRAININGS, 0.7)), rules: tuple = RULES) -> str:
    warnings.filterwarnings("ignore")  # REML at its boundary and the like: valid answers, not failures
    cands = grid()
    reps = reps or (3 if quick else 16)
    rows = []
    for (budget, scale), rule in itertools.product(settings, rules):
        n = max(2, reps // 2) if budget > TRAININGS else reps
        df = pd.DataFrame([replicate(cands, rep, rule, budget, scale) for rep in range(n)])
        rows.append([budget, f"×{scale:g}", rule, n, *(f"{m:.2f} ± {s:.2f}" for m, s in zip(df.mean(), df.std()))])
    headers = ["trainings", "tilt", "rule", "replicates", *df.columns]
    note = (f"Truth: the default grid's 19 networks, slopes {SLOPES.tolist()} per unit log (× tilt), departures sd "
            f"{TAU}, noise sd {SIGMA}, seed effects sd {SEED_SD} nats; mean ± sd over replicates.")
    return section("Where a run spends its seeds: simulated rules on a known surface", "cpu", table(headers, rows), note)


__all__ = ["run", "simulate", "grid", "truth"]

if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", nargs="+", choices=RULES, default=list(RULES))
    parser.add_argument("--trainings", nargs="+", type=int, default=[TRAININGS])
    parser.add_argument("--tilt", nargs="+", type=float, default=[1.0, 0.7])
    parser.add_argument("--reps", type=int, default=16)
    parser.add_argument("--tau", type=float, default=TAU, help="the networks' departures from the plane, sd in nats")
    args = parser.parse_args()
    TAU = args.tau
    print(run(reps=args.reps, settings=tuple(itertools.product(args.trainings, args.tilt)), rules=tuple(args.rules)))
