"""Stated limits: each a guard against a typo, far above any real use.

They bound what a network, a proxy run and a family may be, so that no input can hang
the tool or ask for terabytes: search spaces, base files and command-line options are
all held to them.

>>> check_phi(2.5)
2.5
>>> check_phi(float("nan"))
Traceback (most recent call last):
...
scalesearch.errors.ScaleSearchError: --phi must be a finite number from 0 to 16, got nan
"""
from __future__ import annotations

from .errors import ScaleSearchError

MAX_PHI = 16  # EfficientNet-L2's width 4.3 is 1.1^15.3: no published member needs more
MAX_MEMBERS = 100  # family members per --phi range
MAX_BLOCKS = 10_000  # MBConv blocks in one network (B7 has 55; costing 10,000 takes ~0.1 s)
MAX_REPEATS = 100  # blocks per stage of a base file
MAX_KERNEL = 31  # the largest depthwise kernels in use (RepLKNet) are 31
MAX_EXPAND = 32
MAX_CHANNELS = 100_000  # channels of any layer, base or scaled
MAX_SIDE = 4096  # px of any input a network is built or trained at
MAX_COEFF = 10.0  # α, β, γ and width/depth multipliers
MAX_BATCH = 4096  # images per training step or timed forward pass
MAX_IMAGES = 10_000_000
MAX_EPOCHS = 1000
MAX_SEEDS = 100
MAX_TRIALS = 100_000
MAX_WORKERS = 256
MAX_CLASSES = 100_000
MAX_IN_CHANNELS = 64


def check_phi(value: float, flag: str = "--phi") -> float:
    """φ as every command takes it: a finite number from 0 to MAX_PHI."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_PHI:
        shown = f"{value:g}" if isinstance(value, float) else repr(value)
        raise ScaleSearchError(f"{flag} must be a finite number from 0 to {MAX_PHI}, got {shown}")
    return value


