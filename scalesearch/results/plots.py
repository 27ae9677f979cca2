"""Figures of a study: accuracy against cost with the Pareto front, the (α, β) plane, the family's growth.

Figures are drawn on :class:`matplotlib.figure.Figure` with the Agg canvas, never
through pyplot, so importing this module changes no global matplotlib state and
needs no display. Every figure is written as PNG and SVG, all through temporary
files renamed at the end, so a reader never sees half an image, nor some new figures and some old.

>>> pareto_mask([1.0, 2.0, 3.0, 2.5], [0.5, 0.7, 0.6, 0.8]).tolist()
[True, True, False, True]
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..arch._spec import BaseNetwork
from ._extrapolate import official_family
from ._family import family_table
from ..files import atomic_all, make_folder
from ._ranking import ranking

FORMATS = ("png", "svg")


def pareto_mask(macs: Sequence[float], acc: Sequence[float]) -> np.ndarray:
    """True where no other point has lower-or-equal MACs and higher accuracy (cheaper and better)."""
    macs, acc = np.asarray(macs, dtype=float), np.asarray(acc, dtype=float)
    order = np.lexsort((-acc, macs))  # by MACs, the most accurate first among equal MACs
    mask = np.zeros(len(macs), dtype=bool)
    best = -np.inf
    for i in order:
        if acc[i] > best:
            mask[i], best = True, acc[i]
    return mask


def new_figure(width: float = 7.5, height: float = 5.0, cols: int = 1) -> tuple[Figure, list]:
    """A figure on the Agg canvas (no pyplot, no display) with `cols` side-by-side axes."""
    fig = Figure(figsize=(width, height), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, cols, k + 1) for k in range(cols)]


def accuracy_vs_macs(trials: pd.DataFrame, title: str) -> Figure:
    """φ = 1 candidates (95% intervals where seeds allow), their Pareto front, the winner; φ = 0 / 2 runs beside."""
    fig, (ax,) = new_figure()
    ranked = ranking(trials)
    x, y = ranked["macs_proxy"].astype(float) / 1e6, ranked["acc_mean"].astype(float) * 100
    err = ranked["ci95"].astype(float) * 100
    ax.errorbar(x, y, yerr=err.where(err.notna(), 0), fmt="o", color="tab:blue", ecolor="0.7", capsize=2,
                label="candidates (φ = 1)" + (", 95% interval" if err.notna().any() else ""))
    front = pareto_mask(x, y)
    order = np.argsort(x[front].to_numpy())
    ax.step(x[front].to_numpy()[order], y[front].to_numpy()[order], where="post", color="tab:orange", marker="o",
            markersize=11, markerfacecolor="none", label="Pareto front (no candidate cheaper and better)")
    w = ranked.iloc[0]
    ax.plot(w["macs_proxy"] / 1e6, w["acc_mean"] * 100, marker="*", markersize=18, color="tab:red", linestyle="none",
            label=f"winner α={w['alpha']:g} β={w['beta']:g} γ={w['gamma']:g}")
    for phi, marker in ((0, "s"), (2, "D")):
        other = ranking(trials, phi=phi)
        if len(other):
            ax.plot(other["macs_proxy"] / 1e6, other["acc_mean"] * 100, marker=marker, color="0.35", linestyle="none",
                    label="base (φ = 0)" if phi == 0 else "re-runs at φ = 2 (verify)")
    ax.set_xlabel("measured proxy multiply-adds (MMACs per image)")
    ax.set_ylabel("proxy val top-1 (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _spread(alpha: pd.Series, beta: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """α nudged sideways where several candidates (different γ) share one (α, β), so none hides another;
    with each point's place in its group (labels alternate above and below)."""
    x, place = alpha.to_numpy(dtype=float).copy(), np.zeros(len(alpha), dtype=int)
    step = 0.04 * max(np.ptp(x), 0.1)
    for idx in pd.Series(range(len(x))).groupby([alpha.to_numpy(), beta.to_numpy()]).groups.values():
        for k, i in enumerate(idx):
            x[i] += (k - (len(idx) - 1) / 2) * step
            place[i] = k
    return x, place


