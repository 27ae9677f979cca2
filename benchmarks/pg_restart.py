"""The default run through a PostgreSQL restart (issue 17): every candidate COMPLETE exactly once, exit 0.

``scalesearch run --base b0 --budget 2x`` runs as a user would start it, with the study in a fresh
PostgreSQL database (URL in SCALESEARCH_STORAGE, so no password on the command line). Once the
run has completed a few trials and is training another, the server is restarted with
``pg_ctlcluster``; the run must wait for it, finish with exit 0 and no traceback, and leave every
(candidate, seed, φ) it queued COMPLETE exactly once.

    .venv/bin/python -m benchmarks --only pg_restart [--quick] [--workers N]

Needs a local cluster that ``pg_ctlcluster`` can restart (Debian's postgresql-common) and a server
at SCALESEARCH_TEST_POSTGRES (default ``host=127.0.0.1 port=5432 user=postgres dbname=test``).
`--quick` runs the tiny test base on synthetic data: the code path, not the default job.
"""
from __future__ import annotations

import collections
import os
import secrets
import subprocess
import sys
import tempfile
import time

import optuna
from optuna.trial import TrialState

from scalesearch.search import open_storage

from .common import console, section, table

ADMIN_DSN = os.environ.get("SCALESEARCH_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres dbname=test")


def _admin():
    import psycopg2

    conn = psycopg2.connect(ADMIN_DSN, connect_timeout=5)
    conn.autocommit = True
    return conn


def _restart_server() -> float:
    """Restart the cluster on the admin DSN's port; returns the seconds it took."""
    conn = _admin()
    port = str(conn.info.port)
    conn.close()
    listed = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True).stdout
    version, name = next(line.split()[:2] for line in listed.splitlines() if line.split()[2] == port)
    start = time.perf_counter()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart"], check=True, capture_output=True)
    return time.perf_counter() - start


def _trials(url: str, study: str) -> list:
    """The study's trials; none while it is not created yet or the server is restarting (the watcher only waits)."""
    try:
        return optuna.load_study(study_name=study, storage=open_storage(url)).get_trials(deepcopy=False)
    except Exception:  # KeyError before the study exists; connection errors during the restart
        return []


def run(quick: bool = False, device: str = "cpu", workers: int = 1) -> str:
    conn = _admin()
    db = f"scalesearch_restart_{secrets.token_hex(4)}"
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{db}"')
    info = conn.info
    url = f"postgresql://{info.user}@{info.host}:{info.port}/{db}"
    conn.close()
    study = "b0-2x-restart"
    args = ["--base", "tiny-mbconv", "--data", "synthetic:256", "--epochs", "2"] if quick else ["--base", "b0", "--budget", "2x"]
    cmd = [sys.executable, "-m", "scalesearch.cli", "run", *args, "--study", study, "--device", device, "--workers", str(workers)]
    env = os.environ | {"SCALESEARCH_STORAGE": url}
    proc = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd + ["--results-dir", tmp], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            restarted_at = restart_s = done_before = None
            while proc.poll() is None and restarted_at is None:
                ts = _trials(url, study)
                done = sum(t.state == TrialState.COMPLETE for t in ts)
                if done >= 3 and any(t.state == TrialState.RUNNING for t in ts):
                    done_before, restarted_at = done, time.perf_counter() - start
                    restart_s = _restart_server()
                    console.log(f"restarted PostgreSQL {restarted_at:.0f} s in, after {done} complete trials ({restart_s:.1f} s)")
                time.sleep(2)
            out, err = proc.communicate()
            wall = time.perf_counter() - start
        ts = _trials(url, study)
    except BaseException:
        if proc is not None:
            proc.kill()  # the benchmark failing must not leave a search running
        raise
    finally:
        conn = _admin()  # not `with conn`: psycopg2 would open a transaction, where DROP DATABASE cannot run
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.close()
    slots = collections.Counter((t.user_attrs.get("alpha"), t.user_attrs.get("beta"), t.user_attrs.get("gamma"),
                                 t.user_attrs.get("seed"), t.user_attrs.get("phi", 1))
                                for t in ts if t.state == TrialState.COMPLETE and "alpha" in t.user_attrs)
    queued = {(t.user_attrs.get("alpha"), t.user_attrs.get("beta"), t.user_attrs.get("gamma"), t.user_attrs.get("seed"),
               t.user_attrs.get("phi", 1)) for t in ts if "alpha" in t.user_attrs and not t.user_attrs.get("unqueued")}
    tracebacks = (out + err).count("Traceback")
    ok = proc.returncode == 0 and restarted_at is not None and set(slots.values()) == {1} and set(slots) == queued and not tracebacks
    rows = [[" ".join(["scalesearch run", *args, f"--workers {workers}"]), f"{restarted_at:.0f}" if restarted_at else "never",
             done_before if done_before is not None else "", len(queued), len(slots), max(slots.values(), default=0),
             proc.returncode, tracebacks, f"{wall / 60:.1f}", "yes" if ok else "NO"]]
    if not ok:
        console.log(f"stderr tail:\n{err[-3000:]}")
    return section("PostgreSQL restart under the default run", device,
                   table(["command", "restart at (s)", "complete before", "(candidate, seed, φ) queued",
                          "complete", "max times complete", "exit code", "tracebacks", "wall time (min)", "holds"], rows),
                   "holds: exit 0, no traceback, and every queued (candidate, seed, φ) complete exactly once")
