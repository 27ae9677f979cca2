"""From a study to tables: every trial as a DataFrame row, candidates ranked with honest ties.

A candidate is one (α, β, γ) at one φ; its seeds are separate trials. The rank
orders candidates by their seed-adjusted mean score (:mod:`scalesearch.stats`:
−final val loss for new studies, val top-1 for older ones); a candidate is tied
with the leader when the paired fit cannot separate them at 95%, and P(best) is
its probability of being best under that fit. With a single seed no noise
estimate exists and the table says so, with the val sample's standard error
(:func:`val_standard_error`) as a floor on the noise.

>>> import pandas as pd
>>> trials = pd.DataFrame({"state": ["COMPLETE"] * 4, "alpha": [1.2, 1.2, 1.1, 1.1], "beta": [1.1] * 4,
...                        "gamma": [1.15] * 4, "phi": [1] * 4, "seed": [0, 1, 0, 1], "value": [0.80, 0.82, 0.70, 0.71]})
>>> r = ranking(trials)  # paired: the gap is 10 and 11 points on the same two seeds, not noise
>>> list(r["alpha"]), list(r["tied"])
([1.2, 1.1], [True, False])
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from ..stats import _race as race
from ._record import FIELDS, is_comparison, read
from ..stats._surface import t_quantile
from ..errors import ScaleSearchError
from ..files import write_texts

KEY = ["phi", "alpha", "beta", "gamma"]
ATTRS = list(FIELDS)


def val_standard_error(acc: float, val_images: int) -> float:
    """Binomial standard error of a val top-1 measured on `val_images` images.

    It is the part of a one-seed score's noise that comes from the val sample
    alone. On the default search (B0 2x, 500 images, 4 epochs) it was 2.0 points,
    and the same candidates re-run with another seed moved by 2.9 points (std of
    the difference), as two independent estimates with this error would.
    """
    p = min(max(acc, 0.5 / val_images), 1 - 0.5 / val_images)  # at 0% or 100% the sample still leaves doubt
    return math.sqrt(p * (1 - p) / val_images)


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial, every recorded attribute a column (grid-race placeholders left out)."""
    rows = []
    kind = score_kind(study)
    for t in study.get_trials(deepcopy=False):
        a = read(t)
        if a.get("unqueued") or "alpha" not in a:
            continue
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name, "value": t.value}
        row.update({k: a.get(k) for k in ATTRS})
        row["phi"] = a.get("phi", 1)
        if t.state.name == "FAIL" and not row["fail_reason"]:
            row["fail_reason"] = "worker lost (no heartbeat)" if "failed_trial" not in t.system_attrs else "retried"
        losses = a.get("val_loss") or []
        row["loss"] = losses[-1] if losses else None
        accs = a.get("val_acc") or []
        # The final val top-1; studies before the trial value became the score stored it as the value.
        row["acc"] = accs[-1] if accs and t.state.name == "COMPLETE" else t.value
        row["score"] = (-row["loss"] if row["loss"] is not None else None) if kind == "loss" else row["acc"]
        row["epochs_done"] = len(accs)
        row["val_acc_per_epoch"] = " ".join(f"{x:.4f}" for x in accs)
        row["retry_of"] = t.system_attrs.get("failed_trial")
        row["started"] = t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else None
        rows.append(row)
    columns = ["trial", "state", "value", "acc", "loss", "score", *ATTRS, "epochs_done", "val_acc_per_epoch", "retry_of", "started"]
    return pd.DataFrame(rows, columns=columns)


def score_kind(study: optuna.Study) -> str:
    """What ranks the study's candidates: "loss" (−final val loss) or "acc" (studies before scores existed)."""
    return study.user_attrs.get("config", {}).get("proxy", {}).get("score", "acc")


