"""extrapolate, verify and plot: through the CLI on one tiny synthetic study, and their maths on hand-made data."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_helpers import assert_user_error, run_cli
from scalesearch.arch import load_base, scale
from scalesearch.cli import main
from scalesearch.arch import network_cost
from scalesearch.results._extrapolate import (Underdetermined, family_points, fit_line, kendall_tau, official_family,
                                     transfer_check)
from scalesearch.results.plots import pareto_mask
from scalesearch.space import Candidate, assess

# Three feasible grid points for tiny-mbconv at 2x measured (within 10%): (1, 1, 1.4), (1.3, 1, 1.2), (1.6, 1, 1).
SPACE = """
budget = 2.0
tolerance = 0.1
constraint = "measured"
[alpha]
min = 1.0
max = 1.6
step = 0.3
[beta]
min = 1.0
max = 1.2
step = 0.2
[gamma]
min = 1.0
max = 1.4
step = 0.2
[search]
phi2 = 0
[proxy]
batch_size = 32
width = 1.0
max_seeds = 1
score = "acc"
"""
STUDY = "tiny"


def cli(*args: object) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return int(exit_info.value.code or 0)


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A searched and verified study: 3 candidates at φ = 1, the top 2 at φ = 2 and the base at φ = 0."""
    root = tmp_path_factory.mktemp("study")
    (root / "space.toml").write_text(SPACE)
    common = ["--results-dir", root / "results"]
    assert cli("run", "--base", "tiny-mbconv", "--space", root / "space.toml", "--data", "synthetic:64", "--epochs", 1,
               "--train", 64, "--val", 32, "--proxy-resolution", 16, "--device", "cpu", "--study", STUDY, *common) == 0
    assert cli("verify", STUDY, "--top", 2, "--device", "cpu", *common) == 0
    return root / "results"


def trials(results_dir: Path) -> pd.DataFrame:
    return pd.read_csv(results_dir / STUDY / "trials.csv")


# ------------------------------------------------------------------ verify


def test_verify_trained_top_two_and_base(results_dir: Path) -> None:
    t = trials(results_dir)
    assert sorted(t["phi"].tolist()) == [0, 1, 1, 1, 2, 2]
    assert (t["state"] == "COMPLETE").all()
    base = t[t["phi"] == 0].iloc[0]
    assert (base["alpha"], base["beta"], base["gamma"]) == (1, 1, 1)
    top2 = pd.read_csv(results_dir / STUDY / "ranking.csv").head(2)
    again = t[t["phi"] == 2]
    assert sorted(zip(again["alpha"], again["gamma"])) == sorted(zip(top2["alpha"], top2["gamma"]))
    # φ = 2 trains the coefficients squared: the proxy side is 16 × γ², half up
    for r in again.itertuples():
        assert r.proxy_resolution == int(16 * r.gamma**2 + 0.5)


def test_verify_again_trains_nothing_and_reports_tau(capsys: pytest.CaptureFixture[str], results_dir: Path) -> None:
    r = run_cli(capsys, "verify", STUDY, "--top", 2, "--device", "cpu", "--results-dir", results_dir)
    assert r.code == 0, r.err
    assert len(trials(results_dir)) == 6
    assert "Transfer check: top 2 at φ = 1 trained again at φ = 2" in r.out
    assert "Kendall τ-b" in r.out and "first place at φ = 2" in r.out
    t = trials(results_dir)
    acc1 = pd.read_csv(results_dir / STUDY / "ranking.csv").head(2)
    acc2 = [t[(t["phi"] == 2) & (t["alpha"] == a) & (t["gamma"] == g)]["value"].iloc[0] for a, g in zip(acc1["alpha"], acc1["gamma"])]
    tau = kendall_tau(acc1["acc_mean"].tolist(), acc2)
    if math.isnan(tau):
        assert "τ-b: undefined" in r.out
    else:
        assert f"rankings: {tau:+.2f} over 2 candidates" in r.out


def test_verify_bad_input(capsys: pytest.CaptureFixture[str], results_dir: Path, tmp_path: Path) -> None:
    assert_user_error(run_cli(capsys, "verify", STUDY, "--top", 0, "--results-dir", results_dir), "--top must be >= 1")
    assert_user_error(run_cli(capsys, "verify", STUDY, "--phi", 1, "--results-dir", results_dir), "--phi must be > 1")
    assert_user_error(run_cli(capsys, "verify", "--results-dir", tmp_path), "no study under")
    assert_user_error(run_cli(capsys, "verify", "nope", "--results-dir", results_dir), "no study 'nope'")


