"""The comparison's statistics: each member's score over its seeds, and each family against compound, paired.

Every member trained with seed *s* saw the same training subset, order, augmentation and init seed
(common random numbers), so a family is compared with the compound member of the same φ on the seeds
both have: the mean of the per-seed differences (single − compound, higher scores are better) with its
95% Student-t interval (scipy's paired t-test). The interval decides the verdict: above 0 "single
better", below 0 "compound better", else "not resolved", with how many paired seeds would resolve it
if the mean difference and its spread stayed as measured. One seed gives no interval: not resolved.

>>> import pandas as pd
>>> pair = pd.DataFrame({"single": [0.30, 0.35, 0.28], "compound": [0.20, 0.22, 0.21]}, index=[0, 1, 2])
>>> d = paired(pair["single"], pair["compound"])
>>> round(d.mean, 3), d.pairs, d.verdict
(0.1, 3, 'single better')
>>> paired(pair["single"][:1], pair["compound"][:1]).verdict  # one seed: no interval
'not resolved'
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import pandas as pd

from ..stats._surface import LEVEL, t_quantile

VERDICTS = ("compound better", "single better", "not resolved")
MAX_SEEDS_SHOWN = 10_000  # beyond this, "more than 10,000"


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% interval (NaN bounds with fewer than two values)."""

    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class Paired(Interval):
    """single − compound on their common seeds, with the verdict and the paired seeds that would resolve it."""

    verdict: str = "not resolved"
    seeds_needed: float = math.nan  # NaN: unknown (one pair); inf: the mean difference is 0

    @property
    def pairs(self) -> int:
        return self.n


def interval(values: pd.Series) -> Interval:
    """Mean and 95% t interval of `values` (scipy's one-sample t-test)."""
    from scipy import stats

    x = values.dropna().to_numpy(float)
    if len(x) < 2:
        return Interval(float(x.mean()) if len(x) else math.nan, math.nan, math.nan, len(x))
    with warnings.catch_warnings():  # equal values: a zero-width interval, not a failure
        warnings.simplefilter("ignore")
        ci = stats.ttest_1samp(x, 0.0).confidence_interval(LEVEL)
    return Interval(float(x.mean()), float(ci.low), float(ci.high), len(x))


def paired(single: pd.Series, compound: pd.Series) -> Paired:
    """single − compound over the seeds (index) both have; the verdict from the 95% paired t interval."""
    from scipy import stats

    both = pd.concat([single, compound], axis=1, join="inner").dropna()
    a, b = both.iloc[:, 0].to_numpy(float), both.iloc[:, 1].to_numpy(float)
    n = len(both)
    if n < 2:
        return Paired(float(a[0] - b[0]) if n else math.nan, math.nan, math.nan, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ci = stats.ttest_rel(a, b).confidence_interval(LEVEL)
    d = a - b
    low, high = float(ci.low), float(ci.high)
    verdict = "single better" if low > 0 else "compound better" if high < 0 else "not resolved"
    needed = math.nan if verdict != "not resolved" else seeds_to_resolve(float(d.mean()), float(d.std(ddof=1)), n)
    return Paired(float(d.mean()), low, high, n, verdict, needed)


def seeds_to_resolve(mean: float, sd: float, n: int) -> float:
    """The fewest paired seeds (more than `n`) whose 95% t interval would exclude 0, were the mean difference
    and its standard deviation to stay as measured; inf when the mean is 0 or it takes over MAX_SEEDS_SHOWN."""
    if not sd > 0:
        return math.nan if math.isnan(sd) else math.inf
    return next((k for k in range(n + 1, MAX_SEEDS_SHOWN + 1) if t_quantile(k - 1) * sd / math.sqrt(k) < abs(mean)),
                math.inf)


def seeds_words(needed: float) -> str:
    """How many paired seeds would resolve a difference, in words."""
    if math.isnan(needed):
        return "a second seed gives the first interval"
    if math.isinf(needed):
        return f"more than {MAX_SEEDS_SHOWN:,} paired seeds would resolve it (no difference so far)"
    return f"about {int(needed)} paired seeds would resolve it"


def scores(trials: pd.DataFrame) -> pd.DataFrame:
    """(key, seed) → score and acc of the complete trials; key is the member's (depth, width, side) multipliers."""
    done = trials[trials["state"] == "COMPLETE"]
    keys = [(round(a, 4), round(b, 4), round(g, 4)) for a, b, g in zip(done["alpha"], done["beta"], done["gamma"])]
    frame = pd.DataFrame({"key": keys, "seed": done["seed"].astype(int).to_numpy(), "score": done["score"].astype(float),
                          "acc": done["acc"].astype(float)})
    return frame.drop_duplicates(["key", "seed"]).set_index(["key", "seed"]).sort_index()


def of(table: pd.DataFrame, key: tuple, column: str = "score") -> pd.Series:
    """Member `key`'s `column` by seed (empty when it has none)."""
    if key not in table.index.get_level_values(0):
        return pd.Series(dtype=float)
    return table.loc[key, column]


__all__ = ["Interval", "Paired", "VERDICTS", "interval", "of", "paired", "scores", "seeds_to_resolve", "seeds_words"]
