"""Compound against single-dimension scaling at equal measured cost: ``scalesearch compare``."""
from __future__ import annotations

from ._stats import VERDICTS, Interval, Paired, interval, paired, seeds_to_resolve, seeds_words

__all__ = ["VERDICTS", "Interval", "Paired", "interval", "paired", "seeds_to_resolve", "seeds_words"]
