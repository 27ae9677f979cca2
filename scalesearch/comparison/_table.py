"""The comparison as tables: a row per family and φ, the interaction's width curves, and a verdict line per family.

Scores are the search's (−final val loss by default, higher is better); val top-1 is reported beside.
A single-dimension row at φ ≥ 1 carries its paired difference to the compound member of the same φ
and the verdict; the compound rows are the reference and φ = 0 is the base, one network shared by
every family, so their ``diff_*`` and ``verdict`` are empty.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ..space._candidates import Assessment
from ..space._families import Member
from ._stats import Paired, interval, of, paired, seeds_words

# The columns of comparison.csv, the first.
COLUMNS = ("family", "phi", "macs_ratio", "score_mean", "diff_vs_compound", "diff_low", "diff_high", "verdict",
           "seeds_to_resolve", "n_seeds", "n_pairs", "score_low", "score_high", "acc_mean", "acc_low", "acc_high",
           "flagged", "depth_mult", "width_mult", "resolution_mult", "side", "macs", "proxy_side", "proxy_macs",
           "proxy_macs_ratio", "note")
UNITS = {
    "macs_ratio": "member's multiply-adds at its target side / the compound member's at the same φ (1000 classes)",
    "score_mean": "the search's score: −final val loss in nats (score = loss) or val top-1 as a fraction (score = acc); "
                  "higher is better; _low/_high: 95% Student-t interval over the seeds",
    "diff_vs_compound": "single − compound score on their common (paired) seeds, same unit; _low/_high: its 95% paired "
                        "t interval",
    "verdict": "single better (interval above 0), compound better (below 0) or not resolved; empty on the compound "
               "rows (the reference) and at φ = 0 (the base, shared by every family)",
    "seeds_to_resolve": "paired seeds at which the interval would exclude 0 if the mean difference and its spread "
                        "stayed (empty: one pair, no spread yet; inf: no difference)",
    "acc_mean": "final val top-1, fraction", "flagged": "|macs_ratio − 1| above the tolerance",
    "depth_mult": "depth multiplier on the base", "width_mult": "width multiplier", "resolution_mult": "side multiplier",
    "side": "target side, px", "macs": "multiply-adds per image at the target side, 1000 classes",
    "proxy_side": "side the proxy trained at, px", "proxy_macs": "proxy network's multiply-adds per image",
    "proxy_macs_ratio": "proxy_macs / the compound member's",
}


def rows(members: list[Member], proxy: dict[tuple, Assessment], scores: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """comparison.csv: every family's curve φ = 0 … k (φ = 0 being the shared base), compound first."""
    compound = {m.phi: m for m in members if m.family == "compound"}
    families = dict.fromkeys(m.family for m in members)
    out = []
    for family in families:
        curve = [compound[0]] + [m for m in members if m.family == family and m.phi > 0]
        out += [_row(family, m, compound[m.phi], proxy, scores, tolerance) for m in curve]
    table = pd.DataFrame(out, columns=list(COLUMNS)).astype({"n_pairs": "Int64"})
    table["seeds_to_resolve"] = pd.Series([r.get("seeds_to_resolve") for r in out], dtype=object)  # 9, not 9.0
    return table


def _count(seeds: float) -> int | str | None:
    """Seeds to resolve as a table holds them: a whole number, "inf" (no difference) or None (not known yet)."""
    return None if math.isnan(seeds) else "inf" if math.isinf(seeds) else int(seeds)


def _row(family: str, m: Member, ref: Member, proxy: dict, scores: pd.DataFrame, tolerance: float) -> dict[str, Any]:
    a, c = proxy[m.candidate.key], m.candidate
    score, acc = interval(of(scores, c.key)), interval(of(scores, c.key, "acc"))
    row = {"family": family, "phi": m.phi, "macs_ratio": m.ratio, "score_mean": score.mean, "n_seeds": score.n,
           "score_low": score.low, "score_high": score.high, "acc_mean": acc.mean, "acc_low": acc.low, "acc_high": acc.high,
           "flagged": m.flagged(tolerance), "depth_mult": c.alpha, "width_mult": c.beta, "resolution_mult": c.gamma,
           "side": a.target_resolution, "macs": m.macs, "proxy_side": a.proxy_resolution, "proxy_macs": a.macs_proxy,
           "proxy_macs_ratio": a.macs_proxy / proxy[ref.candidate.key].macs_proxy, "verdict": "",
           "note": "the base, shared by every family" if m.phi == 0 else "reference" if family == "compound" else ""}
    if family != "compound" and m.phi > 0:
        d = paired(of(scores, c.key), of(scores, ref.candidate.key))
        row |= {"diff_vs_compound": d.mean, "diff_low": d.low, "diff_high": d.high, "verdict": d.verdict,
                "n_pairs": d.pairs, "seeds_to_resolve": _count(d.seeds_needed)}
    return row


