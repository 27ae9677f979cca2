"""A worker: one process's share of a study, popping queued trials and training each candidate on one device.

A trial's life: take it from the queue, cost the trained member (:mod:`scalesearch.space`),
reuse a twin's result when the same network was already trained with the same seed,
else train the proxy (:mod:`scalesearch.proxy`) and record the outcome
(:mod:`scalesearch.results`). Ctrl-C or SIGTERM stop at a safe point and put the
current candidate back in the queue; a divergence or a run that did not learn fails
the trial with its reason and no traceback.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from ..device import configure
from ..proxy import _train as proxy
from ..arch._spec import network_key
from ..results import _record as record
from . import _queue as queue
from ..space._candidates import Candidate, at_base_width, candidate_spec
from ..data._batches import DeviceData
from ..data._load import subset
from ._plan import Plan, seed_list
from ._progress import Progress
from ..space._sampling import manifold_size, suggest
from ._schedule import TimeBudget
from ._storage import has_heartbeats
from ._pool import is_closed as pool_closed

log = logging.getLogger(__name__)
POOL_WAIT_S = 0.5  # how often an idle worker of a run's pool looks for the next round


@dataclass
class Worker:
    """One process's share of a study: pops trials and trains them on one device."""

    plan: Plan
    study: optuna.Study
    device: torch.device
    progress: Progress = field(default_factory=Progress)
    compile: bool = False
    budget: TimeBudget | None = None  # the run's time budget: no trial starts that would not end in time
    pool: str | None = None  # the token of the run that started this worker: wait for its rounds until it closes

    def __post_init__(self) -> None:
        configure(self.device)
        self._data: dict[int, DeviceData] = {}
        self.stopping = threading.Event()  # Ctrl-C or SIGTERM seen

    def data(self, seed: int) -> DeviceData:
        """Seed `seed`'s training subset (and the shared val images) on the device.

        Every candidate trained with one seed sees the same images, order, augmentation
        and init seed (common random numbers), so differences between candidates are not
        differences between data samples; another seed draws another subset.
        """
        if seed not in self._data:
            self._data.clear()  # racing goes seed by seed: keep one subset on the device
            p = self.plan.space.proxy
            ds = subset(self.plan.data, min(p.train, len(self.plan.data.train_y)), None, seed)
            self._data[seed] = DeviceData(ds, self.device)
        return self._data[seed]

    def seconds_per_mac(self) -> float:
        """Rough wall seconds of one trial per proxy multiply-add of its network, from a few timed steps.

        The median-cost feasible candidate is timed; a trial trains its images and evaluates (a
        forward pass, about a third of a step), and its cost scales with its network's multiply-adds.
        """
        plan, p = self.plan, self.plan.space.proxy
        feasible = sorted(plan.report.feasible, key=lambda a: a.macs_proxy)
        median = feasible[len(feasible) // 2]
        spec = candidate_spec(plan.base, median.candidate, median.proxy_resolution, p.width)
        data = self.data(p.seed)
        per_image = proxy.seconds_per_image(spec, data, p, median.proxy_resolution)
        images = p.epochs * data.num_train + (data.num_val + proxy.BN_CALIBRATION_IMAGES) / 3
        return images * per_image / median.macs_proxy

    def work(self) -> None:
        """Run trials until the queue (grid) or the trial budget (other samplers) is used up.

        Ctrl-C (SIGINT) or SIGTERM stops at a safe point, then raises KeyboardInterrupt: in
        the middle of a candidate, at its next training step, its trial is marked interrupted
        and the candidate queued again; between candidates (Optuna taking or closing a trial,
        waiting for others) the worker finishes that step first, so no trial is left RUNNING
        without a heartbeat.
        """
        # Ctrl-C is no error: keep Optuna's "trial failed" warning and its traceback off the screen.
        # A failed candidate is reported once by the progress (its reason); Optuna's NaN warning would repeat it.
        optuna_log = logging.getLogger("optuna.study._optimize")
        quiet = lambda entry: not self.stopping.is_set() and not _is_nan_warning(entry.getMessage())
        optuna_log.addFilter(quiet)
        try:
            with self._stop_safely():
                if not self._finished():
                    self.study.optimize(self._objective, n_trials=None,
                                        callbacks=[self._stop_when_finished], gc_after_trial=False)
        finally:
            optuna_log.removeFilter(quiet)
        if self.stopping.is_set():
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def _stop_safely(self) -> Iterator[None]:
        # The handler only raises a flag, which the training loop checks each step: an exception raised in
        # the handler itself could land in a database write, or in a finalizer that swallows it, and the
        # worker would then train on to the end of its candidate.
        def on_signal(signum: int, frame: Any) -> None:
            self.stopping.set()

        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield
            return
        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _finished(self) -> bool:
        """Nothing left to ask for; with heartbeats, also nothing left RUNNING elsewhere; in a run's pool, also
        the pool closed (the run plans each round while its workers wait).

        A RUNNING trial may belong to a worker that died: Optuna fails it (and the retry
        callback queues it again) only when a live worker checks for stale trials, so this
        worker polls once a second until every RUNNING trial has finished or been
        re-queued, and then takes the re-queued one.
        """
        while not self.stopping.is_set():
            trials = self.study.get_trials(deepcopy=False)
            if any(t.state == TrialState.WAITING for t in trials):
                return not self._in_time(trials)
            if not self.plan.grid:
                proposed = {c.key for t in trials if (c := queue.candidate(t)) and queue.is_done(t) and t.user_attrs.get("phi", 1) == 1}
                if len(proposed) < min(self.plan.space.trials, manifold_size(self.plan.space, self.plan.base)):
                    return False
            waiting_for_run = self.pool is not None and self.plan.grid and not self._pool_over()
            if not waiting_for_run and (not has_heartbeats(self.plan.storage_url)
                                        or not any(t.state == TrialState.RUNNING for t in trials)):
                return True
            self.stopping.wait(POOL_WAIT_S if waiting_for_run else 1.0)
            if has_heartbeats(self.plan.storage_url):
                with warnings.catch_warnings():  # experimental since Optuna 2.9, as optimize() uses it
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(self.study)
        return True

    def _pool_over(self) -> bool:
        """The run that started this worker closed its pool, or its time is spent."""
        return pool_closed(self.study, self.pool) or (self.budget is not None and self.budget.left() <= 0)

    def _in_time(self, trials: list) -> bool:
        """Whether the next queued trial should still end within the time budget (the queue stays for a resume)."""
        if self.budget is None or not self.budget.limited:
            return True
        waiting = [t for t in trials if t.state == TrialState.WAITING]
        c = queue.candidate(waiting[0]) if waiting else None
        if c is None:
            return True
        phi = waiting[0].user_attrs.get("phi", 1)
        a = self.plan.proxy_cost(Candidate(c.alpha**phi, c.beta**phi, c.gamma**phi))
        return self.budget.allows(self.budget.trial_seconds(self.study, a.macs_proxy))

    def _stop_when_finished(self, study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        if self._finished():
            study.stop()

    def _objective(self, trial: optuna.Trial) -> float:
        """Evaluate one candidate; on a stop, mark the trial interrupted and queue the candidate again."""
        try:
            if self.stopping.is_set():  # the stop came while Optuna was handing out this trial
                raise KeyboardInterrupt
            return self._evaluate(trial)
        except KeyboardInterrupt:  # from _step, or Ctrl-C in a thread without the handler
            self.stopping.set()
            self._put_back(trial, "interrupted")
            self.progress.finished("interrupted", None)
            raise

    def _evaluate(self, trial: optuna.Trial) -> float:
        plan, space = self.plan, self.plan.space
        queued = bool(trial.user_attrs.get("queued"))
        if queued:  # grid points, later seeds and φ = 2 checks carry their candidate in user attributes
            c = Candidate(trial.user_attrs["alpha"], trial.user_attrs["beta"], trial.user_attrs["gamma"])
        elif plan.grid:
            # Another worker emptied the queue between our check and our ask; the
            # callback then decides whether to wait for running trials or stop.
            trial.set_user_attr("unqueued", True)
            raise optuna.TrialPruned("grid exhausted")
        else:
            c = suggest(trial, space, plan.base)
        phi = trial.user_attrs.get("phi", 1)
        trained = Candidate(c.alpha**phi, c.beta**phi, c.gamma**phi)  # φ = 2 for transfer checks
        seed = int(trial.user_attrs.get("seed", space.proxy.seed))
        if self._covered(trial, (c.key, seed, phi)):
            # Two `run`s that start together both queue the grid, or a sampler proposed a point
            # again: the later copy stands aside and does not count.
            trial.set_user_attr("unqueued", True)
            raise optuna.TrialPruned("already evaluated")
        a = plan.proxy_cost(trained)
        if phi == 1 and plan.report.latency is not None:  # measured for the search's own points only
            a = plan.report.latency.annotate(a)
        for k, v in queue.queue_attrs(c, seed, phi).items():  # a sampler's trial was not queued with its slot
            if k != "queued" and trial.user_attrs.get(k) != v:
                trial.set_user_attr(k, v)
        spec = candidate_spec(plan.base, trained, a.proxy_resolution, space.proxy.width)
        where = {"device": str(self.device), "worker": f"{socket.gethostname()}:{os.getpid()}"}  # who trains it
        record.write(trial, "cost", record.cost_attrs(a) | record.shape_attrs(spec) | {"network": network_key(spec)} | where)
        self.progress.candidate(trained, seed, a.proxy_resolution, space.proxy.epochs)
        twin = self._twin(trial, spec, seed)
        if twin is not None:
            if not queued and not plan.grid:
                self._queue_other_seeds(c, seed)
            return self._share(trial, twin)
        accs: list[float] = []
        score = (lambda acc, loss: -loss) if space.proxy.score == "loss" else (lambda acc, loss: acc)

        def on_epoch(epoch: int, acc: float, loss: float) -> None:
            accs.append(acc)
            if epoch + 1 < space.proxy.epochs:  # a pruned trial keeps its curve; the last epoch's is in the result
                trial.set_user_attr("val_acc", accs)
            self.progress.epoch(epoch, acc)
            # Step = epochs trained, so the pruners' min_resource=1 rung falls after the first epoch;
            # after the last one there is nothing left to save, and the trial should count as complete.
            trial.report(score(acc, loss), epoch + 1)
            if epoch + 1 < space.proxy.epochs and trial.should_prune():
                self.progress.finished("pruned", acc)
                raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")

        data = self.data(seed)
        reference = at_base_width(plan.base, trained, a.proxy_resolution, space.proxy.width)
        try:
            r = proxy.train(spec, data, space.proxy, a.proxy_resolution, seed, on_epoch=on_epoch, on_step=self._step,
                            compile=self.compile, every_epoch=space.pruner != "none", reference=reference)
            proxy.require_learning(r, data.num_classes, data.num_val)
        except proxy.Diverged as exc:
            return self._fail(trial, f"diverged: {exc}")
        except proxy.DidNotLearn as exc:
            return self._fail(trial, str(exc))
        except _OutOfTime:
            return self._out_of_time(trial)
        except torch.OutOfMemoryError:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return self._fail(trial, f"out of memory on {self.device} at {a.proxy_resolution} px")
        record.write(trial, "result", {
            "val_acc": r.val_acc, "val_loss": r.val_loss, "train_loss": r.train_loss, "seconds": r.seconds,
            "best_acc": max(r.val_acc), "train_images": r.train_images,
            # without a pruner only the last epoch is evaluated
            "best_epoch": r.best_epoch + 1 if space.pruner != "none" else space.proxy.epochs})
        if not queued and not plan.grid:
            self._queue_other_seeds(c, seed)
        self.progress.finished("complete", r.final_acc)
        return score(r.final_acc, r.val_loss[-1])

    def _step(self, step: int, steps: int) -> None:
        """Progress, a stop asked for by Ctrl-C or SIGTERM, and the budget's hard edge: a trial that the host's
        pace let start but that a slowdown (another job taking the cores) drags past the time left stops here,
        not after the budget."""
        self.progress.step(step, steps)
        if self.stopping.is_set():
            raise KeyboardInterrupt
        if self.budget is not None and self.budget.limited and self.budget.left() < 0:
            raise _OutOfTime

    def _out_of_time(self, trial: optuna.Trial) -> float:
        """Stop a trial the budget ran out on: queued again for a resume, and no more trials start."""
        self._put_back(trial, queue.OUT_OF_TIME)
        self.budget.spent_out = True
        self.progress.finished("stopped", None)
        return math.nan

    def _put_back(self, trial: optuna.Trial, reason: str) -> None:
        """Mark a trial stopped for a retryable `reason` and queue its slot again at once, for a live worker or the rerun."""
        trial.set_user_attr("fail_reason", reason)
        if trial.user_attrs.get("queued"):
            queue.requeue(self.study, trial)

    def _covered(self, trial: optuna.Trial, key: tuple) -> bool:
        """Whether an earlier trial already stands for this (candidate, seed, φ)."""
        return any(t.number < trial.number and queue.is_done(t) and queue.slot(t) == key
                   for t in self.study.get_trials(deepcopy=False))

    def _twin(self, trial: optuna.Trial, spec, seed: int) -> optuna.trial.FrozenTrial | None:
        """A finished trial (complete or pruned) that trained this very network with this seed.

        Depth and width round, so neighbouring (α, β, γ) often build the same proxy
        network (24 feasible points, 19 networks for B0 at 2x); training it again with
        the same seed and data would repeat the same result at full cost.
        """
        key = network_key(spec)
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            a = record.read(t)
            if (a.get("network") == key and a.get("seed") == seed and "shared_from" not in a and a.get("val_acc")
                    and t.number != trial.number):
                return t
        return None

    def _share(self, trial: optuna.Trial, twin: optuna.trial.FrozenTrial) -> float:
        """Record the twin's outcome as this candidate's own, with the link and no training time."""
        shared = record.read(twin)
        accs = shared["val_acc"]
        for step, value in twin.intermediate_values.items():
            trial.report(value, step)
        record.write(trial, "result", {k: shared[k] for k in ("val_acc", "val_loss", "train_loss", "best_epoch", "best_acc")
                                       if k in shared} | {"seconds": 0.0, "shared_from": twin.number})
        if twin.state == TrialState.PRUNED:
            self.progress.finished("pruned", accs[-1])
            raise optuna.TrialPruned(f"same network as trial {twin.number}, pruned after epoch {len(accs)}")
        self.progress.finished("complete", accs[-1])
        return float(twin.value)

    def _fail(self, trial: optuna.Trial, reason: str) -> float:
        """Record why the candidate has no score; NaN makes Optuna fail the trial without a traceback."""
        trial.set_user_attr("fail_reason", reason)
        self.progress.finished("failed", None)
        self.progress.failed(reason)
        return math.nan

    def _queue_other_seeds(self, c: Candidate, seed: int) -> None:
        for s in seed_list(self.plan.space):
            if s != seed:
                queue.enqueue_one(self.study, c, s, phi=1)



class _OutOfTime(Exception):
    """The time budget ran out in the middle of a training run."""


def _is_nan_warning(message: str) -> bool:
    """Optuna's two warnings for an objective that returned NaN (a candidate failed with a recorded reason)."""
    return "failed with value nan" in message or "The value nan is not acceptable" in message
