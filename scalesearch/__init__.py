"""scalesearch: EfficientNet-style compound scaling search.

The pipeline, one module per stage: :mod:`~scalesearch.arch` (base network as
data, scaling), :mod:`~scalesearch.cost` (analytic MACs / params / activations),
:mod:`~scalesearch.space` (budget, search space, feasibility), :mod:`~scalesearch.data`,
:mod:`~scalesearch.proxy` (short training runs), :mod:`~scalesearch.search`
(the Optuna driver), :mod:`~scalesearch.results`, :mod:`~scalesearch.family`
and :mod:`~scalesearch.export`. The CLI (:mod:`~scalesearch.cli`) is a thin layer
over these.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .arch import BaseNetwork, NetworkSpec, load_base, scale  # noqa: E402
from .cost import Cost, measure, network_cost  # noqa: E402
from .errors import ScaleSearchError  # noqa: E402
from .model import build  # noqa: E402

__all__ = ["BaseNetwork", "Cost", "Family", "NetworkSpec", "ScaleSearchError", "build", "load_base", "load_family", "measure",
           "network_cost", "scale", "__version__"]


def __getattr__(name: str):
    """`Family` and `load_family` load on first use: the export module pulls in pandas and optuna."""
    if name in ("Family", "load_family"):
        from . import export

        return getattr(export, name)
    raise AttributeError(f"module 'scalesearch' has no attribute {name!r}")
