"""Optuna's bookkeeping per trial on each storage (issue #5): what a worker pays besides training.

One trial here is what :class:`scalesearch.search.Worker` does around a candidate, with
a no-op objective: enqueue it with its candidate attributes, then `study.optimize`
pops it (stale-trial check, ask, heartbeat thread), writes its record as the worker does
(ATTRS fields: the cost before training, the outcome after, one attribute each, see
:mod:`scalesearch.results`), reports EPOCHS values and tells the result. One process, no contention: a lower bound.

PostgreSQL is the server in SCALESEARCH_BENCH_POSTGRES (a libpq DSN; default the local
test server, user postgres, database test); a fresh database is made and dropped.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import time
import warnings
from collections.abc import Iterator

import optuna

from scalesearch.results import _record as record
from scalesearch.search import _queue as queue
from scalesearch.space import Candidate
from scalesearch.search import open_storage

from .common import console, section, table

ADMIN_DSN = os.environ.get("SCALESEARCH_BENCH_POSTGRES", "host=127.0.0.1 port=5432 user=postgres dbname=test")
ATTRS = 26  # as many fields as a trained candidate records
RESULT_FIELDS = 7  # of them, known only after training
EPOCHS = 2
CANDIDATE_S = 10.0  # a short proxy candidate, for the share column


@contextlib.contextmanager
def postgres_url() -> Iterator[str | None]:
    """A fresh database on the server (None when none answers), dropped afterwards."""
    try:
        import psycopg2

        admin = psycopg2.connect(ADMIN_DSN, connect_timeout=5)
    except Exception as exc:  # no driver or no server: that row is left out
        console.print(f"PostgreSQL left out: {' '.join(str(exc).split())}")
        yield None
        return
    admin.autocommit = True
    name = f"scalesearch_bench_{os.getpid()}_{secrets.token_hex(4)}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        info = admin.info
        yield f"postgresql://{info.user}@{info.host}:{info.port}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                        (name,))
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


def per_trial_ms(url: str, trials: int) -> tuple[float, float]:
    """(enqueue, pop … tell) in ms per trial on a fresh study in `url`."""
    study = optuna.create_study(study_name=f"bench-{secrets.token_hex(4)}", storage=open_storage(url), direction="maximize")
    start = time.perf_counter()
    for i in range(trials):
        queue.enqueue_one(study, Candidate(1.0 + i, 1.0, 1.0), seed=0, phi=1)
    enqueue = time.perf_counter() - start

    def objective(trial: optuna.Trial) -> float:
        record.write(trial, "cost", {f"field{k}": float(k) for k in range(ATTRS - RESULT_FIELDS)})
        for epoch in range(EPOCHS):
            trial.report(0.5, epoch)
        record.write(trial, "result", {f"field{k}": float(k) for k in range(ATTRS - RESULT_FIELDS, ATTRS)})
        return 0.5

    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    run = time.perf_counter() - start
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == trials
    return 1000 * enqueue / trials, 1000 * run / trials


def run(quick: bool = False, device: str = "cpu") -> str:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", UserWarning)  # "heartbeat is supposed to be used with optimize" (it is)
    trials = 20 if quick else 100
    rows = []
    with tempfile.TemporaryDirectory() as tmp, postgres_url() as pg:
        storages = [("SQLite (file, local)", f"sqlite:///{tmp}/study.db"), ("journal file (local)", f"journal:{tmp}/journal.log")]
        if pg:
            storages.append(("PostgreSQL 127.0.0.1 (loopback)", pg))
        for label, url in storages:
            console.print(f"storage overhead: {label}, {trials} trials")
            enqueue, pop_to_tell = per_trial_ms(url, trials)
            total = enqueue + pop_to_tell
            rows.append([label, enqueue, pop_to_tell, total, f"{100 * total / 1000 / CANDIDATE_S:.2f}"])
    body = table(["storage", "enqueue (ms/trial)", "pop … tell (ms/trial)", "total (ms/trial)",
                  f"share of a {CANDIDATE_S:g} s candidate (%)"], rows)
    note = (f"{trials} trials of a no-op objective that records {ATTRS} fields in 2 user attributes and reports {EPOCHS} epochs, "
            "heartbeats on (journal storage has none); one process, so no lock waits.")
    return section("Storage overhead per trial", device, body, note)


if __name__ == "__main__":
    print(run())
