"""The coefficient file: the winner, its family and where it came from, in a versioned schema.

The document is self-contained: it embeds the base network's block strings, so
:func:`scalesearch.load_family` can build any φ without the study or the base file.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from . import __version__
from .arch import BaseNetwork, encode_block
from .family import RESOLUTION_MULTIPLE, family_table
from .results import has_intervals, write_atomic

SCHEMA_VERSION = 1


def base_document(base: BaseNetwork) -> dict[str, Any]:
    return {"name": base.name, "resolution": base.resolution, "stem": base.stem, "head": base.head,
            "dropout": base.dropout, "width": base.width, "depth": base.depth,
            "blocks": [encode_block(s) for s in base.stages]}


def coefficients_document(study: optuna.Study, ranked: pd.DataFrame, base: BaseNetwork) -> dict[str, Any]:
    """The winner of `ranked` with its φ = 0 … 7 family and the study's provenance."""
    config = study.user_attrs.get("config", {})
    w = ranked.iloc[0]
    fam = family_table(base, float(w["alpha"]), float(w["beta"]), float(w["gamma"]))
    return {
        "schema_version": SCHEMA_VERSION,
        "alpha": float(w["alpha"]), "beta": float(w["beta"]), "gamma": float(w["gamma"]),
        "budget": config.get("space", {}).get("budget"),
        "constraint": config.get("space", {}).get("constraint"),
        "nominal": float(w["nominal"]),
        "measured_target": float(w["measured_target"]),
        "measured_proxy": float(w["measured_proxy"]),
        "proxy_val_top1": {"mean": float(w["acc_mean"]), "std": _num(w["acc_std"]), "ci95": _num(w["ci95"]),
                           "seeds": int(w["seeds"]), "interval_available": has_intervals(ranked),
                           "tied_candidates": int(ranked["tied"].sum()) - 1 if has_intervals(ranked) else None},
        "base": base_document(base),
        "resolution_multiple": RESOLUTION_MULTIPLE,
        "family": [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                   for row in fam[["phi", "width_mult", "depth_mult", "resolution", "dropout", "params", "gmacs"]].to_dict("records")],
        "units": {"params": "parameters at 1000 classes, 3 input channels", "gmacs": "10^9 multiply-adds (conv + linear)",
                  "resolution": "input side in px", "proxy_val_top1": "fraction of validation images"},
        "provenance": {"study": study.study_name, "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                       "scalesearch_version": __version__, **config},
    }


def _num(x: Any) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def write_json(doc: dict[str, Any], path: Path) -> None:
    write_atomic(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
