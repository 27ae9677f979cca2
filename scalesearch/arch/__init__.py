"""The architecture and its cost: a base network as block strings, scaled into a pure :class:`NetworkSpec`,
built as a PyTorch module, counted analytically (with an fvcore cross-check) and timed.

>>> from scalesearch.arch import load_base, network_cost, scale
>>> spec = scale(load_base("b0"), width=1.1, depth=1.2, resolution=260)  # pure data
>>> round(network_cost(spec).macs / 1e6)
994

The parts that need torch (:func:`build`, the latency meter) load on first use, so that
``import scalesearch.arch`` does not pay for torch.
"""
from __future__ import annotations

import importlib

from ._cost import Cost, fvcore_count, layer_costs, network_cost, stage_costs
from ._spec import (BASES_DIR, PRESETS, BaseNetwork, Block, NetworkSpec, Stage, base_toml, decode_block, encode_block,
                    known_bases, load_base, network_key, round_filters, round_repeats, scale)

_LAZY = {"build": "_model", "zero_init": "_model", "EfficientNet": "_model",
         "Conditions": "_latency", "Latency": "_latency", "Meter": "_latency", "distinguishable": "_latency",
         "repeatability": "_latency", "resolve_device": "_latency", "time_network": "_latency"}

__all__ = ["BASES_DIR", "PRESETS", "BaseNetwork", "Block", "Cost", "NetworkSpec", "Stage", "base_toml", "decode_block",
           "encode_block", "fvcore_count", "known_bases", "layer_costs", "load_base", "network_cost", "network_key",
           "round_filters", "round_repeats", "scale", "stage_costs", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
