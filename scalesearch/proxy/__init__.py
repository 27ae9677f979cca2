"""Proxy training: one short, seeded training run of a candidate's proxy network on device-resident data,
and the memory such a run needs (checked before anything is queued)."""
from __future__ import annotations

from ._memory import require_training_memory, training_bytes
from ._train import DidNotLearn, Diverged, ProxyResult, evaluate, require_learning, seconds_per_image, train

__all__ = ["DidNotLearn", "Diverged", "ProxyResult", "evaluate", "require_learning", "require_training_memory",
           "seconds_per_image", "train", "training_bytes"]
