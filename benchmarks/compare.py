"""Compound against single-dimension scaling (``scalesearch compare``) on the embedded data and where resolution pays.

Three runs of the paper's coefficients (1.2, 1.1, 1.15) on B0, φ = 0 … 2:

1. **embedded**: the default ``scalesearch compare --base b0 --alpha 1.2 --beta 1.1 --gamma 1.15``, its
   10-minute budget included: the table and the wall time. Fashion-MNIST is 28 px, so a larger side
   adds compute but no detail there.
2. **planted, trained longer**: a generated folder of grey images whose classes differ only in a fine
   texture that smaller sides average away (:func:`benchmarks.planted.texture_folder`). The same members
   are trained with 4× the proxy's images × epochs (twice the epochs, twice the images) on 2 paired
   seeds, without a time budget, to show (not assume) that resolution pays there: resolution-only and
   compound against width-only, paired.
3. **planted, proxy**: the default comparison on that folder; no width row at φ ≥ 1 should say
   "single better" (the issue's bar).

    .venv/bin/python -m benchmarks --only compare [--quick]
    .venv/bin/python -m benchmarks.compare planted        # one part alone: embedded, planted

Runs stay in ``bench-results/compare[-quick]/``; the same command again resumes them (their wall time is
then the resume's: delete the folder to time them afresh). ``--quick`` is a smoke test: φ = 0 … 1, a
few hundred images, one epoch, short budgets.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna
import torch
import pandas as pd

import scalesearch
from scalesearch.comparison import paired, score_label, score_text, scores
from scalesearch.results import trials_frame

from .common import console, machine_line, section, table
from .planted import texture_folder

PAPER = {"alpha": 1.2, "beta": 1.1, "gamma": 1.15}
LONGER = 2  # epochs × LONGER and images × LONGER: LONGER² = 4× the proxy's images × epochs
optuna.logging.set_verbosity(optuna.logging.WARNING)


def timed(label: str, **options: Any) -> tuple[scalesearch.ComparisonResult, float]:
    console.log(f"{label}: scalesearch.compare({', '.join(f'{k}={v!r}' for k, v in options.items())})")
    start = time.monotonic()
    r = scalesearch.compare("b0", **PAPER, **options)
    return r, time.monotonic() - start


def rows_table(r: scalesearch.ComparisonResult) -> str:
    kind = r.document["score"]["kind"]
    rows = []
    for x in r.table.itertuples():
        if x.phi == 0 and x.family != "compound":
            continue
        acc = "–" if pd.isna(x.acc_mean) else f"{100 * x.acc_mean:.1f}" + ("" if pd.isna(x.acc_low) else
                                                                          f" ± {50 * (x.acc_high - x.acc_low):.1f}")
        diff = ("" if pd.isna(x.diff_vs_compound) else f"{score_text(x.diff_vs_compound, kind, True)} "
                f"[{score_text(x.diff_low, kind, True)}, {score_text(x.diff_high, kind, True)}]")
        rows.append(["base" if x.phi == 0 else x.family, x.phi, f"{x.macs / 1e6:,.0f}", f"{x.macs_ratio:.3f}",
                     x.proxy_side, x.n_seeds, acc, score_text(x.score_mean, kind), diff, x.verdict or ""])
    unit = r.document["score"]["difference_unit"]
    return table(["family", "φ", "MMACs (target)", "MACs ratio", "proxy px", "seeds", "val top-1 % ± 95%",
                  score_label(kind), f"Δ vs compound ({unit}) [95%]", "verdict"], rows)


def against_width(r: scalesearch.ComparisonResult) -> list[dict[str, Any]]:
    """Per φ ≥ 1: resolution-only − width-only and compound − width-only, paired on common seeds."""
    s = scores(trials_frame(r.study))
    key = {(m.family, m.phi): m.candidate.key for m in r.plan.members}
    out = []
    for phi in range(1, r.plan.settings.phi + 1):
        width = s.loc[key["width", phi], "score"] if key.get(("width", phi)) in s.index.get_level_values(0) else None
        for family in ("resolution", "compound"):
            if width is None or (family, phi) not in key:
                continue
            d = paired(s.loc[key[family, phi], "score"], width)
            out.append({"phi": phi, "family": family, "diff": d.mean, "low": d.low, "high": d.high, "pairs": d.pairs,
                        "ahead": "yes" if d.low > 0 else "no" if d.high < 0 else "not resolved"})
    return out


def width_table(pairs: list[dict[str, Any]], kind: str) -> str:
    return table(["φ", "member", f"− width-only ({'nats' if kind == 'loss' else 'points'}) [95%]", "paired seeds",
                  "ahead of width-only"],
                 [[p["phi"], f"{p['family']}{' only' if p['family'] != 'compound' else ''}",
                   f"{score_text(p['diff'], kind, True)} [{score_text(p['low'], kind, True)}, "
                   f"{score_text(p['high'], kind, True)}]", p["pairs"], p["ahead"]] for p in pairs])


def embedded_part(folder: Path, common: dict[str, Any]) -> str:
    r, t = timed("embedded", data="embedded", results_dir=str(folder / "embedded"), **common)
    return "\n\n".join([f"**1. Embedded data, the default command** ({t:.0f} s wall; {len(r.study.trials)} trials):",
                         rows_table(r), *r.verdicts.values()])


def planted_part(folder: Path, common: dict[str, Any], quick: bool) -> str:
    planted = texture_folder(folder / "planted-data", per_class=40 if quick else 1500)
    proxy = scalesearch.load_space("default").for_device(torch.device(common["device"]).type).proxy
    longer = {**common, "epochs": LONGER * proxy.epochs, "train": LONGER * proxy.train, "seeds": 2, "max_seeds": 2,
              "time": "none"}
    long_run, t_long = timed("planted, trained longer", data=str(planted), results_dir=str(folder / "planted-long"),
                             **longer)
    short, t_short = timed("planted, proxy", data=str(planted), results_dir=str(folder / "planted-proxy"), **common)
    kind = short.document["score"]["kind"]
    width_says = [x.verdict for x in short.table.itertuples() if x.family == "width" and x.phi >= 1]
    bar = "met" if "single better" not in width_says else "NOT met"
    pays = against_width(long_run)
    ahead = [str(p["phi"]) for p in pays if p["family"] == "resolution" and p["ahead"] == "yes"]
    return "\n\n".join([
        f"**2. Planted texture folder ({planted}), trained longer**: {LONGER * proxy.epochs} epochs of "
        f"{LONGER * proxy.train} images per seed (4× the proxy's images × epochs), 2 paired seeds, no time budget "
        f"({t_long:.0f} s wall):", rows_table(long_run), width_table(pays, kind),
        "Resolution pays on this folder when trained longer: " + (
            f"yes, resolution-only is ahead of width-only at φ = {', '.join(ahead)}" if ahead else
            "no, resolution-only is ahead of width-only at no φ") + " (paired 95% interval above 0).",
        f"**3. Planted texture folder, the default comparison** ({t_short:.0f} s wall; {len(short.study.trials)} "
        "trials):", rows_table(short), *short.verdicts.values(), width_table(against_width(short), kind),
        f"Bar: no width row at φ ≥ 1 says single better: **{bar}** (width verdicts: {', '.join(width_says)}).",
    ])


def run(quick: bool = False, device: str = "cpu", parts: tuple[str, ...] = ("embedded", "planted")) -> str:
    folder = Path("bench-results") / ("compare-quick" if quick else "compare")
    console.log(machine_line(device))
    small = {"phi": 1, "epochs": 1, "train": 384, "val": 256, "time": "3m"} if quick else {}
    common = {"device": device, **small}
    bodies = ([embedded_part(folder, common)] if "embedded" in parts else []) + (
        [planted_part(folder, common, quick)] if "planted" in parts else [])
    title = "Compound against single-dimension scaling" + (" (quick: φ ≤ 1, few images, 1 epoch)" if quick else "")
    return section(title, device, "\n\n".join(bodies), f"Runs and figures: {folder}/ (comparison.csv, "
                                                          "comparison.json, comparison.png in each results folder).")


if __name__ == "__main__":  # python -m benchmarks.compare [embedded] [planted]: one part alone
    import sys
    print(run(parts=tuple(sys.argv[1:]) or ("embedded", "planted")))

__all__ = ["run", "against_width", "rows_table"]
