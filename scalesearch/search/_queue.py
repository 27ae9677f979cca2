"""The queue of trials: what slot a trial fills, and which (candidate, seed, φ) to queue next.

One trial is one slot (candidate, seed, φ). ``run`` queues the feasible grid, then
the rounds the race asks for (:func:`scalesearch.stats.next_round`); workers pop the
queue. A slot already done is never queued twice.

>>> from scalesearch.space import Candidate
>>> queue_attrs(Candidate(1.2, 1.1, 1.15), seed=3, phi=2)
{'queued': True, 'seed': 3, 'phi': 2, 'alpha': 1.2, 'beta': 1.1, 'gamma': 1.15}
"""
from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from ..arch._spec import network_key
from ..results import _ranking as results
from ..space._candidates import Candidate, candidate_spec
from ..space._sampling import manifold_size
from ..stats import _race as race
from ._plan import Plan, RunOptions, open_study, prepare, seed_list
from ._progress import Progress
from ._schedule import TimeBudget

QUEUE = ("seed", "phi", "alpha", "beta", "gamma")  # what a queued trial carries until it runs

# Trials failed for these reasons are queued again on resume; others (divergence, OOM) are final.
OUT_OF_TIME = "stopped: the time budget ran out during training"
RETRYABLE = ("interrupted", OUT_OF_TIME)


def candidate(t: FrozenTrial) -> Candidate | None:
    """The candidate a trial stands for (None for a placeholder that never had one)."""
    a = t.user_attrs
    return Candidate(a["alpha"], a["beta"], a["gamma"]) if "alpha" in a else None


def slot(t: FrozenTrial) -> tuple[tuple[float, float, float], Any, Any] | None:
    """(candidate key, seed, φ): what a trial is a result for; two trials with one slot are one result."""
    c = candidate(t)
    return None if c is None else (c.key, t.user_attrs.get("seed"), t.user_attrs.get("phi", 1))


def is_done(t: FrozenTrial) -> bool:
    """A trial that counts for its slot: anything but a retryable failure, an unfinished failure or a placeholder."""
    if t.user_attrs.get("unqueued"):
        return False
    if t.state == TrialState.FAIL:
        return t.user_attrs.get("fail_reason", "") not in RETRYABLE and "fail_reason" in t.user_attrs
    return True


def queue_attrs(c: Candidate, seed: int, phi: float = 1, **extra: Any) -> dict[str, Any]:
    """The user attributes of a queued trial: the slot it will fill."""
    return {"queued": True, "seed": seed, "phi": phi, "alpha": c.alpha, "beta": c.beta, "gamma": c.gamma, **extra}


def enqueue_one(study: optuna.Study, c: Candidate, seed: int, phi: float = 1, **extra: Any) -> None:
    study.enqueue_trial({}, user_attrs=queue_attrs(c, seed, phi, **extra), skip_if_exists=False)


def requeue(study: optuna.Study, t: FrozenTrial | optuna.Trial) -> None:
    """Queue `t`'s slot again, linked to it (an interrupted, stopped or lost trial)."""
    a = t.user_attrs
    enqueue_one(study, Candidate(a["alpha"], a["beta"], a["gamma"]), a["seed"], a["phi"], requeued_from=t.number)




def enqueue_grid(plan: Plan, study: optuna.Study) -> int:
    """Queue every feasible (candidate, seed) that has no trial yet, spread over the surface; returns how many."""
    return enqueue(plan, study, spread_order([a.candidate for a in plan.report.feasible]), phi=1)


def spread_order(candidates: list[Candidate]) -> list[Candidate]:
    """The candidates in farthest-first order over (log α, log β, log γ), from the middle outwards.

    A first round cut short by the time budget then still covers the whole surface thinly
    instead of one corner of the grid densely.
    """
    if len(candidates) < 3:
        return list(candidates)
    x = np.log([[c.alpha, c.beta, c.gamma] for c in candidates])
    order = [int(np.argmin(((x - x.mean(axis=0)) ** 2).sum(axis=1)))]
    gap = ((x - x[order[0]]) ** 2).sum(axis=1)
    while len(order) < len(candidates):
        order.append(int(np.argmax(gap)))
        gap = np.minimum(gap, ((x - x[order[-1]]) ** 2).sum(axis=1))
    return [candidates[i] for i in order]


