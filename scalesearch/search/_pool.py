"""Several worker processes on one machine, all on the same study storage.

`scalesearch run --workers N` (CPU) or `--devices cuda:0,cuda:1` creates the study
and queues the grid in this process, then starts one ``scalesearch worker``
process per slot and watches the storage until they are done. Optuna hands each
queued trial to one worker only; a worker that dies leaves its trial RUNNING until
the heartbeat grace period fails it and a live worker re-runs it.

The workers stay up for the whole run: when the queue runs dry and a worker is
idle, this process plans the next round from the trials finished so far (a
trial still training counts as planned, so its slot is not queued twice) while
the others train on; the workers wait for it instead of exiting, and leave when
this process closes the pool (``POOL_CLOSED``). So no core idles between rounds
and the data, torch and the plan load once per worker, not once per round.

On the CPU a run starts one single-threaded worker per core unless told otherwise
(:func:`auto_workers`): the proxies are small networks whose layers keep two threads
waiting on each other, so two trainings side by side train more images per second than
one training on both cores. The workers share the run's time budget
(:data:`scalesearch.search.BUDGET_ENV`): none starts a trial that would end after it.

The workers run in their own session, so a Ctrl-C at the terminal reaches only
this process, which passes it on once to each worker (SIGTERM does the same):
each marks its current candidate interrupted, puts it back in the queue and exits.
The storage URL travels in the environment, not on the command line, where `ps`
would show its password.

The workers die with this process: on Linux each asks the kernel for SIGTERM
when its parent dies (``PR_SET_PDEATHSIG``), so a supervisor killed with
SIGKILL leaves no orphans training on (they put their candidates back in the
queue, as on Ctrl-C). A storage that stays unreachable past its retry time (see
:mod:`scalesearch.search`) stops the workers too, and the run fails with one line.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from ..device import pick_device, usable_cores
from ._queue import progress_counts
from ._plan import Plan
from ._progress import Progress
from ..errors import ScaleSearchError
from ._schedule import TimeBudget, settle

POLL_S = 1.0
PARENT_ENV = "SCALESEARCH_PARENT_PID"  # set for workers that should die with the process that started them
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WORKERS_ENV = "SCALESEARCH_WORKERS"  # the number of worker processes when a run is not told
MAX_AUTO_WORKERS = 8  # one per core up to this many: each holds its own copy of the data and of torch
POOL_ENV = "SCALESEARCH_POOL"  # this run's pool token: its workers wait for further rounds until it is closed
POOL_CLOSED = "pool_closed"  # study user attribute: the token of the last pool closed (no more rounds)
FINISHED = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)


def auto_workers(device: str = "auto", in_process: bool = False) -> int:
    """How many worker processes a run starts when not told: SCALESEARCH_WORKERS if set; else one per usable
    core (up to MAX_AUTO_WORKERS) when it trains on the CPU, and one (this process) on a GPU or for data that
    lives in this process only (`in_process`).

    >>> auto_workers("cpu", in_process=True)
    1
    """
    if in_process:
        return 1
    if (text := os.environ.get(WORKERS_ENV, "").strip()):
        if not text.isdigit() or int(text) < 1:
            raise ScaleSearchError(f"{WORKERS_ENV} must be a whole number of workers >= 1, got {text!r}")
        return int(text)
    return min(usable_cores(), MAX_AUTO_WORKERS) if pick_device(device).type == "cpu" else 1


def worker_count(workers: int | None, devices: str | None, device: str = "auto", in_process: bool = False) -> int:
    """`workers` as given (0 and below are refused by :func:`slots`); when None, one per device listed in
    `devices` (counted there) or :func:`auto_workers`."""
    if workers is not None:
        return workers
    return 1 if devices is not None else auto_workers(device, in_process)


@dataclass(frozen=True)
class Slot:
    """One worker process: the device it trains on and its torch threads."""

    device: str
    threads: int


def slots(workers: int = 1, devices: str | None = None, device: str = "auto") -> list[Slot]:
    """`devices` ("cuda:0,cuda:1") gives one slot per entry; else `workers` slots on `device`.

    The cores are shared out: each slot gets cores / slots torch threads (at least
    one), fewer if OMP_NUM_THREADS asks for fewer.
    """
    if devices is not None:
        if workers != 1:
            raise ScaleSearchError("give either --workers N or --devices LIST (one worker per device), not both")
        names = [d.strip() for d in devices.split(",") if d.strip()]
        if not names:
            raise ScaleSearchError(f"--devices must list devices such as cuda:0,cuda:1, got {devices!r}")
    else:
        if workers < 1:
            raise ScaleSearchError(f"--workers must be >= 1, got {workers}")
        names = [device] * workers
    for name in set(names):
        pick_device(name)  # a missing GPU is a one-line error here, not in every worker
    threads = max(1, usable_cores() // len(names))
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        threads = max(1, min(threads, int(os.environ["OMP_NUM_THREADS"])))
    return [Slot(name, threads) for name in names]


def worker_command(study: str, slot: Slot, compile: bool = False) -> list[str]:
    return [sys.executable, "-m", "scalesearch.cli", "worker", "--study", study, "--device", slot.device, "--quiet",
            *(["--compile"] if compile else [])]


def launch(plan: Plan, layout: list[Slot], budget: TimeBudget | None = None, pool: str | None = None) -> list[subprocess.Popen]:
    """Start one `scalesearch worker` per slot on the plan's study, each bound by the run's time `budget`; with a
    `pool` token they wait for further rounds until :func:`close` is called with it."""
    procs = []
    for slot in layout:
        env = os.environ | {"SCALESEARCH_STORAGE": plan.storage_url, "OMP_NUM_THREADS": str(slot.threads),
                            PARENT_ENV: str(os.getpid())} | (budget.env() if budget else {}) | ({POOL_ENV: pool} if pool else {})
        procs.append(subprocess.Popen(worker_command(plan.study_name, slot, plan.options.compile), env=env, start_new_session=True))
    return procs


def supervise(plan: Plan, study: optuna.Study, procs: list[subprocess.Popen],
              on_poll: Callable[[int, int, int], None] = lambda done, total, alive: None,
              next_round: Callable[[], int] | None = None, pool: str | None = None) -> None:
    """Wait for the workers, reporting (trials done, trials planned, workers alive) every second.

    With `next_round` and the workers' `pool` token: whenever the queue is empty and a worker idles, queue the next
    round (once per new finished trial); when a round adds nothing and nothing trains, close the pool.
    Ctrl-C or SIGTERM: SIGINT to every worker, wait for them, then KeyboardInterrupt.
    Raises ScaleSearchError when workers failed and trials are left undone.
    """
    main = threading.current_thread() is threading.main_thread()  # only the main thread may set handlers
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if main else None
    planned_at = None  # finished trials when the last round was planned
    try:
        while (alive := sum(p.poll() is None for p in procs)):
            trials = study.get_trials(deepcopy=False)  # waits out a database restart (storage.py); one read a poll
            on_poll(*progress_counts(plan, study, trials), alive)
            if next_round is not None and pool is not None:
                waiting, running, finished = _states(trials)
                if not waiting and running < alive and finished != planned_at:
                    planned_at = finished
                    if not next_round() and not running:
                        close(study, pool)
            time.sleep(POLL_S)
    except BaseException:  # Ctrl-C, the storage gone for good or a fault here: no orphans left behind
        interrupt(procs)
        raise
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    done, total = progress_counts(plan, study)
    on_poll(done, total, 0)
    failed = [p.returncode for p in procs if p.returncode != 0]
    if failed and done < total:
        raise ScaleSearchError(f"{len(failed)} of {len(procs)} worker processes failed (exit codes "
                               f"{', '.join(map(str, failed))}; see their messages above); {done} of {total} trials "
                               "done: run the same command again to resume")


def _states(trials: list[optuna.trial.FrozenTrial]) -> tuple[int, int, int]:
    """(trials queued, training, finished)."""
    states = [t.state for t in trials]
    return (states.count(TrialState.WAITING), states.count(TrialState.RUNNING),
            sum(s in FINISHED for s in states))


def close(study: optuna.Study, pool: str) -> None:
    """No more rounds: the pool's workers leave once idle."""
    study.set_user_attr(POOL_CLOSED, pool)


