"""The search: queue the grid, train it with workers, race the close candidates, and write the answer.

:func:`run` is the whole job behind ``scalesearch run``: it validates the options
(:mod:`scalesearch.search`), creates or resumes the Optuna study, queues every feasible
(candidate, seed) once, trains them (:mod:`scalesearch.search`, or several processes with
:mod:`scalesearch.search`), queues the race's further rounds (:mod:`scalesearch.stats`) until
it is settled, and writes ``trials.csv``, ``ranking.csv`` and ``coefficients.json``.
Running the same options again resumes: nothing complete is retrained.

With the grid sampler every feasible point is enqueued once, so any number of workers on
the same storage pop distinct candidates; other samplers propose points on the budget
manifold (:func:`scalesearch.space.suggest`). With an RDB storage, workers send
heartbeats; a trial whose worker died is failed after the grace period and re-queued.

>>> import scalesearch
>>> result = scalesearch.run("tiny-mbconv", data="synthetic:64", epochs=1, seeds=1, max_seeds=1,
...                          results_dir="/tmp/scalesearch-doctest", restart=True)  # doctest: +SKIP
>>> result.winner.alpha, result.verdict.words  # doctest: +SKIP
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

import optuna
import pandas as pd
import torch
from optuna.trial import TrialState

from ..results import _export as export
from ..results import _family as family
from ..stats import _race as race
from ..results import _ranking as results
from ..arch._spec import BaseNetwork, base_toml
from ..space._candidates import Candidate
from ..data._load import Dataset
from ..device import pick_device
from ..errors import ScaleSearchError
from ..files import write_text
from ..limits import check_phi
from ..proxy._memory import require_training_memory
from ._family_timing import FAMILY_PASS_LIMIT_S, time_family
from ._plan import Plan, RunOptions, latency_meter, load, restart as restart_study
from ._progress import Progress
from ._schedule import TimeBudget, settle
from ..space._space import SearchSpace, space_toml
from ._queue import enqueue, priced, progress_counts, queue_next_round, queued_slots, start
from ._worker import Worker
from . import _pool as pool
from ._pool import POOL_ENV

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
        progress: Progress | None = None, workers: int | None = None, devices: str | None = None, restart: bool = False,
        **options: Any) -> SearchResult:
    """Search (α, β, γ) for `base` under `budget` and write the results; the Python form of ``scalesearch run``.

    `options` are :class:`~scalesearch.search.RunOptions` fields (``data``, ``device``, ``epochs``,
    ``seeds``, ``results_dir``, ``storage`` …), as the CLI's options. `base` and `space` may be
    objects; they are written to ``<results_dir>/inputs/`` as TOML so the study can be resumed and read back.
    ``data`` may be a :class:`~scalesearch.data.Dataset` (your own tensors): it trains in this process, and
    only a call with the same object resumes the study (``show`` and ``export`` read it as any other).
    `workers` > 1 or `devices` trains in that many processes on this machine; None (the default) starts
    one per core on the CPU and trains in this process on a GPU (:func:`~scalesearch.search.auto_workers`). Raises
    :class:`~scalesearch.errors.ScaleSearchError` for anything the user can fix, before anything is written.
    """
    unknown = sorted(set(options) - {f.name for f in fields(RunOptions)} - {"base", "space", "budget"})
    if unknown:
        raise ScaleSearchError(f"unknown option {unknown[0]!r}; expected one of {', '.join(f.name for f in fields(RunOptions))}")
    folder = Path(options.get("results_dir", "results"))
    opts = RunOptions(base=as_file(base, folder, "base"), space=as_file(space, folder, "space"), budget=budget, **options)
    in_process = isinstance(opts.data, Dataset)
    if in_process and (workers not in (None, 1) or devices is not None):
        raise ScaleSearchError("a Dataset object trains in this process only: give workers=1 (or save it as an "
                               "image folder and pass its path)")
    started = time.monotonic()  # the time budget counts from here
    workers = pool.worker_count(workers, devices, opts.device, in_process)
    progress = progress or Progress()
    if restart:
        progress.note(restart_study(opts))
    if workers == 1 and devices is None:
        plan, study = execute(opts, progress, started)
    else:
        layout = pool.slots(workers, devices, opts.device)
        plan, study = pool.run(lambda p: start(opts, p), queue_next_round, layout, progress, started,
                               pool_announcer(SEARCH_ROUNDS, progress, layout[0].threads))
    return finish(plan, study, progress)


def as_file(value: Any, folder: Path, kind: str) -> str:
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
    return SearchResult(plan, study, trials, ranked, results.study_verdict(study, trials), doc)


def _time_family(plan: Plan, study: optuna.Study, w: pd.Series, progress: Progress) -> None:
    """Under the latency constraint, the winner's family φ = 0 … 7 timed too (cached), for the export: members whose
    one pass is estimated over FAMILY_PASS_LIMIT_S are left out, and `progress` hears the estimate and each member."""
    winner = [float(w.alpha), float(w.beta), float(w.gamma)]
    if study.user_attrs.get("family_latency", {}).get("winner") == winner:
        return
    meter = latency_meter(plan.options, plan.space)
    timed = time_family(plan.base, *winner, list(range(8)), meter, FAMILY_PASS_LIMIT_S, progress.note)
    study.set_user_attr("family_latency", {"winner": winner, "conditions": meter.conditions.__dict__, "rows": timed.rows,
                                           "skipped": timed.skipped})


@dataclass(frozen=True)
class Rounds:
    """What a study trains after its first round (``next`` queues a round, 0 when none is left) and, in words, what
    for: the expected-time line says where the rest of the time budget goes."""

    next: Callable[[Plan, optuna.Study, Progress, TimeBudget], int]
    goal: str  # what later rounds serve, e.g. "the 95% set"
    until: str  # when they stop without a time budget


SEARCH_ROUNDS = Rounds(queue_next_round, "the 95% set and, in turn, every network",
                       "the answer is resolved or every network has max_seeds")


def execute(options: RunOptions, progress: Progress | None = None, started: float | None = None) -> tuple[Plan, optuna.Study]:
    """Prepare, create or resume the study, queue the grid and train round after round until the answer is
    resolved, nothing more would help or the space's time budget (counted from `started`, a
    ``time.monotonic()`` reading) is spent.

    KeyboardInterrupt propagates after the current trial is marked interrupted;
    running the same options again picks up where it stopped.
    """
    pick_device(options.device)  # refused before anything is prepared
    return train_rounds(lambda p: start(options, p), SEARCH_ROUNDS, progress, started)


def train_rounds(begin: Callable[[Progress], tuple[Plan, optuna.Study]], rounds: Rounds, progress: Progress | None = None,
                 started: float | None = None) -> tuple[Plan, optuna.Study]:
    """The anytime loop of a study in this process: `begin` creates or resumes it with its first round queued,
    then the worker trains and `rounds` queues the next round, as this host's measured pace lets the plan's
    time budget (counted from `started`) allow. It prints the expected time before training."""
    progress = progress or Progress()
    budget = TimeBudget(0.0, **({} if started is None else {"started": started}))
    plan, study = begin(progress)
    device = pick_device(plan.options.device)
    budget.seconds = plan.space.time
    done, total = progress_counts(plan, study)
    progress.start(plan, total, done)
    worker = Worker(plan, study, device, progress, plan.options.compile, budget)
    announce(plan, study, budget, progress, rounds, worker)
    progress.clock(budget)
    worker.work()
    while rounds.next(plan, study, progress, budget):
        worker.work()
    if note := settle(budget, study):
        progress.note(note)
    return plan, study


def announce(plan: Plan, study: optuna.Study, budget: TimeBudget, progress: Progress, rounds: Rounds, worker: Worker) -> None:
    """Time a few training steps with `worker` (the budget's pace until a trial has finished) and print the expected
    time of what is queued, laid out on the budget's slots."""
    done, total = progress_counts(plan, study)
    if total > done or budget.limited:  # a resume plans its rounds from this host's pace too
        budget.pace_hint = worker.seconds_per_mac()
    if total > done:
        costs = [seconds for _, seconds in priced(plan, study, budget, queued_slots(study))]
        progress.note(expected_line(budget.makespan(costs), total - done, worker.device, budget, rounds,
                                    sum(c > 0 for c in costs), budget.slots))


def pool_announcer(rounds: Rounds, progress: Progress, threads: int) -> Callable[[Plan, optuna.Study, TimeBudget], None]:
    """:func:`announce` for a pool of worker processes: timed in this process on one worker's `threads`."""
    def go(plan: Plan, study: optuna.Study, budget: TimeBudget) -> None:
        previous = torch.get_num_threads()
        worker = Worker(plan, study, pick_device(plan.options.device))
        torch.set_num_threads(threads)
        try:
            announce(plan, study, budget, progress, rounds, worker)
        finally:
            torch.set_num_threads(previous)
    return go


def expected_line(seconds: float, trials: int, device: torch.device, budget: TimeBudget | None = None,
                  rounds: Rounds = SEARCH_ROUNDS, trainings: int | None = None, workers: int = 1) -> str:
    """The run's expected time in words: the first round's, and what the budget leaves for the rounds after it."""
    shared = f"{trainings} trainings, twins sharing one; " if trainings is not None and trainings < trials else ""
    where = f"{workers} worker processes on {device}" if workers > 1 else str(device)
    first = (f"expected: about {max(1, round(seconds / 60))} min on {where} for the {trials} trials of the first round "
             f"({shared}every network once; timed from a few training steps)")
    if budget is None or not budget.limited:
        return first + f"; later rounds follow {rounds.goal} until {rounds.until}"
    if seconds > budget.left():
        return (first + f"; WARNING: more than the time budget ({budget.describe()}): the run stops when it is spent, "
                "with some networks untrained (the same command resumes)")
    return first + f"; the rest of the {budget.describe().split(' of ')[1]} budget goes to {rounds.goal}"


def join(study_name: str, storage_url: str, device: str = "auto", progress: Progress | None = None,
         compile: bool = False, reopen: Callable[[str, str], tuple[Plan, optuna.Study]] = load) -> tuple[int, int]:
    """Train a study's queued trials in this process (``scalesearch worker``); returns (done, planned) after.

    `reopen` (storage URL, study name) rebuilds the plan a study recorded: :func:`load` for a search.
    A worker started by a run (``--workers``) keeps to that run's time budget (:meth:`TimeBudget.from_env`)."""
    plan, study = reopen(storage_url, study_name)
    dev = pick_device(device)
    progress = progress or Progress()
    progress.start(plan, *reversed(progress_counts(plan, study)))
    budget = TimeBudget.from_env()
    worker = Worker(plan, study, dev, progress, compile, budget, os.environ.get(POOL_ENV) or None)
    if budget is not None and budget.pace(study) is None:  # neither a finished trial nor the run's own timing
        budget.pace_hint = worker.seconds_per_mac()
    worker.work()
    return progress_counts(plan, study)


def verify(plan: Plan, study: optuna.Study, candidates: list[Candidate], phi: float = 2, device: str = "auto",
           progress: Progress | None = None, base_run: bool = True, compile: bool = False) -> None:
    """Train `candidates` again at `phi` (coefficients to the power φ) in the same study.

    `base_run` also trains the base itself (φ = 0, stored as α = β = γ = 1), the
    reference point of the scaling fit in :mod:`scalesearch.results`.
    """
    progress = progress or Progress()
    dev = pick_device(device)  # everything is checked before anything is queued
    require_training_memory(plan.base, candidates, plan.space, plan.data.num_classes, plan.data.in_channels, dev,
                            (check_phi(phi),))
    enqueue(plan, study, candidates, phi=phi)
    if base_run:
        enqueue(plan, study, [Candidate(1.0, 1.0, 1.0)], phi=0)
    waiting = sum(1 for t in study.get_trials(deepcopy=False) if t.state == TrialState.WAITING)
    progress.start(plan, waiting, 0)
    Worker(plan, study, dev, progress, compile).work()


__all__ = ["Rounds", "SEARCH_ROUNDS", "SearchResult", "announce", "as_file", "run", "finish", "execute", "pool_announcer",
           "train_rounds", "join",
           "verify"]
