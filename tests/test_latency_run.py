"""`scalesearch run --constraint acts|latency` end to end (latency faked as MACs: no timing luck), show, export, bad input."""
from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import optuna
import pandas as pd
import pytest

from cli_helpers import assert_user_error, run_cli, tiny_space
from scalesearch.arch import _latency as latency
from scalesearch.arch import _model as model
from scalesearch import search
from scalesearch.arch import network_cost
from scalesearch.arch import Latency
from scalesearch.results import read_trial

TOLERANCE = 0.1


def space(folder: Path, constraint: str) -> Path:
    path = folder / f"{constraint}.toml"
    path.write_text(tiny_space(tolerance=TOLERANCE, epochs=1).replace('constraint = "nominal"', f'constraint = "{constraint}"'))
    return path


def args(space_file: Path, results: Path, *extra: str) -> list[str]:
    return ["run", "--base", "tiny-mbconv", "--data", "synthetic:64", "--space", str(space_file),
            "--results-dir", str(results), "--device", "cpu", *extra]


@pytest.fixture
def macs_clock(monkeypatch):
    """Latency := the built network's MACs (1 ps each), so a latency ratio is its MACs ratio; counts the timings."""
    calls = []

    def fake(net, side, in_channels, device, cond, min_run_time, warmup):
        calls.append(side)
        return Latency(network_cost(net.spec, side, net.classifier.out_features, in_channels).macs * 1e-12, 0.0, 5, cond)

    monkeypatch.setattr(latency, "time_network", fake)
    # Only the spec matters to this clock; the proxy imported its own `build` and still trains real networks.
    monkeypatch.setattr(model, "build", lambda spec, num_classes=1000, in_channels=3: SimpleNamespace(
        spec=spec, classifier=SimpleNamespace(out_features=num_classes)))
    return calls


def ranking_of(results: Path) -> pd.DataFrame:
    (folder,) = [p for p in results.iterdir() if p.is_dir()]
    return pd.read_csv(folder / "ranking.csv")


def test_acts_run_ranks_only_candidates_within_the_activation_budget(capsys, tmp_path):
    r = run_cli(capsys, *args(space(tmp_path, "acts"), tmp_path / "results"))
    assert r.code == 0, r.err
    ranked = ranking_of(tmp_path / "results")
    assert len(ranked) == 13 and ((ranked["acts_target"] / 2 - 1).abs() <= TOLERANCE + 1e-9).all()
    assert not ((ranked["measured_target"] / 2 - 1).abs() <= TOLERANCE).all()  # a different set than MACs would give
    assert "budget: 2x ± 10% in acts (conv and linear output elements" in r.out


def test_latency_run_records_latency_and_conditions_and_a_rerun_measures_nothing(capsys, tmp_path, macs_clock):
    results = tmp_path / "results"
    r = run_cli(capsys, *args(space(tmp_path, "latency"), results))
    assert r.code == 0, r.err
    ranked = ranking_of(results)
    # latency == MACs here, so the latency-feasible set is the MACs-feasible one (6 points of this space)
    assert len(ranked) == 6 and ((ranked["latency_target"] / 2 - 1).abs() <= TOLERANCE + 1e-9).all()
    assert (ranked["latency_target"] - ranked["measured_target"]).abs().max() < 1e-9 and (ranked["latency_s"] > 0).all()
    assert "latency: cpu " in r.err and "pre-filter kept" in r.err and "budget: 2x ± 10% in latency" in r.out
    timed = len(macs_clock)
    (db,) = results.glob("*/study.db")
    study = optuna.load_study(study_name=db.parent.name, storage=f"sqlite:///{db}")
    recorded = study.user_attrs["config"]["latency"]
    assert recorded["conditions"]["memory_format"] == "channels_last" and recorded["measured"] == recorded["networks"]
    assert all("latency_target" in read_trial(t) for t in study.trials if read_trial(t).get("phi") == 1)
    doc = json.loads((db.parent / "coefficients.json").read_text())
    assert doc["constraint_detail"]["latency"]["conditions"]["batch"] == 1 and doc["latency_target"] > 0
    fam = {row["phi"]: row for row in doc["family"]}  # the winner's family timed too, here in MACs
    assert fam[0]["latency_ratio"] == 1 and fam[1]["latency_ratio"] == pytest.approx(doc["measured_target"], rel=0.05)
    assert all(fam[p + 1]["latency_s"] > fam[p]["latency_s"] for p in range(7)) and fam[3]["acts"] > fam[2]["acts"]
    assert run_cli(capsys, *args(space(tmp_path, "latency"), results)).code == 0  # resume: all from the cache
    assert len(macs_clock) == timed


def test_a_joined_study_judges_the_points_its_creator_measured(capsys, tmp_path, macs_clock, monkeypatch):
    results = tmp_path / "results"
    assert run_cli(capsys, *args(space(tmp_path, "latency"), results)).code == 0
    (results / "latency-cache.json").unlink()  # another machine: no cache, and it must not measure

    def refuse(*a, **k):
        raise AssertionError("a joined study measured latency again")

    monkeypatch.setattr(latency, "time_network", refuse)
    (db,) = results.glob("*/study.db")
    plan, _ = search.load(f"sqlite:///{db}", db.parent.name)
    assert plan.report.feasible_latency == 6 and plan.report.latency.kept > 6


@pytest.mark.parametrize("extra, fragments", [
    (["--latency-batch", "0"], ["--latency-batch must be >= 1", "got 0"]),
    (["--latency-device", "cuda:3"], ["latency device 'cuda:3' is not available"]),
    (["--latency-device", "tpu"], ["unknown latency device 'tpu'"]),
    (["--constraint", "speed"], ["constraint must be one of", "got 'speed'"]),
    (["--sampler", "tpe"], ["constraint latency works with the grid sampler only"]),
])
def test_bad_latency_options_are_one_line(capsys, tmp_path, extra, fragments):
    assert_user_error(run_cli(capsys, *args(space(tmp_path, "latency"), tmp_path / "r", *extra)), *fragments)


def test_extrapolate_times_the_family_on_request(capsys, tmp_path, macs_clock):
    r = run_cli(capsys, "extrapolate", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phi", "0..2", "--latency",
                "--latency-device", "cpu", "--format", "csv", "--results-dir", str(tmp_path))
    assert r.code == 0, r.err
    rows = pd.read_csv(io.StringIO(r.out))
    assert rows.loc[0, "latency_ratio"] == 1 and list(rows["latency_ratio"]) == pytest.approx(list(rows["ratio"]), rel=0.05)
    assert "latency: cpu " in r.err and (tmp_path / "latency-cache.json").exists()
    assert_user_error(run_cli(capsys, "extrapolate", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--latency",
                              "--latency-batch", "0"), "--latency-batch must be >= 1", "got 0")
