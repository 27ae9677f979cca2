"""A comparison from start to results: :func:`compare`, the Python form of ``scalesearch compare``.

It runs as a search does (:func:`scalesearch.search.train_rounds`): the study is created or resumed,
the first round trains every member once, and each later round, priced at this host's measured pace
within the time budget, trains where it helps: a second seed for every member (the first interval),
then another paired seed for the single-dimension member and the compound member of every comparison
that is not resolved (or resolved on fewer than 3 pairs), fewest pairs first, up to ``max_seeds``.
A resolved comparison gets no more seeds, so its interval was looked at before the run stopped: with
several looks a 95% interval errs more often than 5%, and a verdict near its edge is provisional. The end writes ``comparison.csv``,
``comparison.json`` and the figures together, and records the document in the study (and in the
search study it sits beside), where ``scalesearch export``, ``plot`` and ``show`` read it.

>>> import scalesearch
>>> r = scalesearch.compare("tiny-mbconv", 1.2, 1.1, 1.15, phi=1, data="synthetic:256", epochs=1, train=128,
...                         val=64, time="none", max_seeds=2, results_dir="/tmp/scalesearch-doctest", restart=True)
>>> list(r.table["family"].unique()), sorted(set(r.table["n_seeds"]))
(['compound', 'width', 'depth', 'resolution'], [2])
"""
from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from .._version import __version__
from ..errors import ScaleSearchError
from ..data._load import Dataset
from ..limits import check_phi
from ..results._ranking import trials_frame, score_kind
from ..search import _pool as pool
from ..search._driver import Rounds, pool_announcer, train_rounds
from ..search._plan import Plan, seed_list
from ..search._progress import Progress
from ..search._queue import enqueue, priced
from ..search._schedule import TimeBudget
from ..search._storage import open_storage, redact
from ..space._candidates import Candidate
from ..space._families import SINGLE, check_families
from ..stats._surface import LEVEL
from . import _plan as planning
from ._plan import ComparisonPlan, Settings
from ._stats import of, paired, scores
from ._table import UNITS, curves, rows, saturation, score_unit, verdict_lines

FORMAT = "scalesearch-comparison"
OUTPUTS = ("comparison.csv", "comparison.json", "comparison.png", "comparison.svg", "comparison_interaction.png",
           "comparison_interaction.svg")


@dataclass
class ComparisonResult:
    """A finished comparison: its table (comparison.csv), the interaction's curves and the document (comparison.json)."""

    plan: ComparisonPlan
    study: optuna.Study
    table: pd.DataFrame
    curves: pd.DataFrame | None
    document: dict[str, Any]

    @property
    def verdicts(self) -> dict[str, str]:
        """One line per single-dimension family: its verdict at each φ."""
        return self.document["verdicts"]

    @property
    def folder(self) -> Path:
        return self.plan.results_dir


def compare(base: str | None = None, alpha: float | None = None, beta: float | None = None, gamma: float | None = None,
            *, study: str | None = None, coefficients: str | None = None, phi: int = 2,
            families: str | tuple[str, ...] = SINGLE, interaction: bool = False, progress: Progress | None = None,
            restart: bool = False, workers: int | None = None, devices: str | None = None, **options: Any) -> ComparisonResult:
    """Train compound scaling against each dimension alone at equal measured MACs per φ, and compare them.

    The coefficients are `alpha`, `beta`, `gamma` on `base` (default b0), a search `study`'s winner, or an
    exported `coefficients` file. `workers` > 1 or `devices` trains in that many processes on this machine, and
    None one per core on the CPU, as :func:`scalesearch.run` does. `options` are the run's (``data``, ``device``, ``time``, ``epochs``,
    ``seeds``, ``max_seeds``, ``storage``, ``results_dir`` …; see :class:`~scalesearch.search.RunOptions`).
    Raises :class:`~scalesearch.errors.ScaleSearchError` for anything the user can fix, before anything is written.
    """
    started = time.monotonic()  # the time budget counts from here
    if isinstance(phi, bool) or not isinstance(phi, int):
        raise ScaleSearchError(f"--phi must be a whole number (the largest φ), got {phi!r}")
    settings = {"phi": int(check_phi(phi)), "families": check_families(families), "interaction": bool(interaction)}
    run_options, chosen = planning.resolve(options, base, alpha, beta, gamma, study, coefficients, **settings)
    workers = pool.worker_count(workers, devices, run_options.device, isinstance(run_options.data, Dataset))
    layout = None if workers == 1 and devices is None else pool.slots(workers, devices, run_options.device)
    progress = progress or Progress()
    if restart:
        plan = planning.prepare(run_options, chosen)
        progress.note(planning.restart(plan, OUTPUTS))
        _record_beside(plan, None)
    first = functools.partial(begin, run_options, chosen)
    if layout is None:
        plan, st = train_rounds(first, ROUNDS, progress, started)
    else:
        plan, st = pool.run(first, ROUNDS.next, layout, progress, started, pool_announcer(ROUNDS, progress, layout[0].threads))
    return finish(plan, st)


