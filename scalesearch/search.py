"""The search: queue the grid, train it with workers, race the close candidates, and write the answer.

:func:`run` is the whole job behind ``scalesearch run``: it validates the options
(:mod:`scalesearch.plan`), creates or resumes the Optuna study, queues every feasible
(candidate, seed) once, trains them (:mod:`scalesearch.worker`, or several processes with
:mod:`scalesearch.pool`), queues the race's further rounds (:mod:`scalesearch.race`) until
it is settled, and writes ``trials.csv``, ``ranking.csv`` and ``coefficients.json``.
Running the same options again resumes: nothing complete is retrained.

With the grid sampler every feasible point is enqueued once, so any number of workers on
the same storage pop distinct candidates; other samplers propose points on the budget
manifold (:func:`scalesearch.sampling.suggest`). With an RDB storage, workers send
heartbeats; a trial whose worker died is failed after the grace period and re-queued.

>>> import scalesearch
>>> result = scalesearch.run("tiny-mbconv", data="synthetic:64", epochs=1, seeds=1, max_seeds=1,
...                          results_dir="/tmp/scalesearch-doctest", restart=True)  # doctest: +SKIP
>>> result.winner.alpha, result.verdict.words  # doctest: +SKIP
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch
from optuna.trial import TrialState

from . import export, family, provenance, proxy, race, record, results
from .arch import BaseNetwork, base_toml
from .candidates import Candidate, assess, candidate_spec
from .data import Dataset
from .errors import ScaleSearchError
from .files import write_text
from .plan import Plan, RunOptions, load, load_recorded, open_study, prepare, seed_list
from .progress import Progress
from .sampling import manifold_size
from .schedule import TimeBudget
from .space import SearchSpace, space_toml
from .worker import Worker

log = logging.getLogger(__name__)


@dataclass
class SearchResult:
    """What a finished search answers: the ranking, the winner, how far the evidence carries it, and its family."""

    plan: Plan
    study: optuna.Study
    trials: pd.DataFrame  # one row per trial (trials.csv)
    ranking: pd.DataFrame  # one row per φ = 1 candidate, winner first (ranking.csv)
    verdict: race.Verdict | None  # None when the race had nothing to compare
    coefficients: dict[str, Any]  # the exported document (coefficients.json)

    @property
    def winner(self) -> pd.Series:
        return self.ranking.iloc[0]

    @property
    def surface(self):
        """The score surface fitted to the φ = 1 trials (:class:`scalesearch.surface.Surface`), or None."""
        return race.fit(self.trials)

    @property
    def family(self) -> pd.DataFrame:
        """The winner's members φ = 0 … 7: multipliers, side, params, MACs and activations (1000 classes)."""
        w = self.winner
        return family.family_table(self.plan.base, w.alpha, w.beta, w.gamma)

    @property
    def folder(self) -> Path:
        return self.plan.results_dir


def run(base: str | BaseNetwork = "b0", budget: str | float | None = None, *, space: str | SearchSpace = "default",
        progress: Progress | None = None, workers: int = 1, devices: str | None = None, restart: bool = False,
        **options: Any) -> SearchResult:
    """Search (α, β, γ) for `base` under `budget` and write the results; the Python form of ``scalesearch run``.

    `options` are :class:`~scalesearch.plan.RunOptions` fields (``data``, ``device``, ``epochs``,
    ``seeds``, ``results_dir``, ``storage`` …), as the CLI's options. `base` and `space` may be
    objects; they are written to ``<results_dir>/inputs/`` as TOML so the study can be resumed and read back.
    ``data`` may be a :class:`~scalesearch.data.Dataset` (your own tensors): it trains in this process, and
    only a call with the same object resumes the study (``show`` and ``export`` read it as any other).
    `workers` > 1 or `devices` trains in that many processes on this machine. Raises
    :class:`~scalesearch.errors.ScaleSearchError` for anything the user can fix, before anything is written.
    """
    unknown = sorted(set(options) - {f.name for f in fields(RunOptions)} - {"base", "space", "budget"})
    if unknown:
        raise ScaleSearchError(f"unknown option {unknown[0]!r}; expected one of {', '.join(f.name for f in fields(RunOptions))}")
    folder = Path(options.get("results_dir", "results"))
    opts = RunOptions(base=_as_file(base, folder, "base"), space=_as_file(space, folder, "space"), budget=budget, **options)
    if isinstance(opts.data, Dataset) and (workers != 1 or devices is not None):
        raise ScaleSearchError("a Dataset object trains in this process only: give workers=1 (or save it as an "
                               "image folder and pass its path)")
    started = time.monotonic()  # the time budget counts from here
    progress = progress or Progress()
    if restart:
        progress.note(provenance.restart(opts))
    if workers == 1 and devices is None:
        plan, study = execute(opts, progress, started)
    else:
        from . import pool

        plan, study = pool.run(opts, workers, devices, progress.start, progress.poll, progress)
    return finish(plan, study, progress)