def ranking(trials: pd.DataFrame, phi: float | None = 1, include_all: bool = False) -> pd.DataFrame:
    """Candidates ranked by mean final val top-1 over complete seeds, with 95% intervals and ties.

    `include_all` adds candidates with no complete seed (pruned / failed) after the ranked ones.
    """
    df = trials if phi is None else trials[trials["phi"] == phi]
    if df.empty:
        return pd.DataFrame(columns=[*KEY, "rank", "seeds", "acc_mean", "acc_std", "ci95", "score_fit", "score_fit_se",
                                     "in_set", "tied", "state"])
    names = _candidate_names(trials)
    rows = []
    for key, g in df.groupby(KEY, sort=False):
        done = g[g["state"] == "COMPLETE"]
        first = (done if len(done) else g).iloc[0]
        n = len(done)
        acc = done["acc"] if "acc" in done else done["value"]
        mean = acc.mean() if n else math.nan
        std = acc.std(ddof=1) if n > 1 else math.nan
        rows.append({
            **dict(zip(KEY, key)), "seeds": n, "acc_mean": mean, "acc_std": std,
            "ci95": t_quantile(n - 1) * std / math.sqrt(n) if n > 1 else math.nan,
            **{k: first.get(k) for k in ("nominal", "measured_target", "measured_proxy", "target_resolution",
                                          "proxy_resolution", "params", "macs_proxy", "macs_target", "acts_proxy",
                                          "acts_target", "latency_target", "latency_s")},
            "best_epoch": int(done["best_epoch"].mode().iloc[0]) if n and "best_epoch" in done and done["best_epoch"].notna().any() else None,
            "seconds": g["seconds"].sum(min_count=1) if "seconds" in g else math.nan,
            "state": _state(g, names),
        })
    out = _with_race(pd.DataFrame(rows), df)
    # Rounded: equal means fitted by least squares may differ in the last bits and should keep their order.
    ranked = out[out["seeds"] > 0].assign(_order=lambda d: d["score_fit"].round(10))
    ranked = ranked.sort_values(["_order", "acc_mean"], ascending=False, kind="stable").drop(columns="_order")
    ranked = _winner_first(ranked, race.verdict(trials) if phi == 1 and "score" in trials else None)
    ranked.insert(0, "rank", range(1, len(ranked) + 1))
    if include_all:
        rest = out[out["seeds"] == 0].assign(rank=None, tied=False, winner=False)
        ranked = pd.concat([ranked, rest[ranked.columns]], ignore_index=True) if len(rest) else ranked
    return ranked


def _candidate_names(trials: pd.DataFrame) -> dict[int, str]:
    """Trial number → "α=… β=… γ=…", to name the twin a shared result came from (tables show no trial numbers)."""
    if "trial" not in trials:
        return {}
    return {int(r.trial): f"α={r.alpha:g} β={r.beta:g} γ={r.gamma:g}" for r in trials.itertuples()}


def _state(g: pd.DataFrame, names: dict[int, str]) -> str:
    """complete / pruned / failed: <reason>, from the candidate's seeds."""
    # A seed that failed and then ran again (Ctrl-C, a lost worker) is told by its re-run, not by the failure.
    ran = set(g.loc[g["state"].isin(["COMPLETE", "PRUNED"]), "seed"]) if "seed" in g else set()
    g = g[~((g["state"] == "FAIL") & g["seed"].isin(ran))] if ran else g
    states = set(g["state"])
    if states == {"COMPLETE"} and "shared_from" in g and g["shared_from"].notna().all():
        twin = int(g["shared_from"].iloc[0])
        return f"complete (same network as {names.get(twin, f'trial {twin}')})"
    if "COMPLETE" in states:
        return "complete" if states <= {"COMPLETE"} else "complete (some seeds " + ", ".join(sorted(s.lower() for s in states - {"COMPLETE"})) + ")"
    if "PRUNED" in states:
        done = g.loc[g["state"] == "PRUNED", "epochs_done"].max() if "epochs_done" in g else None
        return f"pruned after epoch {int(done)}" if pd.notna(done) and done > 0 else "pruned"
    if "FAIL" in states:
        reasons = [r for r in g["fail_reason"] if isinstance(r, str) and r]
        return "failed: " + (reasons[-1] if reasons else "unknown")
    return next(iter(states)).lower()


