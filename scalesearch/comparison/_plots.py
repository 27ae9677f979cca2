"""A comparison's figures, drawn from its document (so ``scalesearch plot`` redraws them from the study).

``comparison``: the paper's Figure 8 at proxy scale, val top-1 against measured MMACs with one line per
family and 95% intervals over seeds, and beside it the paired score difference of each family to
compound per φ. ``comparison_interaction`` (with ``--interaction``): the paper's Figure 4, the width
curves from each fixed (depth, side) setting.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..results.plots import new_figure
from ._table import score_unit

COLOURS = {"compound": "tab:red", "width": "tab:blue", "depth": "tab:green", "resolution": "tab:orange"}


def _errors(rows: list[dict], key: str) -> np.ndarray:
    """(2, n) distances from each mean to its interval's ends, 0 where there is no interval, in %."""
    mean = np.array([r[f"{key}_mean"] for r in rows], float)
    low = np.array([r[f"{key}_low"] if r[f"{key}_low"] is not None else math.nan for r in rows], float)
    high = np.array([r[f"{key}_high"] if r[f"{key}_high"] is not None else math.nan for r in rows], float)
    return np.nan_to_num(np.vstack([mean - low, high - mean]) * 100)


def comparison_figure(doc: dict[str, Any]) -> Figure:
    """Val top-1 against measured MMACs per family (Figure 8), and each family's paired difference to compound."""
    fig, (left, right) = new_figure(12, 4.8, cols=2)
    rows = [r for r in doc["rows"] if r["acc_mean"] is not None]
    families = list(dict.fromkeys(r["family"] for r in rows))
    for family in [*families[1:], families[0]]:  # compound drawn last, on top
        curve = [r for r in rows if r["family"] == family]
        left.errorbar([r["macs"] / 1e6 for r in curve], [r["acc_mean"] * 100 for r in curve], yerr=_errors(curve, "acc"),
                      marker="o", capsize=3, color=COLOURS.get(family), linewidth=2.2 if family == "compound" else 1.4,
                      label="compound scaling" if family == "compound" else f"{family} only")
    left.set_xlabel("measured multiply-adds at the target side (MMACs per image, 1000 classes)")
    left.set_ylabel("proxy val top-1 (%), mean and 95% interval over seeds")
    left.set_title(f"{doc['base']}: α={doc['alpha']:g} β={doc['beta']:g} γ={doc['gamma']:g}, φ = 0 … {doc['phi_max']}",
                   fontsize=10)
    _percent_range(left, [r["acc_mean"] * 100 for r in rows])
    left.grid(alpha=0.3)
    handles, labels = left.get_legend_handles_labels()
    left.legend([handles[-1], *handles[:-1]], [labels[-1], *labels[:-1]], fontsize=8)  # compound first in the key
    kind = doc["score"]["kind"]
    scale = 1 if kind == "loss" else 100
    singles = [f for f in families if f != "compound"]
    for k, family in enumerate(singles):
        curve = [r for r in rows if r["family"] == family and r["phi"] > 0 and r["diff_vs_compound"] is not None]
        x = np.array([r["phi"] for r in curve], float) + (k - (len(singles) - 1) / 2) * 0.08
        y = np.array([r["diff_vs_compound"] for r in curve], float) * scale
        err = np.nan_to_num(np.vstack([y - np.array([_or_nan(r["diff_low"]) for r in curve]) * scale,
                                       np.array([_or_nan(r["diff_high"]) for r in curve]) * scale - y]))
        right.errorbar(x, y, yerr=err, marker="o", linestyle="none", capsize=3, color=COLOURS.get(family),
                       label=f"{family} only − compound")
    right.axhline(0, color="0.3", linewidth=1)
    right.set_xticks(range(1, doc["phi_max"] + 1))
    right.set_xlim(0.5, doc["phi_max"] + 0.5)
    right.set_xlabel("φ (members at the compound member's measured MACs)")
    right.set_ylabel(f"paired score difference ({score_unit(kind, True)}), 95% interval")
    right.set_title("above 0: the single dimension is better; an interval across 0 is not resolved", fontsize=10)
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    return fig


def interaction_figure(doc: dict[str, Any]) -> Figure:
    """Val top-1 of width scaling from each fixed (depth, side) setting against measured MMACs (Figure 4)."""
    fig, (ax,) = new_figure()
    rows = [r for r in doc["interaction"]["rows"] if r["acc_mean"] is not None]
    for setting in dict.fromkeys((r["depth_mult"], r["resolution_mult"]) for r in rows):
        curve = [r for r in rows if (r["depth_mult"], r["resolution_mult"]) == setting]
        ax.errorbar([r["macs"] / 1e6 for r in curve], [r["acc_mean"] * 100 for r in curve], yerr=_errors(curve, "acc"),
                    marker="o", capsize=3, label=f"width scaling at depth ×{setting[0]:g}, side ×{setting[1]:g}")
    ax.set_xlabel("measured multiply-adds at the target side (MMACs per image, 1000 classes)")
    ax.set_ylabel("proxy val top-1 (%), mean and 95% interval over seeds")
    widths = ", ×".join(f"{w:g}" for w in dict.fromkeys(r["width_mult"] for r in rows))
    ax.set_title(f"{doc['base']}: width ×{widths} from each setting: does the width curve saturate later?", fontsize=10)
    _percent_range(ax, [r["acc_mean"] * 100 for r in rows])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _percent_range(ax, means: list[float]) -> None:
    """The accuracy axis around the means, within 0 … 100%: a t interval over two seeds can span the whole axis (and
    past it, where a proportion cannot go), so such an interval runs off the axis instead of flattening the curves."""
    span = max(5.0, 0.5 * (max(means) - min(means)))
    ax.set_ylim(max(0.0, min(means) - span), min(100.0, max(means) + span))


def figures(doc: dict[str, Any]) -> dict[str, Figure]:
    """The comparison's figures by file stem."""
    out = {"comparison": comparison_figure(doc)}
    if doc.get("interaction"):
        out["comparison_interaction"] = interaction_figure(doc)
    return out


def _or_nan(x: float | None) -> float:
    return math.nan if x is None else x
