"""Which score model predicts held-out seeds best, and how much signal one proxy run carries.

The default search's every network is trained on SEEDS paired seeds (no racing, no time budget).
Then, for each held-out seed and each way of fitting the others (all other seeds, or one other
seed, as a run's first round has), every model form of :mod:`scalesearch.stats` (and a Gaussian
process from scikit-learn) predicts the held-out seed's scores. Scores are compared after taking out
the held-out seed's mean (a seed moves every network alike): mean squared error, and Kendall's τ-b
between predicted and observed. Lower error is better; the floor is the held-out seed's own noise.

The signal table: the variance of the networks' true scores (the mixed model's surface plus
each network's departure, fitted on all seeds) over one observation's noise variance, and per
CPU-second of one proxy run.

    .venv/bin/python -m benchmarks --only surface [--quick]

The trained study stays in ``bench-results/surface-*/`` under the working directory, so the
same command resumes it instead of training again.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

import optuna

from scalesearch.stats import _race as race
from scalesearch.results import _ranking as results
from scalesearch import search
from scalesearch.stats import _surface as surface
from scalesearch.space import load_space

from .common import console, section, table

SEEDS = 4
optuna.logging.set_verbosity(optuna.logging.WARNING)
FIRST_SEED = 100  # apart from the seeds the calibration and the default use


def collect(folder: Path, quick: bool, device: str, seeds: int = SEEDS, first: int = FIRST_SEED) -> pd.DataFrame:
    """The trials of the default grid with every network on `seeds` paired seeds (resumed when present)."""
    text = Path(load_space("default").path).read_text().replace("\nseed = 0", f"\nseed = {first}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "space.toml"
    path.write_text(text)
    options = search.RunOptions(base="tiny-mbconv" if quick else "b0", space=str(path), device=device,
                                data="synthetic:512" if quick else "embedded", results_dir=str(folder), seeds=seeds,
                                max_seeds=seeds, time="none", study=f"surface-{seeds}seeds",
                                **({"train": 256, "val": 128, "epochs": 1} if quick else {}))
    _, study = search.execute(options)
    return results.trials_frame(study)


def _gp_predict(train: pd.DataFrame) -> pd.Series:
    """A Gaussian process over the features, on the scores with the seed effects taken out."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    seed_mean = train.groupby("seed")["score"].transform("mean")
    y = (train["score"] - seed_mean).to_numpy()
    x = train[list(surface.FEATURES)].to_numpy(float)
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-12
    kernel = ConstantKernel() * RBF(length_scale=np.ones(x.shape[1])) + WhiteKernel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=2, random_state=0).fit((x - mu) / sd, y)
    nets = train.groupby("key")[list(surface.FEATURES)].first()
    return pd.Series(gp.predict((nets.to_numpy(float) - mu) / sd), index=nets.index)


def predictions(train: pd.DataFrame, form: str) -> pd.Series:
    if form == "gp":
        return _gp_predict(train)
    return surface.fit(train, form=form, draws=2).table["fit"]


def cross_validate(obs: pd.DataFrame, forms: list[str]) -> pd.DataFrame:
    """Per form and training size: mean squared error and τ-b against every held-out seed."""
    seeds = sorted(obs["seed"].unique())
    rows = []
    for held in seeds:
        test = obs[obs["seed"] == held].set_index("key")["score"]
        others = [s for s in seeds if s != held]
        for label, train_seeds in [("all others", others)] + [("one other", [s]) for s in others]:
            train = obs[obs["seed"].isin(train_seeds)]
            for form in forms:
                pred = predictions(train, form).reindex(test.index)
                err = (pred - pred.mean()) - (test - test.mean())
                tau = stats.kendalltau(pred, test).statistic
                rows.append({"form": form, "train": label, "held": held, "mse": float((err**2).mean()), "tau": tau})
    return pd.DataFrame(rows)


def signal(obs: pd.DataFrame, trials: pd.DataFrame) -> list:
    """Variance of the networks' fitted true scores over one observation's noise variance, and per CPU-second."""
    s = surface.fit(obs, form="mixed")
    true_var = float(np.var(s.table["fit"], ddof=1))
    snr = true_var / s.sigma**2
    trained = trials[(trials["state"] == "COMPLETE") & (trials["seconds"] > 0)]
    per_run = float(trained["seconds"].mean())
    return [f"{s.sigma:.4f}", f"{s.tau:.4f}", f"{np.sqrt(true_var):.4f}", f"{snr:.2f}", f"{per_run:.1f}",
            f"{snr / per_run:.4f}", f"{len(s.table)}", f"{int(obs['seed'].nunique())}"]


def analyse(trials: pd.DataFrame) -> str:
    obs = race.observations(trials, 1)
    forms = list(surface.FORMS) + ["gp"]
    cv = cross_validate(obs, forms)
    floor = float(np.mean([obs[obs["seed"] == s]["score"].var() for s in obs["seed"].unique()]))
    rows = []
    for (label, form), g in cv.groupby(["train", "form"], sort=False):
        rows.append([label, form, f"{1e4 * g['mse'].mean():.2f}", f"{1e4 * g['mse'].std(ddof=1):.2f}",
                     f"{g['tau'].mean():+.2f}", f"{g['tau'].min():+.2f} … {g['tau'].max():+.2f}", len(g)])
    body = table(["fitted on", "model", "held-out MSE (1e-4 loss²)", "± std", "mean τ-b", "τ-b range", "folds"], rows)
    body += (f"\n\nA held-out seed's own scores vary by {1e4 * floor:.2f}e-4 loss² around their mean: "
             "a model that predicted nothing would score about that.\n\n")
    body += table(["noise σ (loss)", "networks' departure τ (loss)", "true-score spread (loss)", "signal / noise",
                   "s per proxy run", "signal / noise per CPU-s", "networks", "seeds"], [signal(obs, trials)])
    return body


def run(quick: bool = False, device: str = "cpu") -> str:
    folder = Path("bench-results") / ("surface-quick" if quick else "surface")
    console.log(f"training the default grid on {SEEDS} paired seeds in {folder}/ (resumes)")
    trials = collect(folder, quick, device)
    return section("Score models: held-out seeds" + (" (quick: tiny base, synthetic data)" if quick else ""), device,
                   analyse(trials))


__all__ = ["run", "collect", "analyse", "cross_validate"]