def _winner_first(ranked: pd.DataFrame, v: race.Verdict | None) -> pd.DataFrame:
    """The verdict's winner on top: it is tied with the φ = 1 leader, and φ = 2 chose it among those tied."""
    is_winner = [v is not None and (r.alpha, r.beta, r.gamma) == v.winner for r in ranked.itertuples()]
    return ranked.assign(winner=is_winner).sort_values("winner", ascending=False, kind="stable").reset_index(drop=True)


def _with_race(out: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """Add the surface fit (:mod:`scalesearch.stats`): fitted score and its error, P(best), the 95% set,
    and each candidate's own seed-adjusted mean."""
    trials = trials.assign(score=trials["score"] if "score" in trials else trials["value"])
    if "network" not in trials:
        trials = trials.assign(network=None)
    phi = trials["phi"].iloc[0]
    s = race.fit(trials, phi) if trials["phi"].nunique() == 1 else None
    if s is None:
        return out.assign(score_mean=math.nan, score_fit=math.nan, score_fit_se=math.nan, p_best=math.nan,
                          in_set=False, tied=False)
    net = {(phi, *c): key for key, cands in race.members(trials, phi).items() for c in cands}
    keys = [net.get(tuple(r[k] for k in KEY)) for _, r in out.iterrows()]
    col = lambda name, blank: [s.table[name].get(k, blank) for k in keys]
    in_set = [bool(x) for x in col("in_set", False)]
    return out.assign(score_mean=col("mean", math.nan), score_fit=col("fit", math.nan), score_fit_se=col("se", math.nan),
                      p_best=col("p_best", math.nan), in_set=in_set, tied=in_set)


def has_intervals(ranked: pd.DataFrame) -> bool:
    return bool(len(ranked)) and bool(ranked["ci95"].notna().any())


def winner(ranked: pd.DataFrame) -> pd.Series | None:
    return ranked.iloc[0] if len(ranked) else None


def study_winner(study: optuna.Study) -> tuple[pd.DataFrame, pd.Series]:
    """(trials frame, best complete φ = 1 candidate) of a study; a one-line error when none has completed."""
    if is_comparison(study):
        raise ScaleSearchError(f"study {study.study_name!r} is a comparison (scalesearch compare), which has no winner; "
                               "give the search study it compares")
    trials = trials_frame(study)
    w = winner(ranking(trials))
    if w is None:
        raise ScaleSearchError(f"study {study.study_name!r} has no complete candidate yet; run or resume scalesearch run first")
    return trials, w


def study_verdict(study: optuna.Study, trials: pd.DataFrame | None = None) -> race.Verdict | None:
    """The verdict on a study (:func:`scalesearch.stats.verdict`), with where it sits on the edges of the space it
    recorded; `trials` when the caller already read them."""
    trials = trials_frame(study) if trials is None else trials
    config = study.user_attrs.get("config")
    return race.verdict(trials, race.space_ranges(config), race.width_scaled(config))


def sort_ranking(ranked: pd.DataFrame, sort: str) -> pd.DataFrame:
    """`ranked` ordered by COLUMN or COLUMN:desc; unranked and blank values last."""
    column, _, order = sort.partition(":")
    if order not in ("", "asc", "desc"):
        raise ScaleSearchError(f"--sort {sort!r}: the order after ':' must be asc or desc")
    if ranked.empty:
        return ranked
    if column not in ranked.columns:
        raise ScaleSearchError(f"--sort: unknown column {column!r}; choose one of {', '.join(ranked.columns)}")
    return ranked.sort_values(column, ascending=order != "desc", kind="stable", na_position="last")


def write_tables(study: optuna.Study, folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """trials.csv (every trial, every column) and ranking.csv (complete candidates at φ = 1), both or neither."""
    trials = trials_frame(study)
    ranked = ranking(trials)
    write_set(folder, trials, ranked)
    return trials, ranked


def write_set(folder: Path, trials: pd.DataFrame, ranked: pd.DataFrame, also: dict[str, str] | None = None) -> None:
    """trials.csv, ranking.csv and the `also` files (name → text) in `folder`: every text made first, then all
    written or none (a file that cannot be written leaves the old set as it was)."""
    texts = {"trials.csv": trials.to_csv(index=False), "ranking.csv": ranked.to_csv(index=False), **(also or {})}
    write_texts({folder / name: text for name, text in texts.items()})