def _as_file(value: Any, folder: Path, kind: str) -> str:
    """A name or path as it is; an object written to ``<folder>/inputs/<name>.toml`` so a resume can read it."""
    if isinstance(value, (str, Path)):
        return str(value)
    if kind == "base" and isinstance(value, BaseNetwork):
        text = base_toml(value)
    elif kind == "space" and isinstance(value, SearchSpace):
        text = space_toml(value)
    else:
        raise ScaleSearchError(f"{kind} must be a name, a path to a .toml file or a "
                               f"{'BaseNetwork' if kind == 'base' else 'SearchSpace'}, got {type(value).__name__}")
    path = folder / "inputs" / f"{value.name}.toml"
    write_text(path, text)
    return str(path)


def finish(plan: Plan, study: optuna.Study, progress: Progress | None = None) -> SearchResult:
    """Write trials.csv, ranking.csv and coefficients.json for a study, all or none; raise when nothing completed."""
    trials = results.trials_frame(study)
    ranked = results.ranking(trials)
    if ranked.empty:
        raise ScaleSearchError(f"no candidate completed in study {study.study_name!r}; see the status column of "
                               "scalesearch show --all")
    if plan.report.latency is not None:
        _time_family(plan, study, ranked.iloc[0], progress or Progress())
    doc = export.coefficients_document(study, ranked, plan.base)
    results.write_set(plan.results_dir, trials, ranked, {"coefficients.json": export.json_text(doc)})
    return SearchResult(plan, study, trials, ranked, race.verdict(trials, race.space_ranges(study.user_attrs["config"])), doc)


def _time_family(plan: Plan, study: optuna.Study, w: pd.Series, progress: Progress) -> None:
    """Under the latency constraint, the winner's family φ = 0 … 7 timed too (cached), for the export: members whose
    one pass is estimated over FAMILY_PASS_LIMIT_S are left out, and `progress` hears the estimate and each member."""
    from .family_timing import FAMILY_PASS_LIMIT_S, time_family
    from .plan import latency_meter

    winner = [float(w.alpha), float(w.beta), float(w.gamma)]
    if study.user_attrs.get("family_latency", {}).get("winner") == winner:
        return
    meter = latency_meter(plan.options, plan.space)
    timed = time_family(plan.base, *winner, list(range(8)), meter, FAMILY_PASS_LIMIT_S, progress.note)
    study.set_user_attr("family_latency", {"winner": winner, "conditions": meter.conditions.__dict__, "rows": timed.rows,
                                           "skipped": timed.skipped})


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
    have = {record.slot(t) for t in study.get_trials(deepcopy=False) if record.is_done(t)}
    added = 0
    for c in candidates:
        for seed in seed_list(plan.space) if seeds is None else seeds:
            if (record.key(c), seed, phi) in have:
                continue
            record.enqueue(study, c, seed, phi)
            added += 1
    return added


def progress_counts(plan: Plan, study: optuna.Study) -> tuple[int, int]:
    """(trials done, trials planned) for this run."""
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("unqueued")]
    done = sum(1 for t in trials if t.state.is_finished() and record.is_done(t))
    if plan.grid:
        return done, len(plan.report.feasible) * plan.space.proxy.seeds
    return done, min(plan.space.trials, manifold_size(plan.space, plan.base)) * plan.space.proxy.seeds


def execute(options: RunOptions, progress: Progress | None = None, started: float | None = None) -> tuple[Plan, optuna.Study]:
    """Prepare, create or resume the study, queue the grid and train round after round until the answer is
    resolved, nothing more would help or the space's time budget (counted from `started`, a
    ``time.monotonic()`` reading) is spent.

    KeyboardInterrupt propagates after the current trial is marked interrupted;
    running the same options again picks up where it stopped.
    """
    progress = progress or Progress()
    device = proxy.pick_device(options.device)
    budget = TimeBudget(0.0, **({} if started is None else {"started": started}))
    plan, study = start(options, progress)
    budget.seconds = plan.space.time
    done, total = progress_counts(plan, study)
    progress.start(plan, total, done)
    worker = Worker(plan, study, device, progress, options.compile, budget)
    if total > done or budget.limited:  # a resume plans its rounds from this host's pace too
        budget.pace_hint = worker.expected_seconds(1) / _mean_macs(plan)
    if total > done:
        progress.note(expected_line(budget.pace_hint * _mean_macs(plan) * (total - done), total - done, device, budget))
    progress.clock(budget)
    worker.work()
    while queue_next_round(plan, study, progress, budget):
        worker.work()
    if budget.spent_out and not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        raise ScaleSearchError(f"the time budget ({budget.seconds / 60:g} min) was spent before any candidate trained "
                               f"({budget.elapsed() / 60:.1f} min went to preparing the run); give more --time: the same "
                               "command resumes, and a latency measurement is cached")
    if budget.spent_out:
        waiting = sum(1 for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.WAITING)
        progress.note(f"time budget spent after {budget.elapsed() / 60:.1f} min" + (
            f": {waiting} queued trials left untrained (the same command with more --time resumes them)" if waiting else ""))
    return plan, study


