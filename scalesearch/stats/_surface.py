"""The score over the budget surface: one smooth model for every candidate, with paired seed effects.

Candidates of one budget lie on a two-dimensional surface (depth, width and side trade
against each other at equal cost), so their scores have much in common: a model fitted to
all of them estimates each one far better than its own few seeds could. The model is

    score[c, s] = f(x_c) + u_c + seed[s] + noise

- ``x_c`` are features of the *built* proxy network (log blocks, log mean channels, log side),
  so twins share one point and the rounding of channels, repeats and side is honoured;
- ``f`` is linear in them (the form that predicted held-out seeds best: ``benchmarks/surface.py``;
  a quadratic surface, a Gaussian process and per-network means did worse);
- ``seed[s]`` is the paired seed's effect (every candidate with seed *s* saw the same data);
- ``u_c``, the network's own departure from the surface, is left in the noise by the "linear"
  form, which makes every interval wider where the surface fits badly; the "mixed" form (the
  race's) estimates it as a random effect with variance τ² (statsmodels) once some network has
  two seeds, so a network measured twice is judged by its own seeds as well as by the surface,
  and the optimum need not be a corner of the feasible set (a linear surface's always is).

Replicated networks also allow the lack-of-fit test (statsmodels' F-test of the linear surface
against one mean per network, seeds in both): ``Surface.lack_of_fit`` is its p-value.

Every network gets a fitted score (its posterior mean: surface + its predicted departure), a standard
error, and a probability of being best from draws of the fit; the 95% set holds the networks that
together carry 95% of that probability: the candidates that could be best. The mixed fit's draws do not
take τ² (nor σ²) as known: with a few seeds per network its REML estimate often falls to 0, which would
make the surface exact and the set too small, and a leader's P(best) too high. So τ²/σ² gets a posterior
on a grid, from statsmodels' restricted likelihood and the uniform-shrinkage prior, σ² its scaled
inverse-χ² given the ratio, and the surface and the departures their joint normal given both
(``_ratio_posterior``, ``_draws``): the standard Bayesian treatment of a one-way random effect. Its stated
P(best) is checked against how often the leader is the true best in ``benchmarks/allocation.py`` (README, Soundness).

Higher scores are better (the search negates losses).

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> nets = pd.DataFrame({"key": list("abcdef"), "log_depth": [0, .1, .2, .3, .4, .5], "log_width": [.5, .4, .3, .2, .1, 0],
...                      "log_side": [0, 0, .1, .1, .2, .2]})
>>> obs = pd.concat([nets.assign(seed=s) for s in (0, 1)], ignore_index=True)
>>> obs["score"] = obs["log_width"] - obs["log_depth"] + 0.01 * rng.standard_normal(len(obs)) + 0.1 * obs["seed"]
>>> s = fit(obs)
>>> s.leader, s.confidence_set
('a', ['a'])
>>> bool(s.table.loc["a", "p_best"] > 0.95), s.slopes["log_width"] > 0 > s.slopes["log_depth"]
(True, True)
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

# statsmodels and scipy.stats load when a fit needs them: they add seconds to every command's start,
# and a mistyped option should be refused at once.

FEATURES = ("log_depth", "log_width", "log_side")
FORMS = ("means", "linear", "quadratic", "mixed")
LEVEL = 0.95
MIN_SPREAD = 0.15  # a feature direction thinner than this fraction of the widest is not fitted
DRAWS = 4000
RATIO_GRID = 32  # points of the τ²/σ² posterior the mixed fit's draws spread over
TAIL = 1e-3  # posterior mass of the least likely grid points left out (each point costs a GLS fit)


def t_quantile(dof: float, level: float = LEVEL) -> float:
    """Two-sided Student-t quantile (the normal one without degrees of freedom)."""
    from scipy import stats

    q = 0.5 + level / 2
    return float(stats.t.ppf(q, dof)) if dof and math.isfinite(dof) else float(stats.norm.ppf(q))


@dataclass(frozen=True)
class Surface:
    """A fitted score surface over the trained networks.

    `table` (index: network key, best first) holds ``fit`` (fitted score), ``se`` (its standard
    error: the spread of its draws), ``p_best``, ``in_set``, ``seeds`` and ``mean`` (the network's
    seed-adjusted mean).
    """

    table: pd.DataFrame
    form: str  # what was fitted: "mixed", "linear", "quadratic" or "means"
    sigma: float  # one observation's noise (standard deviation)
    tau: float  # networks' spread around the surface (0: the surface taken as it is, or unknown)
    dof: int  # residual degrees of freedom
    slopes: dict[str, float]  # d score / d feature of the linear part
    gap_sd: float  # standard deviation of (leader − runner-up) over the draws
    lack_of_fit: float = math.nan  # p-value of the linear surface against per-network means (nan: no replicates)
    differ: float = math.nan  # p-value of "the networks differ at all", against seeds alone (nan: not testable)

    @property
    def leader(self):
        return self.table.index[0]

    @property
    def confidence_set(self) -> list:
        return list(self.table.index[self.table["in_set"]])

    def seeds_to_resolve(self) -> float | None:
        """Seeds for the leader and the runner-up at which the leader's lead would clear the one-sided 95%
        bound, if its standard error shrinks as one over the root of their seeds (None with one network)."""
        from scipy import stats

        if len(self.table) < 2 or not self.gap_sd > 0:
            return None
        gap = self.table["fit"].iloc[0] - self.table["fit"].iloc[1]
        if not gap > 0:
            return math.inf
        now = float(self.table["seeds"].iloc[:2].mean())  # the two it would separate
        return math.ceil(now * (stats.norm.ppf(LEVEL) * self.gap_sd / gap) ** 2)


def fit(obs: pd.DataFrame, form: str = "linear", draws: int = DRAWS, seed: int = 0) -> Surface:
    """Fit rows of (key, seed, score, *FEATURES) and rank the networks.

    ``form``: "linear" (the default), "mixed" (linear surface + each network's random departure),
    "quadratic" (a second-order surface in the two main directions of the
    features) or "means" (each network on its own: the per-candidate statistics this replaced).
    """
    obs = obs.dropna(subset=["score"]).reset_index(drop=True)
    nets = obs.groupby("key", sort=False)[list(FEATURES)].first()
    counts = obs.groupby("key", sort=False)["seed"].nunique().reindex(nets.index)
    seeds = sorted(obs["seed"].unique())
    form = _feasible_form(form, len(nets), counts)
    X, P = _designs(obs, nets, seeds, form)
    y = obs["score"].to_numpy(float)
    beta, cov, sigma2, tau2, dof, model = _estimate(y, X, obs["key"].to_numpy(), form)
    lack, differ = _f_tests(obs, nets, seeds)
    rng = np.random.default_rng(seed)
    if form == "mixed":  # τ² and σ² are uncertain too: draw over their posterior
        ratios, weights = _ratio_posterior(model, counts)
        Z = (obs["key"].to_numpy()[:, None] == nets.index.to_numpy()[None, :]).astype(float)
        parts = [(w, *_draws(y, X, P, Z, counts, r, n, rng))
                 for r, w, n in zip(ratios, weights, rng.multinomial(draws, weights))]
        sample = np.vstack([d for _, d, _ in parts])
        fitted = sum(w * mean for w, _, mean in parts)  # the posterior mean, exactly: the grid's weights, not the draws'
        se = sample.std(axis=0)
    else:
        fitted, se = P @ beta, np.sqrt(np.einsum("ij,jk,ik->i", P, cov, P))
        sample = rng.multivariate_normal(beta, cov, size=draws, method="eigh") @ P.T
    table = pd.DataFrame({"fit": fitted, "se": se, "seeds": counts.to_numpy(), "mean": _cell_means(obs, nets.index)},
                         index=nets.index)
    # Without a noise estimate nothing can be excluded: every network stays in the set, with no P(best).
    informed = dof > 0
    table["p_best"] = np.bincount(sample.argmax(axis=1), minlength=len(nets)) / len(sample) if informed else np.nan
    if not informed:
        table["se"] = np.nan
    order = table["fit"].sort_values(ascending=False, kind="stable").index
    table, sample = table.loc[order], sample[:, [nets.index.get_loc(k) for k in order]]
    table["in_set"] = _set(table["p_best"]) if informed else True
    gap_sd = float(np.std(sample[:, 0] - sample[:, 1])) if len(order) > 1 else math.nan
    slopes = _slopes(beta[len(seeds):], nets) if form in ("linear", "mixed") else {}
    return Surface(table, form, math.sqrt(sigma2), math.sqrt(max(tau2, 0.0)), dof, slopes, gap_sd, lack, differ)


def _f_tests(obs: pd.DataFrame, nets: pd.DataFrame, seeds: list) -> tuple[float, float]:
    """(lack of fit, networks differ): p-values of F-tests between nested least-squares fits (statsmodels),
    seed effects in every fit; nan where a test cannot be made (too few networks, or no residual freedom).

    Lack of fit: one mean per network against the linear surface. Networks differ: the linear surface and
    one mean per network, each against seeds alone; the smaller p, doubled (Bonferroni), since either
    kind of difference counts and the surface's test is the stronger where the scores tilt smoothly.
    """
    import statsmodels.api as sm

    y = obs["score"].to_numpy(float)
    X_means, X_linear = (_designs(obs, nets, seeds, form)[0] for form in ("means", "linear"))
    # The designs open with the intercept and the seed contrasts: their first len(seeds) columns are seeds alone.
    full, linear, seeds_only = (sm.OLS(y, X).fit() for X in (X_means, X_linear, X_linear[:, :len(seeds)]))
    test = lambda big, small: (float(big.compare_f_test(small)[1])
                               if big.df_resid >= 1 and big.df_model > small.df_model else math.nan)
    lack = test(full, linear) if len(nets) >= len(FEATURES) + 3 else math.nan
    differ = [p for p in (test(linear, seeds_only), test(full, seeds_only)) if not math.isnan(p)]
    return lack, min(1.0, 2 * min(differ)) if differ else math.nan


def _ratio_posterior(model, counts: pd.Series, size: int = RATIO_GRID) -> tuple[np.ndarray, np.ndarray]:
    """(τ²/σ² at `size` grid points, their posterior weights) from the fitted statsmodels MixedLM `model`.

    The REML log-likelihood with the fixed effects and σ² profiled out is, up to a constant, the log of
    the ratio's marginal posterior under flat priors on the fixed effects and on log σ². The prior on the
    ratio r is the uniform-shrinkage one: a network's shrinkage s = 1 / (1 + n₀·r) towards the surface is
    uniform on (0, 1) (n₀: the mean seeds per network), proper and uninformative about how far networks
    depart from the surface. The grid is the midpoints of s, so each point carries equal prior mass.
    """
    from statsmodels.regression.mixed_linear_model import MixedLMParams

    s = (np.arange(size) + 0.5) / size
    ratios = (1 / s - 1) / float(counts.mean())
    loglike = np.array([model.loglike(MixedLMParams.from_components(cov_re=np.array([[r]])), profile_fe=True)
                        for r in ratios])
    if not np.isfinite(loglike).any():  # no usable likelihood: the prior alone, every ratio alike
        return ratios, np.full(size, 1 / size)
    weights = np.exp(np.where(np.isfinite(loglike), loglike - loglike[np.isfinite(loglike)].max(), -np.inf))
    order = np.argsort(weights)[::-1]
    kept = order[: np.searchsorted(np.cumsum(weights[order]) / weights.sum(), 1 - TAIL) + 1]
    return ratios[kept], weights[kept] / weights[kept].sum()


def _draws(y, X, P, Z, counts: pd.Series, ratio: float, size: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(`size` draws of every network's score, their mean) from the surface + departures given τ²/σ² = `ratio`.

    The surface by generalised least squares (statsmodels GLS, covariance V = I + ratio·ZZ' in units of σ²);
    σ² from its scaled inverse-χ² posterior (the GLS residuals' sum of squares over a χ² with their degrees of
    freedom); then the coefficients and each network's departure jointly normal given σ²: a departure's
    conditional mean follows the drawn surface, its variance is σ² / (1/ratio + seeds)."""
    import statsmodels.api as sm

    gls = sm.GLS(y, X, sigma=np.eye(len(y)) + ratio * Z @ Z.T).fit()
    beta, cov = np.asarray(gls.params), _finite(gls.normalized_cov_params)
    precision = 1 / ratio + counts.to_numpy(float)  # of a departure given the surface, in units of 1/σ²
    shrink = lambda resid: resid.T @ Z / precision  # a departure's conditional mean: its residuals' sum, shrunk
    mean = P @ beta + shrink(y - X @ beta)
    if not size:
        return np.empty((0, len(mean))), mean
    sigma2 = gls.ssr / rng.chisquare(gls.df_resid, size) if gls.df_resid > 0 else np.full(size, gls.scale)
    scale = np.sqrt(sigma2)[:, None]
    coefs = beta + scale * rng.multivariate_normal(np.zeros(len(beta)), cov, size=size, method="eigh")
    departures = shrink(y[:, None] - X @ coefs.T)
    return coefs @ P.T + departures + scale / np.sqrt(precision) * rng.standard_normal((size, len(mean))), mean


def _slopes(coef: np.ndarray, nets: pd.DataFrame) -> dict[str, float]:
    """The linear surface's gradient in the features (along the directions the networks span)."""
    _, directions = _directions(nets)
    return dict(zip(FEATURES, map(float, coef[: len(directions)] @ directions)))


def _feasible_form(form: str, networks: int, counts: pd.Series) -> str:
    """The asked form, or the closest one the data can fit: a surface needs more networks than
    coefficients, and the split into τ² and noise needs some network on two seeds."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    if form == "quadratic" and networks < 9:
        form = "linear"
    if form in ("linear", "mixed") and networks < len(FEATURES) + 3:
        form = "means"
    if form == "mixed" and counts.max() < 2:
        form = "linear"
    return form


def _designs(obs: pd.DataFrame, nets: pd.DataFrame, seeds: list, form: str) -> tuple[np.ndarray, np.ndarray]:
    """(observation design, prediction design per network): intercept, seed contrasts, surface terms.

    A prediction averages the seed effects, so fitted scores sit at a typical seed's level.
    """
    seed_cols = np.array([[float(s == level) for level in seeds[1:]] for s in obs["seed"]]).reshape(len(obs), -1)
    terms = _terms(nets, form)
    rows = terms.loc[obs["key"]].to_numpy()
    X = np.hstack([np.ones((len(obs), 1)), seed_cols, rows])
    P = np.hstack([np.ones((len(nets), 1)), np.full((len(nets), len(seeds) - 1), 1 / len(seeds)), terms.to_numpy()])
    return X, P


def _terms(nets: pd.DataFrame, form: str) -> pd.DataFrame:
    if form == "means":
        return pd.get_dummies(pd.Series(nets.index, index=nets.index), dtype=float).iloc[:, 1:]
    z, _ = _directions(nets)
    if form == "quadratic" and z.shape[1] >= 2:  # curvature along the surface's two main directions
        z = np.column_stack([z, z[:, 0] ** 2, z[:, 1] ** 2, z[:, 0] * z[:, 1]])
    return pd.DataFrame(z, index=nets.index)


def _directions(nets: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(each network's coordinates along the features' independent directions, those directions).

    Equal cost ties depth, width and side together, so the three features span about two
    directions; a third, thin one (the few percent by which costs differ within the tolerance, or
    rounding) would let noise bend the fit at the extremes, so directions thinner than
    MIN_SPREAD of the widest are left out.
    """
    x = nets[list(FEATURES)].astype(float).to_numpy()
    _, sv, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    keep = vt[sv > MIN_SPREAD * max(sv.max(initial=0.0), 1e-12)]
    return (x - x.mean(axis=0)) @ keep.T, keep


def _estimate(y, X, groups, form) -> tuple[np.ndarray, np.ndarray | None, float, float, int, object]:
    """(coefficients, their covariance, noise variance, τ², dof, the fitted statsmodels MixedLM): the point
    estimates, by least squares or REML. The least-squares forms give no model; the mixed form no covariance,
    since its draws (:func:`_draws`) carry the coefficients' uncertainty over τ²'s posterior."""
    import statsmodels.api as sm
    from statsmodels.regression.mixed_linear_model import MixedLM

    ols = sm.OLS(y, X).fit()
    dof = int(ols.df_resid)
    if form != "mixed":
        sigma2 = float(ols.scale) if dof > 0 else math.nan
        cov = ols.cov_params() if dof > 0 else np.diag(np.full(X.shape[1], np.inf))
        return ols.params, _finite(cov), sigma2, 0.0, dof, None
    sd = float(np.std(y)) or 1.0  # the optimiser works on unit scale; scores may be hundredths apart
    with warnings.catch_warnings():  # a τ² on the boundary (0) is a valid answer, not a failure
        warnings.simplefilter("ignore")
        m = MixedLM(y / sd, X, groups=groups).fit(reml=True, method=["powell", "nm"])
    tau2 = float(np.asarray(m.cov_re)[0, 0]) * sd**2
    return np.asarray(m.fe_params) * sd, None, float(m.scale) * sd**2, tau2, dof, m.model


def _finite(cov: np.ndarray) -> np.ndarray:
    """A covariance with no usable information becomes a very wide one, so draws stay finite."""
    cov = np.asarray(cov, float)
    return np.where(np.isfinite(cov), cov, 0.0) + np.diag(np.where(np.isfinite(np.diag(cov)), 0.0, 1e6))


def _cell_means(obs: pd.DataFrame, keys: pd.Index) -> np.ndarray:
    """Each network's mean score with the seed effects taken out (a two-way least-squares fit)."""
    import statsmodels.api as sm

    if obs["seed"].nunique() < 2:
        return obs.groupby("key")["score"].mean().reindex(keys).to_numpy()
    X, P = _designs(obs, obs.groupby("key", sort=False)[list(FEATURES)].first().reindex(keys), sorted(obs["seed"].unique()), "means")
    return P @ sm.OLS(obs["score"].to_numpy(float), X).fit().params


def _set(p_best: pd.Series) -> np.ndarray:
    """The fewest networks, most probable first, that hold LEVEL of the probability of being best;
    the leader (first row) always belongs to it."""
    order = p_best.sort_values(ascending=False, kind="stable")
    before = order.cumsum() - order
    keep = set(order.index[(before < LEVEL) & (order > 0)]) | {p_best.index[0]}
    return np.array([k in keep for k in p_best.index])


def paired_means(obs: pd.DataFrame) -> tuple[pd.Series, float, int]:
    """(seed-adjusted mean per key, best first; noise standard deviation; its degrees of freedom).

    The two-way fit ``score = mean[key] + seed[s] + noise`` by least squares (statsmodels), for
    comparisons among a few networks such as twins at φ = 2.
    """
    import statsmodels.api as sm

    keys = pd.Index(obs["key"].unique())
    seeds = sorted(obs["seed"].unique())
    dummies = pd.get_dummies(obs["key"], dtype=float).reindex(columns=keys).to_numpy()
    seed_cols = np.array([[float(s == level) for level in seeds[1:]] for s in obs["seed"]]).reshape(len(obs), -1)
    res = sm.OLS(obs["score"].to_numpy(float), np.hstack([dummies, seed_cols])).fit()
    means = pd.Series(res.params[: len(keys)] + res.params[len(keys):].sum() / len(seeds), index=keys)
    dof = int(res.df_resid)
    return means.sort_values(ascending=False, kind="stable"), (math.sqrt(res.scale) if dof > 0 else math.nan), dof
