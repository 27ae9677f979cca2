"""Soundness of the main job's answer: the default search run again with other seeds.

Each run is ``scalesearch run --base b0 --budget 2x`` on a copy of the shipped
default space that differs only in ``seed`` (which changes every seed's training
subset, order and init). It reports, for every pair of runs, Kendall's τ-b
between their rankings (seed-adjusted scores over the candidates both ranked),
whether each winner is the other's winner or inside its tied set, the tied sets'
sizes, and for every run the proxy MACs spread (max/min over ranked candidates),
the verdict and the wall time.

    .venv/bin/python -m benchmarks --only soundness [--quick]

`--quick` runs the tiny test base on synthetic data: a smoke test of the code
path, not a measurement. Seeds: 0 and 7 (7 keeps the two runs' seed sets apart).
"""
from __future__ import annotations

import tempfile
import time
from itertools import combinations
from pathlib import Path

from scalesearch.stats import _race as race
from scalesearch.results import _ranking as results
from scalesearch import search
from scalesearch.results._extrapolate import kendall_tau
from scalesearch.space import load_space

from .common import console, section, table

SEEDS = (0, 7)


def one_run(seed: int, folder: Path, quick: bool, device: str) -> dict:
    space = Path(load_space("default").path).read_text().replace("\nseed = 0", f"\nseed = {seed}")
    path = folder / f"default-seed{seed}.toml"
    path.write_text(space)
    options = search.RunOptions(base="tiny-mbconv" if quick else "b0", space=str(path), device=device,
                                data="synthetic:256" if quick else "embedded", results_dir=str(folder / f"seed{seed}"))
    start = time.perf_counter()
    _, study = search.execute(options)
    seconds = time.perf_counter() - start
    trials = results.trials_frame(study)
    ranked = results.ranking(trials)
    console.log(f"seed {seed}: {len(ranked)} ranked in {seconds:.0f} s")
    return {"seed": seed, "seconds": seconds, "ranked": ranked, "verdict": race.verdict(trials)}


def _key(r) -> tuple[float, float, float]:
    return (round(r.alpha, 4), round(r.beta, 4), round(r.gamma, 4))


def compare(a: dict, b: dict) -> list:
    """τ-b over the common candidates, and whether each winner sits in the other's tied set."""
    sa = {_key(r): r.score_mean for r in a["ranked"].itertuples()}
    sb = {_key(r): r.score_mean for r in b["ranked"].itertuples()}
    common = sorted(set(sa) & set(sb))
    tau = kendall_tau([sa[k] for k in common], [sb[k] for k in common])
    tied_a = {tuple(round(x, 4) for x in c) for c in a["verdict"].tied}
    tied_b = {tuple(round(x, 4) for x in c) for c in b["verdict"].tied}
    wa, wb = (tuple(round(x, 4) for x in r["verdict"].winner) for r in (a, b))
    return [f"{a['seed']} vs {b['seed']}", len(common), f"{tau:+.2f}", "yes" if wa == wb else "no",
            "yes" if wa in tied_b else "no", "yes" if wb in tied_a else "no"]


def run(quick: bool = False, device: str = "cpu") -> str:
    with tempfile.TemporaryDirectory() as tmp:
        runs = [one_run(seed, Path(tmp), quick, device) for seed in SEEDS]
    per_run = [[r["seed"], len(r["ranked"]), f"{r['ranked']['macs_proxy'].max() / r['ranked']['macs_proxy'].min():.2f}",
                len(r["verdict"].tied), "(" + ", ".join(f"{x:g}" for x in r["verdict"].winner) + ")",
                f"{100 * r['verdict'].p_best:.0f}", r["verdict"].words, f"{r['seconds'] / 60:.1f}"] for r in runs]
    pairs = [compare(a, b) for a, b in combinations(runs, 2)]
    body = (table(["seed", "ranked", "proxy MACs max/min", "tied at φ = 1", "winner (α, β, γ)", "P(best) %", "verdict",
                   "wall time (min)"], per_run) + "\n\n" +
            table(["runs", "common candidates", "Kendall τ-b", "same winner", "A's winner in B's tied set",
                   "B's winner in A's tied set"], pairs))
    return section("Soundness: the default search with other seeds" + (" (quick: tiny base, synthetic data)" if quick else ""),
                   device, body)
