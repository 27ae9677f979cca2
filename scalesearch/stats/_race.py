"""The rounds of a search and its answer: what to train next, and how far the evidence carries the winner.

The scores of all candidates are fitted together as one surface over the budget
(:mod:`scalesearch.stats`), so each round goes where it most shrinks the 95% set of
networks that could be best:

1. the first round covers the surface: every distinct network, one seed (queued by the search);
2. the check: the networks in the 95% set, and the leader's closest rivals (``RIVALS``) even when the
   set holds the leader alone, get a second seed. That separates the noise from the surface's misfit,
   and from then on the fit is the mixed model: each replicated network is judged by its own seeds as
   well as by the surface, so a leader that only a straight surface's tilt put on top (its optimum is
   always a corner) has to hold on its second seed;
3. when the leading network is built by several candidates (twins: B0's depth rounds up, so
   every α in (1, 1.25] builds the same network at φ = 1), their φ = 2 members are trained,
   where they differ, and the best of them wins;
4. then the set's networks get more seeds, fewest first, up to ``SET_SHARE`` times the seeds of the
   least-measured network (and ``max_seeds``);
5. when the set holds the leader alone but the leader's own seeds do not yet beat the runner-up's
   (:func:`runner_up_holds`: the surface alone separates them), those two get more seeds, within the same cap;
6. when the set has its share, the surface: every network with the fewest seeds gets another, least certain
   first. That raises the cap for step 4, keeps the fit's slopes, τ² and noise honest (a set judged against
   networks measured once leans on the surface alone) and makes the whole ranking repeat, not only its top;
7. the rounds end when the set holds one network that held on its second seed and is clear of the runner-up on
   their own seeds (resolved), when every network has ``max_seeds`` or when the run's time is spent.

Higher scores are better (the search negates losses).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from . import _surface as surface

Cand = tuple[float, float, float]
FORM = "mixed"  # linear surface + each network's departure; the plain linear one until some network has two seeds
RIVALS = 3  # the leader's closest rivals by fitted score that the check gives a second seed
SET_SHARE = 2  # the 95% set's networks get at most this many times the seeds of the least-measured network


def network_id(row: Mapping[str, Any] | Any) -> str:
    """A row's network identity; older studies did not record one, so each candidate stands for itself.

    >>> network_id({"alpha": 1.2, "beta": 1.1, "gamma": 1.15, "network": None})
    '1.2/1.1/1.15'
    """
    get = row.get if isinstance(row, Mapping) else lambda k: getattr(row, k, None)
    net = get("network")
    if isinstance(net, str):
        return net
    return f"{get('alpha')}/{get('beta')}/{get('gamma')}"


def observations(trials: pd.DataFrame, phi: float) -> pd.DataFrame:
    """(key, seed, score, log_depth, log_width, log_side) of the complete trials at `phi`.

    key = the trained network, so twins count once. The trials' `score` column is
    higher-is-better (see :func:`scalesearch.results.trials_frame`). The features are the
    built proxy network's blocks, mean channels and side; studies that did not record
    the first two fall back to the multipliers.
    """
    done = trials[(trials["phi"] == phi) & (trials["state"] == "COMPLETE")]
    get = lambda col, default: done[col].astype(float) if col in done and done[col].notna().all() else default
    obs = pd.DataFrame({
        "key": [network_id(r) for r in done.itertuples()], "seed": done["seed"].to_numpy(),
        "score": done["score"].to_numpy(float),
        "log_depth": np.log(get("depth_blocks", done["alpha"].astype(float) ** phi)).to_numpy(),
        "log_width": np.log(get("width_channels", done["beta"].astype(float) ** phi)).to_numpy(),
        "log_side": np.log(get("proxy_resolution", done["gamma"].astype(float) ** phi)).to_numpy(),
    })
    return obs.drop_duplicates(["key", "seed"]).reset_index(drop=True)  # twins share one result per seed


def fit(trials: pd.DataFrame, phi: float = 1) -> surface.Surface | None:
    """The score surface of the complete trials at `phi` (None when none completed)."""
    obs = observations(trials, phi)
    return None if obs.empty else surface.fit(obs, FORM)


def next_round(trials: pd.DataFrame, seeds: list[int], max_seeds: int, contenders: int, phi2: int) -> tuple[str, list[tuple[float, float, float, int, int]]]:
    """What to train next, as (round name, [(α, β, γ, seed, φ)]), most useful first; [] when nothing
    more can shrink the 95% set (steps 2 to 7 of the module's list).

    `contenders` caps the networks given a seed in one round; `phi2` is how many of the set's
    leading networks have their twins trained at φ = 2.
    """
    obs = observations(trials, 1)
    if obs.empty:
        return "", []
    s = surface.fit(obs, FORM)
    built = members(trials, 1)
    used = _with_pending(obs.groupby("key")["seed"].agg(set), trials)
    in_set = s.confidence_set

    def more_seeds(keys: list, cap: int = max_seeds) -> list:
        return [(*c, _next_seed(seeds, used[k]), 1) for k in [k for k in keys if len(used[k]) < cap][:contenders]
                for c in built[k]]

    checked = list(dict.fromkeys(in_set + list(s.table.index[: RIVALS + 1])))
    if len(used[s.leader]) < 2 and (todo := more_seeds([k for k in checked if len(used[k]) < 2])):
        return (f"the check: a second seed for the {len(in_set)} network(s) in the 95% set and the leader's "
                f"{RIVALS} closest rivals", todo)
    if todo := more_seeds([k for k in in_set if len(used[k]) < 2]):
        return f"a second seed for the {len(in_set)} networks in the 95% set", todo
    if todo := _twins_at_phi2(trials, built, [k for k in in_set[:phi2]], used):
        return "φ = 2: the leading network's twins, where they differ", todo
    cap = min(max_seeds, SET_SHARE * int(used.map(len).min()))
    if len(in_set) > 1:
        p = s.table["p_best"]
        if todo := more_seeds(sorted(in_set, key=lambda k: (len(used[k]), -p[k])), cap):
            return f"another seed for the {len(in_set)} networks in the 95% set", todo
    elif not runner_up_holds(obs, s):
        return "", []  # resolved
    elif todo := more_seeds(list(s.table.index[:2]), cap):
        return "another seed for the leader and the runner-up: the surface separates them, their own seeds not yet", todo
    return _surface_round(s, used, built, seeds, max_seeds)


def _surface_round(s: surface.Surface, used: pd.Series, built: dict, seeds: list[int], max_seeds: int) -> tuple[str, list]:
    """Another seed for every network with the fewest seeds, the least certain (largest standard error) first."""
    fewest = int(used.map(len).min())
    if fewest >= max_seeds:
        return "", []
    keys = sorted((k for k in used.index if len(used[k]) == fewest), key=lambda k: -s.table.loc[k, "se"])
    todo = [(*c, _next_seed(seeds, used[k]), 1) for k in keys for c in built[k]]
    return f"the surface: seed {fewest + 1} for the {len(keys)} networks with the fewest, least certain first", todo


def _with_pending(used: pd.Series, trials: pd.DataFrame) -> pd.Series:
    """The seeds each scored network has, and those still training or queued for it: a round planned while some
    trials train (a pool of workers) counts them as planned, so it neither queues them again nor stops short."""
    pending = trials[(trials["phi"] == 1) & trials["state"].isin(("RUNNING", "WAITING"))]
    used = used.copy()
    for row in pending.itertuples():
        if (key := network_id(row)) in used.index:
            used.at[key] = used[key] | {int(row.seed)}
    return used


def _next_seed(seeds: list[int], used: set) -> int:
    return next(x for x in itertools.count(seeds[0]) if x not in used)


def _twins_at_phi2(trials: pd.DataFrame, members: dict, keys: list, used: pd.Series) -> list:
    """φ = 2 members, on up to two of the network's seeds, of every candidate of a network built by several."""
    have = set(map(tuple, trials.loc[trials["phi"] == 2, ["alpha", "beta", "gamma", "seed"]].itertuples(index=False)))
    return [(*c, s, 2) for key in keys if len(members[key]) > 1 for c in members[key]
            for s in sorted(used[key])[:2] if (*c, s) not in have]


def members(trials: pd.DataFrame, phi: float = 1) -> dict:
    """network key -> the (α, β, γ) candidates that build it at `phi`, in grid order.

    Only complete trials count: a trial still queued (when the time ran out, say) has no network recorded yet,
    and :func:`network_id` would name the candidate instead."""
    df = trials[(trials["phi"] == phi) & (trials["state"] == "COMPLETE")]
    out: dict = {}
    for r in df.itertuples():
        c = (r.alpha, r.beta, r.gamma)
        if c not in out.setdefault(network_id(r), []):
            out[network_id(r)].append(c)
    return {k: sorted(v) for k, v in out.items()}


@dataclass(frozen=True)
class Verdict:
    """The run's answer: the winner, how likely it is best, the 95% set, whether that decides, and where it sits."""

    winner: Cand
    p_best: float  # the winner's network's probability of being best under the surface fit
    stage: int  # the φ whose scores chose the winner (2 when φ = 2 split its twins)
    tied: list[Cand]  # the candidates of the 95% set (the networks that could be best)
    resolved: bool
    reason: str  # why it is not resolved, or what settled it
    seeds_needed: float | None = None  # seeds per network at which the leader would stand alone (inf: no gap)
    boundary: list[str] = field(default_factory=list)  # where the winner or its set touches the space's edge
    networks: int = 0  # distinct networks in the 95% set
    seconds_needed: float | None = None  # training those seeds would add for the leader and the runner-up alone

    @property
    def words(self) -> str:
        return "resolved" if self.resolved else "not resolved"


def verdict(trials: pd.DataFrame, ranges: dict | None = None, width_scaled: bool = False) -> Verdict | None:
    """The winner and how far the evidence carries it; None when nothing completed.

    `ranges` ({"alpha": {"min": …, "max": …}, …}, as a study's configuration records the space)
    lets the verdict say when the answer sits on the space's edge; `width_scaled`: the proxy's rates were
    already scaled to each layer's width (so the width note does not ask for that check).
    """
    obs = observations(trials, 1)
    if obs.empty:
        return None
    s = surface.fit(obs, FORM)
    built = members(trials, 1)
    in_set = s.confidence_set
    tied = [c for k in in_set for c in built[k]]
    winner, stage, problems = _pick_twin(trials, built[s.leader], s)
    untrained = _untrained(trials)
    if untrained:
        problems.append(f"{untrained} candidate(s) not trained yet (the time ran out, or the run stopped, before them): the fit "
                        "covers part of the space")
    if s.differ >= 1 - surface.LEVEL:  # nan (not testable) is not a finding
        problems.append(f"the networks do not differ detectably (F-tests against seeds alone: p = {s.differ:.2f}), "
                        "so their order may be noise")
    if len(in_set) > 1:
        problems.append("more than one network could be best")
    if s.table["seeds"].iloc[0] < 2:
        problems.append("the leader has one seed: the surface is not checked on a second seed yet")
    elif len(in_set) == 1 and runner_up_holds(obs, s):
        problems.append(f"the surface puts the runner-up {_names(built[s.table.index[1]][:1])} outside the 95% set, but "
                        "their own seeds do not separate it from the leader yet")
    if s.form == "means":
        problems.append("too few networks for a surface: each candidate judged on its own seeds")
    elif math.isnan(s.sigma):
        problems.append("no noise estimate")
    needed = s.seeds_to_resolve() if len(in_set) > 1 and s.dof and not math.isnan(s.sigma) else None
    more = None if needed is None else training_needed(trials, s, needed)
    if needed is not None:
        problems.append(f"about {_count(needed)} paired seeds each (now {s.table['seeds'].iloc[0]} and "
                        f"{s.table['seeds'].iloc[1]}) would separate the leader from the runner-up" + (
                            f": at least {_duration(more)} more of training for those two at the pace their runs "
                            "took (the same command with more --time resumes)" if more and math.isfinite(more) else ""))
    edge = boundary(winner, tied, ranges, width_scaled)
    reason = "; ".join(problems) if problems else (
        f"the only network in the 95% set{' after φ = 2 split its twins' if stage == 2 else ''}, held on a second "
        f"seed and clear of the runner-up on their own seeds ({_fit_words(s)})")
    return Verdict(winner, float(s.table["p_best"].iloc[0]), stage, tied, not problems, reason, needed, edge, len(in_set),
                   more)


def training_needed(trials: pd.DataFrame, s: surface.Surface, seeds: float) -> float | None:
    """Training seconds that `seeds` paired seeds each would add for the leader and the runner-up, at the mean time
    of their own timed trials (None without timings; inf without a gap). A lower bound on the run's time: its
    rounds also spend seeds on the rest of the set and the surface."""
    if math.isinf(seeds):
        return math.inf
    done = trials[(trials["phi"] == 1) & (trials["state"] == "COMPLETE")]
    if "seconds" not in done:
        return None
    keys = pd.Series([network_id(r) for r in done.itertuples()], index=done.index)
    total = 0.0
    for key in s.table.index[:2]:
        timed = done.loc[(keys == key) & (done["seconds"] > 0), "seconds"]
        if timed.empty:
            return None
        total += max(0, seeds - int(s.table.loc[key, "seeds"])) * float(timed.mean())
    return total


def _untrained(trials: pd.DataFrame) -> int:
    """φ = 1 candidates with no result yet: queued, or queued again after a stop (a final failure counts as done)."""
    one = trials[trials["phi"] == 1]
    done = lambda s: s.isin(["COMPLETE", "PRUNED"]).any() or (s.eq("FAIL").any() and not s.eq("WAITING").any())
    return int((~one.groupby(["alpha", "beta", "gamma"])["state"].agg(done)).sum())


def _pick_twin(trials: pd.DataFrame, twins: list[Cand], s: surface.Surface) -> tuple[Cand, int, list[str]]:
    """(winner among the leading network's candidates, the φ that chose it, problems left)."""
    if len(twins) == 1:
        return twins[0], 1, []
    obs2 = observations(trials, 2)
    members2 = members(trials, 2)
    mine = {k: v for k, v in members2.items() if set(v) & set(twins)}
    obs2 = obs2[obs2["key"].isin(mine)]
    if obs2.empty:
        return twins[0], 1, [f"{_names(twins)} build the same network at φ = 1, and φ = 2 has not split them"]
    means, sigma, dof = surface.paired_means(obs2)
    best = mine[means.index[0]]
    if len(means) == 1 or len(best) > 1:
        return best[0], 2, [f"{_names(best if len(best) > 1 else twins)} build the same networks at φ = 1 and φ = 2"]
    if not dof:
        sigma, dof = s.sigma, s.dof  # one seed each at φ = 2: the same proxy's noise
    if _not_beaten(means, obs2.groupby("key")["seed"].nunique(), means.index[0], sigma, dof):
        return best[0], 2, [f"φ = 2 does not separate {_names(twins)}"]
    return best[0], 2, []


def _not_beaten(means: pd.Series, counts: pd.Series, lead, sigma: float, dof: int) -> list:
    """The other networks of `means` (seed-adjusted, from :func:`surface.paired_means`) that `lead` does not beat
    by the two-sided 95% t bound on the difference; all of them without a noise estimate."""
    others = [k for k in means.index if k != lead]
    if math.isnan(sigma):
        return others
    q = surface.t_quantile(dof)
    return [k for k in others if means[lead] - means[k] <= q * sigma * math.sqrt(1 / counts[k] + 1 / counts[lead])]


def runner_up_holds(obs: pd.DataFrame, s: surface.Surface) -> bool:
    """Whether the runner-up still stands against the leader on their own seeds: the leader's seed-adjusted mean
    not clear of the runner-up's (the direct check; the run's noise when the two alone give none). A surface that
    takes itself as exact (τ² estimated at 0) can separate two networks that many seeds of their own cannot.
    False while the leader has one seed: the check round comes first."""
    if len(s.table) < 2 or s.table["seeds"].iloc[0] < 2:
        return False
    pair = obs[obs["key"].isin(s.table.index[:2])]
    means, sigma, dof = surface.paired_means(pair)
    if not dof:
        sigma, dof = s.sigma, s.dof
    return bool(_not_beaten(means, pair.groupby("key")["seed"].nunique(), s.leader, sigma, dof))


def boundary(winner: Cand, tied: list[Cand], ranges: dict | None, width_scaled: bool = False) -> list[str]:
    """Where the winner, or the 95% set, sits on an edge of the space's ranges, and what to extend, and for a
    width corner the checks of the short proxy's bias (`width_scaled`: the rates already were scaled to width)."""
    if not ranges:
        return []
    axes = [(i, a, float(ranges[a]["min"]), float(ranges[a]["max"])) for i, a in enumerate(("alpha", "beta", "gamma"))
            if a in ranges]
    at_max = [f"{a} = {a}.max {hi:g}" for i, a, lo, hi in axes if math.isclose(winner[i], hi)]
    at_min = [f"{a} = {a}.min {lo:g}" for i, a, lo, hi in axes if math.isclose(winner[i], lo)]
    set_max = [a for i, a, lo, hi in axes if not math.isclose(winner[i], hi) and any(math.isclose(c[i], hi) for c in tied)]
    notes = []
    if at_max or at_min:
        extend = "; extend " + " and ".join(f"{x.split(' ')[0]}.max" for x in at_max) if at_max else ""
        notes.append(f"the winner sits on the space's boundary ({', '.join(at_max + at_min)}): the optimum may lie "
                     f"beyond it{extend}")
    if set_max:
        notes.append(f"the 95% set reaches {', '.join(f'{a}.max' for a in set_max)}: extend it to see past the edge")
    if any(x.startswith("beta") for x in at_max):
        scaled = ("each layer's rate was scaled to its width (lr_scaling = width) here; check with "
                  if width_scaled else "at one fixed rate a wider layer takes larger steps; check with --lr-scaling "
                  "width (each layer's rate scaled to its width, as μP does), ")
        notes.append("short proxies are known to favour width (Bello et al. 2021), and how strongly depends on the "
                     f"proxy's training: {scaled}longer proxy training (--epochs) or another --lr, each in a study of "
                     "its own (--study), and compare the two with scalesearch agree")
    return notes


def width_scaled(config: dict | None) -> bool:
    """Whether a study's recorded proxy scaled each layer's rate to its width."""
    return ((config or {}).get("proxy") or {}).get("lr_scaling") == "width"


def space_ranges(config: dict | None) -> dict | None:
    """The α, β, γ ranges a study recorded (None for studies without them)."""
    space = (config or {}).get("space", {})
    return {a: space[a] for a in ("alpha", "beta", "gamma") if a in space} or None


def _fit_words(s: surface.Surface) -> str:
    """How the linear surface fared against the replicated networks, for the verdict's reason."""
    if math.isnan(s.lack_of_fit):
        return "lack of fit not testable"
    misses = "misses structure, so each network's own seeds count" if s.lack_of_fit < 1 - surface.LEVEL else "fits"
    return f"the linear surface {misses}: lack-of-fit p = {s.lack_of_fit:.2f}"


def _duration(seconds: float) -> str:
    """`seconds` in words: minutes below two hours, hours above."""
    return f"{max(1, round(seconds / 60))} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _count(n: float) -> str:
    return "more than 10,000" if n > 10_000 else f"{int(n):,}"


def _names(cands: list[Cand]) -> str:
    return ", ".join(f"({a:g}, {b:g}, {g:g})" for a, b, g in cands)