def accuracy_plane(trials: pd.DataFrame, title: str) -> Figure:
    """Each φ = 1 candidate at (α, β), coloured by γ, sized and labelled by its val top-1."""
    fig, (ax,) = new_figure()
    r = ranking(trials)
    acc = r["acc_mean"].to_numpy(dtype=float) * 100
    (x, place), y = _spread(r["alpha"], r["beta"]), r["beta"].to_numpy(dtype=float)
    span = max(np.ptp(acc), 1e-9)
    sizes = 60 + 240 * (acc - acc.min()) / span
    sc = ax.scatter(x, y, c=r["gamma"], s=sizes, cmap="viridis", edgecolors="black", linewidths=0.5)
    fig.colorbar(sc, ax=ax, label="γ (resolution multiplier)")
    w = r.iloc[0]
    ax.scatter(x[:1], y[:1], s=500, facecolors="none", edgecolors="tab:red", linewidths=1.5,
               label=f"winner α={w['alpha']:g} β={w['beta']:g} γ={w['gamma']:g}")
    for xi, yi, a, k in zip(x, y, acc, place):
        ax.annotate(f"{a:.1f}%", (xi, yi), xytext=(0, 9 if k % 2 == 0 else -9), textcoords="offset points", fontsize=7,
                    ha="center", va="bottom" if k % 2 == 0 else "top")
    ax.set_xlabel("α (depth multiplier)")
    ax.set_ylabel("β (width multiplier)")
    ax.set_title(title + "\nlabels and marker size: proxy val top-1 (%); candidates sharing (α, β) are spread sideways",
                 fontsize=10)
    ax.legend(fontsize=8, loc="best", markerscale=0.4)  # the ring is sized to circle a marker, too big for the key
    ax.grid(alpha=0.3)
    ax.margins(0.15)
    return fig


def family_growth(base: BaseNetwork, alpha: float, beta: float, gamma: float, phis: Sequence[float]) -> Figure:
    """Params and GMACs of the extrapolated family against φ, official B0 … B7 beside."""
    fam = family_table(base, alpha, beta, gamma, list(phis))
    off = official_family()
    fig, axes = new_figure(11, 4.5, cols=2)
    label = f"{base.name}: α={alpha:g} β={beta:g} γ={gamma:g}"
    for ax, col, ylabel in ((axes[0], "params", "parameters (M, 1000 classes, log scale)"),
                            (axes[1], "macs", "multiply-adds (GMACs per image, log scale)")):
        div = 1e6 if col == "params" else 1e9
        ax.plot(fam["phi"], fam[col] / div, marker="o", color="tab:blue", label=label)
        ax.plot(off["phi"], off[col] / div, marker="s", linestyle="--", color="tab:gray", label="official B0 … B7")
        for row in off.itertuples():
            ax.annotate(row.official.upper(), (row.phi, getattr(row, col) / div), xytext=(-4, 6),
                        textcoords="offset points", fontsize=7, color="tab:gray")
        ax.set_xlabel("φ (compound coefficient)")
        ax.set_ylabel(ylabel)
        ax.set_yscale("log")  # both families fit on one axis even when the base is far from B0
        ax.margins(y=0.1)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Family of {base.name} at its target resolution (base {base.resolution} px × γ^φ)", fontsize=10)
    return fig


def save(figures: dict[str, Figure], folder: Path, texts: dict[str, str] | None = None) -> list[Path]:
    """`stem`.png and `stem`.svg in `folder` for each figure, and the `texts` (file name → UTF-8 text) beside them:
    all written to temporary files, then all renamed (or none)."""
    jobs = [(fig, fmt, folder / f"{stem}.{fmt}") for stem, fig in figures.items() for fmt in FORMATS]
    jobs += [(text, None, folder / name) for name, text in (texts or {}).items()]
    with atomic_all([path for _, _, path in jobs]) as tmps, rc_context({"svg.fonttype": "none"}):  # SVG text stays text
        for (what, fmt, _), tmp in zip(jobs, tmps):
            if fmt is None:
                tmp.write_text(what, encoding="utf-8")
            else:
                what.savefig(tmp, format=fmt)
    return [path for _, _, path in jobs]


def write_plots(trials: pd.DataFrame, base: BaseNetwork, folder: Path, study_name: str,
                phis: Sequence[float] = tuple(range(8)), extra: dict[str, Figure] | None = None) -> list[Path]:
    """All three figures of a study with at least one complete φ = 1 candidate, and the `extra` ones (a comparison's),
    or none; returns the files written."""
    w = ranking(trials).iloc[0]
    make_folder(folder)  # before drawing: an unwritable folder fails in milliseconds
    return save({"accuracy_vs_mmacs": accuracy_vs_macs(trials, f"{study_name}: proxy accuracy against cost"),
                 "alpha_beta_plane": accuracy_plane(trials, f"{study_name}: candidates on the (α, β) plane"),
                 "family": family_growth(base, float(w["alpha"]), float(w["beta"]), float(w["gamma"]), phis),
                 **(extra or {})}, folder)
