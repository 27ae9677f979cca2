"""The ranking and verdict as text: the cells, caption and units every output shares, and a markdown table.

The CLI draws these cells with rich; ``show --format markdown`` and Python users get
the same table as markdown from :func:`markdown_ranking`, and ``show --format json``
the document of :func:`ranking_document`.
"""
from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from . import _ranking as results
from ..space._space import CONSTRAINT_UNITS


def mega(n: float) -> str:
    return f"{n / 1e6:,.2f}"


def blank(x) -> bool:
    return x is None or x != x


def pct(x: float) -> str:
    return "" if blank(x) else f"{100 * x:.2f}"


# Headers of the ranking; line breaks keep the columns inside a terminal (markdown joins the lines). csv and json
# carry every column (nominal and proxy costs, params, activations, time, the seed-adjusted mean).
RANKING_HEADERS = ["rank", "α", "β", "γ", "cost ×\n(target)", "proxy\nMMACs", "seeds", "val top-1 %\nmean ± std",
                   "score fit\n± SE", "P(best)\n(%)", "95%\nset", "status"]


def ranking_cells(r) -> list[str]:
    """One candidate's row as text; blanks where a failed or pruned candidate has no figure."""
    def num(x, spec: str, scale: float = 1.0) -> str:
        return "" if blank(x) else format(x / scale, spec)

    fit, se = getattr(r, "score_fit", None), getattr(r, "score_fit_se", None)
    return [num(r.rank, ".0f"), f"{r.alpha:g}", f"{r.beta:g}", f"{r.gamma:g}",
            "" if blank(r.measured_target) else f"{r.measured_target:.2f} ({int(r.target_resolution)} px)",
            num(r.macs_proxy, ".1f", 1e6), str(r.seeds),
            pct(r.acc_mean) + ("" if blank(r.acc_std) else f" ± {pct(r.acc_std)}"),
            num(fit, ".4f") + ("" if blank(se) else f" ± {se:.4f}"), pct(getattr(r, "p_best", None)),
            "yes" if getattr(r, "in_set", r.tied) else "", _short(r.state)]


def _short(state: str) -> str:
    """complete (same network as α=… β=… γ=…) → twin of α=… β=… γ=…: a status that fits its column."""
    return state.replace("complete (same network as ", "twin of ").rstrip(")") if "same network as" in state else state


ONE_SEED = "one seed per candidate: no interval available"


def ranking_caption(ranked, val_images: int | None = None) -> str:
    if results.has_intervals(ranked):
        ties = ("score = −(final val loss, nats per image), or val top-1 for older studies; score fit = the surface "
                "fitted to every network's paired seeds (scalesearch.stats), ranked on; 95% set = the networks that "
                "could be best, holding 95% of P(best) under that fit")
    elif val_images and not blank(best := ranked["acc_mean"].max()):
        se = 100 * results.val_standard_error(best, val_images)  # at the leader's score, in points
        # 1.96·√2·se: the 95% margin of the gap between two scores that each carry this error
        ties = (f"{ONE_SEED}; scoring on {val_images:,} val images alone gives each val top-1 a standard error of "
                f"{se:.1f} points, so gaps under {1.96 * math.sqrt(2) * se:.1f} points may be noise (more --time or --seeds gives more seeds)")
    else:
        ties = f"{ONE_SEED}, differences may be noise (more --time or --seeds gives more seeds)"
    return (f"{ties}; cost × = built network's multiply-adds (or the constraint's measure) / the base's; proxy = the "
            "network as trained (data's classes and channels, proxy width and side); --wide or --format csv gives every column")


SHOW_UNITS = {"acc_mean, acc_std, ci95": "fraction of validation images (ci95: half-width of the 95% Student-t interval)",
              "score_fit, score_fit_se, score_mean": "−(final val loss), nats per image: the surface's fitted score and its "
                                                      "standard error; the candidate's own seed-adjusted mean",
              "p_best, in_set, tied": "probability of being best under the surface fit; member of the 95% set (tied = in_set)",
              "nominal, measured_target, measured_proxy": "cost multiplier on the base (α·β²·γ²; built network's multiply-adds)",
              "params, macs_proxy, acts_proxy": "the network as trained: parameters, multiply-adds, conv/linear output elements",
              "macs_target": "multiply-adds at the target side, 1000 classes", "seconds": "training time summed over seeds",
              "best_epoch": "1-based, most common over seeds",
              "acts_target": "activations (conv and linear output elements) at the target side / the base's",
              "latency_target, latency_s": "measured inference latency at the target side / the base's, and in s per batch "
                                           "(latency constraint; conditions under constraint.latency)"}


