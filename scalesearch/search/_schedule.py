"""The run's time budget: how fast this host trains, and which of the next trials still fit.

Hosts differ in speed by a third or more, so a run sized in rounds overruns on a slow one. A
budget in seconds instead: the run measures its own pace (wall seconds per proxy multiply-add
of the trials it trained, bookkeeping included), prices every queued trial by its multiply-adds,
and starts a trial only when it should finish in time. A budget of 0 means none.

>>> b = TimeBudget(600, started=0.0, clock=lambda: 100.0)
>>> round(b.left())  # 600 s, less the 100 elapsed and the reserve for writing the results
485
>>> b.take([("a", 200.0), ("b", 200.0), ("c", 200.0)])
['a', 'b']
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, TypeVar

import optuna
from optuna.trial import TrialState

from ..results._record import read

T = TypeVar("T")

# Kept back for what follows the last trial (fitting, writing the tables and the export): a share of the
# budget, at least a few seconds.
RESERVE_SHARE, RESERVE_MIN_S = 0.025, 3.0


@dataclass
class TimeBudget:
    """`seconds` for the whole run from `started` (a ``time.monotonic()`` reading); 0 means no budget."""

    seconds: float
    started: float = field(default_factory=time.monotonic)
    clock: Callable[[], float] = time.monotonic
    pace_hint: float | None = None  # seconds per proxy MAC before any trial of this run has finished
    spent_out: bool = False  # a trial was held back for lack of time

    @property
    def limited(self) -> bool:
        return self.seconds > 0

    def elapsed(self) -> float:
        return self.clock() - self.started

    def left(self) -> float:
        """Seconds left for training (inf without a budget)."""
        return self.seconds - self.elapsed() - self.reserve() if self.limited else math.inf

    def reserve(self) -> float:
        return max(RESERVE_MIN_S, RESERVE_SHARE * self.seconds)

    def allows(self, seconds: float) -> bool:
        """Whether a trial of `seconds` still fits; remembers when one did not."""
        ok = seconds <= self.left()
        self.spent_out |= not ok
        return ok

    def take(self, priced: Iterable[tuple[T, float]]) -> list[T]:
        """The leading items, in order, whose summed seconds fit the time left."""
        chosen, total = [], 0.0
        for item, seconds in priced:
            if not self.allows(total + seconds):
                break
            chosen.append(item)
            total += seconds
        return chosen

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


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds < 3600 else f"{seconds / 3600:g} h"
