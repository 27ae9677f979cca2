"""A rerun with other settings never reuses the study's trials: it names what differs and how to go on."""
from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from cli_helpers import assert_user_error, run_cli, tiny_space
from scalesearch.search._provenance import differences
from scalesearch.results import read_trial

SPACE = tiny_space(budget=1.5, tolerance=0.05, gamma_max=1.2, epochs=1)  # 3 candidates at 16 px


@pytest.fixture
def base_args(tmp_path: Path) -> list:
    (tmp_path / "space.toml").write_text(SPACE)
    return ["run", "--base", "tiny-mbconv", "--space", tmp_path / "space.toml", "--data", "synthetic:64", "--device", "cpu",
            "--study", "s", "--results-dir", tmp_path / "results"]


def study_trials(tmp_path: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'results' / 's' / 'study.db'}").get_trials()


def test_other_settings_are_refused_and_restart_starts_again(capsys, base_args, tmp_path) -> None:
    assert run_cli(capsys, *base_args).code == 0
    first = study_trials(tmp_path)
    for extra, named in ((["--epochs", "2"], "proxy.epochs 1 → 2"), (["--data", "synthetic:96"], "data.name"),
                         (["--tolerance", "0.1"], "space.tolerance 0.05 → 0.1"), (["--budget", "1.45x"], "space.budget 1.5 → 1.45"),
                         (["--proxy-resolution", "20"], "proxy.resolution 16 → 20"), (["--lr", "0.008"], "proxy.lr"),
                         (["--lr-scaling", "width"], "proxy.lr_scaling none → width"),
                         (["--base", "b0", "--constraint", "nominal"], "base.name")):
        r = run_cli(capsys, *base_args, *extra)
        assert_user_error(r, "was run with other settings", named, "--study NAME", "--restart")
    assert study_trials(tmp_path) == first  # nothing trained, nothing recorded

    r = run_cli(capsys, *base_args, "--epochs", "2", "--restart")
    assert r.code == 0, r.err
    assert f"deleted study 's' ({len(first)} trials)" in r.err and "resuming" not in r.err
    again = study_trials(tmp_path)
    assert all(read_trial(t)["train_images"] == 2 * 64 for t in again if t.state == TrialState.COMPLETE)  # 2 epochs
    assert "(2 proxy epochs, φ = 1)" in r.out

    r = run_cli(capsys, *base_args, "--epochs", "2")  # the same settings resume
    assert r.code == 0 and "resuming" in r.err, r.err
    assert study_trials(tmp_path) == again


def test_what_may_change_between_runs(capsys, base_args, tmp_path) -> None:
    assert run_cli(capsys, *base_args).code == 0
    candidates = len(study_trials(tmp_path))
    r = run_cli(capsys, *base_args, "--seeds", "2")  # more seeds: an extension, not another meaning
    assert r.code == 0, r.err
    # every (candidate, seed) once: complete, or failed because a 1-epoch tiny proxy did not learn
    done = [t for t in study_trials(tmp_path) if t.state == TrialState.COMPLETE
            or read_trial(t).get("fail_reason", "").startswith("did not learn")]
    assert len(done) == 2 * candidates


def test_a_new_study_name_leaves_the_old_one_alone(capsys, base_args, tmp_path) -> None:
    assert run_cli(capsys, *base_args).code == 0
    other = [a if a != "s" else "s-2epochs" for a in base_args]
    assert run_cli(capsys, *other, "--epochs", "2").code == 0
    assert all(len(read_trial(t)["val_acc"]) == 1 for t in study_trials(tmp_path) if t.state == TrialState.COMPLETE)


def test_more_images_than_the_data_has_is_said(capsys, caplog, base_args) -> None:
    r = run_cli(capsys, *base_args, "--train", "500")  # (the CLI prints warnings on stderr; pytest takes them here)
    assert r.code == 0, r.err
    assert "--train 500: data synthetic-64 has only 64 train images; using all 64" in caplog.text


def test_restart_of_a_study_that_does_not_exist(capsys, base_args) -> None:
    r = run_cli(capsys, *base_args, "--restart")
    assert r.code == 0 and "no study 's' yet" in r.err, r.err


def test_differences_ignore_where_and_how_many() -> None:
    old = {"created": "2026-01-01", "scalesearch_version": "0.1", "options": {"device": "cpu", "storage": "a"},
           "space": {"name": "x", "path": "/a/x.toml", "budget": 2.0, "alpha": {"min": 1.0, "max": 1.4, "step": 0.2},
                     "sampler": "grid", "trials": 30},
           "proxy": {"epochs": 2, "seeds": 1, "train": 1200, "lr": 0.004}, "data": {"spec": "embedded", "train": 1200}}
    new = {"created": "2026-02-02", "scalesearch_version": "0.2", "options": {"device": "cuda", "storage": "b"},
           "space": {"name": "y", "path": "/b/y.toml", "budget": 2.0, "alpha": {"min": 1.0, "max": 1.4, "step": 0.1},
                     "sampler": "tpe", "trials": 50},
           "proxy": {"epochs": 2, "seeds": 3, "train": 5000, "lr": 0.001, "new_setting": 1},
           "data": {"spec": "./embedded", "train": 1200}}
    assert differences(old, new) == ["space.alpha.step 0.2 → 0.1", "proxy.lr 0.004 → 0.001"]


def test_a_study_recorded_before_lr_scaling_existed_trained_without_it() -> None:
    """A setting added later is compared by what its absence meant, so an old study is not resumed under another rate."""
    old = {"proxy": {"epochs": 2, "lr": 0.004}}
    assert differences(old, {"proxy": {"epochs": 2, "lr": 0.004, "lr_scaling": "none"}}) == []
    assert differences(old, {"proxy": {"epochs": 2, "lr": 0.004, "lr_scaling": "width"}}) == ["proxy.lr_scaling none → width"]
