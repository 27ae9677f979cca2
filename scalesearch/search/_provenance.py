"""Whether a study's trials mean what a new run asks for.

`scalesearch run` records its resolved configuration in the study
(``user_attrs["config"]``, see :meth:`scalesearch.search.Plan.config`) and compares it here. Running
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
from typing import Any

import optuna

from ..errors import ScaleSearchError

# Top-level entries that are no setting of the trials: raw options (their resolved values are compared
# instead), provenance, and counts derived from the compared settings.
IGNORED_SECTIONS = {"scalesearch_version", "created", "options", "grid"}
# Per section: names, paths and spec strings (the resolved values are compared), and how much to add.
# proxy.train / proxy.val are what was asked for; data.train / data.val, the images the trials used, are compared.
IGNORED_KEYS = {"space": {"name", "path", "sampler", "trials", "time"}, "proxy": {"seeds", "max_seeds", "train", "val"},
                "data": {"spec"},
                # A comparison may grow (more φ, families, the interaction): its trials are members by their multipliers.
                "compare": {"phi", "families", "interaction", "members", "source"},
                # A latency measurement is compared by its conditions and pre-filter band (another device or torch
                # means other latencies); its figures vary from run to run and a resume reads them from the cache.
                "latency": {"base_seconds", "base_medians", "agreement", "cv", "points", "kept", "networks", "measured",
                            "time_s", "near_edge", "unsettled", "base", "measured_points", "near_edge_points"}}
# Settings added after studies were first recorded: what a recorded configuration without them meant.
ADDED_LATER = {"proxy.lr_scaling": "none"}
OUTPUTS = ("trials.csv", "ranking.csv", "coefficients.json", "coefficients.yaml", "coefficients.toml", "coefficients.py")


def check(study: optuna.Study, config: dict[str, Any], where: str) -> None:
    """Refuse to reuse `study` (named in words by `where`) for a run of `config` when its recorded settings differ."""
    recorded = study.user_attrs.get("config")
    if not recorded:
        return
    diffs = differences(recorded, config)
    if diffs:
        trials = len(study.get_trials(deepcopy=False))
        raise ScaleSearchError(
            f"{where} was run with other settings: {'; '.join(diffs)}. "
            f"Its {trials} trials would not mean what this run asks for: run the same settings to resume it, give "
            f"another study name with --study NAME, or add --restart to delete it and start again")


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """'section.key old → new' for every compared setting present in both configurations."""
    old, new = ADDED_LATER | _flatten(recorded), _flatten(json.loads(json.dumps(current)))  # JSON, as the study stores it
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
