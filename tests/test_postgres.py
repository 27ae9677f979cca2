"""Many workers on a real PostgreSQL server: every candidate once, dead workers recovered, Ctrl-C resumable.

The server is the one at 127.0.0.1:5432 (trust auth, user postgres, database `test`), or the
libpq DSN in SCALESEARCH_TEST_POSTGRES. Each test session gets a fresh database, dropped
afterwards. Without a server the tests skip, except under CI=true, where they fail.
"""
from __future__ import annotations

import collections
import os
import secrets
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from cli_helpers import assert_user_error, run_cli, tiny_space
from scalesearch.search import open_storage
from scalesearch.results import read_trial

pytestmark = pytest.mark.postgres
ADMIN_DSN = os.environ.get("SCALESEARCH_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres dbname=test")
PASSWORD = "s3cretpw"
FEASIBLE = {0.3: 16, 0.1: 6}  # points of SPACE within 30% (its own) or 10% (--tolerance 0.1) of 1.5x, nominal
SPACE = tiny_space(budget=1.5, tolerance=0.3, gamma_max=1.2, epochs=2)
FAST = ("--data", "synthetic:64")
SLOW = ("--data", "synthetic:128", "--train", "128", "--epochs", "2", "--tolerance", "0.1")  # 6 candidates, ~1 s each
# On an idle machine SLOW's 6 candidates finish before a watcher sees one complete and one running.
# Two seeds of 6 candidates, ~1-2 s each: the restart comes while most of them are still to do.
RESTART = ("--data", "synthetic:256", "--train", "256", "--epochs", "2", "--tolerance", "0.1", "--seeds", "2")
SLOWER = ("--data", "synthetic:512", "--train", "512", "--epochs", "5", "--tolerance", "0.1")  # ~3-8 s each: a wide window for the watchers


@pytest.fixture(scope="session")
def pg_url() -> str:
    try:
        import psycopg2

        admin = psycopg2.connect(ADMIN_DSN, connect_timeout=5)
    except ImportError:
        reason = "psycopg2 is not installed: pip install -e '.[dev]'"
    except psycopg2.OperationalError as exc:
        reason = f"no PostgreSQL server answers at {ADMIN_DSN!r}: {' '.join(str(exc).split())}"
    else:
        reason = None
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    admin.autocommit = True
    name = f"scalesearch_test_{os.getpid()}_{secrets.token_hex(4)}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    info = admin.info  # trust auth ignores the password: it is there to prove it is never printed
    url = f"postgresql://{info.user}:{info.password or PASSWORD}@{info.host}:{info.port}/{name}"
    admin.close()  # a test may restart the server: connect again to clean up
    yield url
    admin = psycopg2.connect(ADMIN_DSN, connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,))
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.close()


@pytest.fixture
def space_file(tmp_path: Path) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(SPACE)
    return path


def run_args(tmp_path: Path, url: str, study: str, space: Path, *extra: str) -> list:
    return ["run", "--base", "tiny-mbconv", "--space", space, "--device", "cpu", "--storage", url, "--study", study,
            "--results-dir", tmp_path / "results", *extra]


@pytest.fixture
def fast_heartbeats(monkeypatch) -> None:
    """Worker processes beat every second and are given up after 3 s of silence."""
    monkeypatch.setenv("SCALESEARCH_HEARTBEAT_S", "1")
    monkeypatch.setenv("SCALESEARCH_GRACE_S", "3")


def trials(url: str, study: str, storage: optuna.storages.BaseStorage | None = None) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=study, storage=storage or open_storage(url)).get_trials()
    except KeyError:  # not created yet
        return []


def key(t: optuna.trial.FrozenTrial) -> tuple:
    return read_trial(t)["alpha"], read_trial(t)["beta"], read_trial(t)["gamma"], read_trial(t)["seed"]


def assert_each_complete_once(ts: list[optuna.trial.FrozenTrial], feasible: int) -> None:
    complete = collections.Counter(key(t) for t in ts if t.state == TrialState.COMPLETE)
    assert len(complete) == feasible and set(complete.values()) == {1}, complete


class Watcher(threading.Thread):
    """Polls the study while `run` works in the main thread; acts once when `condition` returns a trial."""

    def __init__(self, url: str, study: str, condition, action) -> None:
        super().__init__(daemon=True)
        self.url, self.study, self.condition, self.action, self.seen = url, study, condition, action, None
        self.stopped = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        # One storage for every poll: a new one each time leaves a connection pool behind, and a long suite
        # then runs the server out of connections and the watcher dies before it sees its moment.
        storage = open_storage(self.url)
        try:
            while self.seen is None and not self.stopped.wait(0.1):
                if (found := self.condition(trials(self.url, self.study, storage))) is not None:
                    self.seen = found
                    self.action(found)
        except BaseException as exc:  # shown by stop(), not lost with the thread
            self.error = exc
        finally:
            storage.engine.dispose()

    def stop(self) -> None:
        self.stopped.set()
        self.join()
        if self.error is not None:
            raise AssertionError(f"the watcher failed: {self.error!r}") from self.error