def is_closed(study: optuna.Study, pool: str) -> bool:
    return study.user_attrs.get(POOL_CLOSED) == pool


def die_with_parent() -> None:
    """In a worker started by :func:`launch`: have the kernel send SIGTERM when the starting process dies.

    Linux only (prctl); elsewhere workers outlive a killed supervisor and finish the study.
    Exits at once when that process is already gone (it died while this one started).
    """
    parent = os.environ.pop(PARENT_ENV, None)
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:  # not fatal: the worker just may outlive it
        return
    if os.getppid() != int(parent):
        raise SystemExit(0)


def interrupt(procs: list[subprocess.Popen]) -> None:
    """SIGINT to each live worker, then wait; a second Ctrl-C kills them (heartbeats recover their trials)."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    try:
        for p in procs:
            p.wait()
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.kill()


def run(begin: Callable[[Progress], tuple[Plan, optuna.Study]], next_round: Callable[..., int], layout: list[Slot],
        progress: Progress, started: float | None = None,
        announce: Callable[[Plan, optuna.Study, TimeBudget], None] | None = None) -> tuple[Plan, optuna.Study]:
    """A study trained by worker processes on this machine: `begin` creates or resumes it here with its first
    round queued, `announce` prints what is expected, and the workers, started once, train every round that
    `next_round` (the search's or the comparison's) queues here, until it queues nothing or the plan's time
    budget (counted from `started`, a ``time.monotonic()`` reading) is spent."""
    budget = TimeBudget(0.0, slots=len(layout), **({} if started is None else {"started": started}))
    plan, study = begin(progress)
    budget.seconds = plan.space.time
    done, total = progress_counts(plan, study)
    progress.start(plan, total, done)
    if announce is not None:
        announce(plan, study, budget)
    progress.clock(budget)
    pool = f"{os.getpid()}-{time.time():.6f}"
    supervise(plan, study, launch(plan, layout, budget, pool), progress.poll,
              lambda: next_round(plan, study, progress, budget), pool)
    if note := settle(budget, study):
        progress.note(note)
    return plan, study
