"""Whether a study's trials mean what a new run asks for.

`scalesearch run` records its resolved configuration in the study
(``user_attrs["config"]``, see :meth:`scalesearch.search.Plan.config`). Running
again resumes the study, which is only right when every setting that decides
what a trial measured is the same: the base, the data, the proxy training, the
budget, tolerance, constraint, pruner and ranges. A run that differs is refused
with the settings that differ and the two ways on: another study name, or
``--restart`` to delete the old study first.

Settings that only say where or how fast trials run (storage, results folder,
device, compile, workers, the study name, the time it was made) and how many
trials or seeds to add (sampler trials, seeds) may change between runs.

>>> differences({"proxy": {"epochs": 1, "lr": 0.004}, "created": "a"}, {"proxy": {"epochs": 2, "lr": 0.004}, "created": "b"})
['proxy.epochs 1 → 2']
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from .errors import ScaleSearchError
from .storage import open_storage, redact

if TYPE_CHECKING:
    from .search import Plan, RunOptions

log = logging.getLogger(__name__)

# Top-level entries that are no setting of the trials: raw options (their resolved values are compared
# instead), provenance, and counts derived from the compared settings.
IGNORED_SECTIONS = {"scalesearch_version", "created", "options", "grid"}
# Per section: names, paths and spec strings (the resolved values are compared), and how much to add.
# proxy.train / proxy.val are what was asked for; data.train / data.val, the images the trials used, are compared.
IGNORED_KEYS = {"space": {"name", "path", "sampler", "trials", "time"}, "proxy": {"seeds", "max_seeds", "train", "val"},
                "data": {"spec"},
                # A latency measurement is compared by its conditions and pre-filter band (another device or torch
                # means other latencies); its figures vary from run to run and a resume reads them from the cache.
                "latency": {"base_seconds", "base_medians", "agreement", "cv", "points", "kept", "networks", "measured",
                            "time_s", "near_edge", "unsettled", "base", "measured_points", "near_edge_points"}}
OUTPUTS = ("trials.csv", "ranking.csv", "coefficients.json", "coefficients.yaml", "coefficients.toml", "coefficients.py")


def check(plan: Plan, study: optuna.Study) -> None:
    """Refuse to reuse `study` for `plan` when its recorded settings differ; say when the data is smaller than asked."""
    _say_if_data_is_short(plan)
    recorded = study.user_attrs.get("config")
    if not recorded:
        return
    diffs = differences(recorded, plan.config())
    if diffs:
        trials = len(study.get_trials(deepcopy=False))
        raise ScaleSearchError(
            f"study {plan.study_name!r} in {redact(plan.storage_url)} was run with other settings: {'; '.join(diffs)}. "
            f"Its {trials} trials would not mean what this run asks for: run the same settings to resume it, give "
            f"another study name with --study NAME, or add --restart to delete it and start again")


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """'section.key old → new' for every compared setting present in both configurations."""
    old, new = _flatten(recorded), _flatten(json.loads(json.dumps(current)))  # JSON, as the study stores it
    return [f"{key} {_show(old[key])} → {_show(new[key])}" for key in new if key in old and old[key] != new[key]]


def _flatten(config: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section, values in config.items():
        if section in IGNORED_SECTIONS:
            continue
        if not isinstance(values, dict):
            flat[section] = values
            continue
        for key, value in values.items():
            if key in IGNORED_KEYS.get(section, ()):
                continue
            if isinstance(value, dict):  # ranges: space.alpha.min …
                flat.update({f"{section}.{key}.{k}": v for k, v in value.items()})
            else:
                flat[f"{section}.{key}"] = value
    return flat


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _say_if_data_is_short(plan: Plan) -> None:
    """--train or --val above what the data has: the proxies use all of it; say so rather than train on less unasked.

    (The space file's defaults are not reported: the run's data line shows how many images there are.)
    """
    o = plan.options
    for flag, asked, have, split in (("--train", o.train, len(plan.data.train_y), "train"),
                                     ("--val", o.val, len(plan.data.val_y), "val")):
        if asked is not None and have < asked:
            log.warning("%s %d: data %s has only %d %s images; using all %d", flag, asked, plan.data.name, have, split, have)


def restart(options: RunOptions) -> str:
    """Delete the study `options` would run in, and its output tables; returns what was deleted, in words."""
    from .search import prepare

    plan = prepare(options)
    url = plan.storage_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return f"--restart: no study {plan.study_name!r} yet in {redact(url)}"
    storage = open_storage(url)
    try:
        trials = len(optuna.load_study(study_name=plan.study_name, storage=storage).get_trials(deepcopy=False))
        optuna.delete_study(study_name=plan.study_name, storage=storage)
    except KeyError:
        return f"--restart: no study {plan.study_name!r} yet in {redact(url)}"
    for name in OUTPUTS:  # a new run that ends without a winner must not leave the old one's files standing
        try:
            (plan.results_dir / name).unlink(missing_ok=True)
        except OSError as exc:
            raise ScaleSearchError(f"--restart: cannot delete {plan.results_dir / name}: {exc.strerror}") from None
    return f"--restart: deleted study {plan.study_name!r} ({trials} trials) from {redact(url)}"
