"""The run's time budget: how fast this host trains, and which of the next trials still fit.

Hosts differ in speed by a third or more, so a run sized in rounds overruns on a slow one. A
budget in seconds instead: the run measures its own pace (wall seconds per proxy multiply-add
of the trials it trained, bookkeeping included), prices every queued trial by its multiply-adds,
and starts a trial only when it should finish in time. A budget of 0 means none. Several worker
processes (`slots`) train side by side, each trial at its own pace, so a round's trials are laid
out on that many lanes.

>>> b = TimeBudget(600, started=0.0, clock=lambda: 100.0)
>>> round(b.left())  # 600 s, less the 100 elapsed and the reserve for writing the results
485
>>> b.take([("a", 200.0), ("b", 200.0), ("c", 200.0)])
['a', 'b']
>>> TimeBudget(600, started=0.0, clock=lambda: 100.0, slots=2).take([("a", 200.0), ("b", 200.0), ("c", 200.0)])
['a', 'b', 'c']
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, TypeVar

import optuna
from optuna.trial import TrialState

from ..errors import ScaleSearchError
from ..results._record import read

T = TypeVar("T")

# Kept back for what follows the last trial (fitting, writing the tables and the export): a share of the
# budget, at least a few seconds.
RESERVE_SHARE, RESERVE_MIN_S = 0.025, 3.0
# Worker processes started by a run learn its time budget here: "<start> <end of training> [<pace hint>]", Unix
# times and seconds per proxy multiply-add.
BUDGET_ENV = "SCALESEARCH_TIME_BUDGET"


@dataclass
class TimeBudget:
    """`seconds` for the whole run from `started` (a ``time.monotonic()`` reading); 0 means no budget."""

    seconds: float
    started: float = field(default_factory=time.monotonic)
    clock: Callable[[], float] = time.monotonic
    pace_hint: float | None = None  # seconds per proxy MAC before any trial of this run has finished
    spent_out: bool = False  # a trial was held back for lack of time
    slots: int = 1  # trials trained side by side (worker processes)
    reserve_s: float | None = None  # seconds kept back after training; None: a share of the budget

    @property
    def limited(self) -> bool:
        return self.seconds > 0

    def elapsed(self) -> float:
        return self.clock() - self.started

    def left(self) -> float:
        """Seconds left for training (inf without a budget)."""
        return self.seconds - self.elapsed() - self.reserve() if self.limited else math.inf

    def reserve(self) -> float:
        return max(RESERVE_MIN_S, RESERVE_SHARE * self.seconds) if self.reserve_s is None else self.reserve_s

    def env(self) -> dict[str, str]:
        """The budget for worker processes this run starts (:meth:`from_env` reads it back); {} without one."""
        if not self.limited:
            return {}
        start = time.time() - self.elapsed()
        hint = f" {self.pace_hint!r}" if self.pace_hint else ""
        return {BUDGET_ENV: f"{start:.3f} {start + self.seconds - self.reserve():.3f}{hint}"}

    @classmethod
    def from_env(cls) -> TimeBudget | None:
        """The budget of the run that started this worker process (None when it has none)."""
        value = os.environ.get(BUDGET_ENV, "").split()
        if len(value) not in (2, 3):
            return None
        start, end, *hint = map(float, value)
        return cls(end - start, started=time.monotonic() - (time.time() - start), reserve_s=0.0,
                   pace_hint=hint[0] if hint else None)

    def allows(self, seconds: float) -> bool:
        """Whether a trial of `seconds` still fits; remembers when one did not."""
        ok = seconds <= self.left()
        self.spent_out |= not ok
        return ok

    def take(self, priced: Iterable[tuple[T, float]]) -> list[T]:
        """The leading items, in order, that fit the time left, each started on the first free slot."""
        priced = list(priced)
        chosen = []
        for (item, _), end in zip(priced, _ends([seconds for _, seconds in priced], self.slots)):
            if not self.allows(end):
                break
            chosen.append(item)
        return chosen

    def makespan(self, seconds: Iterable[float]) -> float:
        """Wall seconds that trials of these `seconds` take, each started in order on the first free slot."""
        return max(_ends(seconds, self.slots), default=0.0)

    def pace(self, study: optuna.Study) -> float | None:
        """Wall seconds per proxy multiply-add of the trials this run trained (twins' shares left out)."""
        spent = macs = 0.0
        since = time.time() - self.elapsed()
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            a = read(t)
            if not a.get("seconds") or not a.get("macs_proxy") or t.datetime_start is None or t.datetime_complete is None:
                continue
            if t.datetime_start.timestamp() < since:
                continue  # trained by an earlier run, maybe on another host
            spent += (t.datetime_complete - t.datetime_start).total_seconds()
            macs += a["macs_proxy"]
        return spent / macs if macs else self.pace_hint

    def trial_seconds(self, study: optuna.Study, macs_proxy: float) -> float:
        """Expected wall seconds of one trial of a network with `macs_proxy` multiply-adds per image."""
        pace = self.pace(study)
        return 0.0 if pace is None else pace * macs_proxy

    def describe(self) -> str:
        if not self.limited:
            return "no time budget"
        left = max(0.0, self.seconds - self.elapsed())
        return f"{int(left // 60)}:{int(left % 60):02d} of {_minutes(self.seconds)} left"


def _ends(seconds: Iterable[float], slots: int) -> Iterable[float]:
    """When each trial ends, started in order on whichever of `slots` lanes frees first."""
    lanes = [0.0] * max(1, slots)
    for s in seconds:
        lane = lanes.index(min(lanes))
        lanes[lane] += s
        yield lanes[lane]


def settle(budget: TimeBudget, study: optuna.Study) -> str | None:
    """After a run's last round: what the time budget left untrained, in words (None when it was not spent).

    Raises ScaleSearchError when it was spent before any candidate trained. A trial still queued means the
    budget held it back, here or in a worker process."""
    trials = study.get_trials(deepcopy=False)
    waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
    if not (budget.spent_out or (budget.limited and waiting)):
        return None
    if not any(t.state == TrialState.COMPLETE for t in trials):
        raise ScaleSearchError(f"the time budget ({budget.seconds / 60:g} min) was spent before any candidate trained "
                               f"({budget.elapsed() / 60:.1f} min went to preparing the run); give more --time: the same "
                               "command resumes, and a latency measurement is cached")
    return f"time budget spent after {budget.elapsed() / 60:.1f} min" + (
        f": {waiting} queued trials left untrained (the same command with more --time resumes them)" if waiting else "")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds < 3600 else f"{seconds / 3600:g} h"
