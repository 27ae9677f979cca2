"""Worker processes on one machine (SQLite), shared-out cores, a grid queued twice, and workers that
stop with their supervisor (killed, or out of storage)."""
from __future__ import annotations

import collections
import datetime
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from cli_helpers import assert_user_error, run_cli, study_of, tiny_space
from scalesearch.proxy import _train as proxy
from scalesearch.search import _pool as workers
from scalesearch import search
from scalesearch.results import read_trial
from scalesearch.search import Worker
from scalesearch.device import pick_device
from scalesearch.errors import ScaleSearchError

SPACE = tiny_space(budget=1.5, tolerance=0.1, gamma_max=1.2, epochs=2)


@pytest.fixture
def options(tmp_path: Path) -> search.RunOptions:
    (tmp_path / "space.toml").write_text(SPACE)
    return search.RunOptions(base="tiny-mbconv", space=str(tmp_path / "space.toml"), data="synthetic:64", device="cpu",
                             study="local", results_dir=str(tmp_path / "results"))


def complete_keys(study: optuna.Study) -> collections.Counter:
    return collections.Counter((t.user_attrs["alpha"], t.user_attrs["beta"], t.user_attrs["gamma"])
                               for t in study.get_trials(states=(TrialState.COMPLETE,)))


def test_slots_share_the_cores(monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "64")
    monkeypatch.setattr(workers.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert workers.slots(3, device="cpu") == [workers.Slot("cpu", 2)] * 3
    assert workers.slots(16, device="cpu")[0].threads == 1
    assert [s.device for s in workers.slots(devices="cpu, cpu")] == ["cpu", "cpu"]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert workers.slots(2, device="cpu")[0].threads == 1


def test_a_run_not_told_starts_one_worker_per_core_on_the_cpu(monkeypatch) -> None:
    monkeypatch.delenv(workers.WORKERS_ENV, raising=False)
    monkeypatch.setattr(workers.os, "sched_getaffinity", lambda pid: set(range(2)), raising=False)
    assert workers.auto_workers("cpu") == 2
    assert workers.auto_workers("cpu", in_process=True) == 1  # a Dataset object lives in this process only
    monkeypatch.setattr(workers.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert workers.auto_workers("cpu") == workers.MAX_AUTO_WORKERS
    monkeypatch.setenv(workers.WORKERS_ENV, "3")
    assert workers.auto_workers("cpu") == 3
    assert workers.worker_count(None, "cpu,cpu", "cpu") == 1 and workers.worker_count(0, None, "cpu") == 0  # slots refuses 0
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(workers.WORKERS_ENV, bad)
        with pytest.raises(ScaleSearchError, match=workers.WORKERS_ENV):
            workers.auto_workers("cpu")


def test_workers_share_the_runs_time_budget(monkeypatch) -> None:
    """A worker process reads the run's budget back: the same end of training and the same start, so it prices
    trials by the pace of every trial of this run."""
    run_budget = search.TimeBudget(600, started=time.monotonic() - 100, pace_hint=2.5e-7)
    monkeypatch.setenv(search.BUDGET_ENV, run_budget.env()[search.BUDGET_ENV])
    mine = search.TimeBudget.from_env()
    assert abs(mine.left() - run_budget.left()) < 0.5 and abs(mine.elapsed() - 100) < 0.5
    assert mine.pace_hint == 2.5e-7  # the run timed a few steps: the workers need not time them again
    monkeypatch.delenv(search.BUDGET_ENV)
    assert search.TimeBudget.from_env() is None and search.TimeBudget(0).env() == {}


def test_a_round_is_laid_out_on_the_workers() -> None:
    budget = search.TimeBudget(100, started=0.0, clock=lambda: 0.0, reserve_s=0.0, slots=2)
    assert budget.take([("a", 60.0), ("b", 60.0), ("c", 30.0), ("d", 10.0), ("e", 50.0)]) == ["a", "b", "c", "d"]
    assert budget.spent_out  # e would end at 120 s, on the lane that frees first (at 70 s)


def test_a_pool_keeps_to_the_time_budget(capsys, tmp_path) -> None:
    """Worker processes under a time budget: none starts a trial that would end after it, a trial caught by its
    end stops, and the whole command ends in time with what is left queued for a resume."""
    # Trials of several seconds each and more of them (up to 8 seeds) than 30 s can train; short enough that a
    # slow 2-core host can start some (with 1024 images a trial's priced time could exceed what was left, and
    # none started). Whether a round is left half-trained at the end depends on the host's speed.
    (tmp_path / "space.toml").write_text(SPACE.replace("max_seeds = 1", "max_seeds = 8").replace("epochs = 2", "epochs = 8")
                                         .replace("train = 64", "train = 512"))
    start, started = time.monotonic(), datetime.datetime.now()
    r = run_cli(capsys, "run", "--base", "tiny-mbconv", "--space", str(tmp_path / "space.toml"), "--data", "synthetic:1024",
                "--device", "cpu", "--results-dir", str(tmp_path / "results"), "--workers", "2", "--time", "30s")
    elapsed = time.monotonic() - start
    assert r.code == 0, r.err
    assert elapsed <= 30 * 1.1, elapsed  # the whole command, two worker processes started each round
    assert "time budget spent" in r.err, r.err
    study = study_of(tmp_path / "results")
    ended = [t.datetime_complete for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert ended and max(ended) <= started + datetime.timedelta(seconds=30), (started, max(ended))
    # A fast host may finish its last round before the end; whatever was queued and not started is reported.
    assert bool(study.get_trials(states=(TrialState.WAITING,))) == ("queued trials left untrained" in r.err), r.err


@pytest.mark.parametrize("count,devices,fragment", [
    (0, None, "--workers"), (2, "cpu,cpu", "not both"), (1, ",", "--devices"), (1, "cuda:9", "cuda:9")])
def test_bad_worker_layouts(count, devices, fragment) -> None:
    with pytest.raises(ScaleSearchError, match=fragment):
        workers.slots(count, devices, "cpu")


def test_zero_workers_from_python_are_refused(options) -> None:
    with pytest.raises(ScaleSearchError, match="--workers must be >= 1"):
        search.run("tiny-mbconv", space=options.space, data="synthetic:64", device="cpu",
                   results_dir=options.results_dir, workers=0)
    assert not Path(options.results_dir).exists()


def test_bad_layout_writes_nothing(capsys, options) -> None:
    r = run_cli(capsys, "run", "--base", "tiny-mbconv", "--space", options.space, "--data", "synthetic:64",
                "--results-dir", options.results_dir, "--workers", "0")
    assert_user_error(r, "--workers")
    assert not Path(options.results_dir).exists()


def test_grid_queued_twice_is_trained_once(options) -> None:
    """Two `run`s starting together both find the study empty and both queue the grid."""
    plan, study = search.start(options)
    feasible = [a.candidate for a in plan.report.feasible]
    for c in feasible:  # the second run's queue, written before it could see the first's
        study.enqueue_trial({}, user_attrs={"queued": True, "seed": 0, "phi": 1, "alpha": c.alpha, "beta": c.beta,
                                            "gamma": c.gamma})
    Worker(plan, study, pick_device("cpu")).work()
    assert set(complete_keys(study).values()) == {1} and len(complete_keys(study)) == len(feasible)
    stood_aside = [t for t in study.get_trials() if t.user_attrs.get("unqueued")]
    assert len(stood_aside) == len(feasible) and all(t.state == TrialState.PRUNED for t in stood_aside)
    assert search.progress_counts(plan, study) == (len(feasible), len(feasible))


def test_sigterm_stops_training_even_when_the_handler_runs_in_a_finalizer(options, monkeypatch) -> None:
    """Python may run a signal handler inside a weakref callback or __del__, which swallows what the handler
    raises; the worker must still stop at its next step, not train its candidate to the end."""
    real_train, calls = proxy.train, []

    def train(*a, on_step, **k):
        calls.append(1)

        def step(i: int, n: int) -> None:
            if i == 1:
                try:  # as in a finalizer: whatever the handler raises goes nowhere
                    os.kill(os.getpid(), signal.SIGTERM)
                    sum(range(1000))  # bytecodes, at whose boundaries the handler runs
                except BaseException:
                    pass
            on_step(i, n)
        return real_train(*a, on_step=step, **k)

    monkeypatch.setattr(proxy, "train", train)
    plan, study = search.start(options)
    with pytest.raises(KeyboardInterrupt):
        Worker(plan, study, pick_device("cpu")).work()
    (stopped,) = study.get_trials(states=(TrialState.FAIL,))
    assert stopped.user_attrs["fail_reason"] == "interrupted" and len(calls) == 1
    assert not study.get_trials(states=(TrialState.COMPLETE, TrialState.RUNNING))


def test_two_local_workers_on_sqlite(capsys, options) -> None:
    r = run_cli(capsys, "run", "--base", "tiny-mbconv", "--space", options.space, "--data", "synthetic:64", "--device", "cpu",
                "--study", "local", "--results-dir", options.results_dir, "--workers", "2")
    assert r.code == 0, r.err
    assert "expected: about" in r.err and "on 2 worker processes on cpu" in r.err, r.err
    plan, study = search.load(study_name="local", results_dir=options.results_dir)
    assert set(complete_keys(study).values()) == {1} and len(complete_keys(study)) == len(plan.report.feasible)
    assert (Path(options.results_dir) / "local" / "ranking.csv").exists()


def test_a_pool_trains_every_round_on_the_same_workers(capsys, options) -> None:
    """The workers stay up between rounds: the run plans each round while they wait, so two processes train all."""
    r = run_cli(capsys, "run", "--base", "tiny-mbconv", "--space", options.space, "--data", "synthetic:64", "--device", "cpu",
                "--study", "rounds", "--results-dir", options.results_dir, "--workers", "2", "--max-seeds", "3")
    assert r.code == 0, r.err
    plan, study = search.load(study_name="rounds", results_dir=options.results_dir)
    trained = [a for t in study.get_trials(states=(TrialState.COMPLETE,)) if "worker" in (a := read_trial(t))]
    assert len({a["seed"] for a in trained}) > 1, r.err  # later rounds ran
    assert len({a["worker"] for a in trained}) == 2, r.err
    assert not study.get_trials(states=(TrialState.WAITING, TrialState.RUNNING))
    assert (Path(options.results_dir) / "rounds" / "ranking.csv").exists()


def test_supervisor_that_loses_its_storage_stops_its_workers(capsys, options, monkeypatch) -> None:
    """The storage gone past its retry time: one line, exit 2, and no worker left running."""
    started: list = []
    real_launch, real_counts, polls = workers.launch, search.progress_counts, []

    def launch(plan, layout, budget=None, pool=None):
        started.extend(real_launch(plan, layout, budget, pool))
        return started

    def counts(plan, study, trials=None):  # the storage goes once the workers train (a Ctrl-C while Python starts is a traceback)
        polls.append(any(t.state == TrialState.RUNNING for t in study.get_trials()) or len(polls) > 100)
        if polls[-1]:
            raise ScaleSearchError("lost the connection to the storage sqlite:///x for 120 s (SCALESEARCH_DB_RETRY_S): gone")
        return real_counts(plan, study, trials)

    monkeypatch.setattr(workers, "launch", launch)
    monkeypatch.setattr(workers, "progress_counts", counts)
    r = run_cli(capsys, "run", "--base", "tiny-mbconv", "--space", options.space, "--data", "synthetic:64", "--device", "cpu",
                "--study", "lost", "--results-dir", options.results_dir, "--workers", "2")
    assert r.code == 2 and "Traceback" not in r.err, r.err
    assert r.err.splitlines()[-1].startswith("scalesearch: error: lost the connection to the storage"), r.err
    assert len(started) == 2 and all(p.poll() is not None for p in started)


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that no longer reaps."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    """SIGKILL to `run --workers 2`: its workers get SIGTERM from the kernel, put their candidates back and exit."""
    # Long trials (they are never finished): under load the second worker can take many seconds to start, and
    # short ones let the first finish the whole grid before then, leaving no trial running to interrupt.
    (tmp_path / "space.toml").write_text(SPACE)
    results = tmp_path / "results"
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "scalesearch.cli", "run", "--base", "tiny-mbconv", "--space", tmp_path / "space.toml",
         "--data", "synthetic:512", "--train", "512", "--epochs", "400", "--device", "cpu", "--study", "orphans",
         "--results-dir", results, "--workers", "2"],
        cwd=Path(__file__).parents[1], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"sqlite:///{results / 'orphans' / 'study.db'}"
    pids: set[int] = set()
    deadline = time.monotonic() + 120
    while len(pids) < 2 and time.monotonic() < deadline and supervisor.poll() is None:
        time.sleep(0.2)
        try:
            ts = optuna.load_study(study_name="orphans", storage=url).get_trials(states=(TrialState.RUNNING,))
        # Not created yet, or being created: load_study on a bare URL creates the tables too, racing the supervisor.
        except (KeyError, ValueError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError):
            continue
        pids |= {int(read_trial(t)["worker"].rsplit(":", 1)[1]) for t in ts if "worker" in read_trial(t)}
    assert pids, "no worker started a trial"
    supervisor.kill()
    supervisor.wait()
    deadline = time.monotonic() + 30
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in pids), "workers outlived their supervisor"
    ts = optuna.load_study(study_name="orphans", storage=url).get_trials()
    assert not any(t.state == TrialState.RUNNING for t in ts)  # each put its candidate back in the queue
    interrupted = [t for t in ts if t.user_attrs.get("fail_reason") == "interrupted"]
    assert interrupted and all(t.state == TrialState.FAIL for t in interrupted)
