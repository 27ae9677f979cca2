"""The latency budget over a grid: pre-filter, the base as reference, the cache (measurements faked, no timing luck)."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from scalesearch.arch import _latency as latency
from scalesearch.arch import _model as model
from scalesearch.arch import load_base
from scalesearch.space import Candidate, assess, grid
from scalesearch.space._candidates import within_tolerance
from scalesearch.arch import network_cost
from scalesearch.arch import Latency, Meter
from scalesearch.space._latency_budget import BAND
from scalesearch.space import measure_grid, near_edge_note, prefilter
from scalesearch.space import load_space


@pytest.fixture
def macs_clock(monkeypatch):
    """A 'device' whose latency is exactly the network's MACs (1 ps each): latency ratios must equal MACs ratios."""
    calls = []

    def fake(net, side, in_channels, device, cond, min_run_time, warmup):
        calls.append(side)
        return Latency(network_cost(net.spec, side, net.classes, in_channels).macs * 1e-12, 0.0, 5, cond)

    monkeypatch.setattr(latency, "time_network", fake)
    monkeypatch.setattr(model, "build", unbuilt)
    return calls


def unbuilt(spec, num_classes, in_channels):
    """Stands in for the built network where only its spec matters (building B0 variants is what costs time)."""
    return SimpleNamespace(spec=spec, classes=num_classes)


@pytest.fixture(scope="module")
def b0_grid():
    space = load_space("paper")
    base = load_base("b0")
    return base, [assess(base, c, 32) for c in grid(space)]


def test_with_latency_equal_to_macs_the_latency_feasible_set_is_the_measured_one(macs_clock, b0_grid, tmp_path):
    base, every = b0_grid
    check = measure_grid(base, every, 2.0, Meter("cpu", cache=tmp_path / "c.json"))
    kept = prefilter(every, 2.0)
    assert check.points == len(every) and check.kept == len(kept) < len(every) and check.band == BAND
    assert all(1.0 <= a.measured_target <= 4.0 for a in kept)
    for a in kept:
        assert check.ratios[a.candidate] == pytest.approx(a.measured_target)
    feasible = {c for c, r in check.ratios.items() if within_tolerance(r, 2.0, 0.05)}
    assert feasible == {a.candidate for a in every if within_tolerance(a.measured_target, 2.0, 0.05)} and feasible
    # the base twice (before and after, agreeing exactly here), then each distinct network once
    assert check.base_medians[0] == check.base_medians[1] and check.agreement == 0
    assert check.networks < check.kept and check.measured == check.networks and len(macs_clock) == 2 + check.networks


def test_a_rerun_measures_nothing(macs_clock, b0_grid, tmp_path):
    base, every = b0_grid
    first = measure_grid(base, every, 2.0, Meter("cpu", cache=tmp_path / "c.json"))
    calls = len(macs_clock)
    again = measure_grid(base, every, 2.0, Meter("cpu", cache=tmp_path / "c.json"))
    assert len(macs_clock) == calls and again.measured == 0 and again.base_medians == () and again.agreement is None
    assert again.ratios == first.ratios


def test_the_base_is_measured_again_until_two_measurements_agree(monkeypatch, b0_grid):
    base, every = b0_grid
    base_times = iter([1.0, 1.2, 1.3, 1.01])  # before the candidates, then after: 1.2 and 1.3 disagree with 1.0

    def fake(net, side, in_channels, device, cond, min_run_time, warmup):
        return Latency(next(base_times) if side == 224 and net.spec.head == 1280 else 2.0, 0.0, 5, cond)

    monkeypatch.setattr(latency, "time_network", fake)
    monkeypatch.setattr(model, "build", unbuilt)
    few = [a for a in every if a.candidate.gamma > 1.0][:3]  # no point at 224 px, so only the base is timed there
    check = measure_grid(base, few, 2.0, Meter("cpu"), band=100)
    assert check.base_medians == (1.0, 1.2, 1.3, 1.01) and check.base.seconds == 1.0
    assert check.agreement == pytest.approx(0.01) and set(check.ratios.values()) == {2.0}  # the two fastest: 1.0, 1.01


def test_points_near_the_band_edge_are_reported(macs_clock, b0_grid):
    base, every = b0_grid
    check = measure_grid(base, every, 2.0, Meter("cpu"), band=1.3)  # 1.54x to 2.6x MACs: feasible points near the edge
    assert check.near_edge and all(not 2 / 1.3 * 1.1 <= a.measured_target <= 2 * 1.3 / 1.1
                                   for a in every if a.candidate in check.near_edge)
    assert near_edge_note(check, list(check.near_edge)).startswith(f"{len(check.near_edge)} latency-feasible point(s)")
    assert near_edge_note(check, [Candidate(9, 9, 9)]) is None


def test_a_check_recorded_as_json_reads_back_equal(macs_clock, b0_grid):
    import json

    from scalesearch.space import LatencyCheck

    base, every = b0_grid
    check = measure_grid(base, every, 2.0, Meter("cpu"), band=1.3)
    back = LatencyCheck.from_record(json.loads(json.dumps(check.record())))
    assert back == check and back.near_edge


def test_networks_timed_under_load_throughout_are_timed_again_after_the_others(monkeypatch, b0_grid):
    base, every = b0_grid
    seen: dict = {}

    def fake(net, side, in_channels, device, cond, min_run_time, warmup):
        n = seen[side] = seen.get(side, 0) + 1
        if side == 224:
            return Latency(1.0, 0.0, 5, cond)
        return Latency(3.0, 0.0, 5, cond, rounds=6, settled=False) if n == 1 else Latency(2.0, 0.0, 5, cond)

    monkeypatch.setattr(latency, "time_network", fake)
    monkeypatch.setattr(model, "build", unbuilt)
    one = [a for a in every if a.candidate == Candidate(1.2, 1.1, 1.15)]
    check = measure_grid(base, one, 2.0, Meter("cpu"), band=100)
    assert check.ratios == {Candidate(1.2, 1.1, 1.15): 2.0} and check.unsettled == 0 and seen[258] == 2


def test_points_within_the_noise_of_the_tolerance_edges_are_borderline(monkeypatch, b0_grid):
    base, every = b0_grid
    ratio = {Candidate(1.2, 1.1, 1.15): 2.09, Candidate(1.0, 1.0, 1.0): 1.5}  # 2.09 is 0.5% from 2.1, 1.5 far from both

    def fake(net, side, in_channels, device, cond, min_run_time, warmup):
        return Latency(1.0, 0.0, 5, cond)

    monkeypatch.setattr(latency, "time_network", fake)
    monkeypatch.setattr(model, "build", unbuilt)
    check = measure_grid(base, [a for a in every if a.candidate in ratio], 2.0, Meter("cpu"), band=100)
    check = replace(check, ratios=ratio, base_medians=(1.0, 1.01, 1.5))  # the two fastest 1% apart: cv 0.7%
    assert check.cv == pytest.approx(0.00704, rel=0.01)
    assert check.borderline(2.0, 0.05) == [Candidate(1.2, 1.1, 1.15)]
    assert replace(check, base_medians=()).borderline(2.0, 0.05) == []  # from the cache: no noise estimate
