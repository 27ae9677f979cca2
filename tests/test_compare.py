"""`scalesearch compare` end to end on tiny settings: the files, resume, workers, export, plot, show, bad input."""
from __future__ import annotations

import collections
import json

import optuna
import pandas as pd
import pytest
import torch
from cli_helpers import assert_user_error, run_cli, tiny_space

from scalesearch.comparison import VERDICTS
from scalesearch.space import FAMILIES

TINY = ["--data", "synthetic:128", "--epochs", "1", "--train", "64", "--val", "32", "--batch-size", "32",
        "--proxy-resolution", "16"]
REQUIRED = ["family", "phi", "macs_ratio", "score_mean", "diff_vs_compound", "diff_low", "diff_high", "verdict"]


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A tiny finished search, and a comparison of its winner beside it (φ = 0 … 1)."""
    root = tmp_path_factory.mktemp("compare")
    (root / "tiny.toml").write_text(tiny_space(budget=1.2, tolerance=0.5, gamma_max=1.0, epochs=1))
    results = str(root / "results")
    with pytest.raises(SystemExit) as done:
        from scalesearch.cli import main

        main(["run", "--base", "tiny-mbconv", "--space", str(root / "tiny.toml"), *TINY, "--results-dir", results,
              "--study", "tiny"])
    assert done.value.code == 0
    return {"root": root, "results": results, "folder": root / "results" / "tiny",
            "url": f"sqlite:///{root / 'results' / 'tiny' / 'study.db'}"}


@pytest.fixture(scope="module")
def compared(searched):
    import subprocess
    import sys

    # In a child process: the module's other tests capture this process's output.
    r = subprocess.run([sys.executable, "-m", "scalesearch.cli", "compare", "--study", "tiny", "--phi", "1",
                        "--max-seeds", "3", "--results-dir", searched["results"]], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    return searched | {"out": r.stdout, "err": r.stderr}


def csv(folder) -> pd.DataFrame:
    return pd.read_csv(folder / "comparison.csv", keep_default_na=False, na_values=[""])


def test_compare_beside_a_study_writes_its_table_and_figure(compared):
    table = csv(compared["folder"])
    assert list(table.columns[: len(REQUIRED)]) == REQUIRED
    assert set(table["family"]) == set(FAMILIES)
    singles = table[(table["family"] != "compound") & (table["phi"] >= 1)]
    assert len(singles) == 3 and set(singles["verdict"]) <= set(VERDICTS)
    assert table.loc[(table["family"] == "compound") | (table["phi"] == 0), "verdict"].isna().all()  # the reference
    assert (table["n_seeds"] >= 2).all()  # every point got its interval
    assert ((abs(table["macs_ratio"] - 1) <= 0.5) | table["flagged"]).all()  # the study's tolerance, or flagged
    assert (~table["flagged"] | (abs(table["macs_ratio"] - 1) > 0.5)).all()
    assert (compared["folder"] / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((compared["folder"] / "comparison.json").read_text())
    assert doc["beside"] == "tiny" and doc["provenance"]["kind"] == "compare" and len(doc["rows"]) == len(table)
    assert "expected: about" in compared["err"] and "φ = 1: tiny-mbconv" in compared["out"]
    assert all(f"{family} only vs compound" in compared["out"] for family in ("width", "depth", "resolution"))


def test_the_same_command_resumes_without_training(compared, capsys):
    before = len(optuna.load_study(study_name="tiny-compare", storage=compared["url"]).get_trials())
    r = run_cli(capsys, "compare", "--study", "tiny", "--phi", "1", "--max-seeds", "3", "--results-dir", compared["results"])
    assert r.code == 0, r.err
    assert "resuming" in r.err
    assert len(optuna.load_study(study_name="tiny-compare", storage=compared["url"]).get_trials()) == before


def test_export_plot_and_show_of_the_study_carry_the_comparison(compared, capsys):
    r = run_cli(capsys, "export", str(compared["folder"]), "-o", "-")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert {row["family"] for row in doc["comparison"]["rows"]} == set(FAMILIES)
    assert doc["comparison"]["provenance"]["study"] == "tiny-compare"
    r = run_cli(capsys, "plot", str(compared["folder"]), "-o", str(compared["root"] / "plots"))
    assert r.code == 0, r.err
    assert (compared["root"] / "plots" / "comparison.png").is_file()
    assert (compared["root"] / "plots" / "accuracy_vs_mmacs.png").is_file()
    r = run_cli(capsys, "show", str(compared["folder"]))
    assert r.code == 0 and "comparison: width only vs compound" in r.out
    r = run_cli(capsys, "show", "--storage", compared["url"], "--study", "tiny-compare", "--format", "csv")
    assert r.code == 0 and r.out.startswith(",".join(REQUIRED))
    by_name = run_cli(capsys, "show", "tiny-compare", "--format", "csv", "--results-dir", compared["results"])
    assert by_name.code == 0 and by_name.out == r.out, by_name.err  # found in its search's folder


def test_a_worker_joins_a_comparison(compared, capsys):
    st = optuna.load_study(study_name="tiny-compare", storage=compared["url"])
    st.enqueue_trial({}, user_attrs={"queued": True, "seed": 9, "phi": 1, "alpha": 1.0, "beta": 1.0, "gamma": 1.0})
    r = run_cli(capsys, "worker", "--study", "tiny-compare", "--storage", compared["url"])
    assert r.code == 0, r.err
    done = [t for t in st.get_trials() if t.user_attrs.get("seed") == 9]
    assert [t.state.name for t in done] == ["COMPLETE"]


def test_a_comparison_of_its_own(tmp_path, capsys):
    r = run_cli(capsys, "compare", "--base", "tiny-mbconv", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15",
                "--phi", "1", "--family", "width,resolution", *TINY, "--max-seeds", "2", "--results-dir", tmp_path)
    assert r.code == 0, r.err
    folder = tmp_path / "tiny-mbconv-compare-1.2-1.1-1.15-synthetic"
    table = csv(folder)
    assert sorted(set(table["family"])) == ["compound", "resolution", "width"]
    assert (table["n_seeds"] == 2).all()
    r = run_cli(capsys, "export", str(folder), "-o", "-")
    doc = json.loads(r.out)
    assert r.code == 0 and (doc["alpha"], doc["beta"], doc["gamma"]) == (1.2, 1.1, 1.15) and doc["comparison"]["rows"]
    r = run_cli(capsys, "plot", str(folder), "--results-dir", tmp_path)
    assert r.code == 0 and sorted(p.name for p in (folder / "plots").iterdir()) == ["comparison.png", "comparison.svg"]
    assert_user_error(run_cli(capsys, "extrapolate", str(folder)), "is a comparison")
    r = run_cli(capsys, "compare", "--base", "tiny-mbconv", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15",
                "--phi", "1", "--family", "width", *TINY, "--max-seeds", "2", "--results-dir", tmp_path, "--restart",
                "--workers", "2")  # trained by two worker processes this time
    assert r.code == 0 and "--restart: deleted comparison" in r.err and "resuming" not in r.err, r.err
    again = csv(folder)
    assert sorted(set(again["family"])) == ["compound", "width"] and (again["n_seeds"] == 2).all()


@pytest.mark.parametrize("args, fragment", [
    (["--phi", "-1", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15"], "--phi must be"),
    (["--alpha", "0", "--beta", "1.1", "--gamma", "1.15"], "--alpha must be > 0"),
    (["--family", "width,colour", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15"], "--family must be"),
    (["--alpha", "1.2"], "give all three"),
    ([], "give the coefficients one way"),
    (["--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--interaction", "--phi", "0"], "--interaction needs"),
    (["--study", "nowhere"], "no study"),
    (["--from", "missing.json"], "missing.json"),
    (["--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--workers", "0"], "--workers must be"),
    (["--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phi", "4", "--family", "depth"], "depth scaling alone"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, fragment):
    assert_user_error(run_cli(capsys, "compare", *args, "--results-dir", tmp_path / "results"), fragment)
    assert not (tmp_path / "results").exists()


def test_a_round_planned_while_trials_train_does_not_stack_seeds_on_them(tmp_path):
    """A pool plans the next round while some trials still train: their seeds count as planned, so no network is
    given a third seed before its second is in."""
    from scalesearch.comparison import _driver as driver
    from scalesearch.comparison import _plan as planning
    from scalesearch.search import TimeBudget, Worker
    from scalesearch.search._progress import Progress

    options = {"data": "synthetic:128", "epochs": 1, "train": 64, "val": 32, "batch_size": 32, "resolution": 16,
               "max_seeds": 4, "device": "cpu", "results_dir": str(tmp_path)}
    run_options, settings = planning.resolve(options, "tiny-mbconv", 1.2, 1.1, 1.15, None, None, phi=1,
                                             families=("width",), interaction=False)
    plan, study = driver.begin(run_options, settings, Progress())
    Worker(plan, study, torch.device("cpu")).work()  # the first round: every network once
    assert driver.next_round(plan, study, Progress(), TimeBudget(0)) == len(plan.report.feasible)
    study.ask()  # one second seed starts training; the others wait in the queue
    assert driver.next_round(plan, study, Progress(), TimeBudget(0)) == 0
    seeds = collections.Counter(tuple(t.user_attrs[k] for k in ("alpha", "beta", "gamma")) for t in study.get_trials())
    assert set(seeds.values()) == {2}
