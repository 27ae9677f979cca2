"""scalesearch: EfficientNet-style compound scaling search.

The pipeline, one module per stage: :mod:`~scalesearch.arch` (base network as data,
scaling) → :mod:`~scalesearch.cost` (analytic MACs / params / activations) →
:mod:`~scalesearch.space` (the search-space file) → :mod:`~scalesearch.candidates`
(each candidate's network and cost, the feasible grid) → :mod:`~scalesearch.data` →
:mod:`~scalesearch.proxy` (short training runs) → :mod:`~scalesearch.search` (the
Optuna driver) → :mod:`~scalesearch.results` and :mod:`~scalesearch.race` (ranking and
verdict) → :mod:`~scalesearch.family` → :mod:`~scalesearch.export`. The CLI
(:mod:`~scalesearch.cli`) only parses and prints.

The whole job from Python::

    import scalesearch
    result = scalesearch.run("b0", "2x", epochs=2)  # writes results/<study>/ as the CLI does
    result.winner, result.verdict, result.family
"""
from __future__ import annotations

__version__ = "0.1.0"

from .arch import BaseNetwork, NetworkSpec, load_base, scale  # noqa: E402
from .cost import Cost, fvcore_count, network_cost  # noqa: E402
from .errors import ScaleSearchError  # noqa: E402

# Loaded on first use: these pull in torch, optuna or pandas, which `import scalesearch` should not pay for.
_LAZY = {
    "build": "model", "Family": "family", "load_family": "family", "family_table": "family",
    "run": "search", "SearchResult": "search", "RunOptions": "plan",
    "SearchSpace": "space", "load_space": "space", "Candidate": "candidates", "assess": "candidates",
    "feasible_grid": "candidates", "Progress": "progress", "RichProgress": "progress", "load_data": "data",
}

__all__ = ["BaseNetwork", "Cost", "NetworkSpec", "ScaleSearchError", "load_base", "fvcore_count", "network_cost", "scale",
           "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'scalesearch' has no attribute {name!r}")
