"""The search driver: an Optuna study whose trials are proxy-trained candidates.

One trial is one (candidate, seed) pair. With the grid sampler every feasible
point is enqueued once, so any number of workers on the same storage pop
distinct candidates; other samplers propose points on the budget manifold
(:func:`scalesearch.space.suggest`). Every candidate's nominal and measured
cost, per-epoch accuracy and timing are stored as trial user attributes, so the
study alone is the record of the run.

Running the same options again resumes the study: nothing complete is retrained.
With an RDB storage, workers send heartbeats; a trial whose worker died is
failed after the grace period and re-queued (linked to the original).

>>> opts = RunOptions(base="tiny-mbconv", data="synthetic:64", epochs=1, results_dir="/tmp/scalesearch-doctest")
>>> plan = prepare(opts)  # validates everything, writes nothing
>>> plan.study_name, len(plan.report.feasible) > 0
('tiny-mbconv-2x-default-measured-synthetic', True)
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import math
import os
import re
import signal
import socket
import threading
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import TrialState

from . import __version__, fidelity, proxy, race, results
from .arch import BaseNetwork, NetworkSpec, load_base
from .data import Dataset, DeviceData, data_shape, load_data, subset
from .errors import ScaleSearchError
from .files import make_folder
from .provenance import check as check_provenance
from .space import (Candidate, GridReport, SearchSpace, assess, candidate_spec, feasible_grid, load_space, manifold_size,
                    parse_budget, require_feasible, resolution_for, suggest)
from .storage import open_storage, redact

log = logging.getLogger(__name__)

# Trials failed for these reasons are re-queued on resume; others (divergence, OOM) are final.
RETRYABLE = ("interrupted",)


@dataclass(frozen=True)
class RunOptions:
    """Everything `scalesearch run` takes; None means "as the search-space file says"."""

    base: str = "b0"
    space: str = "default"
    data: str = "embedded"
    device: str = "auto"
    compile: bool = False  # torch.compile the training step (long runs only)
    budget: str | float | None = None
    constraint: str | None = None
    tolerance: float | None = None
    sampler: str | None = None
    trials: int | None = None
    pruner: str | None = None
    epochs: int | None = None
    seeds: int | None = None
    max_seeds: int | None = None
    train: int | None = None
    val: int | None = None
    batch_size: int | None = None
    resolution: int | None = None
    study: str | None = None
    storage: str | None = None
    results_dir: str = "results"


@dataclass
class Plan:
    """A validated run: resolved space, base and data, the feasible grid, where the study lives."""

    options: RunOptions
    space: SearchSpace
    base: BaseNetwork
    data: Dataset  # the pool every seed draws its training subset from, and the fixed val images
    report: GridReport
    study_name: str
    storage_url: str
    results_dir: Path
    design: fidelity.ProxyDesign

    @property
    def grid(self) -> bool:
        return self.space.sampler == "grid"

    def config(self) -> dict[str, Any]:
        """The provenance stored in the study and carried into every export."""
        return {
            "scalesearch_version": __version__,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "options": asdict(self.options) | {"storage": redact(self.storage_url)},
            "base": {"name": self.base.name, "source": self.base.source or "preset", "resolution": self.base.resolution,
                     "width": self.base.width, "depth": self.base.depth},
            "space": {"name": self.space.name, "path": self.space.path, "budget": self.space.budget,
                      "tolerance": self.space.tolerance, "constraint": self.space.constraint,
                      "sampler": self.space.sampler, "trials": self.space.trials, "pruner": self.space.pruner,
                      "contenders": self.space.contenders, "phi2": self.space.phi2,
                      "alpha": asdict(self.space.alpha), "beta": asdict(self.space.beta), "gamma": asdict(self.space.gamma)},
            "proxy": asdict(self.space.proxy),
            "proxy_design": asdict(self.design),
            "data": {"spec": self.options.data, "name": self.data.name, "source": self.data.source,
                     "classes": self.data.num_classes, "channels": self.data.in_channels,
                     "train": len(self.data.train_y), "val": len(self.data.val_y)},
            "grid": {"points": self.report.total, "feasible_nominal": self.report.feasible_nominal,
                     "feasible_measured": self.report.feasible_measured},
        }


def default_study_name(base: BaseNetwork, space: SearchSpace, data_spec: str) -> str:
    parts = [base.name, f"{space.budget:g}x", space.name, space.constraint]
    if data_spec != "embedded":
        parts.append(data_spec.split(":")[0] if ":" in data_spec else Path(data_spec).name or data_spec)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))


def prepare(options: RunOptions) -> Plan:
    """Resolve and validate every option; raises ScaleSearchError, writes nothing."""
    overrides = {k: getattr(options, k) for k in ("constraint", "tolerance", "sampler", "trials", "pruner",
                                                    "epochs", "seeds", "max_seeds", "train", "val", "batch_size",
                                                    "resolution")}
    if options.budget is not None:
        overrides["budget"] = parse_budget(options.budget)
    space = load_space(options.space).with_overrides(**overrides)
    base = load_base(options.base)
    classes, channels = data_shape(options.data)
    report = feasible_grid(space, base, classes, channels)
    require_feasible(report, space)
    space, design = fidelity.resolve(space, base, [a.candidate for a in report.feasible], classes, channels)
    report = feasible_grid(space, base, classes, channels)
    p = space.proxy
    # Image folders are decoded at the largest side any trial trains at (φ = 2 members included), and only
    # the pool every seed draws its training subset from, plus the val images all seeds share.
    side = max(resolution_for(p.resolution, a.candidate.gamma ** 2) for a in report.feasible)
    data = load_data(options.data, side=side, train=p.train * p.max_seeds, val=p.val, seed=p.seed)
    name = options.study or default_study_name(base, space, options.data)
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise ScaleSearchError(f"--study must use letters, digits, '.', '_' or '-', got {name!r}")
    results_dir = Path(options.results_dir) / name
    url = options.storage or f"sqlite:///{results_dir / 'study.db'}"
    return Plan(options, space, base, data, report, name, url, results_dir, design)


def open_study(plan: Plan, create: bool = True) -> optuna.Study:
    """Create (or join) the study; the creator records the run's configuration."""
    if plan.storage_url.startswith("sqlite:///"):
        make_folder(Path(plan.storage_url[len("sqlite:///"):]).parent)
    storage = open_storage(plan.storage_url)
    pruner = make_pruner(plan.space.pruner, plan.space.proxy.epochs)
    sampler = make_sampler(plan.space.sampler, plan.space.proxy.seed)
    if not create:
        try:
            return optuna.load_study(study_name=plan.study_name, storage=storage, sampler=sampler, pruner=pruner)
        except KeyError:
            raise ScaleSearchError(f"no study {plan.study_name!r} in {redact(plan.storage_url)}") from None
    study = optuna.create_study(study_name=plan.study_name, storage=storage, sampler=sampler, pruner=pruner,
                                direction="maximize", load_if_exists=True)
    check_provenance(plan, study)  # a study run with other settings is never resumed
    if "config" not in study.user_attrs:
        study.set_user_attr("config", plan.config())
    return study


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    # grid trials are all enqueued; random only pads the rare race described in _objective
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, epochs), reduction_factor=2)
    return optuna.pruners.NopPruner()


