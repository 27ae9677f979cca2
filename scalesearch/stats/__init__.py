"""Statistics: the score surface fitted over every network's seeds (:func:`fit_surface`), and the race built
on it: P(best), the 95% set, the next round and the verdict."""
from __future__ import annotations

from ._race import Verdict, boundary, fit, members, network_id, next_round, observations, space_ranges, verdict
from ._surface import FEATURES, LEVEL, Surface, fit as fit_surface, paired_means, t_quantile

__all__ = ["FEATURES", "LEVEL", "Surface", "Verdict", "boundary", "fit", "fit_surface", "members", "network_id",
           "next_round", "observations", "paired_means", "space_ranges", "t_quantile", "verdict"]
