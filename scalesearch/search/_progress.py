"""Progress of a run: the hooks a search calls as it goes, and a rich progress bar on stderr.

:class:`Progress` does nothing; :class:`RichProgress` draws trials done of planned with
elapsed time and ETA, and the current candidate's epoch and steps, as the CLI shows them.
Pass either (or your own subclass) as ``progress=`` to :func:`scalesearch.run`. When worker processes
train (the CPU default, ``--workers``), this process hears ``poll`` with the counts read from the storage
instead of each candidate's ``candidate``, ``step``, ``epoch`` and ``finished``.
"""
from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as Bar

from ..space._latency_budget import near_edge_note
from ._storage import redact

if TYPE_CHECKING:
    from ..space._candidates import Candidate
    from ..arch._latency import Latency
    from ._plan import Plan
    from ._schedule import TimeBudget
    from ..stats._surface import Surface

# Wide lines stay readable when stderr goes to a file or CI log (rich would assume 80 columns).
_err = Console(stderr=True, width=None if sys.stderr.isatty() else 180)


class Progress:
    """What a run reports as it goes. Every hook is optional: subclass and override the ones you need."""

    def start(self, plan: Plan, total: int, done: int) -> None: ...
    def candidate(self, c: Candidate, seed: int, resolution: int, epochs: int) -> None: ...
    def step(self, step: int, total: int) -> None: ...
    def epoch(self, epoch: int, acc: float) -> None: ...
    def finished(self, state: str, acc: float | None) -> None: ...
    def failed(self, reason: str) -> None: ...
    def round(self, name: str, queued: int) -> None: ...
    def poll(self, done: int, total: int, alive: int) -> None: ...
    def stop(self) -> None: ...
    def note(self, text: str) -> None: ...
    def latency(self, done: int, total: int, lat: Latency, reused: bool) -> None: ...
    def clock(self, budget: TimeBudget) -> None: ...
    def standing(self, fit: Surface, members: dict, kind: str = "loss") -> None: ...


def latency_line(check, feasible: int | None, budget: float, tolerance: float) -> str:
    """What the latency constraint measured: conditions, base, repeatability, cost and feasible count."""
    agree = ("from the cache" if check.agreement is None else
             f"measured {len(check.base_medians)}× this run: {', '.join(f'{s * 1e3:.2f}' for s in check.base_medians)} ms, "
             f"the two fastest {check.agreement:.1%} apart")
    warn = (f"; WARNING: the base's two fastest measurements are further apart than the {tolerance:.0%} tolerance, so "
            "latency ratios near its edge are noise" if check.agreement is not None and check.agreement > tolerance else "")
    if check.unsettled:
        warn += f"; {check.unsettled} networks timed under load throughout (rounds never agreed within 3%)"
    if check.cv is not None:
        warn += (f"; noise (CV of the base's two fastest) {check.cv:.1%}: {len(check.borderline(budget, tolerance))} "
                 f"points' ratios are within it of the tolerance's edges")
    return (f"latency: {check.base.conditions.describe()}; base {check.base.seconds * 1e3:.2f} ms ({agree}); "
            f"pre-filter kept {check.kept} of {check.points} points (MACs within ×÷{check.band:g} of the budget), "
            f"{check.networks} networks, {check.measured} timed in {check.time_s:.1f} s; {feasible} feasible{warn}")


