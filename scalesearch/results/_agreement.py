"""Do two studies of one question agree? The check that a boundary verdict asks for.

A run's answer is conditional on its proxy (short proxies favour width, and how strongly depends
on the training) and on its seeds. Asking the same question another way, in a study of its own
(another ``--lr``, more ``--epochs``, another ``seed`` in the space, other data), and reading the
two answers side by side says whether the answer survives the change:

- each winner in the other study's 95% set: the two do not contradict each other;
- Kendall's τ-b between the two fitted rankings over the candidates both ranked;
- each surface's slopes, i.e. how strongly each tilts towards depth, width or side.

Two studies that trained on the same seeds share those seeds' training subsets, orders and initial
weights (common random numbers), so their noise is in part the same: their agreement then shows what
the change did, not how well the answer repeats across seeds (change the space's ``seed`` for that).

Only studies of the same base, budget and constraint are compared: the same (α, β, γ) is then the
same network in both, and each study's 95% set ranges over the same candidates.

>>> a = pd.DataFrame({"alpha": [1, 1, 1.2], "beta": [1.2, 1.1, 1], "gamma": [1, 1.1, 1.1], "score_fit": [3, 2, 1]})
>>> b = a.assign(score_fit=[3, 1, 2])
>>> r = compare_rankings(a, ((1, 1.2, 1), [(1, 1.2, 1)]), b, ((1, 1.2, 1), [(1, 1.2, 1), (1, 1.1, 1.1)]))
>>> r.common, r.a_in_b, r.b_in_a, round(r.tau, 2)
(3, True, True, 0.33)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import optuna
import pandas as pd
from scipy import stats

from ..errors import ScaleSearchError
from ..stats import _race as race
from ._ranking import ranking, study_verdict, trials_frame
from ._record import is_comparison

Cand = tuple[float, float, float]
# What makes two studies one question: the same base, budget and constraint.
QUESTION = (("base", "name"), ("space", "budget"), ("space", "constraint"))
# Settings whose difference is the point of the comparison (or a seed that differs), reported by name.
COMPARED = ("proxy", "data", "space")
SKIPPED = {("space", "name"), ("space", "path"), ("data", "spec")}  # how a setting was given, not what it is
UNITS = {("space", "time"): " s", ("proxy", "resolution"): " px"}


def _key(c) -> Cand:
    return tuple(round(float(x), 4) for x in c)


@dataclass(frozen=True)
class Agreement:
    """Two studies' answers side by side (see the module's docstring)."""

    names: tuple[str, str]
    common: int  # candidates at φ = 1 ranked by both
    tau: float  # Kendall τ-b between the two studies' `score_fit` over the common candidates
    tau_p: float  # its two-sided p-value (no agreement beyond chance)
    winners: tuple[Cand, Cand]
    a_in_b: bool  # the first study's winner is in the second's 95% set
    b_in_a: bool
    p_in_other: tuple[float, float]  # each winner's P(best) in the other study (nan: not ranked there)
    set_sizes: tuple[int, int] = (0, 0)  # distinct networks in each 95% set
    networks: int = 0  # distinct networks ranked by the first study
    slopes: tuple[dict, dict] = ({}, {})  # each surface's d score / d log(blocks, channels, side)
    differences: list[str] = field(default_factory=list)  # "proxy.lr: 0.004 → 0.008", …
    shared_seeds: int = 0  # seeds both studies trained on: their noise is then in part the same

    @property
    def contradict(self) -> bool:
        return not (self.a_in_b and self.b_in_a)

    @property
    def words(self) -> str:
        """The conclusion in one sentence."""
        if self.contradict:
            outside = [f"{n}'s winner lies outside {o}'s 95% set" for n, o, inside in
                       ((self.names[0], self.names[1], self.a_in_b), (self.names[1], self.names[0], self.b_in_a)) if not inside]
            cause = f" (what differs: {'; '.join(self.differences)})" if self.differences else ""
            return f"they contradict each other: {' and '.join(outside)}; the answer depends on how it was asked{cause}"
        said = ("they agree: the same winner, inside both 95% sets" if self.winners[0] == self.winners[1] else
                "they do not contradict each other: each winner lies in the other's 95% set")
        wide = [n for n, s in zip(self.names, self.set_sizes) if self.networks and s > self.networks / 3]
        return said + (f"; {' and '.join(wide)} cannot decide (a 95% set of more than a third of the networks)" if wide else "")


def compare_rankings(a: pd.DataFrame, va: tuple[Cand, list[Cand]], b: pd.DataFrame, vb: tuple[Cand, list[Cand]],
                     names: tuple[str, str] = ("A", "B")) -> Agreement:
    """Two φ = 1 rankings (columns alpha, beta, gamma, score_fit and optionally p_best) and their verdicts as
    (winner, 95% set): τ-b over the candidates both ranked, and each winner against the other's set."""
    fits = [{_key((r.alpha, r.beta, r.gamma)): r for r in x.itertuples()} for x in (a, b)]
    common = sorted(set(fits[0]) & set(fits[1]))
    tau = stats.kendalltau([fits[0][k].score_fit for k in common], [fits[1][k].score_fit for k in common])
    wa, wb = _key(va[0]), _key(vb[0])
    p_of = lambda rows, k: float(getattr(rows[k], "p_best", math.nan)) if k in rows else math.nan
    return Agreement(names, len(common), float(tau.statistic), float(tau.pvalue), (wa, wb),
                     wa in {_key(c) for c in vb[1]}, wb in {_key(c) for c in va[1]}, (p_of(fits[1], wa), p_of(fits[0], wb)))