def seed_list(space: SearchSpace, count: int | None = None) -> list[int]:
    """The seeds every candidate gets (or the first `count`): consecutive from the space's `seed`."""
    return [space.proxy.seed + k for k in range(space.proxy.seeds if count is None else count)]


def _key(c: Candidate) -> tuple[float, float, float]:
    return (round(c.alpha, 4), round(c.beta, 4), round(c.gamma, 4))


def trial_candidate(t: optuna.trial.FrozenTrial) -> Candidate | None:
    a = t.user_attrs
    if "alpha" not in a:
        return None
    return Candidate(a["alpha"], a["beta"], a["gamma"])


def _is_done(t: optuna.trial.FrozenTrial) -> bool:
    """A trial that counts for its (candidate, seed): anything but a retryable failure or a placeholder."""
    if t.user_attrs.get("unqueued"):
        return False
    if t.state == TrialState.FAIL:
        return t.user_attrs.get("fail_reason", "") not in RETRYABLE and "fail_reason" in t.user_attrs
    return True


def enqueue_grid(plan: Plan, study: optuna.Study) -> int:
    """Queue every feasible (candidate, seed) that has no trial yet; returns how many were added."""
    return enqueue(plan, study, [a.candidate for a in plan.report.feasible], phi=1)


def enqueue(plan: Plan, study: optuna.Study, candidates: list[Candidate], phi: int = 1,
            seeds: list[int] | None = None) -> int:
    """Queue each (candidate, seed) at `phi` that has no trial yet; returns how many were added.

    φ = 1 is the search itself; φ = 2 trains the coefficients squared (twins and contenders,
    and the transfer check). `seeds` defaults to the seeds every candidate gets.
    """
    have = {(_key(c), t.user_attrs.get("seed"), t.user_attrs.get("phi", 1)) for t in study.get_trials(deepcopy=False)
            if (c := trial_candidate(t)) and _is_done(t)}
    added = 0
    for c in candidates:
        for seed in seed_list(plan.space) if seeds is None else seeds:
            if (_key(c), seed, phi) in have:
                continue
            attrs = {"queued": True, "seed": seed, "phi": phi, "alpha": c.alpha, "beta": c.beta, "gamma": c.gamma}
            study.enqueue_trial({}, user_attrs=attrs, skip_if_exists=False)
            added += 1
    return added