def test_three_workers_complete_every_candidate_once(capsys, pg_url, space_file, tmp_path) -> None:
    r = run_cli(capsys, *run_args(tmp_path, pg_url, "three", space_file, *FAST, "--workers", "3"))
    assert r.code == 0, r.err
    ts = trials(pg_url, "three")
    assert_each_complete_once(ts, FEASIBLE[0.3])
    assert all(t.state == TrialState.COMPLETE for t in ts if not read_trial(t).get("unqueued")), ts
    assert len({read_trial(t)["worker"] for t in ts if t.state == TrialState.COMPLETE}) >= 2  # it was shared out
    assert PASSWORD not in r.out + r.err and "winner:" in r.out


def test_killed_worker_trial_is_rerun_once(capsys, pg_url, space_file, tmp_path, fast_heartbeats) -> None:
    def first_running(ts):
        return next((t for t in ts if t.state == TrialState.RUNNING and "worker" in read_trial(t)), None)

    def kill(t) -> None:
        os.kill(int(read_trial(t)["worker"].rsplit(":", 1)[1]), signal.SIGKILL)

    watcher = Watcher(pg_url, "kill", first_running, kill)
    watcher.start()
    r = run_cli(capsys, *run_args(tmp_path, pg_url, "kill", space_file, *SLOW, "--workers", "2"))
    watcher.stop()
    assert r.code == 0, r.err  # the others finished everything, the retry included
    assert PASSWORD not in r.out + r.err
    ts, running = trials(pg_url, "kill"), watcher.seen
    assert_each_complete_once(ts, FEASIBLE[0.1])
    killed = ts[running.number]
    assert killed.state == TrialState.FAIL and "fail_reason" not in read_trial(killed)
    (retry,) = [t for t in ts if t.system_attrs.get("failed_trial") == running.number]
    assert retry.state == TrialState.COMPLETE and key(retry) == key(killed)
    assert read_trial(retry)["worker"] != read_trial(running)["worker"]


def test_interrupt_then_rerun_retrains_nothing_complete(capsys, pg_url, space_file, tmp_path, fast_heartbeats,
                                                        request) -> None:
    def some_done_some_running(ts):
        done = [t for t in ts if t.state == TrialState.COMPLETE]
        workers = {read_trial(t).get("worker") for t in ts} - {None}
        # Both workers at work, or (a worker process slow to start) the first already well on.
        both = len(workers) == 2 or len(done) >= 3
        return done if len(done) >= 1 and both and any(t.state == TrialState.RUNNING for t in ts) else None

    # Ctrl-C at the terminal: SIGINT to the `run` process, which passes it on to its workers. A shell
    # that starts pytest in the background leaves SIGINT ignored, so the test asks for Python's handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    watcher = Watcher(pg_url, "sigint", some_done_some_running, lambda _: os.kill(os.getpid(), signal.SIGINT))
    watcher.start()
    args = run_args(tmp_path, pg_url, "sigint", space_file, *SLOWER)
    r = run_cli(capsys, *args, "--workers", "2")
    watcher.stop()
    assert r.code == 130 and "run the same command again to resume" in r.err, r.err
    before = trials(pg_url, "sigint")
    interrupted = [t for t in before if read_trial(t).get("fail_reason") == "interrupted"]
    assert interrupted and all(t.state == TrialState.FAIL for t in interrupted)
    assert not any(t.state == TrialState.RUNNING for t in before), [(t.number, read_trial(t), t.datetime_start) for t in before if t.state == TrialState.RUNNING]
    assert {key(t) for t in interrupted} <= {key(t) for t in before if t.state == TrialState.WAITING}  # re-queued at once
    complete_before = {t.number: key(t) for t in before if t.state == TrialState.COMPLETE}
    assert 1 <= len(complete_before) < FEASIBLE[0.1]

    assert run_cli(capsys, *args).code == 0  # the rerun, in one process this time
    after = trials(pg_url, "sigint")
    assert_each_complete_once(after, FEASIBLE[0.1])  # so nothing complete was trained again
    assert all(after[n].state == TrialState.COMPLETE and key(after[n]) == k for n, k in complete_before.items())


