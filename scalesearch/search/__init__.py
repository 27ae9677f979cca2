"""The search: options resolved into a plan, the Optuna study and its storage, the queue of trials, workers
that train them (in this process or a pool on this machine), progress, the time budget, and the driver
that runs round after round and writes the results (:func:`run`)."""
from __future__ import annotations

from ._driver import SEARCH_ROUNDS, Rounds, SearchResult, as_file, execute, finish, join, run, train_rounds, verify
from ._family_timing import FAMILY_PASS_LIMIT_S, time_family, with_family_latency
from ._plan import COMPARISON, Plan, RunOptions, find_study, latest_study, load, load_recorded, open_study, prepare, restart, seed_list
from ._progress import Progress, RichProgress
from ._queue import enqueue, priced, progress_counts, queue_next_round, start
from ._schedule import BUDGET_ENV, TimeBudget
from ._pool import WORKERS_ENV, auto_workers, die_with_parent
from ._storage import ENV as STORAGE_ENV, open_storage
from ._urls import redact
from ._validate import inputs
from ._worker import Worker

__all__ = ["BUDGET_ENV", "COMPARISON", "FAMILY_PASS_LIMIT_S", "SEARCH_ROUNDS", "STORAGE_ENV", "Plan", "Progress", "RichProgress", "Rounds", "RunOptions",
           "SearchResult", "TimeBudget", "WORKERS_ENV", "Worker", "as_file", "auto_workers", "die_with_parent", "enqueue", "execute", "find_study", "finish",
           "inputs", "join", "latest_study", "load", "load_recorded", "open_storage", "open_study", "prepare", "priced",
           "progress_counts", "queue_next_round", "redact", "restart", "run", "seed_list", "start", "time_family",
           "train_rounds", "verify", "with_family_latency"]