def begin(options: planning.RunOptions, settings: Settings, progress: Progress) -> tuple[Plan, optuna.Study]:
    """Prepare, create or resume the comparison's study and queue its first round: every network once."""
    plan = planning.prepare(options, settings)
    study = planning.open_comparison(plan)
    enqueue(plan, study, [a.candidate for a in plan.report.feasible], phi=1)
    return plan, study


def next_round(plan: Plan, study: optuna.Study, progress: Progress, budget: TimeBudget) -> int:
    """Queue the next round (see the module's docstring) as far as the time budget allows; returns how many trials."""
    assert isinstance(plan, ComparisonPlan)
    trials = trials_frame(study)
    table = scores(trials)
    keys = [a.candidate.key for a in plan.report.feasible]
    done = {key: set(of(table, key).index) for key in keys}  # seeds with a score
    tried = _tried(trials, keys)  # seeds queued, trained or failed
    pending = _tried(trials[trials["state"].isin(("WAITING", "RUNNING"))], keys)  # still to come: planned already
    most = plan.space.proxy.max_seeds  # a member that fails with every seed is not tried for ever
    todo = [(key, _fresh(plan, tried[key])) for key in keys
            if len(done[key] | pending[key]) < min(2, most) and len(tried[key]) < most]
    name = "a second seed for every network (the first intervals)"
    if not todo:
        progress.note(standing(plan, table))
        pairs = [(s, r) for s, r in _open(plan, table, done) if not pending[s] | pending[r]]  # else: wait for it
        todo = [(key, _pair_seed(plan, s, r, done, tried)) for s, r in pairs for key in (s, r)]
        name = f"another paired seed for the {len(pairs)} comparisons not settled"
    todo = [(*key, seed, 1) for key, seed in dict.fromkeys(todo) if seed not in tried[key]]
    if budget.limited:
        todo = budget.take(priced(plan, study, budget, todo))
    added = sum(enqueue(plan, study, [Candidate(a, b, g)], phi=1, seeds=[seed]) for a, b, g, seed, _ in todo)
    if added:
        progress.round(name, added)
    return added


def _tried(trials: pd.DataFrame, keys: list[tuple]) -> dict[tuple, set[int]]:
    tried: dict[tuple, set[int]] = {key: set() for key in keys}
    for a, b, g, seed in zip(trials["alpha"], trials["beta"], trials["gamma"], trials["seed"]):
        tried.setdefault((round(a, 4), round(b, 4), round(g, 4)), set()).add(int(seed))
    return tried


def _fresh(plan: Plan, used: set[int]) -> int:
    """The first of the paired seeds (from the space's `seed` on) not in `used`."""
    return next(s for s in itertools.count(seed_list(plan.space, 1)[0]) if s not in used)


def _pair_seed(plan: Plan, single: tuple, ref: tuple, done: dict, tried: dict) -> int:
    """The seed that adds a pair: one the other member already has a score for, else a fresh one for both."""
    reuse = sorted((done[single] - tried[ref]) | (done[ref] - tried[single]))
    return reuse[0] if reuse else _fresh(plan, tried[single] | tried[ref])


ROUNDS = Rounds(next_round, "the comparisons not yet resolved",
                "every comparison is resolved (on at least 3 pairs) or has max_seeds paired seeds")
MIN_PAIRS = 3  # a comparison resolved on fewer paired seeds gets more


