"""The race over seeds and φ (scalesearch.race) and the proxy's design (scalesearch.fidelity)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run_cli, tiny_space
from scalesearch import fidelity, race
from scalesearch.arch import load_base
from scalesearch.candidates import feasible_grid
from scalesearch.space import load_space


def frame(rows: list[tuple]) -> pd.DataFrame:
    """Trials as results.trials_frame gives them: (α, β, γ, φ, seed, network, score)."""
    return pd.DataFrame([{"alpha": a, "beta": b, "gamma": g, "phi": phi, "seed": s, "network": net, "score": sc,
                          "state": "COMPLETE", "value": sc} for a, b, g, phi, s, net, sc in rows])


def test_one_seed_each_gives_the_best_a_second_seed_to_measure_the_noise() -> None:
    trials = frame([(1.0, 1.0 + k / 10, 1.0, 1, 0, f"n{k}", -k / 10) for k in range(5)])
    name, todo = race.next_round(trials, seeds=[0], max_seeds=3, contenders=2, phi2=1)
    assert "noise" in name and sorted(todo) == [(1.0, 1.0, 1.0, 1, 1), (1.0, 1.1, 1.0, 1, 1)]


def test_clearly_beaten_candidates_get_no_more_seeds_and_twins_go_to_phi_2_together() -> None:
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.3)):  # a seed moves everybody: pairing takes it out
        rows += [(1.1, 1.0, 1.2, 1, seed, "twin", 0.50 + shift), (1.2, 1.0, 1.2, 1, seed, "twin", 0.50 + shift),
                 (1.0, 1.1, 1.2, 1, seed, "close", 0.49 + shift + 0.005 * seed),
                 (1.0, 1.3, 1.0, 1, seed, "far", 0.30 + shift)]
    trials = frame(rows)
    name, todo = race.next_round(trials, seeds=[0, 1], max_seeds=3, contenders=6, phi2=2)
    assert name.startswith("racing") and {t[:3] for t in todo} == {(1.1, 1.0, 1.2), (1.2, 1.0, 1.2), (1.0, 1.1, 1.2)}
    assert {t[3] for t in todo} == {2}
    rows += [(a, b, g, 1, 2, n, s + 0.01) for a, b, g, _, seed, n, s in rows if seed == 0 and n != "far"]
    name, todo = race.next_round(frame(rows), seeds=[0, 1], max_seeds=3, contenders=6, phi2=2)
    assert name.startswith("φ = 2")  # the twins' network leads: both twins' φ = 2 members, on the base seeds
    assert sorted(todo) == sorted((a, 1.0, 1.2, s, 2) for a in (1.1, 1.2) for s in (0, 1))


def test_verdict_resolves_twins_at_phi_2_or_says_it_could_not() -> None:
    base = [(1.1, 1.0, 1.2, 1, s, "twin", 0.5 + d) for s, d in ((0, 0), (1, 0.01), (2, -0.01))]
    base += [(1.2, 1.0, 1.2, 1, s, "twin", sc) for *_, s, _, sc in base]
    base += [(1.0, 1.3, 1.0, 1, s, "far", 0.2 + d) for s, d in ((0, 0.001), (1, 0.012), (2, -0.011))]
    undecided = race.verdict(frame(base))
    assert not undecided.resolved and "build the same networks" in undecided.reason
    split = base + [(1.1, 1.0, 1.2, 2, s, "deep", 0.40 + d) for s, d in ((0, 0), (1, 0.002))]
    split += [(1.2, 1.0, 1.2, 2, s, "deeper", 0.45 + d) for s, d in ((0, 0), (1, 0.003))]
    v = race.verdict(frame(split))
    assert v.winner == (1.2, 1.0, 1.2) and v.stage == 2 and v.resolved, v
    assert v.p_best > 0.9 and (1.0, 1.3, 1.0) not in v.tied


def test_default_proxy_keeps_the_targets_cost_ratios() -> None:
    """Issue 13's bar: proxy MACs of the candidates within 1.3x of each other (32 px gave 2.27x)."""
    b0, space = load_base("b0"), load_space("default")
    cands = [a.candidate for a in feasible_grid(space, b0, 10, 1).feasible]
    d = fidelity.design(b0, cands, space.proxy.width, 10, 1, space.proxy.resolution)
    assert d.auto and d.deviation <= fidelity.MAX_DEVIATION and d.spread <= 1.3
    assert fidelity.deviation(b0, cands, 32, 1.0, 10, 1)[1] > 2


@pytest.mark.parametrize("lr", ["1e6", "1e30"])
def test_a_run_where_nothing_learns_ranks_nothing_and_exports_nothing(capsys, tmp_path: Path, lr: str) -> None:
    space = tmp_path / "lr.toml"
    space.write_text(tiny_space(budget=1.5, tolerance=0.05, gamma_max=1.2, epochs=1) + f"lr = {lr}\n")
    r = run_cli(capsys, "run", "--base", "tiny-mbconv", "--data", "synthetic:64", "--space", space,
                "--results-dir", tmp_path, "--device", "cpu")
    assert r.code == 2 and "no candidate completed" in r.err and "Traceback" not in r.err
    assert r.err.count("diverged") + r.err.count("did not learn") >= 3
    assert not list(tmp_path.glob("*/coefficients.json"))


def test_an_unresolved_verdict_says_how_many_seeds_would_settle_it():
    """Three networks within noise of each other after 3 paired seeds: the verdict is not resolved, and it
    prices the answer: the seeds per candidate at which the median gap to the leader clears the 95% margin."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(3):
        shift = rng.normal(0, 1)  # a seed effect shared by every candidate: the paired fit removes it
        for k, (net, mean) in enumerate((("a", 1.0), ("b", 0.99), ("c", 0.98))):
            rows.append((1.0, 1.0 + k / 10, 1.0, 1, seed, net, mean + shift + rng.normal(0, 0.05)))
    trials = frame(rows)
    v = race.verdict(trials)
    f = race.fit(race.observations(trials, 1))
    gaps = sorted(f.means.iloc[0] - f.means[k] for k in f.tied()[1:])
    assert not v.resolved and len(f.tied()) == 3
    assert v.seeds_needed == math.ceil(2 * (race.t95(f.dof) * f.sigma / gaps[1]) ** 2) > 3  # the farther of the 2 rivals
    assert f"about {int(v.seeds_needed):,} paired seeds per candidate (now up to 3)" in v.reason
    assert f.seeds_to_separate(0.0) == math.inf and f.seeds_to_separate(10 * f.sigma) == 1
