"""Results: a study's trials as tables and the ranking, the report in words, the winner's family φ = 0 … 7,
its extrapolation and transfer check, two studies' agreement, and the exported coefficient file (:mod:`scalesearch.results.plots`
draws the figures; it loads matplotlib, so it is imported on its own)."""
from __future__ import annotations

from ._agreement import Agreement, agreement, compare_rankings
from ._export import (choose_format, coefficients_document, export_study, json_text, python_snippet, render, study_base,
                      verdict_document)
from ._extrapolate import (boundary_warnings, official_family, proxy_fit, scaling_fit, top_candidates, transfer_check,
                           with_official)
from ._family import RESOLUTION_MULTIPLE, SCHEMA_VERSION, Family, family_table, load_family, member, parse_phis
from ._ranking import ranking, sort_ranking, study_verdict, study_winner, trials_frame, winner, write_set, write_tables
from ._record import COMPARISON, CURVES, FIELDS, is_comparison, read as read_trial
from ._report import (RANKING_HEADERS, constraint_line, constraint_summary, markdown_ranking, mega, pct, ranking_caption,
                      ranking_cells, ranking_document, surface_line, verdict_line,
                      wide_table)

__all__ = ["Agreement", "agreement", "compare_rankings", "COMPARISON", "CURVES", "FIELDS", "is_comparison", "Family", "RANKING_HEADERS", "RESOLUTION_MULTIPLE", "SCHEMA_VERSION", "boundary_warnings",
           "choose_format", "coefficients_document", "constraint_line", "constraint_summary", "export_study", "family_table",
           "mega", "pct", "ranking_caption", "ranking_cells", "read_trial", "sort_ranking", "study_base", "surface_line",
           "verdict_document", "wide_table",
           "json_text", "load_family", "markdown_ranking", "member", "official_family", "parse_phis", "proxy_fit",
           "python_snippet", "ranking", "ranking_document", "render", "scaling_fit", "study_verdict", "study_winner", "top_candidates",
           "transfer_check", "trials_frame", "verdict_line", "winner", "with_official", "write_set", "write_tables"]
