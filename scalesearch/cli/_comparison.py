"""A comparison on the screen: a table per φ, the verdict lines and the interaction, from its document."""
from __future__ import annotations

import json
import math
import sys
from typing import Any

import optuna
import pandas as pd
from rich.console import Console
from rich.table import Table

from ..comparison import score_label, score_text, score_unit
from ..errors import ScaleSearchError
from ._app import out, table

COLUMNS = ("family", "depth ×", "width ×", "side px", "MMACs", "MACs ratio", "seeds", "score ± 95%", "top-1 % ± 95%",
           "Δ vs compound [95%]", "verdict")


def _blank(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _mean_pm(r: dict[str, Any], key: str, text) -> str:
    """mean ± half the 95% interval (the mean alone with one seed)."""
    if _blank(r[f"{key}_mean"]):
        return "–"
    if _blank(r[f"{key}_low"]):
        return text(r[f"{key}_mean"])
    return f"{text(r[f'{key}_mean'])} ± {text((r[f'{key}_high'] - r[f'{key}_low']) / 2)}"


def cells(r: dict[str, Any], kind: str, tolerance: float) -> list[str]:
    """One row of comparison.csv as the table's cells, every figure in its column's unit."""
    score = lambda x: score_text(x, kind)
    ratio = f"{r['macs_ratio']:.3f}" + (f" (>{tolerance:.0%})" if r["flagged"] else "")
    diff = ("" if _blank(r.get("diff_vs_compound")) else
            f"{score_text(r['diff_vs_compound'], kind, True)} [{score_text(r['diff_low'], kind, True)}, "
            f"{score_text(r['diff_high'], kind, True)}]")
    return ["base" if r["phi"] == 0 else r["family"], f"{r['depth_mult']:g}", f"{r['width_mult']:g}", str(r["side"]),
            f"{r['macs'] / 1e6:,.0f}", ratio, str(r["n_seeds"]), _mean_pm(r, "score", score),
            _mean_pm(r, "acc", lambda x: f"{100 * x:.1f}"), diff, r["verdict"] or ""]


def headers(kind: str) -> list[str]:
    """The columns, the score's with their unit."""
    named = {"score ± 95%": f"{score_label(kind)} ± 95%",
             "Δ vs compound [95%]": f"Δ vs compound ({score_unit(kind, True)}) [95%]"}
    return [named.get(c, c) for c in COLUMNS]


def tables(doc: dict[str, Any]) -> list[Table]:
    """One table per φ: the compound member first, then each single-dimension member at its cost."""
    kind, base_macs = doc["score"]["kind"], doc["rows"][0]["macs"]
    shown = []
    for phi in range(doc["phi_max"] + 1):
        at = [r for r in doc["rows"] if r["phi"] == phi][: 1 if phi == 0 else None]
        title = (f"φ = {phi}: {doc['base']} at {at[0]['macs'] / 1e6:,.0f} MMACs ({at[0]['macs'] / base_macs:.2f}× the "
                 "base, measured at the target side)" + (": the base, shared by every family" if phi == 0 else ""))
        shown.append(table(title, headers(kind), [cells(r, kind, doc["tolerance"]) for r in at], left=("family", "verdict")))
    return shown


def caption(doc: dict[str, Any]) -> str:
    p = doc["proxy"]
    return (f"score: {score_unit(doc['score']['kind'])}, higher is better; ± 95% Student-t over seeds. Δ vs compound: "
            f"single − compound on their paired seeds, 95% t interval. side px and MMACs: at the target (the base's "
            f"side × multiplier, 1000 classes); MACs ratio: the member's / the compound member's, {doc['flagged']} member(s) "
            f"beyond the {doc['tolerance']:.0%} tolerance. Proxy: width ×{p['width']:g}, {p['side']} px × side "
            f"multiplier, {p['epochs']} epochs of {p['train']} images per seed, scored on {p['val']} val images.")


def interaction_lines(doc: dict[str, Any]) -> tuple[Table, list[str]]:
    """The interaction's width curves as a table, and whether each saturates later, in words."""
    kind = doc["score"]["kind"]
    rows = []
    for r in doc["interaction"]["rows"]:
        gain = ("" if _blank(r["gain"]) else f"{score_text(r['gain'], kind, True)} [{score_text(r['gain_low'], kind, True)}, "
                f"{score_text(r['gain_high'], kind, True)}]")
        rows.append([f"×{r['depth_mult']:g}", f"×{r['resolution_mult']:g}", f"{r['width_mult']:g}",
                     f"{r['macs'] / 1e6:,.0f}", f"{r['macs_ratio']:.2f}", str(r["n_seeds"]), _mean_pm(r, "score",
                     lambda x: score_text(x, kind)), _mean_pm(r, "acc", lambda x: f"{100 * x:.1f}"), gain])
    t = table("Interaction (the paper's Figure 4): width scaling from fixed depth and side",
              ("depth", "side", "width ×", "MMACs", "× curve start", "seeds", f"{score_label(kind)} ± 95%",
               "val top-1 % ± 95%", f"gain over the width before ({score_unit(kind, True)}) [95%]"), rows)
    lines = [f"from depth ×{s['depth_mult']:g}, side ×{s['resolution_mult']:g}, the last width step gains "
             f"{score_text(s['extra_gain'], kind, True)} [{score_text(s['extra_gain_low'], kind, True)}, "
             f"{score_text(s['extra_gain_high'], kind, True)}] {score_unit(kind, True)} more than from the base "
             f"({s['pairs']} paired seeds): {s['answer']}" for s in doc["interaction"]["saturation"]]
    return t, lines


def render(doc: dict[str, Any], console: Console) -> None:
    """The tables per φ, the caption, the verdict lines and the interaction on `console`."""
    for t in tables(doc):
        console.print(t, highlight=False)
    console.print(caption(doc), highlight=False, soft_wrap=True)
    for line in doc["verdicts"].values():
        console.print(line, highlight=False, soft_wrap=True)
    if doc.get("interaction"):
        t, lines = interaction_lines(doc)
        console.print(t, highlight=False)
        for line in lines:
            console.print(line, highlight=False, soft_wrap=True)


def markdown(doc: dict[str, Any]) -> str:
    """Every φ's rows as one markdown table, the verdict lines after it."""
    kind = doc["score"]["kind"]
    rows = [[str(r["phi"]), *cells(r, kind, doc["tolerance"])] for r in doc["rows"] if r["phi"] or r["family"] == "compound"]
    lines = ["| φ | " + " | ".join(headers(kind)) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n\n" + caption(doc) + "\n\n" + "\n".join(doc["verdicts"].values()) + "\n"


def show_comparison(st: optuna.Study, fmt: str) -> None:
    """``scalesearch show`` of a comparison's study: its table, csv, json or markdown, once it has finished."""
    doc = st.user_attrs.get("comparison")
    if not doc:
        done = sum(1 for t in st.get_trials(deepcopy=False) if t.state.name == "COMPLETE")
        raise ScaleSearchError(f"comparison {st.study_name!r} has not finished ({done} trials complete): run "
                               "scalesearch compare again to resume it")
    if fmt == "csv":
        sys.stdout.write(pd.DataFrame(doc["rows"]).to_csv(index=False))
    elif fmt == "json":
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    elif fmt == "markdown":
        sys.stdout.write(markdown(doc))
    else:
        render(doc, out)
