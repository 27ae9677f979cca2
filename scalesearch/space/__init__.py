"""The search space: a TOML file of α, β, γ ranges, budget, constraint and proxy settings; each candidate's
network and cost at the target and the proxy; the grid within budget (by MACs, activations or measured
latency); sampling on the budget manifold; the proxy's side and width that keep the target's cost ratios; and
the single-dimension members that cost what a compound-scaled member costs (for ``scalesearch compare``).
"""
from __future__ import annotations

from ._candidates import Assessment, Candidate, assess, at_base_width, candidate_spec, narrowed, resolution_for, target_ratio, within
from ._families import (FAMILIES, SINGLE, Member, alone, check_families, family_members, interaction_members, matched,
                        target_macs)
from ._fidelity import ProxyDesign, resolve as resolve_proxy
from ._grid import GridReport, feasible_grid, grid, require_feasible
from ._latency_budget import LatencyCheck, measure_grid, meter_for, near_edge_note, prefilter
from ._sampling import manifold_size, suggest
from ._space import (CONSTRAINT_UNITS, CONSTRAINTS, PRUNERS, SAMPLERS, SPACES_DIR, ProxySettings, Range, SearchSpace,
                     known_spaces, load_space, parse_budget, parse_duration, space_toml)

__all__ = ["Assessment", "CONSTRAINTS", "CONSTRAINT_UNITS", "Candidate", "FAMILIES", "GridReport", "LatencyCheck", "Member",
           "PRUNERS", "ProxyDesign", "ProxySettings", "Range", "SAMPLERS", "SINGLE", "SPACES_DIR", "SearchSpace", "alone", "assess",
           "at_base_width", "candidate_spec", "check_families", "family_members", "feasible_grid", "grid", "interaction_members",
           "known_spaces", "load_space", "manifold_size", "matched", "measure_grid", "meter_for", "narrowed",
           "near_edge_note", "parse_budget", "parse_duration", "prefilter", "require_feasible", "resolution_for",
           "resolve_proxy", "space_toml", "suggest", "target_macs", "target_ratio", "within"]