def _is_nan_warning(message: str) -> bool:
    """Optuna's two warnings for an objective that returned NaN (a candidate failed with a recorded reason)."""
    return "failed with value nan" in message or "The value nan is not acceptable" in message


class Progress:
    """What a run reports as it goes; the CLI draws it with rich. Every hook is optional."""

    def start(self, plan: Plan, total: int, done: int) -> None: ...
    def candidate(self, c: Candidate, seed: int, resolution: int, epochs: int) -> None: ...
    def step(self, step: int, total: int) -> None: ...
    def epoch(self, epoch: int, acc: float) -> None: ...
    def finished(self, state: str, acc: float | None) -> None: ...
    def failed(self, reason: str) -> None: ...
    def round(self, name: str, queued: int) -> None: ...


@dataclass
class Worker:
    """One process's share of a study: pops trials and trains them on one device."""

    plan: Plan
    study: optuna.Study
    device: torch.device
    progress: Progress = field(default_factory=Progress)
    compile: bool = False

    def __post_init__(self) -> None:
        proxy.configure(self.device)
        self._data: dict[int, DeviceData] = {}
        self.stopping = threading.Event()  # Ctrl-C or SIGTERM seen
        self.training = False  # inside the objective, where a stop may interrupt at once

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

    def work(self) -> None:
        """Run trials until the queue (grid) or the trial budget (other samplers) is used up.

        Ctrl-C (SIGINT) or SIGTERM stops at a safe point, then raises KeyboardInterrupt: in
        the middle of a candidate, its trial is marked interrupted and the candidate queued
        again; between candidates (Optuna taking or closing a trial, waiting for others)
        the worker finishes that step first, so no trial is left RUNNING without a heartbeat.
        """
        # Ctrl-C is no error: keep Optuna's "trial failed" warning and its traceback off the screen.
        # A failed candidate is reported once by the progress (its reason); Optuna's NaN warning would repeat it.
        optuna_log = logging.getLogger("optuna.study._optimize")
        quiet = lambda record: not self.stopping.is_set() and not _is_nan_warning(record.getMessage())
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
        def on_signal(signum: int, frame: Any) -> None:
            self.stopping.set()
            if self.training:
                self.training = False
                raise KeyboardInterrupt

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
        """Nothing left to ask for; with heartbeats, also nothing left RUNNING elsewhere.

        A RUNNING trial may belong to a worker that died: Optuna fails it (and the retry
        callback queues it again) only when a live worker checks for stale trials, so this
        worker polls once a second until every RUNNING trial has finished or been
        re-queued, and then takes the re-queued one.
        """
        while not self.stopping.is_set():
            trials = self.study.get_trials(deepcopy=False)
            if any(t.state == TrialState.WAITING for t in trials):
                return False
            if not self.plan.grid:
                proposed = {_key(c) for t in trials if (c := trial_candidate(t)) and _is_done(t) and t.user_attrs.get("phi", 1) == 1}
                if len(proposed) < min(self.plan.space.trials, manifold_size(self.plan.space, self.plan.base)):
                    return False
            if not is_heartbeat_enabled(self.study._storage) or not any(t.state == TrialState.RUNNING for t in trials):
                return True
            self.stopping.wait(1.0)
            with warnings.catch_warnings():  # experimental since Optuna 2.9, as optimize() uses it
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.study)
        return True

    def _stop_when_finished(self, study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        if self._finished():
            study.stop()

    def _objective(self, trial: optuna.Trial) -> float:
        """Evaluate one candidate; on a stop, mark the trial interrupted and queue the candidate again."""
        try:
            self.training = True
            if self.stopping.is_set():  # the stop came while Optuna was handing out this trial
                raise KeyboardInterrupt
            return self._evaluate(trial)
        except KeyboardInterrupt:
            self.training = False
            self.stopping.set()
            trial.set_user_attr("fail_reason", "interrupted")
            if trial.user_attrs.get("queued"):  # back in the queue at once, for a live worker or the rerun
                self._requeue(trial)
            self.progress.finished("interrupted", None)
            raise
        finally:
            self.training = False

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
            c = suggest(trial, space, plan.base, plan.data.num_classes, plan.data.in_channels)
        phi = trial.user_attrs.get("phi", 1)
        trained = Candidate(c.alpha**phi, c.beta**phi, c.gamma**phi)  # φ = 2 for transfer checks
        seed = int(trial.user_attrs.get("seed", space.proxy.seed))
        if self._covered(trial, (_key(c), seed, phi)):
            # Two `run`s that start together both queue the grid, or a sampler proposed a point
            # again: the later copy stands aside and does not count.
            trial.set_user_attr("unqueued", True)
            raise optuna.TrialPruned("already evaluated")
        a = assess(plan.base, trained, space.proxy.resolution, plan.data.num_classes, plan.data.in_channels, space.proxy.width)
        for k, v in {"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma, "phi": phi, "seed": seed, "nominal": a.nominal,
                     "measured_target": a.measured_target, "measured_proxy": a.measured_proxy,
                     "target_resolution": a.target_resolution, "proxy_resolution": a.proxy_resolution,
                     "macs_target": a.macs_target, "macs_proxy": a.macs_proxy, "params": a.params,
                     "acts_proxy": a.acts_proxy, "device": str(self.device),
                     "worker": f"{socket.gethostname()}:{os.getpid()}"}.items():  # who trained it
            trial.set_user_attr(k, v)
        spec = candidate_spec(plan.base, trained, a.proxy_resolution, space.proxy.width)
        trial.set_user_attr("network", network_key(spec))
        self.progress.candidate(trained, seed, a.proxy_resolution, space.proxy.epochs)
        twin = self._twin(trial, spec, seed)
        if twin is not None:
            if not queued and not plan.grid:
                self._queue_other_seeds(c, seed)
            return self._share(trial, twin)
        accs: list[float] = []

        def on_epoch(epoch: int, acc: float, loss: float) -> None:
            accs.append(acc)
            trial.set_user_attr("val_acc", accs)
            self.progress.epoch(epoch, acc)
            # Step = epochs trained, so the pruners' min_resource=1 rung falls after the first epoch;
            # after the last one there is nothing left to save, and the trial should count as complete.
            trial.report(acc, epoch + 1)
            if epoch + 1 < space.proxy.epochs and trial.should_prune():
                self.progress.finished("pruned", acc)
                raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")

        data = self.data(seed)
        try:
            r = proxy.train(spec, data, space.proxy, a.proxy_resolution, seed, on_epoch=on_epoch, on_step=self.progress.step,
                            compile=self.compile, every_epoch=space.pruner != "none")
            proxy.require_learning(r, data.num_classes, data.num_val)
        except proxy.Diverged as exc:
            return self._fail(trial, f"diverged: {exc}")
        except proxy.DidNotLearn as exc:
            return self._fail(trial, str(exc))
        except torch.OutOfMemoryError:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return self._fail(trial, f"out of memory on {self.device} at {a.proxy_resolution} px")
        for k, v in {"val_acc": r.val_acc, "val_loss": r.val_loss, "train_loss": r.train_loss,
                     "seconds": r.seconds, "best_acc": max(r.val_acc), "train_images": r.train_images,
                     # without a pruner only the last epoch is evaluated
                     "best_epoch": r.best_epoch + 1 if space.pruner != "none" else space.proxy.epochs}.items():
            trial.set_user_attr(k, v)
        if not queued and not plan.grid:
            self._queue_other_seeds(c, seed)
        self.progress.finished("complete", r.final_acc)
        return r.final_acc

    def _covered(self, trial: optuna.Trial, key: tuple) -> bool:
        """Whether an earlier trial already stands for this (candidate, seed, φ)."""
        return any(t.number < trial.number and (c := trial_candidate(t)) and _is_done(t)
                   and (_key(c), t.user_attrs.get("seed"), t.user_attrs.get("phi", 1)) == key
                   for t in self.study.get_trials(deepcopy=False))

    def _requeue(self, trial: optuna.Trial) -> None:
        a = trial.user_attrs
        self.study.enqueue_trial({}, user_attrs={"queued": True, "requeued_from": trial.number,
                                                 **{k: a[k] for k in ("seed", "phi", "alpha", "beta", "gamma")}})

    def _twin(self, trial: optuna.Trial, spec, seed: int) -> optuna.trial.FrozenTrial | None:
        """A finished trial (complete or pruned) that trained this very network with this seed.

        Depth and width round, so neighbouring (α, β, γ) often build the same proxy
        network (24 feasible points, 19 networks for B0 at 2x); training it again with
        the same seed and data would repeat the same result at full cost.
        """
        key = network_key(spec)
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            a = t.user_attrs
            if (a.get("network") == key and a.get("seed") == seed and "shared_from" not in a and a.get("val_acc")
                    and t.number != trial.number):
                return t
        return None

    def _share(self, trial: optuna.Trial, twin: optuna.trial.FrozenTrial) -> float:
        """Record the twin's outcome as this candidate's own, with the link and no training time."""
        accs = twin.user_attrs["val_acc"]
        for epoch, acc in enumerate(accs):
            trial.report(acc, epoch + 1)
        for k in ("val_acc", "val_loss", "train_loss", "best_epoch", "best_acc"):
            if k in twin.user_attrs:
                trial.set_user_attr(k, twin.user_attrs[k])
        trial.set_user_attr("seconds", 0.0)
        trial.set_user_attr("shared_from", twin.number)
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
                self.study.enqueue_trial({}, user_attrs={"queued": True, "seed": s, "phi": 1, "alpha": c.alpha,
                                                         "beta": c.beta, "gamma": c.gamma})


def network_key(spec: NetworkSpec) -> str:
    """Identity of the network a spec builds (the multipliers that led to it left out)."""
    canonical = replace(spec, name="", width_mult=1.0, depth_mult=1.0)
    return hashlib.sha1(repr(canonical).encode()).hexdigest()[:16]


def progress_counts(plan: Plan, study: optuna.Study) -> tuple[int, int]:
    """(trials done, trials planned) for this run."""
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("unqueued")]
    done = sum(1 for t in trials if t.state.is_finished() and _is_done(t))
    if plan.grid:
        return done, len(plan.report.feasible) * plan.space.proxy.seeds
    return done, min(plan.space.trials, manifold_size(plan.space, plan.base)) * plan.space.proxy.seeds