class RichProgress(Progress):
    """Live progress on stderr: candidates done / total with ETA; the current candidate's epoch and steps."""

    def __init__(self) -> None:
        self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=_err)
        self.overall: int | None = None
        self.current: int | None = None
        self.label = ""
        self.timed = 0
        self.budget: TimeBudget | None = None
        self.leader = ""
        self.workers = ""

    def start(self, plan: Plan, total: int, done: int) -> None:
        r = plan.report
        _err.print(f"study {plan.study_name} in {redact(plan.storage_url)}", highlight=False)
        _err.print(plan.scope(), highlight=False)
        p, d = plan.space.proxy, plan.design
        kind = plan.options.proxy_for
        table = f" with [proxy.{kind}]" if kind in dict(plan.space.device_proxy) else ""
        _err.print(f"proxy for {kind}{table}: {plan.base.name} narrowed to width ×{d.width:g}, {d.side} px × γ{' (auto)' if d.auto else ''}, "
                  f"{p.epochs} epochs of {min(p.train, len(plan.data.train_y))} images per seed, {p.seeds} paired seeds "
                  f"(up to {p.max_seeds} each), scored on {len(plan.data.val_y)} val images by "
                  f"{'val loss' if p.score == 'loss' else 'val top-1'}; proxy cost ratios within {d.deviation:.0%} of "
                  f"the target's (proxy MACs max/min {d.spread:.2f})", highlight=False)
        if r.latency is not None:
            _err.print(latency_line(r.latency, r.feasible_latency, plan.space.budget, plan.space.tolerance), highlight=False)
            edge = near_edge_note(r.latency, [a.candidate for a in r.feasible])
            if edge:
                _err.print(f"latency: {edge}", highlight=False)
        if done:
            _err.print(f"resuming: {done} of {total} trials already done", highlight=False)
        self.bar.start()
        self.overall = self.bar.add_task("trials", total=total, completed=done)

    def candidate(self, c, seed: int, resolution: int, epochs: int) -> None:
        self.label, self.epochs = f"α={c.alpha:g} β={c.beta:g} γ={c.gamma:g} seed {seed} {resolution} px", epochs
        if self.current is not None:
            self.bar.remove_task(self.current)
        self.current = self.bar.add_task(f"{self.label} epoch 1/{epochs}", total=None)

    def step(self, step: int, total: int) -> None:
        self.bar.update(self.current, completed=step, total=total)

    def epoch(self, epoch: int, acc: float) -> None:
        nxt = min(epoch + 2, self.epochs)
        self.bar.update(self.current, description=f"{self.label} epoch {nxt}/{self.epochs} (val top-1 {acc:.1%})")

    def finished(self, state: str, acc: float | None) -> None:
        self.bar.advance(self.overall)
        self._describe()

    def clock(self, budget) -> None:
        self.budget = budget
        self._describe()

    def standing(self, fit, members: dict, kind: str = "loss") -> None:
        """The current leader and its 95% set, after each round."""
        a, b, g = members[fit.leader][0]
        n = len(fit.confidence_set)
        self.leader = f"leader α={a:g} β={b:g} γ={g:g}, 95% set {n} network{'s' * (n != 1)}"
        unit = "nats of −val loss" if kind == "loss" else "val top-1 as a fraction"
        self.bar.console.print(f"{self.leader} (score {fit.table['fit'].iloc[0]:.4f} ± {fit.table['se'].iloc[0]:.4f} "
                               f"{unit}, surface fit: {fit.form}{_lack_of_fit(fit)})", highlight=False)
        self._describe()

    def _describe(self) -> None:
        if self.overall is not None:
            parts = ["trials" + self.workers, self.budget.describe() if self.budget and self.budget.limited else "", self.leader]
            self.bar.update(self.overall, description=" · ".join(p for p in parts if p))

    def failed(self, reason: str) -> None:
        self.bar.console.print(f"{self.label}: {reason}", highlight=False)

    def round(self, name: str, queued: int) -> None:
        self.bar.console.print(f"{name}: {queued} more trials", highlight=False)
        task = next((t for t in self.bar.tasks if t.id == self.overall), None)
        if task is not None and task.total is not None:
            self.bar.update(self.overall, total=task.total + queued)

    def note(self, text: str) -> None:
        _err.print(text, highlight=False)

    def latency(self, done: int, total: int, lat, reused: bool) -> None:
        """Latency measurement before the study starts: a line every 20 points and at the end."""
        if done == 1:
            self.timed = 0
        self.timed += not reused
        if done % 20 == 0 or done == total:
            _err.print(f"latency: {done}/{total} points ({self.timed} networks timed, "
                       f"last {lat.seconds * 1e3:.2f} ms)", highlight=False)

    def stop(self) -> None:
        if self.overall is not None:  # a bar never started would still print a blank line
            self.bar.stop()

    def poll(self, done: int, total: int, alive: int) -> None:
        """Trials done by worker processes, as read from the storage."""
        self.workers = f" ({alive} workers running)"
        self.bar.update(self.overall, completed=done, total=total)
        self._describe()


def _lack_of_fit(fit) -> str:
    return "" if math.isnan(fit.lack_of_fit) else f", linear surface's lack of fit p = {fit.lack_of_fit:.2f}"
