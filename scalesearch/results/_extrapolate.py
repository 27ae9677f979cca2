"""Beyond the search: the official presets beside a family, a proxy-space scaling fit, the transfer check.

Three questions a user asks once a winner exists:

* how does its family compare with the official B0 … B7 (:func:`official_family`);
* how much proxy accuracy does each step of φ buy — a least-squares line of val
  top-1 against log10(proxy multiply-adds) through the winner's own runs (the φ = 0
  base, the φ = 1 winner, φ = 2 from ``verify``), extrapolated with its standard
  error of prediction (:func:`scaling_fit`, :func:`predict`);
* does the φ = 1 ranking survive at φ = 2 — Kendall's τ-b between the two
  rankings of the re-trained candidates (:func:`transfer_check`).

Every accuracy here is a *proxy* figure (the short run's val top-1 at the proxy
resolution), not a prediction of full-training accuracy.

>>> line = fit_line([1, 2, 3, 4], [0.50, 0.61, 0.69, 0.80])
>>> round(line.slope, 3), round(line.intercept, 3)
(0.098, 0.405)
>>> kendall_tau([1, 2, 3], [3, 2, 1])
-1.0
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ..arch._spec import PRESETS, BaseNetwork, load_base, scale
from ..arch._cost import network_cost
from ..stats._surface import t_quantile
from ._ranking import ranking, study_verdict
from ..space._candidates import Candidate, assess

OFFICIAL = [f"b{k}" for k in range(8)]


def official_family() -> pd.DataFrame:
    """B0 … B7 as built from the official multipliers (params at 1000 classes, conv + FC multiply-adds)."""
    rows = []
    for phi, name in enumerate(OFFICIAL):
        width, depth, resolution, dropout = PRESETS[name]
        c = network_cost(scale(load_base(name)))
        rows.append({"official": name, "phi": phi, "width_mult": width, "depth_mult": depth, "resolution": resolution,
                     "dropout": dropout, "params": c.params, "macs": c.macs, "gmacs": round(c.macs / 1e9, 4)})
    return pd.DataFrame(rows)


def with_official(fam: pd.DataFrame) -> pd.DataFrame:
    """`fam` with the official preset of the same (integer) φ beside each row, columns prefixed ``official_``."""
    off = official_family().rename(columns=lambda c: c if c in ("phi", "official") else f"official_{c}")
    # nullable integers: rows with no preset (φ = 0.5, 8, …) stay integer columns with gaps
    off = off.astype({"phi": float, "official_resolution": "Int64", "official_params": "Int64", "official_macs": "Int64"})
    return fam.astype({"phi": float}).merge(off, on="phi", how="left")


# ------------------------------------------------------------------ scaling fit


class Underdetermined(ValueError):
    """Too few points for a line with an error estimate."""


@dataclass(frozen=True)
class LineFit:
    """y = intercept + slope · x by least squares, with what a prediction's standard error needs."""

    slope: float
    intercept: float
    n: int
    resid_std: float  # s: sqrt(residual sum of squares / (n - 2))
    x_mean: float
    sxx: float  # sum of (x - x_mean)²

    def predict(self, x: float) -> tuple[float, float]:
        """(ŷ, standard error of prediction for a new run at x): s · sqrt(1 + 1/n + (x - x̄)² / Sxx)."""
        y = self.intercept + self.slope * x
        return y, self.resid_std * math.sqrt(1 + 1 / self.n + (x - self.x_mean) ** 2 / self.sxx)

    @property
    def t95(self) -> float:
        return t_quantile(self.n - 2)