def test_verify_single_candidate_says_tau_undefined(capsys: pytest.CaptureFixture[str], results_dir: Path) -> None:
    r = run_cli(capsys, "verify", STUDY, "--top", 1, "--device", "cpu", "--results-dir", results_dir)
    assert r.code == 0, r.err
    assert "Kendall τ-b: undefined: it needs at least 2 candidates" in r.out
    assert len(trials(results_dir)) == 6  # the winner and the base were already trained


# -------------------------------------------------------------- extrapolate


def test_extrapolate_fit_matches_numpy(capsys: pytest.CaptureFixture[str], results_dir: Path) -> None:
    r = run_cli(capsys, "extrapolate", STUDY, "--phi", "0..4", "--results-dir", results_dir)
    assert r.code == 0, r.err
    t = trials(results_dir)
    w = pd.read_csv(results_dir / STUDY / "ranking.csv").iloc[0]
    mine = t[(t["phi"] == 0) | ((t["alpha"] == w["alpha"]) & (t["beta"] == w["beta"]) & (t["gamma"] == w["gamma"]))]
    assert len(mine) == 3  # base, winner, winner at φ = 2
    x, y = np.log10(mine["macs_proxy"].astype(float)), mine["value"].astype(float)
    slope, intercept = np.polyfit(x, y, 1)
    s = math.sqrt(((y - (intercept + slope * x)) ** 2).sum() / (len(x) - 2))
    assert "Proxy-space prediction per φ" in r.out
    assert f"residual std {100 * s:.2f} points over 3 runs" in r.out
    for phi in (3, 4):
        a = assess(load_base("tiny-mbconv"), Candidate(w["alpha"] ** phi, w["beta"] ** phi, w["gamma"] ** phi), 16, 10, 1)
        xp = math.log10(a.macs_proxy)
        pred = intercept + slope * xp
        se = s * math.sqrt(1 + 1 / 3 + (xp - x.mean()) ** 2 / ((x - x.mean()) ** 2).sum())
        row = next(line for line in r.out.splitlines() if line.startswith(f"│ {phi} ") and f"{a.macs_proxy / 1e6:.2f}" in line)
        assert f"{100 * pred:.2f}" in row and f"{100 * se:.2f}" in row, row


