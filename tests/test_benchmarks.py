"""The benchmarks' own arithmetic (the benchmarks themselves are scripts, not tests)."""
from __future__ import annotations

from types import SimpleNamespace

from benchmarks.end_to_end import ceiling


def trial(key: tuple, curve: list, macs: float = 1.0) -> SimpleNamespace:
    return SimpleNamespace(user_attrs={"alpha": key[0], "beta": key[1], "gamma": key[2], "val_acc": curve, "macs_proxy": macs})


def test_ceiling_stops_each_candidate_at_the_first_epoch_below_all_of_the_top_3():
    top = [trial((1, 1, k), [0.5, 0.6, 0.9 - k / 10]) for k in (1, 2, 3)]  # floors: 0.5 after epoch 1, 0.6 after 2
    late_bloomer = trial((2, 1, 1), [0.5, 0.55, 0.1])  # level after epoch 1, below after 2: stops at 2
    weak = trial((3, 1, 1), [0.4, 0.9, 0.9], macs=2.0)  # below after epoch 1, whatever comes later: stops at 1
    diverged = trial((4, 1, 1), [0.7])  # failed after one epoch, above the floor: counts the one epoch it trained
    never = SimpleNamespace(user_attrs={"alpha": 5, "beta": 1, "gamma": 1, "macs_proxy": 1.0})  # failed before any
    trials = [*top, late_bloomer, weak, diverged, never]
    epochs, tmacs = ceiling(trials, trials, [(1, 1, 1), (1, 1, 2), (1, 1, 3)], epochs=3, images=10**12)
    assert epochs == 3 * 3 + 2 + 1 + 1
    assert tmacs == 3 * 3 + 2 + 2.0 + 1


def test_no_ceiling_without_three_complete_candidates():
    trials = [trial((1, 1, 1), [0.5, 0.6]), trial((1, 1, 2), [0.4])]
    assert ceiling(trials, trials, [(1, 1, 1)], epochs=2, images=1) is None
