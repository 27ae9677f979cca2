"""The record of one trial: the fields a trial carries, written by the worker and read back as trials.csv.

One trial is one (candidate, seed, φ). Optuna stores the record as the trial's
user attributes; this module is the one place that names them, so the worker
that writes them, the tables that read them and ``trials.csv`` agree.

Optuna writes each user attribute in a transaction of its own (about 9 ms on SQLite
or a local PostgreSQL) and has no public call that writes several at once. So the
fields known together are written together, as one dict-valued attribute per moment
(:data:`PARTS`): the candidate's cost and where it trains before training, the
outcome after. :func:`read` spreads them out again.

>>> class Trial: user_attrs = {"seed": 0, "cost": {"params": 5}, "result": {"best_acc": 0.5}}
>>> read(Trial())
{'seed': 0, 'params': 5, 'best_acc': 0.5}
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import optuna
from optuna.trial import FrozenTrial


from ..arch._spec import NetworkSpec
from ..space._candidates import Assessment

# The `kind` a comparison's study records in its configuration (scalesearch compare); a search records none.
COMPARISON = "compare"
BESIDE = "-compare"  # a comparison of study X is stored beside it, in its storage and folder, as X-compare


def is_comparison(study: Any) -> bool:
    """Whether a study (or its summary) is a comparison's rather than a search's."""
    return (study.user_attrs.get("config") or {}).get("kind") == COMPARISON

# The dict-valued attributes a trial's fields are written in, in the order they are written.
PARTS = ("cost", "result")

# Every field a trial may carry, with its unit: the columns of trials.csv, in this order.
FIELDS: dict[str, str] = {
    "alpha": "depth coefficient α of the candidate",
    "beta": "width coefficient β",
    "gamma": "resolution coefficient γ",
    "seed": "paired seed: training subset, order, augmentation and init of the proxy run",
    "phi": "the member trained: coefficients to the power φ (1 = the search, 2 = twins and contenders, 0 = the base)",
    "nominal": "α·β²·γ² of the trained member",
    "measured_target": "built network's multiply-adds at the target side / the base's (1000 classes)",
    "measured_proxy": "proxy network's multiply-adds / the proxy base's",
    "target_resolution": "target side, px",
    "proxy_resolution": "proxy side, px",
    "params": "proxy network's parameters",
    "depth_blocks": "proxy network's MBConv blocks (repeats after rounding)",
    "width_channels": "proxy network's geometric mean of stem, stage and head channels (after rounding)",
    "macs_proxy": "proxy network's multiply-adds per image",
    "macs_target": "multiply-adds per image at the target side, 1000 classes",
    "acts_proxy": "proxy network's conv and linear output elements per image",
    "acts_target": "built network's conv and linear output elements at the target side / the base's (1000 classes)",
    "latency_target": "built network's measured inference latency at the target side / the base's (latency constraint)",
    "latency_s": "built network's measured inference latency at the target side, s per batch (latency constraint)",
    "best_acc": "best val top-1 over the evaluated epochs, fraction",
    "best_epoch": "1-based epoch of best_acc",
    "seconds": "training time, s (0 when shared from a twin)",
    "fail_reason": "why the trial has no score",
    "device": "device it trained on",
    "network": "identity of the proxy network built (twins share it)",
    "shared_from": "trial number of the twin whose result this trial shares",
}
# Written by the worker besides FIELDS: per-epoch curves and bookkeeping.
CURVES = ("val_acc", "val_loss", "train_loss", "train_images", "worker")
def cost_attrs(a: Assessment) -> dict[str, Any]:
    """The trained member's cost, nominal and measured, at the target and at the proxy."""
    return {"nominal": a.nominal, "measured_target": a.measured_target, "measured_proxy": a.measured_proxy,
            "target_resolution": a.target_resolution, "proxy_resolution": a.proxy_resolution,
            "macs_target": a.macs_target, "macs_proxy": a.macs_proxy, "params": a.params, "acts_proxy": a.acts_proxy,
            "acts_target": a.acts_target,
            **({"latency_target": a.latency_target, "latency_s": a.latency_s} if a.latency_target is not None else {})}


def shape_attrs(spec: NetworkSpec) -> dict[str, Any]:
    """The built network's depth and width, the features the score surface is fitted in."""
    channels = [spec.stem, *(s.out_ch for s in spec.stages), spec.head]
    return {"depth_blocks": sum(s.repeats for s in spec.stages),
            "width_channels": math.exp(sum(map(math.log, channels)) / len(channels))}


def write(trial: optuna.Trial, part: str, fields: Mapping[str, Any]) -> None:
    """Store `fields` of `trial` in one transaction, as the dict attribute `part` (one of :data:`PARTS`)."""
    assert part in PARTS, part
    trial.set_user_attr(part, dict(fields))


def read(trial: FrozenTrial | optuna.Trial) -> dict[str, Any]:
    """A trial's fields, flat: its own attributes with the parts spread out (older studies stored them flat)."""
    attrs = {k: v for k, v in trial.user_attrs.items() if k not in PARTS}
    for part in PARTS:
        attrs.update(trial.user_attrs.get(part) or {})
    return attrs