def fit_line(x: Sequence[float], y: Sequence[float]) -> LineFit:
    """Least-squares line; raises :class:`Underdetermined` below 3 points or 2 distinct x."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    distinct = len(np.unique(np.round(xs, 9)))
    if len(xs) < 3 or distinct < 2:
        raise Underdetermined(f"{len(xs)} point(s) at {distinct} distinct cost(s); a line with an error estimate "
                              "needs at least 3 points at 2 or more costs")
    design = np.column_stack([np.ones_like(xs), xs])
    (intercept, slope), *_ = np.linalg.lstsq(design, ys, rcond=None)
    resid = ys - (intercept + slope * xs)
    return LineFit(float(slope), float(intercept), len(xs), float(math.sqrt(resid @ resid / (len(xs) - 2))),
                   float(xs.mean()), float(((xs - xs.mean()) ** 2).sum()))


def family_points(trials: pd.DataFrame, alpha: float, beta: float, gamma: float) -> pd.DataFrame:
    """Complete runs of the winner's family, one row per seed: the base (φ = 0, or the candidate (1, 1, 1))
    and the winner's coefficients at any φ ≥ 1. Columns phi, seed, macs_proxy, acc (final val top-1)."""
    done = trials[trials["state"] == "COMPLETE"]
    keys = [Candidate(r.alpha, r.beta, r.gamma).key for r in done.itertuples()]
    base = (done["phi"] == 0).to_numpy() | np.array([k == (1.0, 1.0, 1.0) for k in keys], dtype=bool)
    winner = np.array([k == Candidate(alpha, beta, gamma).key for k in keys], dtype=bool) & (done["phi"] >= 1).to_numpy()
    keep = base | winner
    pts = done[keep].assign(phi=np.where(base[keep], 0, done["phi"][keep]))
    pts = pts.assign(acc=pts["acc"] if "acc" in pts else pts["value"])
    return pts[["phi", "seed", "macs_proxy", "acc"]].sort_values(["phi", "seed"]).reset_index(drop=True)


def scaling_fit(points: pd.DataFrame) -> LineFit:
    """Proxy val top-1 against log10(proxy MACs) through `points` (see :func:`family_points`)."""
    return fit_line(np.log10(points["macs_proxy"].astype(float)), points["acc"].astype(float))