def enqueue(plan: Plan, study: optuna.Study, candidates: list[Candidate], phi: int = 1,
            seeds: list[int] | None = None) -> int:
    """Queue each (candidate, seed) at `phi` that has no trial yet; returns how many were added.

    φ = 1 is the search itself; φ = 2 trains the coefficients squared (twins and contenders,
    and the transfer check). `seeds` defaults to the seeds every candidate gets.
    """
    have = {slot(t) for t in study.get_trials(deepcopy=False) if is_done(t)}
    added = 0
    for c in candidates:
        for seed in seed_list(plan.space) if seeds is None else seeds:
            if (c.key, seed, phi) in have:
                continue
            enqueue_one(study, c, seed, phi)
            added += 1
    return added


def progress_counts(plan: Plan, study: optuna.Study, trials: list[optuna.trial.FrozenTrial] | None = None) -> tuple[int, int]:
    """(trials done, trials planned) for this run: the first round's, or all queued once later rounds have added some.
    `trials`: the study's trials when the caller has just read them."""
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    trials = [t for t in trials if not t.user_attrs.get("unqueued")]
    done = sum(1 for t in trials if t.state.is_finished() and is_done(t))
    queued = sum(1 for t in trials if is_done(t))
    if plan.grid:
        return done, max(queued, len(plan.report.feasible) * plan.space.proxy.seeds)
    return done, max(queued, min(plan.space.trials, manifold_size(plan.space, plan.base)) * plan.space.proxy.seeds)


def queue_next_round(plan: Plan, study: optuna.Study, progress: Progress | None = None,
                     budget: TimeBudget | None = None) -> int:
    """Queue what the race (:func:`scalesearch.stats.next_round`) asks for next, as far as the time budget
    allows; returns how many trials."""
    s = plan.space
    if not plan.grid:
        return 0
    trials = results.trials_frame(study)
    if progress and (fit := race.fit(trials)) is not None:
        progress.standing(fit, race.members(trials), s.proxy.score)
    name, todo = race.next_round(trials, seed_list(s), s.proxy.max_seeds, s.contenders, s.phi2)
    if budget is not None and budget.limited:
        todo = budget.take(priced(plan, study, budget, todo))
    added = sum(enqueue(plan, study, [Candidate(a, b, g)], phi=phi, seeds=[seed]) for a, b, g, seed, phi in todo)
    if added and progress:
        progress.round(name, added)
    return added


def queued_slots(study: optuna.Study) -> list[tuple]:
    """(α, β, γ, seed, φ) of every queued trial that no worker has started."""
    return [(c.alpha, c.beta, c.gamma, t.user_attrs["seed"], t.user_attrs.get("phi", 1))
            for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)) if (c := candidate(t))]


def priced(plan: Plan, study: optuna.Study, budget: TimeBudget, todo: list) -> list:
    """Each queued (α, β, γ, seed, φ) with its expected seconds; a twin of one already priced costs nothing."""
    pace = budget.pace(study) or 0.0
    seen, priced = set(), []
    for a, b, g, seed, phi in todo:
        c = Candidate(a**phi, b**phi, g**phi)
        cost = plan.proxy_cost(c)
        net = network_key(candidate_spec(plan.base, c, cost.proxy_resolution, plan.space.proxy.width))
        priced.append(((a, b, g, seed, phi), 0.0 if (net, seed) in seen else pace * cost.macs_proxy))
        seen.add((net, seed))
    return priced


def start(options: RunOptions, progress: Progress | None = None) -> tuple[Plan, optuna.Study]:
    """Prepare, create or resume the study and queue the grid; workers (this process or others) train it."""
    plan = prepare(options, on_latency=progress.latency if progress else None)
    study = open_study(plan)
    if plan.grid:
        enqueue_grid(plan, study)
    return plan, study