def test_one_candidate_study(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """One candidate: no fit with fewer than 3 runs, verify --top beyond what exists, τ undefined."""
    (tmp_path / "space.toml").write_text(SPACE.replace("max = 1.6", "max = 1.0"))  # only (1, 1, 1.4)
    r = run_cli(capsys, "run", "--base", "tiny-mbconv", "--space", tmp_path / "space.toml", "--data", "synthetic:64",
                "--epochs", 1, "--train", 64, "--val", 32, "--proxy-resolution", 16, "--device", "cpu",
                "--results-dir", tmp_path / "r")
    assert r.code == 0, r.err
    r = run_cli(capsys, "extrapolate", "--results-dir", tmp_path / "r")
    assert r.code == 0, r.err
    assert "fit underdetermined: 1 point(s)" in r.out and "no prediction printed" in r.out
    assert "predicted val top-1" not in r.out
    r = run_cli(capsys, "verify", "--top", 5, "--no-base-run", "--device", "cpu", "--results-dir", tmp_path / "r")
    assert r.code == 0, r.err
    assert "only 1 complete candidate(s) in the study; verifying all of them" in r.err
    assert "Kendall τ-b: undefined: it needs at least 2 candidates with both runs complete, have 1" in r.out
    r = run_cli(capsys, "extrapolate", "--results-dir", tmp_path / "r")
    assert "fit underdetermined: 2 point(s) at 2 distinct cost(s)" in r.out and "predicted val top-1" not in r.out


def test_extrapolate_coefficients_against_reference(capsys: pytest.CaptureFixture[str], reference: list[dict[str, str]]) -> None:
    r = run_cli(capsys, "extrapolate", "--alpha", 1.2, "--beta", 1.1, "--gamma", 1.15, "--compare-official", "--format", "csv")
    assert r.code == 0, r.err
    rows = list(csv.DictReader(io.StringIO(r.out)))
    assert [float(x["phi"]) for x in rows] == list(range(8))
    b0 = load_base("b0")
    for row, ref in zip(rows, reference):
        phi = float(row["phi"])
        # what the math says: α^φ, β^φ, 224 × γ^φ to the nearest multiple of 4 px
        side = int(224 * 1.15**phi / 4 + 0.5) * 4
        assert int(row["resolution"]) == side and float(row["depth_mult"]) == round(1.2**phi, 4)
        assert int(row["params"]) == network_cost(scale(b0, 1.1**phi, 1.2**phi, side)).params
        # the official columns are the reference figures, exactly
        assert row["official"] == ref["name"]
        for col, ref_col in (("width_mult", "width_mult"), ("depth_mult", "depth_mult"), ("resolution", "resolution"),
                             ("dropout", "dropout"), ("params", "params_exact"), ("macs", "macs_conv_fc")):
            assert float(row[f"official_{col}"]) == float(ref[ref_col]), (ref["name"], col)
    assert rows[0]["params"] == rows[0]["official_params"] == "5288548"  # φ = 0 is B0 itself
    assert [int(x["resolution"]) for x in rows] == [224, 256, 296, 340, 392, 452, 520, 596]


@pytest.mark.parametrize("name", ["b1", "b2", "b3"])
def test_extrapolate_member_that_is_a_preset_has_its_exact_figures(capsys: pytest.CaptureFixture[str], name: str,
                                                                   reference: list[dict[str, str]]) -> None:
    ref = next(x for x in reference if x["name"] == name)
    gamma = int(ref["resolution"]) / 224
    r = run_cli(capsys, "extrapolate", "--alpha", ref["depth_mult"], "--beta", ref["width_mult"], "--gamma", gamma,
                "--phi", 1, "--format", "csv")
    assert r.code == 0, r.err
    row = next(csv.DictReader(io.StringIO(r.out)))
    assert (int(row["resolution"]), int(row["params"]), int(row["macs"])) == (
        int(ref["resolution"]), int(ref["params_exact"]), int(ref["macs_conv_fc"]))


def test_extrapolate_table_says_units_and_rounding(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_cli(capsys, "extrapolate", "--alpha", 1.2, "--beta", 1.1, "--gamma", 1.15, "--phi", "0..2:0.5", "--compare-official")
    assert r.code == 0, r.err
    assert "rounded to a multiple of 4 px" in r.out
    for unit in ("params (M)", "GMACs", "activations (M)", "resolution (px)"):
        assert unit in r.out
    assert "│ 0.5 " in r.out and "B2" in r.out


def test_official_family_equals_reference(reference: list[dict[str, str]]) -> None:
    off = official_family()
    assert off["params"].tolist() == [int(x["params_exact"]) for x in reference]
    assert off["macs"].tolist() == [int(x["macs_conv_fc"]) for x in reference]


def test_extrapolate_bad_input(capsys: pytest.CaptureFixture[str], results_dir: Path, tmp_path: Path) -> None:
    assert_user_error(run_cli(capsys, "extrapolate", "--results-dir", tmp_path), "no study under")
    assert_user_error(run_cli(capsys, "extrapolate", "--alpha", 1.2, "--phi", "abc"), "--phi must be a number or a range")
    assert_user_error(run_cli(capsys, "extrapolate", "--alpha", 1.2, "--beta", 1.1, "--gamma", 1.15, "--phi", "3..1"), "--phi range")
    assert_user_error(run_cli(capsys, "extrapolate", "--alpha", 1.2, "--phi", 2), "all three of --alpha, --beta and --gamma")
    assert_user_error(run_cli(capsys, "extrapolate", STUDY, "--alpha", 1.2, "--beta", 1.1, "--gamma", 1.15,
                              "--results-dir", results_dir), "not both")
    assert_user_error(run_cli(capsys, "extrapolate", "--alpha", 0, "--beta", 1.1, "--gamma", 1.15), "--alpha must be > 0")
    assert_user_error(run_cli(capsys, "extrapolate", STUDY, "--base", "b0", "--results-dir", results_dir), "--base goes with")
    assert_user_error(run_cli(capsys, "extrapolate", "--alpha", 1.2, "--beta", 1.1, "--gamma", 1.15, "--format", "xml"),
                      "--format must be table or csv")


# --------------------------------------------------------------------- plot


def test_plot_writes_png_and_svg(capsys: pytest.CaptureFixture[str], results_dir: Path, tmp_path: Path) -> None:
    r = run_cli(capsys, "plot", STUDY, "-o", tmp_path / "plots", "--results-dir", results_dir)
    assert r.code == 0, r.err
    files = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert files == sorted(f"{stem}.{ext}" for stem in ("accuracy_vs_mmacs", "alpha_beta_plane", "family") for ext in ("png", "svg"))
    for name in files:
        data = (tmp_path / "plots" / name).read_bytes()
        assert len(data) > 5000
        assert data.startswith(b"\x89PNG") if name.endswith(".png") else b"<svg" in data[:1000]
    assert "MMACs per image" in (tmp_path / "plots" / "accuracy_vs_mmacs.svg").read_text()


def test_plot_bad_input(capsys: pytest.CaptureFixture[str], results_dir: Path, tmp_path: Path) -> None:
    assert_user_error(run_cli(capsys, "plot", "--results-dir", tmp_path), "no study under")
    (tmp_path / "file").write_text("x")
    assert_user_error(run_cli(capsys, "plot", STUDY, "-o", tmp_path / "file", "--results-dir", results_dir), "not a folder")
    assert_user_error(run_cli(capsys, "plot", STUDY, "--phi", "x", "--results-dir", results_dir), "--phi must be")


# ------------------------------------------------------------ hand-made data


def test_kendall_tau_known_rankings() -> None:
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # one discordant pair of six
    # τ-b with ties: 4 concordant, 0 discordant, 5 pairs untied on each side → 4 / sqrt(5 · 5)
    assert kendall_tau([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    assert math.isnan(kendall_tau([1], [1]))


def test_fit_line_on_known_points() -> None:
    exact = fit_line([1, 2, 3], [0.3, 0.5, 0.7])
    assert (exact.slope, exact.intercept, exact.resid_std) == (pytest.approx(0.2), pytest.approx(0.1), pytest.approx(0))
    assert exact.predict(5) == (pytest.approx(1.1), pytest.approx(0))
    # residuals +0.01, -0.02, +0.01 around y = 0.1 + 0.2 x: s = sqrt(0.0006 / 1), Sxx = 2, x̄ = 2
    noisy = fit_line([1, 2, 3], [0.31, 0.48, 0.71])
    y, se = noisy.predict(4)
    assert noisy.slope == pytest.approx(0.2) and y == pytest.approx(0.9)
    assert se == pytest.approx(math.sqrt(0.0006) * math.sqrt(1 + 1 / 3 + 4 / 2))
    assert noisy.t95 == pytest.approx(12.706, abs=1e-3)  # Student t, 1 degree of freedom
    with pytest.raises(Underdetermined, match="2 point"):
        fit_line([1, 2], [0.3, 0.5])
    with pytest.raises(Underdetermined, match="1 distinct"):
        fit_line([2, 2, 2], [0.3, 0.5, 0.4])


def _trials(rows: list[tuple]) -> pd.DataFrame:
    cols = ["phi", "alpha", "beta", "gamma", "seed", "value", "state", "macs_proxy"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows]).assign(fail_reason=None)


def test_family_points_picks_base_and_winner() -> None:
    t = _trials([(0, 1.0, 1.0, 1.0, 0, 0.50, "COMPLETE", 100), (1, 1.0, 1.0, 1.0, 1, 0.52, "COMPLETE", 100),
                 (1, 1.2, 1.1, 1.1, 0, 0.60, "COMPLETE", 200), (1, 1.2, 1.1, 1.1, 1, 0.61, "COMPLETE", 200),
                 (2, 1.2, 1.1, 1.1, 0, 0.66, "COMPLETE", 400), (2, 1.2, 1.1, 1.1, 1, 0.0, "FAIL", 400),
                 (1, 1.3, 1.0, 1.1, 0, 0.70, "COMPLETE", 210), (2, 1.3, 1.0, 1.1, 0, 0.75, "COMPLETE", 420)])
    p = family_points(t, 1.2, 1.1, 1.1)
    assert p["phi"].tolist() == [0, 0, 1, 1, 2]
    assert p["acc"].tolist() == [0.50, 0.52, 0.60, 0.61, 0.66]


def test_transfer_check_on_hand_made_trials() -> None:
    cands = [Candidate(1.2, 1.1, 1.1), Candidate(1.3, 1.0, 1.1), Candidate(1.1, 1.2, 1.1)]
    t = _trials([(1, 1.2, 1.1, 1.1, 0, 0.70, "COMPLETE", 1), (1, 1.3, 1.0, 1.1, 0, 0.65, "COMPLETE", 1),
                 (1, 1.1, 1.2, 1.1, 0, 0.60, "COMPLETE", 1),
                 (2, 1.2, 1.1, 1.1, 0, 0.72, "COMPLETE", 2), (2, 1.3, 1.0, 1.1, 0, 0.75, "COMPLETE", 2),
                 (2, 1.1, 1.2, 1.1, 0, 0.71, "COMPLETE", 2)])
    check = transfer_check(t, cands, phi=2)
    assert check.table["rank_phi"].tolist() == [2, 1, 3]
    assert check.tau == pytest.approx(1 / 3)  # (2 concordant − 1 discordant) / 3 pairs
    assert check.winner_held is False
    failed = t.assign(state=["COMPLETE"] * 3 + ["FAIL"] + ["COMPLETE"] * 2)
    assert transfer_check(failed, cands, phi=2).winner_held is None


def test_pareto_mask() -> None:
    assert pareto_mask([1, 2, 2, 3, 4], [0.5, 0.6, 0.7, 0.65, 0.9]).tolist() == [True, False, True, False, True]