def curves(members: list[Member], proxy: dict[tuple, Assessment], scores: pd.DataFrame) -> pd.DataFrame:
    """The interaction's width curves: each width step's score and its paired gain over the step before."""
    out = []
    for setting in dict.fromkeys(m.setting for m in members):
        curve = [m for m in members if m.setting == setting]
        for before, m in zip([None, *curve], curve):
            score, acc = interval(of(scores, m.candidate.key)), interval(of(scores, m.candidate.key, "acc"))
            gain = (paired(of(scores, m.candidate.key), of(scores, before.candidate.key)) if before else
                    Paired(math.nan, math.nan, math.nan, 0))
            out.append({"depth_mult": setting[0], "resolution_mult": setting[1], "phi": m.phi,
                        "width_mult": m.candidate.beta, "macs": m.macs, "macs_ratio": m.ratio,
                        "proxy_macs": proxy[m.candidate.key].macs_proxy, "n_seeds": score.n, "score_mean": score.mean,
                        "score_low": score.low, "score_high": score.high, "acc_mean": acc.mean, "acc_low": acc.low,
                        "acc_high": acc.high, "gain": gain.mean, "gain_low": gain.low, "gain_high": gain.high})
    return pd.DataFrame(out)


def saturation(members: list[Member], scores: pd.DataFrame) -> list[dict[str, Any]]:
    """Does the last width step gain more from a deeper, larger base than from the base itself? Per setting, the
    paired difference of the two gains (seeds common to all four networks), its interval and the answer."""
    settings = list(dict.fromkeys(m.setting for m in members))
    last = {s: [m for m in members if m.setting == s][-2:] for s in settings}
    gain = {s: of(scores, last[s][1].candidate.key) - of(scores, last[s][0].candidate.key) for s in settings}
    out = []
    for s in settings[1:]:
        d = paired(gain[s], gain[settings[0]])
        words = {"single better": "saturates later", "compound better": "saturates earlier"}.get(d.verdict, "not resolved")
        out.append({"depth_mult": s[0], "resolution_mult": s[1], "phi": last[s][1].phi, "extra_gain": d.mean,
                    "extra_gain_low": d.low, "extra_gain_high": d.high, "pairs": d.pairs, "answer": words})
    return out


def score_text(x: float, kind: str, signed: bool = False) -> str:
    """A score or score difference with its unit: nats of val loss, or val top-1 in % (points for differences)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if kind == "loss":
        return f"{x:+.3f}" if signed else f"{x:.3f}"
    return f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}"


def score_label(kind: str) -> str:
    """The score as a column header, with its unit."""
    return "−val loss (nats)" if kind == "loss" else "val top-1 (%)"


def score_unit(kind: str, difference: bool = False) -> str:
    if kind == "loss":
        return "nats (−val loss)" if not difference else "nats"
    return "% val top-1" if not difference else "points of val top-1"


def verdict_lines(table: pd.DataFrame, kind: str) -> dict[str, str]:
    """One line per single-dimension family: its verdict at each φ ≥ 1, with the difference and its interval."""
    lines = {}
    for family, g in table[(table["family"] != "compound") & (table["phi"] > 0)].groupby("family", sort=False):
        parts = []
        for r in g.itertuples():
            shown = (f"{score_text(r.diff_vs_compound, kind, True)} [{score_text(r.diff_low, kind, True)}, "
                     f"{score_text(r.diff_high, kind, True)}] {score_unit(kind, True)}, {int(r.n_pairs or 0)} paired seeds")
            if r.verdict == "not resolved":
                needed = math.nan if r.seeds_to_resolve is None or pd.isna(r.seeds_to_resolve) else float(r.seeds_to_resolve)
                shown += f"; {seeds_words(needed)}"
            parts.append(f"{r.verdict} at φ = {r.phi} ({shown})")
        lines[family] = f"{family} only vs compound: " + ", ".join(parts)
    return lines