def constraint_summary(config: dict[str, Any]) -> dict[str, Any]:
    """The budget a study's candidates were judged by, its unit and, for latency, how it was measured."""
    space = config.get("space", {})
    name = space.get("constraint") or "measured"
    doc = {"name": name, "budget": space.get("budget"), "tolerance": space.get("tolerance"), "unit": CONSTRAINT_UNITS.get(name)}
    if config.get("latency"):
        doc["latency"] = {k: v for k, v in config["latency"].items() if k not in ("measured_points", "near_edge_points")}
    return doc


def constraint_line(config: dict[str, Any]) -> str:
    """:func:`constraint_summary` in one line."""
    c = constraint_summary(config)
    line = f"budget: {c['budget']:g}x ± {c['tolerance']:.0%} in {c['name']} ({c['unit']})"
    lat = c.get("latency")
    if lat:
        cond = lat["conditions"]
        agree = "not repeated (cache)" if lat["agreement"] is None else f"the two fastest {lat['agreement']:.1%} apart"
        line += (f"; latency on {cond['device']}, torch {cond['torch']}, {cond['threads']} thread(s), batch {cond['batch']}, "
                 f"{cond['dtype']}, {cond['memory_format']}; base {lat['base_seconds'] * 1e3:.2f} ms, measured "
                 f"{len(lat['base_medians'])}× ({agree})")
    return line


def wide_table(ranked: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of every column of the ranking, as ranking.csv has them: ``show --wide``."""
    def cell(x) -> str:
        return "" if blank(x) else f"{x:.4g}" if isinstance(x, float) else str(x)

    return list(ranked.columns), [[cell(x) for x in row] for row in ranked.itertuples(index=False)]


def verdict_line(v, candidates: int) -> str:
    """The verdict (:func:`scalesearch.stats.verdict`) in one line, with the number of tied candidates."""
    p = "no estimate" if blank(v.p_best) else f"{pct(v.p_best)}%"
    edge = "".join(f"; {b}" for b in getattr(v, "boundary", []))
    return (f"verdict: {v.words}: P(best) {p}; 95% set {v.networks} network(s), {len(v.tied)} of {candidates} "
            f"candidates; {v.reason}{edge}")


def surface_line(fit) -> str | None:
    """How much the fitted surface separates the networks, beside one run's noise: the signal the answer rests on."""
    if fit is None or fit.form == "means":
        return None
    spread = fit.table["fit"].max() - fit.table["fit"].min()
    noise = "no noise estimate" if math.isnan(fit.sigma) else f"one run's noise {fit.sigma:.4f}"
    return (f"surface ({fit.form} in the built networks' log depth, width and side): fitted scores span {spread:.4f} "
            f"nats from the best network to the worst; {noise}")


def markdown_ranking(ranked, title: str, val_images: int | None = None) -> str:
    head = [h.replace("\n", " ") for h in RANKING_HEADERS]
    rows = ["| " + " | ".join(c.replace("|", "\\|") for c in ranking_cells(r)) + " |" for r in ranked.itertuples()]
    return "\n".join([f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---:|" * (len(head) - 1) + ":---|",
                      *rows, "", ranking_caption(ranked, val_images), ""])


def ranking_document(study_name: str, storage: str, epochs: Any, val_images: int | None, ranked: pd.DataFrame,
                     verdict: dict | None, constraint: dict | None = None) -> dict[str, Any]:
    """The ranking as one JSON-ready document, every figure's unit named in ``units``."""
    return {"study": study_name, "storage": storage, "proxy_epochs": epochs, "val_images": val_images, "constraint": constraint,
            "interval_available": results.has_intervals(ranked), "units": SHOW_UNITS, "verdict": verdict,
            "candidates": json.loads(ranked.to_json(orient="records"))}