def predict(base: BaseNetwork, alpha: float, beta: float, gamma: float, phis: Sequence[float], proxy_resolution: int,
            num_classes: int, in_channels: int, line: LineFit | None, points: pd.DataFrame, width: float = 1.0) -> pd.DataFrame:
    """Per φ: the member's proxy side and MACs (as the search trains it: (α^φ, β^φ, γ^φ) at the proxy
    resolution × γ^φ, at the proxy's `width`), the fitted val top-1 with its standard error and 95% interval, and the measured mean
    where runs exist. Without a fit the predicted columns are NaN."""
    rows = []
    for phi in phis:
        a = assess(base, Candidate(alpha**phi, beta**phi, gamma**phi), proxy_resolution, num_classes, in_channels, width)
        y, se = line.predict(math.log10(a.macs_proxy)) if line else (math.nan, math.nan)
        ran = points[np.isclose(points["phi"].astype(float), phi)]["acc"]
        rows.append({"phi": phi, "proxy_resolution": a.proxy_resolution, "macs_proxy": a.macs_proxy,
                     "predicted": y, "se": se, "ci95": line.t95 * se if line else math.nan,
                     "measured": ran.mean() if len(ran) else math.nan, "runs": len(ran)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- transfer check


@dataclass(frozen=True)
class ProxyFit:
    """The winner's proxy-space scaling fit as sentences, and its prediction per φ (None when underdetermined)."""

    lines: list[str]
    prediction: pd.DataFrame | None


def proxy_fit(config: dict, base: BaseNetwork, trials: pd.DataFrame, w: pd.Series, phis: Sequence[float]) -> ProxyFit:
    """Fit val top-1 against log10(proxy MACs) through the winner's family runs and predict each φ in `phis`."""
    points = family_points(trials, w.alpha, w.beta, w.gamma)
    runs = ", ".join(f"φ = {p:g}: {n}" for p, n in points.groupby("phi").size().items()) or "none"
    lines = [f"\nScaling fit in proxy space (val top-1 after {config['proxy']['epochs']} proxy epochs at the proxy "
             f"resolution, not full-training accuracy) against log10(proxy MACs); runs of the winner's family: {runs}"]
    try:
        line = scaling_fit(points)
    except Underdetermined as exc:
        return ProxyFit(lines + [f"fit underdetermined: {exc}; no prediction printed. Run scalesearch verify to add "
                                 "the base (φ = 0) and φ = 2 runs."], None)
    lines.append(f"{100 * line.slope:+.2f} points of val top-1 per 10× proxy MACs (val top-1 = {100 * line.intercept:.2f}% "
                 f"{100 * line.slope:+.2f} × log10 MACs); residual std {100 * line.resid_std:.2f} points over {line.n} runs")
    pred = predict(base, w.alpha, w.beta, w.gamma, phis, config["proxy"]["resolution"], config["data"]["classes"],
                   config["data"]["channels"], line, points, config["proxy"].get("width", 1.0))
    return ProxyFit(lines, pred)


def boundary_warnings(study, trials: pd.DataFrame) -> list[str]:
    """Where the study's winner, whose family this is, sits on an edge of its search space (see race.boundary)."""
    v = study_verdict(study, trials)
    return [f"this family comes from a point on the space's boundary: {b}" for b in (v.boundary if v else [])]


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's τ-b (ties allowed): (concordant − discordant) / sqrt(pairs untied in x · pairs untied in y).

    NaN when either side is all ties (or fewer than two items): τ is undefined there.
    """
    from scipy import stats  # loaded on use, as in scalesearch.surface

    if len(x) < 2:
        return math.nan
    with warnings.catch_warnings():  # scipy warns on constant input, where τ is NaN, as we report
        warnings.simplefilter("ignore")
        return float(stats.kendalltau(x, y, variant="b").statistic)


@dataclass(frozen=True)
class Transfer:
    """The top K at φ = 1 beside their re-runs at `phi`; τ is NaN when undefined."""

    table: pd.DataFrame  # alpha, beta, gamma, rank_1, acc_1, rank_phi, acc_phi (NaN where the re-run did not complete)
    phi: float
    tau: float
    winner_held: bool | None  # None when the winner's re-run did not complete

    @property
    def compared(self) -> int:
        """Candidates with both runs complete: τ needs at least 2."""
        return int(self.table[["acc_1", "acc_phi"]].notna().all(axis=1).sum())

    def summary(self) -> list[str]:
        """Kendall τ-b (or why it is undefined) and whether the φ = 1 winner held first place, as sentences."""
        if self.compared < 2:
            tau = f"Kendall τ-b: undefined: it needs at least 2 candidates with both runs complete, have {self.compared}"
        elif math.isnan(self.tau):
            tau = "Kendall τ-b: undefined: every accuracy on one side is tied"
        else:
            tau = (f"Kendall τ-b between the φ = 1 and φ = {self.phi:g} rankings: {self.tau:+.2f} over {self.compared} "
                   "candidates (+1 same order, −1 reversed)")
        lead = self.table.iloc[0]
        held = {True: "held first place", False: "did not hold first place", None: "has no complete run"}[self.winner_held]
        return [tau, f"winner α={lead.alpha:g} β={lead.beta:g} γ={lead.gamma:g} {held} at φ = {self.phi:g}"]


def top_candidates(trials: pd.DataFrame, k: int) -> list[Candidate]:
    """The best `k` complete candidates at φ = 1, in rank order."""
    ranked = ranking(trials)
    return [Candidate(float(r.alpha), float(r.beta), float(r.gamma)) for r in ranked.head(k).itertuples()]


def transfer_check(trials: pd.DataFrame, candidates: Sequence[Candidate], phi: float = 2) -> Transfer:
    """Rank `candidates` by their φ = 1 and φ = `phi` mean val top-1 and compare the orders."""
    at = {p: {Candidate(r.alpha, r.beta, r.gamma).key: r.acc_mean for r in ranking(trials, phi=p).itertuples()} for p in (1, phi)}
    rows = [{"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma, "acc_1": at[1].get(c.key, math.nan),
             "acc_phi": at[phi].get(c.key, math.nan)} for c in candidates]
    table = pd.DataFrame(rows, columns=["alpha", "beta", "gamma", "acc_1", "acc_phi"])
    for col, rank in (("acc_1", "rank_1"), ("acc_phi", "rank_phi")):
        table[rank] = table[col].rank(ascending=False, method="min")
    both = table.dropna(subset=["acc_1", "acc_phi"])
    tau = kendall_tau(both["acc_1"].tolist(), both["acc_phi"].tolist())
    held = None
    if len(table) and not math.isnan(table["acc_phi"].iloc[0]):
        held = bool(table["rank_phi"].iloc[0] == 1)  # ties for first count as held
    return Transfer(table, phi, tau, held)
