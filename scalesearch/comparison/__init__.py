"""Compound against single-dimension scaling at equal measured cost: ``scalesearch compare`` (:func:`compare`).

For coefficients (α, β, γ), the compound family φ = 0 … k is trained beside width-only, depth-only and
resolution-only members that cost what the compound member costs at each φ (measured multiply-adds at
the target side), with the search's proxy, paired seeds, queue, workers, storage and time budget; each
family is compared with compound by its paired score difference and a verdict. Its plan, rounds, tables,
statistics and figures live in the private modules re-exported here.

The figures (:mod:`matplotlib`) load on first use, so that ``import scalesearch.comparison`` does not pay for it.
"""
from __future__ import annotations

import importlib

from ._driver import FORMAT, OUTPUTS, ROUNDS, ComparisonResult, compare, document, finish, next_round
from ._plan import ComparisonPlan, Settings, prepare, reopen, resolve
from ._stats import VERDICTS, Interval, Paired, interval, paired, scores, seeds_to_resolve, seeds_words
from ._table import COLUMNS, UNITS, curves, rows, saturation, score_label, score_text, score_unit, verdict_lines

__all__ = ["COLUMNS", "FORMAT", "OUTPUTS", "ROUNDS", "UNITS", "VERDICTS", "ComparisonPlan", "ComparisonResult",
           "Interval", "Paired", "Settings", "compare", "comparison_figure", "curves", "document", "figures", "finish",
           "interaction_figure", "interval", "next_round", "paired", "prepare", "reopen", "resolve", "rows", "saturation",
           "score_label", "score_text", "score_unit", "scores", "seeds_to_resolve", "seeds_words", "verdict_lines"]


def __getattr__(name: str):
    if name in ("comparison_figure", "figures", "interaction_figure"):
        return getattr(importlib.import_module("._plots", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