@pytest.mark.parametrize("make_url,fragment", [
    (lambda db: f"postgresql://nobody:{PASSWORD}@127.0.0.1:5432/{db}", 'role "nobody" does not exist'),
    (lambda db: f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/scalesearch_no_such_db", "does not exist"),
    (lambda db: f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/{db}", "Connection refused"),
])
def test_unreachable_storage_is_one_line_without_password(capsys, pg_url, space_file, tmp_path, make_url, fragment) -> None:
    url = make_url(pg_url.rsplit("/", 1)[1])
    for args in (["worker", "--storage", url, "--study", "x"],
                 ["run", "--base", "tiny-mbconv", "--space", space_file, *FAST, "--storage", url, "--study", "x",
                  "--results-dir", tmp_path / "results", "--workers", "2"]):
        r = run_cli(capsys, *args)
        assert_user_error(r, "cannot open storage", "***", fragment)
        assert PASSWORD not in r.err + r.out
    assert not (tmp_path / "results").exists()


def test_worker_needs_an_existing_study(capsys, pg_url) -> None:
    assert_user_error(run_cli(capsys, "worker", "--storage", pg_url, "--study", "nosuch"), "no study", "nosuch")


# ------------------------------------------------------------ the server restarts under a run

def restart_postgres() -> None:
    """Restart the cluster serving ADMIN_DSN with pg_ctlcluster (Debian's postgresql-common); skip where that is
    impossible (no pg_ctlcluster, not allowed), except under CI=true."""
    port = psycopg2_port()
    listed = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True) if shutil.which("pg_lsclusters") else None
    cluster = next((line.split()[:2] for line in (listed.stdout.splitlines() if listed else [])
                    if len(line.split()) > 2 and line.split()[2] == str(port)), None)
    if cluster is None:
        reason = f"no pg_ctlcluster cluster on port {port} to restart"
    else:
        done = subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "restart"], capture_output=True, text=True)
        reason = None if done.returncode == 0 else f"pg_ctlcluster {' '.join(cluster)} restart: {done.stderr.strip()}"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def psycopg2_port() -> int:
    import psycopg2

    with psycopg2.connect(ADMIN_DSN, connect_timeout=5) as conn:
        return int(conn.info.port)


def server_started(url: str) -> str:
    import psycopg2

    conn = psycopg2.connect(url.replace(f":{PASSWORD}@", "@"), connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_postmaster_start_time()")
            return str(cur.fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("workers", [2, 1])
def test_run_survives_a_server_restart(capsys, pg_url, space_file, tmp_path, monkeypatch, workers) -> None:
    """PostgreSQL restarts while candidates train: the supervisor (or the single process) and its workers wait
    for it, every (candidate, seed) completes exactly once, exit 0, and no traceback is printed."""
    from scalesearch.search import _storage as storage

    monkeypatch.setattr(storage, "HEARTBEAT_S", 1)  # the single process beats every second, so a beat meets the restart
    monkeypatch.setenv("SCALESEARCH_HEARTBEAT_S", "1")  # and so do the worker processes
    monkeypatch.setenv("SCALESEARCH_GRACE_S", "60")  # a restart's silence is no death
    study, before = f"restart{workers}", server_started(pg_url)
    state = {}

    def first_running(ts):
        return next((t for t in ts if t.state == TrialState.RUNNING and "worker" in read_trial(t)), None)

    def restart(_) -> None:
        restart_postgres()
        state["done_after"] = sum(t.state == TrialState.COMPLETE for t in trials(pg_url, study))

    watcher = Watcher(pg_url, study, first_running, restart)
    watcher.start()
    r = run_cli(capsys, *run_args(tmp_path, pg_url, study, space_file, *RESTART, "--workers", str(workers)))
    watcher.stop()
    assert watcher.seen is not None and server_started(pg_url) != before  # it did restart, while a trial ran
    assert state["done_after"] < FEASIBLE[0.1] * 2, state  # with work left to do
    assert r.code == 0, r.err
    assert "Traceback" not in r.err + r.out and "Exception in thread" not in r.err, r.err
    assert PASSWORD not in r.out + r.err and "winner:" in r.out
    ts = trials(pg_url, study)
    complete = collections.Counter(key(t) for t in ts if t.state == TrialState.COMPLETE)
    assert len(complete) == FEASIBLE[0.1] * 2 and set(complete.values()) == {1}, complete  # two seeds each


# ------------------------------------------------------------ the URL from the environment

def test_every_command_takes_the_storage_from_the_environment(capsys, pg_url, space_file, tmp_path, monkeypatch) -> None:
    """SCALESEARCH_STORAGE instead of --storage, so the password is in no process's arguments."""
    monkeypatch.setenv("SCALESEARCH_STORAGE", pg_url)
    results = tmp_path / "results"
    r = run_cli(capsys, "run", "--base", "tiny-mbconv", "--space", space_file, "--device", "cpu", "--study", "env",
                "--results-dir", results, *FAST, "--tolerance", "0.1")
    assert r.code == 0, r.err
    assert_each_complete_once(trials(pg_url, "env"), FEASIBLE[0.1])  # the study really is in PostgreSQL
    assert not (results / "env" / "study.db").exists()
    for args in (["show", "--study", "env"], ["export", "--study", "env", "-o", tmp_path / "c.json"],
                 ["extrapolate", "--study", "env", "--phi", "0..1"], ["plot", "--study", "env", "-o", tmp_path / "plots"]):
        r = run_cli(capsys, *args, "--results-dir", tmp_path / "elsewhere")
        assert r.code == 0, (args, r.err)
        assert PASSWORD not in r.out + r.err
    assert (tmp_path / "c.json").exists() and (tmp_path / "plots" / "family.png").exists()
    r = run_cli(capsys, "extrapolate", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phi", "1")
    assert r.code == 0, r.err  # the variable is no study given on the command line
    r = run_cli(capsys, "verify", "--study", "env", "--top", "1", "--no-base-run", "--device", "cpu")
    assert r.code == 0 and "Transfer check" in r.out, r.err