def _mean_macs(plan: Plan) -> float:
    return sum(a.macs_proxy for a in plan.report.feasible) / len(plan.report.feasible)


def expected_line(seconds: float, trials: int, device: torch.device, budget: TimeBudget | None = None) -> str:
    """The run's expected time in words: the first round's, and what the budget leaves for the rounds after it."""
    first = (f"expected: about {max(1, round(seconds / 60))} min on {device} for the {trials} trials of the first round "
             "(every network once; timed from a few training steps)")
    if budget is None or not budget.limited:
        return first + "; later rounds follow the 95% set until it holds one network or the seeds reach max_seeds"
    if seconds > budget.left():
        return (first + f"; WARNING: more than the time budget ({budget.describe()}): the run stops when it is spent, "
                "with some networks untrained (the same command resumes)")
    return first + f"; the rest of the {budget.describe().split(' of ')[1]} budget goes to the 95% set"


def queue_next_round(plan: Plan, study: optuna.Study, progress: Progress | None = None,
                     budget: TimeBudget | None = None) -> int:
    """Queue what the race (:func:`scalesearch.race.next_round`) asks for next, as far as the time budget
    allows; returns how many trials."""
    s = plan.space
    if not plan.grid:
        return 0
    trials = results.trials_frame(study)
    if progress and (fit := race.fit(trials)) is not None:
        progress.standing(fit, race.members(trials))
    name, todo = race.next_round(trials, seed_list(s), s.proxy.max_seeds, s.contenders, s.phi2)
    if budget is not None and budget.limited:
        todo = budget.take(_priced(plan, study, budget, todo))
    added = sum(enqueue(plan, study, [Candidate(a, b, g)], phi=phi, seeds=[seed]) for a, b, g, seed, phi in todo)
    if added and progress:
        progress.round(name, added)
    return added


def _priced(plan: Plan, study: optuna.Study, budget: TimeBudget, todo: list) -> list:
    """Each queued (α, β, γ, seed, φ) with its expected seconds; a twin of one already priced costs nothing."""
    seen, priced = set(), []
    for a, b, g, seed, phi in todo:
        c = Candidate(a**phi, b**phi, g**phi)
        assessed = assess(plan.base, c, plan.space.proxy.resolution, plan.data.num_classes, plan.data.in_channels,
                          plan.space.proxy.width)
        net = record.network_key(candidate_spec(plan.base, c, assessed.proxy_resolution, plan.space.proxy.width))
        priced.append(((a, b, g, seed, phi), 0.0 if (net, seed) in seen else budget.trial_seconds(study, assessed.macs_proxy)))
        seen.add((net, seed))
    return priced


def start(options: RunOptions, progress: Progress | None = None) -> tuple[Plan, optuna.Study]:
    """Prepare, create or resume the study and queue the grid; workers (this process or others) train it."""
    plan = prepare(options, on_latency=progress.latency if progress else None)
    study = open_study(plan)
    if plan.grid:
        enqueue_grid(plan, study)
    return plan, study


def join(study_name: str, storage_url: str, device: str = "auto", progress: Progress | None = None,
         compile: bool = False) -> tuple[int, int]:
    """Train a study's queued trials in this process (``scalesearch worker``); returns (done, planned) after."""
    plan, study = load(storage_url, study_name)
    dev = proxy.pick_device(device)
    progress = progress or Progress()
    progress.start(plan, *reversed(progress_counts(plan, study)))
    Worker(plan, study, dev, progress, compile).work()
    return progress_counts(plan, study)


def verify(plan: Plan, study: optuna.Study, candidates: list[Candidate], phi: float = 2, device: str = "auto",
           progress: Progress | None = None, base_run: bool = True, compile: bool = False) -> None:
    """Train `candidates` again at `phi` (coefficients to the power φ) in the same study.

    `base_run` also trains the base itself (φ = 0, stored as α = β = γ = 1), the
    reference point of the scaling fit in :mod:`scalesearch.extrapolate`.
    """
    from .validate import check_phi, require_training_memory

    progress = progress or Progress()
    dev = proxy.pick_device(device)  # everything is checked before anything is queued
    require_training_memory(plan.base, candidates, plan.space, plan.data.num_classes, plan.data.in_channels, dev,
                            (check_phi(phi),))
    enqueue(plan, study, candidates, phi=phi)
    if base_run:
        enqueue(plan, study, [Candidate(1.0, 1.0, 1.0)], phi=0)
    waiting = sum(1 for t in study.get_trials(deepcopy=False) if t.state == TrialState.WAITING)
    progress.start(plan, waiting, 0)
    Worker(plan, study, dev, progress, compile).work()


__all__ = ["SearchResult", "run", "finish", "execute", "start", "enqueue", "enqueue_grid", "queue_next_round",
           "progress_counts", "join", "verify", "RunOptions", "load", "load_recorded"]
