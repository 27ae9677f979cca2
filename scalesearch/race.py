"""Paired statistics over seeds: who is still in contention, who is tied, how sure the winner is.

Every candidate trained with seed *s* saw the same training subset, order,
augmentation and init seed as every other candidate with that seed (common
random numbers), so a seed moves all candidates together. The scores are fitted
with the additive model ``score[c, s] = mean[c] + seed_effect[s] + noise``; the
seed effects come out and the noise left over is pooled across candidates, which
gives a noise estimate with many degrees of freedom even when each candidate
has only two seeds. From that fit:

- a candidate is *tied* with the leader when the leader's lead over it is within
  the 95% Student-t margin of the difference of the two means;
- racing gives another seed only to candidates still tied, so compute goes where
  the decision is;
- the probability of being best is the share of parametric draws of all the means
  (normal, with each mean's standard error) in which the candidate comes first.

Higher scores are better (the search negates losses).

>>> import pandas as pd
>>> obs = pd.DataFrame({"key": ["a", "b", "c"] * 3, "seed": [0] * 3 + [1] * 3 + [2] * 3,
...                     "score": [0.70, 0.60, 0.69, 0.75, 0.64, 0.73, 0.66, 0.57, 0.66]})
>>> f = fit(obs)
>>> f.leader, sorted(f.tied()), f.dof
('a', ['a', 'c'], 4)
>>> float(round(f.p_best()["b"], 3))
0.0
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .record import network_id

# Two-sided 95% Student-t quantiles for 1 … 30 degrees of freedom; 1.96 beyond.
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]

P_BEST_DRAWS = 20_000


def t95(dof: int) -> float:
    return _T95[dof - 1] if 1 <= dof <= len(_T95) else 1.96


@dataclass(frozen=True)
class Fit:
    """Seed-adjusted means, their seed counts and the pooled noise of one set of paired scores."""

    means: pd.Series  # key -> seed-adjusted mean score, best first
    seeds: pd.Series  # key -> number of seeds scored
    sigma: float  # pooled residual standard deviation of one score (nan without degrees of freedom)
    dof: int

    @property
    def leader(self):
        return self.means.index[0]

    def stderr(self, key) -> float:
        return self.sigma / math.sqrt(self.seeds[key])

    def margin(self, key) -> float:
        """95% margin of (leader's mean − this mean); infinite while the noise is unknown."""
        if not self.dof:
            return math.inf
        return t95(self.dof) * self.sigma * math.sqrt(1 / self.seeds[key] + 1 / self.seeds[self.leader])

    def tied(self) -> list:
        """The leader and every candidate whose gap to it lies within the margin."""
        lead = self.means.iloc[0]
        return [k for k, m in self.means.items() if lead - m <= self.margin(k)]

    def seeds_to_separate(self, gap: float) -> float:
        """Paired seeds per candidate at which a gap this large between two means clears the 95% margin
        (with today's degrees of freedom: more seeds bring more, so this errs high)."""
        if not self.dof or not gap > 0:
            return math.inf
        return math.ceil(2 * (t95(self.dof) * self.sigma / gap) ** 2)

    def p_best(self, draws: int = P_BEST_DRAWS, seed: int = 0) -> pd.Series:
        """Probability of being best under the fitted model (parametric draws of every mean)."""
        if not self.dof or len(self.means) == 1:
            return pd.Series(np.nan if len(self.means) > 1 else 1.0, index=self.means.index)
        rng = np.random.default_rng(seed)
        se = self.sigma / np.sqrt(self.seeds.to_numpy(float))
        sample = self.means.to_numpy()[None, :] + rng.standard_normal((draws, len(self.means))) * se[None, :]
        wins = np.bincount(sample.argmax(axis=1), minlength=len(self.means))
        return pd.Series(wins / draws, index=self.means.index)


def fit(obs: pd.DataFrame, iterations: int = 100) -> Fit:
    """Fit ``score = mean[key] + effect[seed]`` to rows of (key, seed, score) by alternating means.

    With every candidate on every seed this is the exact two-way least-squares fit; with
    racing (more seeds for some) it converges to the same least-squares solution.
    """
    obs = obs[["key", "seed", "score"]].dropna()
    effect = pd.Series(0.0, index=pd.Index(obs["seed"].unique()))
    for _ in range(iterations):
        means = (obs["score"] - obs["seed"].map(effect)).groupby(obs["key"]).mean()
        new = (obs["score"] - obs["key"].map(means)).groupby(obs["seed"]).mean()
        new -= new.mean()
        if np.allclose(new.to_numpy(), effect.reindex(new.index).to_numpy(), atol=1e-12):
            effect = new
            break
        effect = new
    means = (obs["score"] - obs["seed"].map(effect)).groupby(obs["key"]).mean()
    residual = obs["score"] - obs["key"].map(means) - obs["seed"].map(effect)
    dof = len(obs) - len(means) - len(effect) + 1
    sigma = math.sqrt(float((residual**2).sum()) / dof) if dof > 0 else math.nan
    order = means.sort_values(ascending=False, kind="stable").index
    seeds = obs.groupby("key")["seed"].nunique()
    return Fit(means[order], seeds[order], sigma, max(dof, 0))


# ---------------------------------------------------------------- the race over a study's trials

def observations(trials: pd.DataFrame, phi: float) -> pd.DataFrame:
    """(key, seed, score) of the complete trials at `phi`; key = the trained network, so twins count once.

    The trials' `score` column is higher-is-better (see :func:`scalesearch.results.trials_frame`).
    """
    done = trials[(trials["phi"] == phi) & (trials["state"] == "COMPLETE")]
    key = [network_id(r) for r in done.itertuples()]
    obs = pd.DataFrame({"key": key, "seed": done["seed"].to_numpy(), "score": done["score"].to_numpy()})
    return obs.drop_duplicates(["key", "seed"])  # twins share one result per seed


def next_round(trials: pd.DataFrame, seeds: list[int], max_seeds: int, contenders: int, phi2: int) -> tuple[str, list[tuple[float, float, float, int, int]]]:
    """What to train next, as (round name, [(α, β, γ, seed, φ)]); an empty list means the race is over.

    1. Racing at φ = 1: the best `contenders` candidates still tied with the leader get one
       more seed each, up to `max_seeds`. With one seed each there is no noise estimate yet,
       so the best `contenders` get their second seed first.
    2. φ = 2: the best `phi2` tied candidates' φ = 2 members (coefficients squared, at proxy
       scale), with the base seeds. This splits twins (α in (1, 1.25] builds the same B0 at
       φ = 1 but not at φ = 2) and makes the choice rest on more than one φ.
    """
    if phi2 < 1 and max_seeds <= len(seeds):
        return "", []
    obs = observations(trials, 1)
    if obs.empty:
        return "", []
    f = fit(obs)
    tied = f.tied()  # everyone while the noise is unknown
    members = _members(trials, 1)
    more = []
    for key in tied[:contenders]:
        used = set(obs.loc[obs["key"] == key, "seed"])
        if len(used) < max_seeds:
            nxt = next(s for s in itertools.count(seeds[0]) if s not in used)
            more += [(*c, nxt, 1) for c in members[key]]
    if more:
        return ("racing: another seed for the candidates still tied with the leader" if f.dof else
                "racing: a second seed for the best candidates, to measure the noise"), more
    if phi2 < 1:
        return "", []
    have = set(map(tuple, trials.loc[trials["phi"] == 2, ["alpha", "beta", "gamma", "seed"]].itertuples(index=False)))
    check = [(*c, s, 2) for key in tied[:phi2] for c in members[key] for s in seeds if (*c, s) not in have]
    return ("φ = 2: the tied candidates' next family members", check) if check else ("", [])


def _members(trials: pd.DataFrame, phi: float) -> dict:
    """network key -> the (α, β, γ) candidates that build it at `phi`, in grid order."""
    df = trials[trials["phi"] == phi]
    out: dict = {}
    for r in df.itertuples():
        c = (r.alpha, r.beta, r.gamma)
        if c not in out.setdefault(network_id(r), []):
            out[network_id(r)].append(c)
    return {k: sorted(v) for k, v in out.items()}


@dataclass(frozen=True)
class Verdict:
    """The run's answer: the winner, how likely it is best, what it is tied with, and whether that decides."""

    winner: tuple[float, float, float]
    p_best: float  # under the fit of the stage that chose it (φ = 2 among contenders, else φ = 1)
    stage: int  # the φ whose scores chose the winner
    tied: list[tuple[float, float, float]]  # candidates tied with the φ = 1 leader (the winner's rivals)
    resolved: bool
    reason: str  # why it is not resolved, or what settled it
    seeds_needed: float | None = None  # seeds per candidate that would halve the φ = 1 tied set (inf: no gap)

    @property
    def words(self) -> str:
        return "resolved" if self.resolved else "not resolved"


def verdict(trials: pd.DataFrame) -> Verdict | None:
    """The winner and how far the evidence carries it; None when nothing completed."""
    obs1 = observations(trials, 1)
    if obs1.empty:
        return None
    f1, members1 = fit(obs1), _members(trials, 1)
    tied_nets = f1.tied() if f1.dof else list(f1.means.index)
    tied = [c for k in tied_nets for c in members1[k]]
    obs2, members2 = observations(trials, 2), _members(trials, 2)
    obs2 = obs2[obs2["key"].map(lambda k: all(c in tied for c in members2.get(k, [])))]
    problems = [] if f1.dof else ["one seed per candidate gives no noise estimate"]
    if obs2.empty:
        winners, p, stage, checked = members1[f1.leader], f1.p_best()[f1.leader], 1, members1[f1.leader]
        rivals = tied_nets[1:]
    else:
        f2 = _with_noise_of(fit(obs2), f1)
        winners, p, stage = members2[f2.leader], f2.p_best()[f2.leader], 2
        checked = [c for k in f2.means.index for c in members2[k]]
        rivals = (f2.tied() if f2.dof else list(f2.means.index))[1:]
    if len(winners) > 1:
        problems.append(f"{_names(winners)} build the same networks at φ = 1 and φ = {stage}")
    if rivals:
        problems.append(f"{len(rivals)} other network(s) tied with it at φ = {stage}")
    unchecked = [c for c in tied if c not in checked]
    if unchecked and f1.dof:
        problems.append(f"{len(unchecked)} candidate(s) tied at φ = 1 not checked at φ = 2: {_names(unchecked[:4])}")
    needed = _seeds_to_halve(f1, tied_nets) if problems else None
    if needed is not None:
        problems.append(f"about {_count(needed)} paired seeds per candidate (now up to {int(f1.seeds.max())}) would "
                        f"separate the leader from half the {len(tied_nets) - 1} networks tied with it at φ = 1")
    reason = "; ".join(problems) if problems else (
        f"the only candidate left after {'φ = 1 and φ = 2' if stage == 2 else 'φ = 1'}")
    return Verdict(winners[0], float(p), stage, tied, not problems, reason, needed)


def _seeds_to_halve(f: Fit, tied: list) -> float | None:
    """Seeds per candidate at which the median gap between the leader and its tied rivals clears the margin:
    the price of an answer the data cannot give yet (None without a noise estimate or rivals)."""
    if not f.dof or len(tied) < 2:
        return None
    gaps = sorted(f.means.iloc[0] - f.means[k] for k in tied[1:])
    return f.seeds_to_separate(gaps[len(gaps) // 2])  # clearing this gap separates the farther half


def _count(n: float) -> str:
    return "more than 10,000" if n > 10_000 else f"{int(n):,}"


def _with_noise_of(f: Fit, other: Fit) -> Fit:
    """`f`, or with `other`'s noise estimate when `f` has none (one seed each at φ = 2: the same proxy's noise)."""
    return f if f.dof else Fit(f.means, f.seeds, other.sigma, other.dof)


def _names(cands: list[tuple[float, float, float]]) -> str:
    return ", ".join(f"({a:g}, {b:g}, {g:g})" for a, b, g in cands)
