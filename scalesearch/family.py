"""Compound-scaled family members: φ → (depth α^φ, width β^φ, resolution γ^φ).

>>> from scalesearch.arch import load_base
>>> spec = member(load_base("b0"), 1.2, 1.1, 1.15, phi=1)
>>> round(spec.width_mult, 3), round(spec.depth_mult, 3), spec.resolution, spec.dropout
(1.1, 1.2, 256, 0.2)
"""
from __future__ import annotations

from .arch import BaseNetwork, NetworkSpec, scale

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