def differences(a: dict, b: dict) -> list[str]:
    """The recorded settings (proxy, data, space) in which two studies' configurations differ."""
    out = []
    for part in COMPARED:
        x, y = a.get(part) or {}, b.get(part) or {}
        for k in sorted(set(x) | set(y), key=str):
            if (part, k) not in SKIPPED and x.get(k) != y.get(k):
                unit = lambda v: _plain(v) + (UNITS.get((part, k), "") if isinstance(v, (int, float)) else "")
                out.append(f"{part}.{k}: {unit(x.get(k))} → {unit(y.get(k))}")
    return out


def _plain(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} {_plain(x)}" for k, x in v.items()) + "}"
    return "none" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def agreement(a: optuna.Study, b: optuna.Study) -> Agreement:
    """Whether two search studies of one base, budget and constraint give the same answer.

    Raises :class:`ScaleSearchError` (one line) for a comparison study, a study with no complete
    candidate, two studies of different questions, or no candidate ranked by both.
    """
    configs = []
    for st in (a, b):
        if is_comparison(st):
            raise ScaleSearchError(f"study {st.study_name!r} is a comparison (scalesearch compare); give search studies")
        configs.append(st.user_attrs.get("config") or {})
    for part, key in QUESTION:
        x, y = (c.get(part, {}).get(key) for c in configs)
        if x != y:
            raise ScaleSearchError(f"the studies ask different questions: {part} {key} {_plain(x)} in {a.study_name!r}, "
                                   f"{_plain(y)} in {b.study_name!r}; agree compares one base, budget and constraint")
    ranked, verdicts, fits, seeds = [], [], [], []
    for st in (a, b):
        trials = trials_frame(st)
        seeds.append(set(trials["seed"]) if "seed" in trials else set())
        v = study_verdict(st, trials)
        if v is None:
            raise ScaleSearchError(f"study {st.study_name!r} has no complete candidate yet; run or resume scalesearch run first")
        ranked.append(ranking(trials))
        verdicts.append(v)
        fits.append(race.fit(trials))
    r = compare_rankings(ranked[0], (verdicts[0].winner, verdicts[0].tied), ranked[1], (verdicts[1].winner, verdicts[1].tied),
                         (a.study_name, b.study_name))
    if r.common < 2:
        raise ScaleSearchError(f"studies {a.study_name!r} and {b.study_name!r} rank {r.common} candidate(s) in common; "
                               "agree needs at least 2")
    return Agreement(**{**r.__dict__, "set_sizes": (verdicts[0].networks, verdicts[1].networks),
                        "networks": len(fits[0].table), "slopes": (fits[0].slopes, fits[1].slopes),
                        "differences": differences(*configs), "shared_seeds": len(seeds[0] & seeds[1])})
