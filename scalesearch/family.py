"""Compound-scaled family members: φ → (depth α^φ, width β^φ, resolution γ^φ).

>>> from scalesearch.arch import load_base
>>> spec = member(load_base("b0"), 1.2, 1.1, 1.15, phi=1)
>>> round(spec.width_mult, 3), round(spec.depth_mult, 3), spec.resolution, spec.dropout
(1.1, 1.2, 256, 0.2)
"""
from __future__ import annotations

import pandas as pd

from .arch import BaseNetwork, NetworkSpec, scale
from .cost import network_cost

# Official B0-B7 resolutions are all multiples of 4; rounding extrapolated sides
# to the same multiple keeps them friendly to stride-2 stages without drifting far.
RESOLUTION_MULTIPLE = 4


def round_resolution(side: float, multiple: int = RESOLUTION_MULTIPLE) -> int:
    """Nearest multiple of `multiple` (half up), at least `multiple`."""
    return max(multiple, int(side / multiple + 0.5) * multiple)


def dropout_for(base: BaseNetwork, phi: float) -> float:
    """The official schedule: +0.1 every two steps of φ, capped at 0.5 (B0/B1 0.2 … B6/B7 0.5)."""
    return round(min(max(base.dropout, 0.5), base.dropout + 0.1 * int(phi // 2)), 3)


def member(base: BaseNetwork, alpha: float, beta: float, gamma: float, phi: float, multiple: int = RESOLUTION_MULTIPLE) -> NetworkSpec:
    """The family member at `phi`: depth α^φ, width β^φ, resolution base × γ^φ rounded to `multiple`."""
    resolution = round_resolution(base.resolution * gamma**phi, multiple)
    return scale(base, width=beta**phi, depth=alpha**phi, resolution=resolution, dropout=dropout_for(base, phi))


def family_table(base: BaseNetwork, alpha: float, beta: float, gamma: float, phis: list[float] | None = None,
                 multiple: int = RESOLUTION_MULTIPLE) -> pd.DataFrame:
    """One row per φ: multipliers, resolution, dropout and the built network's measured cost (1000 classes)."""
    phis = list(range(8)) if phis is None else phis
    base_macs = network_cost(scale(base)).macs
    rows = []
    for phi in phis:
        spec = member(base, alpha, beta, gamma, phi, multiple)
        c = network_cost(spec)
        rows.append({"phi": phi, "depth_mult": round(alpha**phi, 4), "width_mult": round(beta**phi, 4),
                     "resolution": spec.resolution, "dropout": spec.dropout, "params": c.params, "macs": c.macs,
                     "gmacs": round(c.macs / 1e9, 4), "acts": c.acts, "ratio": round(c.macs / base_macs, 3),
                     "nominal": round((alpha * beta**2 * gamma**2) ** phi, 3)})
    return pd.DataFrame(rows)
