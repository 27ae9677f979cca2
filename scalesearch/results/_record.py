"""The record of one trial: the fields a trial carries, how one is queued, and how it is read back.

One trial is one (candidate, seed, φ). Optuna stores the record as the trial's
user attributes; this module is the one place that names them, so the worker
that writes them, the tables that read them and ``trials.csv`` agree.

>>> from scalesearch.candidates import Candidate
>>> queue_attrs(Candidate(1.2, 1.1, 1.15), seed=3, phi=2)
{'queued': True, 'seed': 3, 'phi': 2, 'alpha': 1.2, 'beta': 1.1, 'gamma': 1.15}
>>> network_id({"alpha": 1.2, "beta": 1.1, "gamma": 1.15, "network": None})
'1.2/1.1/1.15'
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import replace
from typing import Any, Mapping

import optuna
from optuna.trial import FrozenTrial, TrialState

from .arch import NetworkSpec
from .candidates import Assessment, Candidate

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
QUEUE = ("seed", "phi", "alpha", "beta", "gamma")  # what a queued trial carries until it runs

# Trials failed for these reasons are queued again on resume; others (divergence, OOM) are final.
RETRYABLE = ("interrupted",)


def key(c: Candidate) -> tuple[float, float, float]:
    """A candidate as a dictionary key, immune to float noise in the stored coefficients."""
    return (round(c.alpha, 4), round(c.beta, 4), round(c.gamma, 4))


def candidate(t: FrozenTrial) -> Candidate | None:
    """The candidate a trial stands for (None for a placeholder that never had one)."""
    a = t.user_attrs
    return Candidate(a["alpha"], a["beta"], a["gamma"]) if "alpha" in a else None


def slot(t: FrozenTrial) -> tuple[tuple[float, float, float], Any, Any] | None:
    """(candidate key, seed, φ): what a trial is a result for; two trials with one slot are one result."""
    c = candidate(t)
    return None if c is None else (key(c), t.user_attrs.get("seed"), t.user_attrs.get("phi", 1))


def is_done(t: FrozenTrial) -> bool:
    """A trial that counts for its slot: anything but a retryable failure, an unfinished failure or a placeholder."""
    if t.user_attrs.get("unqueued"):
        return False
    if t.state == TrialState.FAIL:
        return t.user_attrs.get("fail_reason", "") not in RETRYABLE and "fail_reason" in t.user_attrs
    return True


def queue_attrs(c: Candidate, seed: int, phi: float = 1, **extra: Any) -> dict[str, Any]:
    """The user attributes of a queued trial: the slot it will fill."""
    return {"queued": True, "seed": seed, "phi": phi, "alpha": c.alpha, "beta": c.beta, "gamma": c.gamma, **extra}


def enqueue(study: optuna.Study, c: Candidate, seed: int, phi: float = 1, **extra: Any) -> None:
    study.enqueue_trial({}, user_attrs=queue_attrs(c, seed, phi, **extra), skip_if_exists=False)


def requeue(study: optuna.Study, t: FrozenTrial | optuna.Trial) -> None:
    """Queue `t`'s slot again, linked to it (an interrupted or lost trial)."""
    a = t.user_attrs
    enqueue(study, Candidate(a["alpha"], a["beta"], a["gamma"]), a["seed"], a["phi"], requeued_from=t.number)


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


def network_key(spec: NetworkSpec) -> str:
    """Identity of the network a spec builds (the multipliers that led to it left out)."""
    canonical = replace(spec, name="", width_mult=1.0, depth_mult=1.0)
    return hashlib.sha1(repr(canonical).encode()).hexdigest()[:16]


def network_id(row: Mapping[str, Any] | Any) -> str:
    """A row's network identity; older studies did not record one, so each candidate stands for itself."""
    get = row.get if isinstance(row, Mapping) else lambda k: getattr(row, k, None)
    net = get("network")
    if isinstance(net, str):
        return net
    return f"{get('alpha')}/{get('beta')}/{get('gamma')}"

