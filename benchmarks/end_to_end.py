"""End to end: `scalesearch run --base b0 --budget 2x` on the embedded data, exhaustive vs pruned (issue #6).

Each run goes through the Python API in its own temporary results folder.
Compute is what was trained: epochs of every trial that trained (a candidate
sharing a twin's network trains nothing), weighted by its proxy MACs. Goal:
pruning saves at least 50% with the same top 3. The "ceiling" row replays the
exhaustive learning curves to show how much any pruner could save on them.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import astuple

import optuna

from scalesearch.search import _queue as queue
from scalesearch import search
from scalesearch.results import read_trial
from scalesearch.search import Plan
from scalesearch.search import Progress
from scalesearch.results import ranking, trials_frame

from .common import console, section, table

PRUNERS = ("none", "sha", "hyperband")
QUICK = {"train": 256, "val": 128}  # a smoke run; epochs stay at the default 2 unless --epochs says otherwise


class LogProgress(Progress):
    """One stderr line per finished candidate."""

    def __init__(self, pruner: str) -> None:
        self.pruner, self.done, self.total = pruner, 0, 0

    def start(self, plan: Plan, total: int, done: int) -> None:
        self.total, self.done = total, done

    def finished(self, state: str, acc: float | None) -> None:
        self.done += 1
        score = "" if acc is None else f", val top-1 {acc:.1%}"
        console.log(f"end to end, pruner {self.pruner}: {self.done}/{self.total} {state}{score}")


def search_once(pruner: str, quick: bool, device: str, epochs: int | None) -> dict:
    """Wall time, trial counts, trained epochs and compute, and the top 3 of one search."""
    with tempfile.TemporaryDirectory(prefix="scalesearch-bench-") as tmp:
        options = search.RunOptions(base="b0", budget="2x", pruner=pruner, device=device, results_dir=tmp,
                                    epochs=epochs, **(QUICK if quick else {}))
        start = time.perf_counter()
        plan, study = search.execute(options, LogProgress(pruner))
        wall = time.perf_counter() - start
        trials = [t for t in study.get_trials(deepcopy=False) if queue.candidate(t) and not read_trial(t).get("unqueued")]
        trained = [t for t in trials if "shared_from" not in read_trial(t)]
        epochs = sum(len(read_trial(t).get("val_acc") or []) for t in trained)
        images = len(plan.data.train_y)
        top = [tuple(r) for r in ranking(trials_frame(study)).head(3)[["alpha", "beta", "gamma"]].itertuples(index=False)]
        return {
            "wall": wall,
            "candidates": len(trials),
            "complete": sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials),
            "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
            "epochs": epochs,
            "tmacs": sum(len(read_trial(t).get("val_acc") or []) * read_trial(t)["macs_proxy"] for t in trained) * images / 1e12,
            "trial_s": sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials if t.datetime_complete),
            "top3": top,
            "ceiling": ceiling(trials, trained, top, plan.space.proxy.epochs, images),
            "settings": f"{images:,} train / {len(plan.data.val_y):,} val images, {plan.space.proxy.epochs} epochs",
        }


def ceiling(trials: list, trained: list, top3: list, epochs: int, images: int) -> tuple[int, float] | None:
    """Epochs and forward TMACs left if, after each epoch but the last, every trained candidate
    scoring below all of this run's final top 3 stops there.

    No pruner that keeps those three saves more, unless it drops a candidate that scores above
    one it keeps at the same epoch (an asynchronous pruner can, by the luck of trial order).
    None without three complete candidates. A failed candidate counts the epochs it trained.
    """
    def curve(t) -> list[float]:
        return read_trial(t).get("val_acc") or []

    curves = {astuple(queue.candidate(t)): curve(t) for t in trials}
    if len(top3) < 3 or any(len(curves[k]) < epochs for k in top3):
        return None
    floor = [min(curves[k][e] for k in top3) for e in range(epochs - 1)]
    kept = [next((e + 1 for e, (acc, f) in enumerate(zip(curve(t), floor)) if acc < f), len(curve(t))) for t in trained]
    return sum(kept), sum(e * read_trial(t)["macs_proxy"] for e, t in zip(kept, trained)) * images / 1e12


def saved(value: float, reference: float) -> str:
    return f"{100 * (1 - value / reference):.0f}" if reference else "—"


def agreement(top: list, reference: list) -> str:
    if top == reference:
        return "yes"
    return "yes (order differs)" if set(top) == set(reference) else "no"


def run(quick: bool = False, device: str = "cpu", epochs: int | None = None) -> str:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs = {p: search_once(p, quick, device, epochs) for p in PRUNERS}
    ref = runs["none"]
    rows = []
    for p, r in runs.items():
        versus = (["reference"] * 4 if r is ref else
                  [saved(r["epochs"], ref["epochs"]), saved(r["tmacs"], ref["tmacs"]), saved(r["trial_s"], ref["trial_s"]),
                   agreement(r["top3"], ref["top3"])])
        rows.append([p, r["wall"], r["candidates"], r["complete"], r["pruned"], r["epochs"], r["trial_s"],
                     f"{r['tmacs']:.2f}", *versus])
    if ref["ceiling"]:
        epochs_left, tmacs_left = ref["ceiling"]
        rows.append(["ceiling (hindsight)", "—", ref["candidates"], "—", "—", epochs_left, "—", f"{tmacs_left:.2f}",
                     saved(epochs_left, ref["epochs"]), saved(tmacs_left, ref["tmacs"]), "—", "yes, by construction"])
    headers = ["pruner", "wall (s)", "candidates", "complete", "pruned", "epochs trained", "trial time (s)",
               "compute (forward TMACs)", "epochs saved (%)", "compute saved (%)", "trial time saved (%)", "top 3 agree"]
    tops = "; ".join(f"{p}: " + ", ".join(f"({a:g}, {b:g}, {g:g})" for a, b, g in r["top3"]) for p, r in runs.items())
    flag = f" --epochs {epochs}" if epochs else ""
    note = (f"`scalesearch run --base b0 --budget 2x{flag} --pruner P` ({ref['settings']}{', --quick' if quick else ''}) on {device}. "
            f"Compute: Σ epochs × train images × proxy forward MACs of the trials that trained. Top 3 (α, β, γ): {tops}. "
            "Ceiling: the exhaustive curves replayed, each candidate stopped after the first epoch where it scores "
            "below all of the exhaustive top 3; no pruner that keeps the top 3 and ranks by the current score saves more.")
    return section(f"End to end: exhaustive vs pruned ({device})", device, table(headers, rows), note)