def _open(plan: ComparisonPlan, table: pd.DataFrame, seeds: dict) -> list[tuple[tuple, tuple]]:
    """(single member's key, compound member's key) of each comparison not settled that may take another seed, fewest
    pairs first: not resolved, or resolved on fewer than MIN_PAIRS pairs (one degree of freedom is a thin verdict)."""
    ref = {m.phi: m.candidate.key for m in plan.members if m.family == "compound"}
    pairs = [(m.candidate.key, ref[m.phi]) for m in plan.members if m.family != "compound"]
    open_ = [(len(seeds[s] & seeds[r]), s, r) for s, r in pairs
             if (paired(of(table, s), of(table, r)).verdict == "not resolved" or len(seeds[s] & seeds[r]) < MIN_PAIRS)
             and len(seeds[s] & seeds[r]) < plan.space.proxy.max_seeds]
    return [(s, r) for _, s, r in sorted(open_, key=lambda x: x[0])]


def standing(plan: ComparisonPlan, table: pd.DataFrame) -> str:
    """The verdicts so far, in one line."""
    ref = {m.phi: m.candidate.key for m in plan.members if m.family == "compound"}
    parts = [f"{m.family} φ = {m.phi}: {paired(of(table, m.candidate.key), of(table, ref[m.phi])).verdict}"
             for m in plan.members if m.family != "compound"]
    return "standing: " + "; ".join(parts)


def finish(plan: ComparisonPlan, study: optuna.Study) -> ComparisonResult:
    """comparison.csv, comparison.json and the figures, written together; the document recorded in the study."""
    table = scores(trials_frame(study))
    if table.empty:
        raise ScaleSearchError(f"no member of comparison {study.study_name!r} completed; see scalesearch show --all "
                               f"{plan.results_dir}")
    main = rows(plan.members, plan.proxy, table, plan.space.tolerance)
    extra = curves(plan.curves, plan.proxy, table) if plan.curves else None
    doc = document(plan, study, main, extra, saturation(plan.curves, table) if plan.curves else [])
    from ..results.plots import save  # matplotlib loads when there is something to draw
    from ._plots import figures

    save(figures(doc), plan.results_dir, {"comparison.csv": main.to_csv(index=False), "comparison.json": json_text(doc)})
    study.set_user_attr("comparison", doc)
    _record_beside(plan, doc)
    return ComparisonResult(plan, study, main, extra, doc)


def _record_beside(plan: ComparisonPlan, doc: dict[str, Any] | None) -> None:
    """The search study a comparison sits beside carries its document (None clears it), for export and plot."""
    if plan.settings.beside:
        storage = open_storage(plan.storage_url, "write")
        optuna.load_study(study_name=plan.settings.beside, storage=storage).set_user_attr("comparison", doc)


def document(plan: ComparisonPlan, study: optuna.Study, main: pd.DataFrame, extra: pd.DataFrame | None,
             saturated: list[dict[str, Any]]) -> dict[str, Any]:
    """comparison.json: the settings, every row, the verdicts, the interaction and the provenance."""
    s, kind = plan.settings, score_kind(study)
    config = study.user_attrs.get("config") or plan.config()
    return _plain({
        "format": FORMAT, "study": study.study_name, "beside": s.beside, "base": plan.base.name,
        "alpha": s.alpha, "beta": s.beta, "gamma": s.gamma, "source": s.source, "phi_max": s.phi,
        "families": list(s.families), "constraint": "measured", "tolerance": plan.space.tolerance,
        "flagged": int(main["flagged"].sum()), "level": LEVEL,
        "score": {"kind": kind, "unit": score_unit(kind), "difference_unit": score_unit(kind, True)},
        "proxy": {"side": plan.design.side, "auto": plan.design.auto, "width": plan.design.width,
                  "deviation": plan.design.deviation, "epochs": plan.space.proxy.epochs,
                  "train": min(plan.space.proxy.train, len(plan.data.train_y)), "val": len(plan.data.val_y),
                  "device_kind": plan.options.proxy_for},
        "verdicts": verdict_lines(main, kind), "rows": main.to_dict("records"),
        "interaction": None if extra is None else {"rows": extra.to_dict("records"), "saturation": saturated},
        "units": UNITS | {"interaction.gain": "paired score gain of a width step over the one before, same unit",
                          "interaction.saturation.extra_gain": "the last width step's gain from that setting minus "
                                                               "from the base's own (depth ×1, side ×1), paired"},
        "provenance": {"study": study.study_name, "storage": redact(plan.storage_url), "scalesearch_version": __version__,
                       "written": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **config},
    })


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python numbers, NaN and infinity as null."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