def run(options: RunOptions, progress: Progress | None = None) -> tuple[Plan, optuna.Study]:
    """Prepare, create or resume the study, queue the grid and train until done.

    KeyboardInterrupt propagates after the current trial is marked interrupted;
    running the same options again picks up where it stopped.
    """
    progress = progress or Progress()
    device = proxy.pick_device(options.device)
    plan, study = start(options)
    done, total = progress_counts(plan, study)
    progress.start(plan, total, done)
    worker = Worker(plan, study, device, progress, options.compile)
    worker.work()
    while queue_next_round(plan, study, progress):
        worker.work()
    return plan, study


def queue_next_round(plan: Plan, study: optuna.Study, progress: Progress | None = None) -> int:
    """Queue what the race (:func:`scalesearch.race.next_round`) asks for next; returns how many trials."""
    s = plan.space
    if not plan.grid:
        return 0
    name, todo = race.next_round(results.trials_frame(study), seed_list(s), s.proxy.max_seeds, s.contenders, s.phi2)
    added = sum(enqueue(plan, study, [Candidate(a, b, g)], phi=phi, seeds=[seed]) for a, b, g, seed, phi in todo)
    if added and progress:
        progress.round(name, added)
    return added


def start(options: RunOptions) -> tuple[Plan, optuna.Study]:
    """Prepare, create or resume the study and queue the grid; workers (this process or others) train it."""
    plan = prepare(options)
    study = open_study(plan)
    if plan.grid:
        enqueue_grid(plan, study)
    return plan, study


