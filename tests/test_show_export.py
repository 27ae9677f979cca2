"""`scalesearch show`, `scalesearch export` and `scalesearch.load_family` on a tiny real study,
and the ranking / tie rules on hand-made trials with known answers."""
from __future__ import annotations

import io
import json
import math
import runpy

import optuna
import pandas as pd
import pytest
import yaml
from cli_helpers import assert_user_error, run_cli

from scalesearch import ScaleSearchError, load_family
from scalesearch.arch import PRESETS, load_base
from scalesearch.cli import main
from scalesearch.results import markdown_ranking
from scalesearch.results._export import drop_nulls, family_document
from scalesearch.results._family import SCHEMA_PATH, schema
from scalesearch.results import Family
from scalesearch.results import member
from scalesearch.arch import build
from scalesearch.results._ranking import has_intervals
from scalesearch.results import ranking, trials_frame

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

SPACE = """
budget = 1.2
tolerance = 0.5
constraint = "nominal"
[alpha]
min = 1.0
max = 1.2
step = 0.2
[beta]
min = 1.0
max = 1.0
step = 0.1
[gamma]
min = 1.0
max = 1.0
step = 0.1
[search]
phi2 = 0
[proxy]
width = 1.0
max_seeds = 2
score = "acc"
"""


def n_params(net) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Two candidates × two seeds, trained for real, plus a failed and a pruned candidate added by hand."""
    root = tmp_path_factory.mktemp("show")
    (root / "tiny.toml").write_text(SPACE)
    with pytest.raises(SystemExit) as done:
        main(["run", "--base", "tiny-mbconv", "--space", str(root / "tiny.toml"), "--data", "synthetic:64", "--epochs", "2",
              "--train", "64", "--val", "32", "--seeds", "2", "--proxy-resolution", "16", "--batch-size", "32",
              "--results-dir", str(root / "results"), "--study", "tiny"])
    assert done.value.code == 0
    url = f"sqlite:///{root / 'results' / 'tiny' / 'study.db'}"
    st = optuna.load_study(study_name="tiny", storage=url)
    common = {"beta": 1.0, "gamma": 1.0, "phi": 1, "seed": 0}
    st.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,
                                           user_attrs={**common, "alpha": 1.4, "fail_reason": "diverged: loss nan"}))
    st.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, intermediate_values={0: 0.1},
                                           user_attrs={**common, "alpha": 1.6, "val_acc": [0.1]}))
    return {"root": root, "dir": str(root / "results"), "url": url, "study": st}


def show(capsys, study, *args):
    return run_cli(capsys, "show", "--results-dir", study["dir"], *args)


def expected_ranking(st) -> list[tuple[float, float]]:
    """(alpha, mean val top-1) of complete candidates, best first, straight from the trials."""
    means: dict[float, list[float]] = {}
    for t in st.get_trials():
        if t.state == optuna.trial.TrialState.COMPLETE:
            means.setdefault(t.user_attrs["alpha"], []).append(t.value)
    return sorted(((a, sum(v) / len(v)) for a, v in means.items()), key=lambda x: -x[1])


# ------------------------------------------------------------ show

def test_show_table_ranks_both_candidates_with_intervals(capsys, study):
    r = show(capsys, study)
    assert r.code == 0, r.err
    assert "Ranking: tiny (2 proxy epochs, φ = 1; study in sqlite:///" in " ".join(r.out.split())
    assert "95% set = the networks that could be best" in " ".join(r.out.split())
    assert all(len(line) <= 120 for line in r.out.splitlines() if "┃" in line or "│" in line)  # fits a terminal
    for header in ("score fit", "P(best)", "status", "(target)"):
        assert header in r.out
    assert "diverged" not in r.out  # failed candidates only with --all


def test_show_says_where_the_answer_sits_as_the_run_and_the_export_do(capsys, study):
    """β and γ are fixed in this space, so the winner sits on their edges: `show` repeats the boundary notes."""
    notes = json.loads(show(capsys, study, "--format", "json").out)["verdict"]["boundary"]
    assert notes and "beta.max" in notes[0]
    for fmt in ("table", "markdown"):
        text = " ".join(show(capsys, study, "--format", fmt).out.split())
        assert all(" ".join(n.split()) in text for n in notes), (fmt, text[-600:])


def test_show_csv_matches_the_trials(capsys, study):
    r = show(capsys, study, "--format", "csv")
    df = pd.read_csv(io.StringIO(r.out))
    want = expected_ranking(study["study"])
    assert list(df["alpha"]) == [a for a, _ in want]
    assert list(df["acc_mean"]) == pytest.approx([m for _, m in want])
    assert list(df["rank"]) == [1, 2] and list(df["seeds"]) == [2, 2]
    assert list(df["best_epoch"]) == [2, 2]  # racing evaluates the last epoch only
    assert (df["acts_proxy"] > 0).all() and (df["state"] == "complete").all()


def test_show_json_and_markdown(capsys, study):
    doc = json.loads(show(capsys, study, "--format", "json").out)
    assert doc["study"] == "tiny" and doc["interval_available"] is True and doc["proxy_epochs"] == 2
    assert [c["rank"] for c in doc["candidates"]] == [1, 2]
    assert all(c["ci95"] is not None and c["ci95"] >= 0 for c in doc["candidates"])
    md = show(capsys, study, "--format", "markdown").out
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| rank"))
    assert "score fit ± SE" in header and "95% set" in header and "val top-1 % mean ± std" in header
    assert sum(line.startswith("| 1 |") or line.startswith("| 2 |") for line in lines) == 2


def test_show_top_sort_and_all(capsys, study):
    top = pd.read_csv(io.StringIO(show(capsys, study, "--format", "csv", "--top", "1").out))
    assert list(top["rank"]) == [1]
    by_params = pd.read_csv(io.StringIO(show(capsys, study, "--format", "csv", "--sort", "params:desc").out))
    assert list(by_params["params"]) == sorted(by_params["params"], reverse=True)
    by_alpha = pd.read_csv(io.StringIO(show(capsys, study, "--format", "csv", "--sort", "alpha").out))
    assert list(by_alpha["alpha"]) == [1.0, 1.2]
    every = pd.read_csv(io.StringIO(show(capsys, study, "--format", "csv", "--all").out))
    states = dict(zip(every["alpha"], every["state"]))
    assert states[1.4] == "failed: diverged: loss nan" and states[1.6] == "pruned after epoch 1"
    assert every["rank"].isna().sum() == 2 and list(every["rank"].head(2)) == [1, 2]
    table = show(capsys, study, "--all").out
    assert "failed: diverged" in table and "pruned after" in table


def test_show_names_the_study_by_argument_or_storage(capsys, study):
    by_name = show(capsys, study, "tiny", "--format", "csv")
    by_url = run_cli(capsys, "show", "--storage", study["url"], "--study", "tiny", "--format", "csv")
    assert by_name.code == by_url.code == 0 and by_name.out == by_url.out


@pytest.mark.parametrize("args, fragments", [
    (["--sort", "bogus"], ["--sort", "'bogus'", "acc_mean"]),
    (["--sort", "params:sideways"], ["asc or desc"]),
    (["--format", "xml"], ["--format", "markdown"]),
    (["--top", "0"], ["--top must be >= 1"]),
    (["nosuch"], ["no study 'nosuch'"]),
    (["tiny", "--study", "other"], ["disagree"]),
])
def test_show_user_errors(capsys, study, args, fragments):
    assert_user_error(show(capsys, study, *args), *fragments)


def test_storage_password_is_never_printed(capsys, study):
    r = run_cli(capsys, "show", "--storage", "postgresql://me:hunter2@127.0.0.1:1/nodb", "--study", "x")
    assert_user_error(r)
    assert "hunter2" not in r.err + r.out


def test_show_and_export_of_a_study_without_results(capsys, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    st = optuna.create_study(study_name="empty", storage=url)
    st.set_user_attr("config", {"options": {"base": "tiny-mbconv"}, "proxy": {"epochs": 1}})
    r = run_cli(capsys, "show", "--storage", url, "--format", "csv")
    assert r.code == 0 and "no complete candidate" in r.err
    assert_user_error(run_cli(capsys, "export", "--storage", url, "-o", tmp_path / "c.json"), "no complete candidate")
    assert not (tmp_path / "c.json").exists()


# ------------------------------------------------------------ export and load_family

@pytest.fixture(scope="module")
def exported(study):
    """The study exported in every format; the winner computed independently of the exporter."""
    out = study["root"] / "export"
    paths = {}
    for fmt, ext in (("json", "json"), ("yaml", "yaml"), ("toml", "toml"), ("python", "py")):
        paths[fmt] = out / f"coefficients.{ext}"
        with pytest.raises(SystemExit) as done:
            main(["export", "--results-dir", study["dir"], "--format", fmt, "-o", str(paths[fmt])])
        assert done.value.code == 0
    alpha, _ = expected_ranking(study["study"])[0]
    return paths, (alpha, 1.0, 1.0)


@pytest.mark.parametrize("fmt", ["json", "yaml", "toml"])
def test_round_trip_builds_the_study_winner(exported, fmt):
    paths, (alpha, beta, gamma) = exported
    fam = load_family(paths[fmt])
    assert fam.coefficients == (alpha, beta, gamma)
    winner = member(load_base("tiny-mbconv"), alpha, beta, gamma, 3)
    assert fam.spec(3) == winner
    assert n_params(fam.build(phi=3, num_classes=10, in_channels=1)) == n_params(build(winner, 10, 1))


def test_formats_carry_the_same_document(exported):
    paths, _ = exported
    js = json.loads(paths["json"].read_text())
    ya = yaml.safe_load(paths["yaml"].read_text())
    to = tomllib.loads(paths["toml"].read_text())
    for doc in (js, ya, to):
        doc["provenance"].pop("exported")  # each export stamps its own time
    assert ya == js
    assert to == drop_nulls(js)  # TOML has no null: those keys are left out
    assert js["provenance"]["study"] == "tiny" and js["provenance"]["options"]["seeds"] == 2
    assert js["equivalents"]["applies"] is False  # tiny-mbconv is not B0: no timm/torchvision equivalent


def test_schema_is_shipped_and_required_keys_are_written(exported):
    paths, _ = exported
    s = schema()
    assert SCHEMA_PATH.name == "coefficients-v1.schema.json" and s["properties"]["schema_version"]["const"] == 1
    doc = json.loads(paths["json"].read_text())
    assert set(s["required"]) <= set(doc)
    assert all(set(s["properties"]["family"]["items"]["required"]) <= set(row) for row in doc["family"])
    assert doc["verdict"] and set(doc["verdict"]) <= set(s["properties"]["verdict"]["properties"])  # each key documented


def test_python_snippet_runs_alone_with_the_same_numbers(exported, capsys):
    paths, _ = exported
    js = json.loads(paths["json"].read_text())
    ns = runpy.run_path(str(paths["python"]), run_name="__main__")
    assert (ns["ALPHA"], ns["BETA"], ns["GAMMA"]) == (js["alpha"], js["beta"], js["gamma"])
    assert ns["FAMILY"] == js["family"] and ns["BASE"] == js["base"]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"alpha={js['alpha']}") and len(printed) == 2 + len(js["family"])


def test_export_to_stdout_and_default_path(capsys, study):
    r = run_cli(capsys, "export", "tiny", "--results-dir", study["dir"], "-o", "-")
    assert json.loads(r.out)["format"] == "scalesearch-coefficients"
    r = run_cli(capsys, "export", "--results-dir", study["dir"], "--format", "toml")
    default = study["root"] / "results" / "tiny" / "coefficients.toml"
    assert r.code == 0 and str(default) in r.out
    # the file `run` wrote at the end and the TOML export describe the same family
    assert load_family(study["root"] / "results" / "tiny" / "coefficients.json").coefficients == load_family(default).coefficients


def test_export_user_errors(capsys, study, tmp_path):
    assert_user_error(run_cli(capsys, "export", "--results-dir", study["dir"], "--format", "xml"), "--format", "python")
    assert_user_error(run_cli(capsys, "export", "--results-dir", study["dir"], "--format", "json", "-o", tmp_path / "c.yaml"),
                      "does not match")
    assert_user_error(run_cli(capsys, "export", "--results-dir", study["dir"], "-o", tmp_path), "is a folder")


def bad_files(good: dict) -> dict[str, tuple[str, str]]:
    """name → (file text, fragment of the expected error)."""
    edited = json.loads(json.dumps(good))
    edited["alpha"] = 1.3
    wrong_type = json.loads(json.dumps(good))
    wrong_type["family"][0]["params"] = "many"
    missing = {k: v for k, v in good.items() if k != "gamma"}
    return {
        "broken.json": ("{not json", "not valid JSON"),
        "foreign.json": (json.dumps({"model": "resnet50"}), "not a scalesearch coefficient file"),
        "list.yaml": ("- 1\n- 2\n", "not a scalesearch coefficient file"),
        "evil.yaml": ("!!python/object/apply:os.system ['echo pwned']\n", "not valid YAML"),
        "broken.toml": ("alpha = = 1", "not valid TOML"),
        "newer.json": (json.dumps(good | {"schema_version": 2}), "schema_version 2"),
        "missing.json": (json.dumps(missing), "missing key 'gamma'"),
        "type.json": (json.dumps(wrong_type), "family[0].params must be integer"),
        "edited.json": (json.dumps(edited), "but the coefficients build"),
        "snippet.py": ("ALPHA = 1.2\n", "snippet"),
        "model.pkl": ("\x80\x04K\x01.", "unknown file type"),
    }


def test_malformed_and_foreign_files_are_one_line_errors(capsys, exported, tmp_path):
    paths, _ = exported
    good = json.loads(paths["json"].read_text())
    for name, (text, fragment) in bad_files(good).items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(ScaleSearchError) as exc:
            load_family(path)
        assert fragment in str(exc.value) and "\n" not in str(exc.value), (name, str(exc.value))
        assert_user_error(run_cli(capsys, "info", "--coefficients", path), fragment)
    assert_user_error(run_cli(capsys, "info", "--coefficients", tmp_path / "absent.json"), "cannot read")


def test_info_reads_a_coefficient_file(capsys, exported):
    paths, (alpha, beta, gamma) = exported
    r = run_cli(capsys, "info", "--coefficients", paths["yaml"], "--phi", "3", "--num-classes", "10", "--in-channels", "1")
    spec = member(load_base("tiny-mbconv"), alpha, beta, gamma, 3)
    assert r.code == 0 and f"depth ×{spec.depth_mult:.3f}" in r.out and f"{spec.resolution} px" in r.out


# ------------------------------------------------------------ family figures against the reference CSV

def test_phi_zero_is_the_base_and_paper_phi_one_is_b2(reference):
    fam = Family.from_document(family_document(load_base("b0"), 1.2, 1.1, 1.15))
    b0 = next(r for r in reference if r["name"] == "b0")
    b2 = next(r for r in reference if r["name"] == "b2")
    assert n_params(fam.build(phi=0)) == int(b0["params_exact"]) == 5288548
    assert fam.spec(0).resolution == 224
    # (1.2, 1.1) at φ = 1 are B2's depth and width: same network, at 256 px instead of B2's hand-picked 260
    assert n_params(fam.build(phi=1)) == int(b2["params_exact"])
    assert fam.document["family"][1]["params"] == int(b2["params_exact"])


def test_coefficients_equal_to_a_preset_reproduce_it_exactly(reference):
    b0 = load_base("b0")
    for row in reference:
        width, depth, res, _ = PRESETS[row["name"]]
        doc = family_document(b0, depth, width, res / 224, phis=[0, 1])  # φ = 7 of B7's multipliers is huge
        fam = Family.from_document(json.loads(json.dumps(doc)))
        one = doc["family"][1]
        assert (one["params"], one["resolution"]) == (int(row["params_exact"]), int(row["resolution"])), row["name"]
        assert fam.spec(1).resolution == int(row["resolution"])
        tv = doc["equivalents"]["members"][1]  # torchvision's own presets have these parameter counts
        assert tv["torchvision_default_params"] == int(row["params_exact"]) and tv["head"] == tv["torchvision_default_head"]


def test_torchvision_head_differs_off_the_presets():
    doc = family_document(load_base("b0"), 1.2, 1.1, 1.15)
    two = doc["equivalents"]["members"][2]  # width 1.21
    assert (two["head"], two["torchvision_default_head"]) == (1552, 1536)
    assert two["torchvision_default_params"] != doc["family"][2]["params"]
    assert "last_channel" in doc["equivalents"]["torchvision"]["call"]


# ------------------------------------------------------------ ranking and ties on hand-made trials

def trials(rows: list[tuple]) -> pd.DataFrame:
    """rows of (alpha, state, value[, fail_reason[, epochs_done]]) at β = γ = 1, φ = 1."""
    out, seeds = [], {}
    for alpha, state, value, *rest in rows:
        seeds[alpha] = seeds.get(alpha, -1) + 1  # a candidate's rows are its seeds 0, 1, ...
        out.append({"state": state, "value": value, "alpha": alpha, "beta": 1.0, "gamma": 1.0, "phi": 1, "seed": seeds[alpha],
                    "best_epoch": 2 if state == "COMPLETE" else None, "seconds": 1.0,
                    "fail_reason": rest[0] if rest else None, "epochs_done": rest[1] if len(rest) > 1 else 2})
    return pd.DataFrame(out)


def test_ranking_intervals_and_ties_known_answer():
    df = trials([(1.1, "COMPLETE", v) for v in (0.80, 0.82, 0.81)] + [(1.2, "COMPLETE", v) for v in (0.79, 0.80, 0.78)]
                + [(1.3, "COMPLETE", v) for v in (0.60, 0.61, 0.62)])
    r = ranking(df)
    assert list(r["alpha"]) == [1.1, 1.2, 1.3] and list(r["rank"]) == [1, 2, 3]
    assert list(r["acc_mean"]) == pytest.approx([0.81, 0.79, 0.61])
    assert r["ci95"].iloc[0] == pytest.approx(4.303 * 0.01 / math.sqrt(3), rel=1e-4)  # t(2) = 4.303, std 0.01
    # Too few networks for a surface: each judged on its own paired seeds; 0.61 is far behind, 0.79 close
    assert r["in_set"].iloc[0] and not r["in_set"].iloc[2] and r["p_best"].iloc[2] == 0
    assert r["p_best"].iloc[0] > r["p_best"].iloc[1] > 0 and list(r["tied"]) == list(r["in_set"])
    assert r["score_fit"].tolist() == pytest.approx([0.81, 0.79, 0.61]) and (r["score_fit_se"] > 0).all()
    assert has_intervals(r)


def test_one_seed_has_no_interval_and_says_so():
    r = ranking(trials([(1.1, "COMPLETE", 0.70), (1.2, "COMPLETE", 0.71)]))
    # no noise estimate: neither can be excluded from the set of those that could be best
    assert list(r["alpha"]) == [1.2, 1.1] and r["in_set"].all() and r["ci95"].isna().all()
    assert not has_intervals(r)
    assert "no interval available" in markdown_ranking(r, "title")
    # 71% on 500 images: binomial standard error √(0.71 · 0.29 / 500) = 2.03 points; gap margin 1.96 · √2 · 2.03 = 5.6
    caption = markdown_ranking(r, "title", val_images=500)
    assert "standard error of 2.0 points" in caption and "gaps under 5.6 points may be noise" in caption


def test_equal_means_keep_their_order_and_tie():
    r = ranking(trials([(1.1, "COMPLETE", 0.70), (1.1, "COMPLETE", 0.72), (1.2, "COMPLETE", 0.71), (1.2, "COMPLETE", 0.71)]))
    assert list(r["alpha"]) == [1.1, 1.2] and list(r["tied"]) == [True, True]


def test_failed_and_pruned_only_with_all_and_other_phi_left_out():
    df = trials([(1.1, "COMPLETE", 0.7), (1.1, "FAIL", None, "out of memory on cuda at 64 px"), (1.2, "FAIL", None, "diverged"),
                 (1.3, "PRUNED", 0.2, None, 1)])
    df = pd.concat([df, trials([(1.4, "COMPLETE", 0.99)]).assign(phi=2)], ignore_index=True)
    assert list(ranking(df)["alpha"]) == [1.1]
    every = ranking(df, include_all=True)
    assert list(every["alpha"]) == [1.1, 1.2, 1.3]
    assert list(every["state"]) == ["complete (some seeds fail)", "failed: diverged", "pruned after epoch 1"]
    assert every["rank"].iloc[1:].isna().all()


def test_trials_frame_reads_the_study(study):
    df = trials_frame(study["study"])
    assert set(df["state"]) == {"COMPLETE", "FAIL", "PRUNED"}
    assert (df.loc[df["state"] == "COMPLETE", "seed"].value_counts() == 2).all()


def test_a_failed_seed_that_ran_again_is_no_failure() -> None:
    common = {"beta": 1.0, "gamma": 1.0, "phi": 1, "alpha": 1.2}
    trials = pd.DataFrame([{**common, "trial": 0, "state": "FAIL", "seed": 0, "value": None, "fail_reason": "worker lost (no heartbeat)"},
                           {**common, "trial": 1, "state": "COMPLETE", "seed": 1, "value": 0.5},
                           {**common, "trial": 2, "state": "COMPLETE", "seed": 0, "value": 0.6}])
    assert ranking(trials, include_all=True)["state"].tolist() == ["complete"]
    trials.loc[2, "state"] = "FAIL"  # the re-run failed too: that is a failed seed
    assert ranking(trials, include_all=True)["state"].tolist() == ["complete (some seeds fail)"]


def test_a_perfect_val_score_still_has_a_standard_error():
    """100% on 150 images does not mean no noise: the caption must not promise that gaps of 0 points are real."""
    from scalesearch.results._ranking import val_standard_error

    assert 0 < val_standard_error(1.0, 150) < val_standard_error(0.5, 150)
    assert val_standard_error(1.0, 150) == pytest.approx(val_standard_error(0.0, 150))
    assert val_standard_error(0.8, 500) == pytest.approx((0.8 * 0.2 / 500) ** 0.5)


def test_show_finds_a_study_by_its_folder_or_its_name_in_nested_results(capsys, tmp_path, monkeypatch):
    """STUDY is a results folder (from anywhere), or a name found anywhere under results/; --wide gives every column."""
    results = tmp_path / "results" / "nested"
    assert run_cli(capsys, "run", "--base", "tiny-mbconv", "--data", "synthetic:96", "--train", "32", "--val", "32",
                   "--epochs", "1", "--seeds", "1", "--max-seeds", "1", "--study", "deep", "--results-dir", results).code == 0
    monkeypatch.chdir(tmp_path)
    for study in ("results/nested/deep", "results/nested/deep/study.db", "deep", None):
        r = run_cli(capsys, "show", *([study] if study else []))
        assert r.code == 0, r.err
        assert "Ranking: deep" in r.out and sum(line.startswith("verdict: ") for line in r.out.splitlines()) == 1
    wide = run_cli(capsys, "show", "deep", "--wide").out
    assert "measured_target" in wide and "target_resolution" in wide
    assert_user_error(run_cli(capsys, "show", "nope"), "no study 'nope'")


def test_optuna_compares_trials_by_the_score_the_ranking_uses(study):
    """One meaning of "best": every trial's Optuna value is the score the ranking fits (val top-1 in this study,
    −final val loss by default), maximised, so Optuna's best trial (optuna-dashboard's) is the best single (candidate, seed) by that score.
    The ranking's winner is the surface's optimum over all seeds, which a single lucky seed need not be."""
    st = study["study"]
    frame = trials_frame(st)
    done = frame[frame["state"] == "COMPLETE"]
    assert st.direction == optuna.study.StudyDirection.MAXIMIZE
    assert done["value"].tolist() == pytest.approx(done["score"].tolist())
    assert st.best_trial.value == pytest.approx(done["score"].max())
    assert frame.set_index("trial").loc[st.best_trial.number, "acc"] == pytest.approx(done["acc"].max())
