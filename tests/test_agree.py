"""`scalesearch agree`: two studies of one question read side by side, and the refusals."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from cli_helpers import assert_user_error, run_cli, tiny_space
from scalesearch.results import compare_rankings


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """Three tiny studies trained for real: two of one question at two learning rates, one at another budget."""
    root = tmp_path_factory.mktemp("agree")
    (root / "tiny.toml").write_text(tiny_space(epochs=1))
    (root / "other.toml").write_text(tiny_space(budget=1.5, tolerance=0.2, epochs=1))
    common = ["--base", "tiny-mbconv", "--data", "synthetic:64", "--device", "cpu", "--results-dir", str(root / "results")]
    for study, extra in (("slow", ["--space", str(root / "tiny.toml")]),
                         ("fast", ["--space", str(root / "tiny.toml"), "--lr", "0.02"]),
                         ("cheaper", ["--space", str(root / "other.toml")])):
        with pytest.raises(SystemExit) as done:
            from scalesearch.cli import main
            main(["run", *common, *extra, "--study", study])
        assert done.value.code == 0
    return root


def test_two_studies_of_one_question_are_read_side_by_side(capsys, studies):
    r = run_cli(capsys, "agree", "slow", "fast", "--results-dir", studies / "results")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == "Agreement of slow and fast: tiny-mbconv at 2x, nominal constraint"
    assert lines[1] == "what differs: proxy.lr: 0.004 → 0.02"  # the question itself and how it was named are not listed
    assert "candidates ranked by both: 9" in r.out
    assert "slow's winner (" in r.out and "in fast's 95% set: " in r.out and "Kendall τ-b of score_fit" in r.out
    assert "score (val top-1, fraction) per unit log of blocks / channels / side" in r.out  # the tiny space scores acc
    assert lines[-2].startswith(("they agree", "they do not contradict", "they contradict"))
    assert lines[-1].startswith("note: the two trained on 1 of the same seeds")  # both from the space's seed 0

    doc = json.loads(run_cli(capsys, "agree", "slow", "fast", "--results-dir", studies / "results", "--format", "json").out)
    ranked = [pd.read_csv(studies / "results" / s / "ranking.csv") for s in ("slow", "fast")]
    assert doc["common"] == 9 and doc["differences"] == ["proxy.lr: 0.004 → 0.02"]
    for mine, theirs, winner in ((ranked[0], ranked[1], doc["winners"][0]), (ranked[1], ranked[0], doc["winners"][1])):
        first = mine[mine["winner"]].iloc[0]
        assert [first.alpha, first.beta, first.gamma] == winner  # each study's own verdict
    inside = ranked[1][(ranked[1][["alpha", "beta", "gamma"]] == doc["winners"][0]).all(axis=1)]
    assert doc["a_in_b"] == bool(inside["in_set"].iloc[0]) and doc["p_in_other"][0] == pytest.approx(inside["p_best"].iloc[0])
    assert doc["contradict"] == (not (doc["a_in_b"] and doc["b_in_a"])) and doc["words"] == lines[-2]
    assert doc["shared_seeds"] == 1

    same = run_cli(capsys, "agree", "slow", "slow", "--results-dir", studies / "results")
    assert "what differs: nothing recorded" in same.out and "τ-b of score_fit over the common candidates: +1.00" in same.out
    assert same.out.splitlines()[-2].startswith("they agree: the same winner")


def test_studies_of_different_questions_or_none_are_refused_in_one_line(capsys, studies):
    folder = ["--results-dir", studies / "results"]
    assert_user_error(run_cli(capsys, "agree", "slow", "cheaper", *folder), "different questions", "budget 2", "1.5")
    assert_user_error(run_cli(capsys, "agree", "slow", "nosuch", *folder), "nosuch")
    assert_user_error(run_cli(capsys, "agree", "slow", "fast", "--format", "yaml", *folder), "--format must be text or json")
    assert_user_error(run_cli(capsys, "agree", "slow", *folder))  # two studies are needed


def test_a_winner_outside_the_other_set_is_a_contradiction_that_names_what_differs():
    keys = [(1.0, 1.2, 1.0), (1.0, 1.0, 1.2), (1.2, 1.0, 1.0)]
    frame = lambda fits, p: pd.DataFrame([(*k, f, q) for k, f, q in zip(keys, fits, p)],
                                         columns=["alpha", "beta", "gamma", "score_fit", "p_best"])
    a, b = frame([3, 2, 1], [0.9, 0.1, 0.0]), frame([1, 2, 3], [0.0, 0.2, 0.8])
    r = compare_rankings(a, (keys[0], keys[:1]), b, (keys[2], keys[1:]), ("A", "B"))
    assert (r.a_in_b, r.b_in_a, r.contradict) == (False, False, True)
    assert r.tau == pytest.approx(-1) and r.p_in_other == (0.0, 0.0)
    r = type(r)(**{**r.__dict__, "differences": ["proxy.lr: 0.004 → 0.008"]})
    assert r.words == ("they contradict each other: A's winner lies outside B's 95% set and B's winner lies outside "
                       "A's 95% set; the answer depends on how it was asked (what differs: proxy.lr: 0.004 → 0.008)")
    one_way = compare_rankings(a, (keys[0], keys), b, (keys[2], keys[1:]))
    assert (one_way.a_in_b, one_way.b_in_a) == (False, True) and "B's winner lies outside" not in one_way.words
    missing = compare_rankings(a.iloc[1:], (keys[1], keys[1:]), b, (keys[0], keys))
    assert missing.common == 2 and math.isnan(missing.p_in_other[1])  # B's winner was not ranked by A


def test_differences_name_each_setting_with_its_unit_and_skip_how_the_space_was_named():
    from scalesearch.results._agreement import differences

    a = {"space": {"time": 600.0, "name": "a", "path": "a.toml"}, "proxy": {"resolution": "auto", "lr": 0.004}, "data": {"spec": "x"}}
    b = {"space": {"time": 3600.0, "name": "b", "path": "b.toml"}, "proxy": {"resolution": 96, "lr": 0.004}, "data": {"spec": "y"}}
    assert differences(a, b) == ["proxy.resolution: auto → 96 px", "space.time: 600 s → 3600 s"]
    assert differences(a, a) == []
