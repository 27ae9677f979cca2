"""Worker processes on one machine (SQLite), shared-out cores, and a grid queued twice."""
from __future__ import annotations

import collections
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from cli_helpers import assert_user_error, run_cli, tiny_space
from scalesearch import search, workers
from scalesearch.errors import ScaleSearchError

SPACE = tiny_space(budget=1.5, tolerance=0.1, gamma_max=1.2, epochs=1)


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


@pytest.mark.parametrize("count,devices,fragment", [
    (0, None, "--workers"), (2, "cpu,cpu", "not both"), (1, ",", "--devices"), (1, "cuda:9", "cuda:9")])
def test_bad_worker_layouts(count, devices, fragment) -> None:
    with pytest.raises(ScaleSearchError, match=fragment):
        workers.slots(count, devices, "cpu")


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
    search.Worker(plan, study, workers.proxy.pick_device("cpu")).work()
    assert set(complete_keys(study).values()) == {1} and len(complete_keys(study)) == len(feasible)
    stood_aside = [t for t in study.get_trials() if t.user_attrs.get("unqueued")]
    assert len(stood_aside) == len(feasible) and all(t.state == TrialState.PRUNED for t in stood_aside)
    assert search.progress_counts(plan, study) == (len(feasible), len(feasible))


def test_two_local_workers_on_sqlite(capsys, options) -> None:
    r = run_cli(capsys, "run", "--base", "tiny-mbconv", "--space", options.space, "--data", "synthetic:64", "--device", "cpu",
                "--study", "local", "--results-dir", options.results_dir, "--workers", "2")
    assert r.code == 0, r.err
    plan, study = search.load(study_name="local", results_dir=options.results_dir)
    assert set(complete_keys(study).values()) == {1} and len(complete_keys(study)) == len(plan.report.feasible)
    assert (Path(options.results_dir) / "local" / "ranking.csv").exists()