def latest_study(results_dir: str | Path = "results") -> tuple[str, str]:
    """(storage URL, study name) of the most recently written results/<study>/study.db."""
    dbs = sorted(Path(results_dir).glob("*/study.db"), key=lambda p: p.stat().st_mtime)
    if not dbs:
        raise ScaleSearchError(f"no study under {results_dir}/: run scalesearch run first, or give --storage URL --study NAME")
    return f"sqlite:///{dbs[-1]}", dbs[-1].parent.name


def load(storage_url: str | None = None, study_name: str | None = None, results_dir: str | Path = "results") -> tuple[Plan, optuna.Study]:
    """Reopen a study written by `run`, with the plan rebuilt from the configuration it recorded.

    With no storage, `study_name` names a folder under `results_dir` (default: the latest).
    """
    recorded_study, storage_url = load_recorded(storage_url, study_name, results_dir)
    config = recorded_study.user_attrs["config"]
    known = {f for f in RunOptions.__dataclass_fields__}
    recorded = {k: v for k, v in config["options"].items() if k in known}
    options = RunOptions(**(recorded | {"storage": storage_url, "study": recorded_study.study_name}))
    plan = prepare(options)
    return plan, open_study(plan, create=False)


def load_recorded(storage_url: str | None = None, study_name: str | None = None,
                  results_dir: str | Path = "results") -> tuple[optuna.Study, str]:
    """(study, storage URL) of a study written by `run`, read as it is: no data loaded, no plan rebuilt.

    The light path for reading results (`show`, `export`); :func:`load` builds on it to train more.
    """
    if storage_url is None:
        if study_name is None:
            storage_url, study_name = latest_study(results_dir)
        else:
            db = Path(results_dir) / study_name / "study.db"
            if not db.exists():
                raise ScaleSearchError(f"no study {study_name!r}: {db} does not exist")
            storage_url = f"sqlite:///{db}"
    storage = open_storage(storage_url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if study_name is None:
        if len(names) != 1:
            raise ScaleSearchError(f"{redact(storage_url)} holds {len(names)} studies; choose one with --study: {', '.join(names) or 'none'}")
        study_name = names[0]
    if study_name not in names:
        raise ScaleSearchError(f"no study {study_name!r} in {redact(storage_url)}; it holds: {', '.join(names) or 'none'}")
    study = optuna.load_study(study_name=study_name, storage=storage)
    config = study.user_attrs.get("config")
    if not config or "options" not in config:
        raise ScaleSearchError(f"study {study_name!r} was not written by scalesearch (no recorded configuration)")
    return study, storage_url


def verify(plan: Plan, study: optuna.Study, candidates: list[Candidate], phi: float = 2, device: str = "auto",
           progress: Progress | None = None, base_run: bool = True, compile: bool = False) -> None:
    """Train `candidates` again at `phi` (coefficients to the power φ) in the same study.

    `base_run` also trains the base itself (φ = 0, stored as α = β = γ = 1), the
    reference point of the scaling fit in :mod:`scalesearch.extrapolate`.
    """
    progress = progress or Progress()
    enqueue(plan, study, candidates, phi=phi)
    if base_run:
        enqueue(plan, study, [Candidate(1.0, 1.0, 1.0)], phi=0)
    dev = proxy.pick_device(device)
    waiting = sum(1 for t in study.get_trials(deepcopy=False) if t.state == TrialState.WAITING)
    progress.start(plan, waiting, 0)
    Worker(plan, study, dev, progress, compile).work()
