"""scalesearch: EfficientNet-style compound scaling search.

The pipeline, one subpackage per stage: :mod:`~scalesearch.arch` (base network as block
strings, the pure ``scale()``, the builder, analytic cost and latency) → :mod:`~scalesearch.space`
(the search-space file, candidates, the grid within budget, the proxy's fidelity) →
:mod:`~scalesearch.data` → :mod:`~scalesearch.proxy` (short training runs) →
:mod:`~scalesearch.search` (plan, Optuna study, queue, workers, the driver) →
:mod:`~scalesearch.stats` (score surface, race) → :mod:`~scalesearch.results` (ranking,
report, family, extrapolation, export) → :mod:`~scalesearch.comparison` (compound against single-dimension
scaling at equal cost). The CLI (:mod:`~scalesearch.cli`) only parses and prints.
Each stage imports only the ones before it.

The whole job from Python::

    import scalesearch
    result = scalesearch.run("b0", "2x", epochs=2)  # writes results/<study>/ as the CLI does
    result.winner, result.verdict, result.family
"""
from __future__ import annotations

from ._version import __version__
from .arch import BaseNetwork, Cost, NetworkSpec, fvcore_count, load_base, network_cost, scale
from .errors import ScaleSearchError

# Loaded on first use: these pull in torch, optuna or pandas, which `import scalesearch` should not pay for.
_LAZY = {
    "build": "arch", "Family": "results", "load_family": "results", "family_table": "results",
    "run": "search", "SearchResult": "search", "RunOptions": "search",
    "SearchSpace": "space", "load_space": "space", "Candidate": "space", "assess": "space",
    "feasible_grid": "space", "Progress": "search", "RichProgress": "search", "load_data": "data",
    "compare": "comparison", "ComparisonResult": "comparison",
}

__all__ = ["BaseNetwork", "Cost", "NetworkSpec", "ScaleSearchError", "load_base", "fvcore_count", "network_cost", "scale",
           "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'scalesearch' has no attribute {name!r}")
