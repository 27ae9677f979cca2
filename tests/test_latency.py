"""Latency measurement: conditions, the cache, rounds, noise and bad input (tiny networks, no timing luck)."""
from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from scalesearch.arch import _latency as latency
from scalesearch.arch import load_base, scale
from scalesearch.errors import ScaleSearchError
from scalesearch.arch import Latency, Meter, distinguishable, repeatability
from scalesearch.arch._latency import LatencyCache, cache_key

FAST = {"min_run_time": 0.01, "warmup": 1}


@pytest.fixture(scope="module")
def tiny():
    return scale(load_base("tiny-mbconv"))


@pytest.fixture
def counted(monkeypatch):
    """Replaces the one measuring function by one that counts its calls and returns 1 ms at once."""
    calls = []

    def fake(net, side, in_channels, device, cond, min_run_time, warmup):
        calls.append((side, cond.batch))
        return Latency(1e-3, 1e-5, 10, cond)

    monkeypatch.setattr(latency, "time_network", fake)
    return calls


def test_a_real_measurement_records_the_proxys_conditions(tiny):
    lat = Meter("cpu", batch=2, threads=1, num_classes=10, **FAST).latency(tiny, 32)
    c = lat.conditions
    assert 0 < lat.seconds < 1 and lat.iqr >= 0 and lat.repeats >= 1 and lat.rounds >= latency.MIN_ROUNDS
    assert (c.batch, c.threads, c.dtype, c.memory_format, c.torch) == (2, 1, "float32", "channels_last", torch.__version__)
    assert c.device.startswith("cpu ") and torch.backends.cpu.get_cpu_capability() in c.device


def test_a_network_with_64_times_the_macs_is_measured_slower(tiny):
    meter = Meter("cpu", batch=1, threads=1, num_classes=10, **FAST)
    small, big = meter.measure(tiny, 32), meter.measure(tiny, 256)
    # 64x the MACs and activations; a wide margin, because a tiny network at 32 px is mostly per-call overhead
    # and a loaded machine slows one measurement more than the other
    assert big.seconds > 2 * small.seconds


def test_a_cache_hit_measures_nothing_in_this_or_another_process(tiny, counted, tmp_path):
    path = tmp_path / "latency.json"
    meter = Meter("cpu", batch=1, cache=path, **FAST)
    first = meter.latency(tiny, 32)
    assert meter.latency(tiny, 32) == first and len(counted) == 1 and (meter.measured, meter.reused) == (1, 1)
    rerun = Meter("cpu", batch=1, cache=path, **FAST)  # a rerun or a worker: a fresh meter on the same file
    assert rerun.latency(tiny, 32) == first and len(counted) == 1
    rerun.latency(tiny, 48)
    Meter("cpu", batch=2, cache=path, **FAST).latency(tiny, 32)  # other conditions: measured again
    assert counted == [(32, 1), (48, 1), (32, 2)]
    assert len(json.loads(path.read_text())["entries"]) == 3


def test_twins_share_a_key_and_other_networks_do_not(tiny):
    cond = latency.conditions_for(torch.device("cpu"), 1)
    twin = replace(tiny, name="twin", width_mult=1.3, depth_mult=1.1, resolution=99, dropout=0.5)
    wider = scale(load_base("tiny-mbconv"), width=1.5)
    assert cache_key(twin, 32, 10, 3, cond) == cache_key(tiny, 32, 10, 3, cond)
    assert len({cache_key(tiny, 32, 10, 3, cond), cache_key(wider, 32, 10, 3, cond), cache_key(tiny, 36, 10, 3, cond),
                cache_key(tiny, 32, 100, 3, cond), cache_key(tiny, 32, 10, 1, cond),
                cache_key(tiny, 32, 10, 3, replace(cond, threads=cond.threads + 1))}) == 6


def test_many_measures_each_network_once_and_reports_progress(tiny, counted):
    twin = replace(tiny, name="twin", width_mult=2.0)
    seen = []
    out = Meter("cpu", **FAST).many([(tiny, 32), (twin, 32), (tiny, 40)], lambda *a: seen.append((a[0], a[1], a[3])))
    assert len(out) == 3 and out[0] is out[1] and len(counted) == 2
    assert seen == [(1, 3, False), (2, 3, True), (3, 3, False)]


def test_writers_sharing_a_cache_file_keep_each_others_entries(tiny, tmp_path):
    path, cond = tmp_path / "c.json", latency.conditions_for(torch.device("cpu"), 1)
    a, b = LatencyCache(path), LatencyCache(path)
    a.put("one", Latency(1.0, 0.1, 5, cond))
    b.put("two", Latency(2.0, 0.1, 5, cond, rounds=4, settled=False))
    fresh = LatencyCache(path)
    assert fresh.get("one").seconds == 1.0 and fresh.get("two") == Latency(2.0, 0.1, 5, cond, 4, False)


def test_a_corrupt_cache_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(ScaleSearchError, match=r"latency cache .*c\.json is unreadable.*delete it") as e:
        LatencyCache(path)
    assert "\n" not in str(e.value)


class FakeTimer:
    """Rounds whose medians come from a list, to test when measuring stops without timing anything."""

    medians: list[float] = []

    def __init__(self, *args, **kwargs):
        self.left = iter(self.medians)

    def blocked_autorange(self, min_run_time):
        m = next(self.left)
        return SimpleNamespace(median=m, iqr=m / 10, times=[m] * 7)


@pytest.mark.parametrize("medians, rounds, seconds, settled", [
    ([1.0, 1.02], 2, 1.0, True),  # two rounds that agree: done
    ([5.0, 1.0, 1.02], 3, 1.0, True),  # a round hit by load is outvoted
    ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], latency.MAX_ROUNDS, 1.0, False),  # never agreed: capped and flagged
])
def test_rounds_stop_when_the_two_fastest_agree(tiny, monkeypatch, medians, rounds, seconds, settled):
    monkeypatch.setattr(FakeTimer, "medians", medians)
    monkeypatch.setattr(torch.utils.benchmark, "Timer", FakeTimer)
    lat = Meter("cpu", **FAST).measure(tiny, 16)
    assert (lat.rounds, lat.seconds, lat.settled, lat.repeats) == (rounds, seconds, settled, 7)


def test_repeatability_is_the_cv_of_fresh_measurements(tiny, monkeypatch):
    medians = iter([1.0, 2.0, 3.0])
    monkeypatch.setattr(latency, "time_network", lambda *a, **k: Latency(next(medians), 0.0, 1, a[4]))
    assert repeatability(Meter("cpu", **FAST), tiny, 32, times=3) == pytest.approx(0.5)  # sd 1 over mean 2
    with pytest.raises(ScaleSearchError, match="at least 2"):
        repeatability(Meter("cpu"), tiny, 32, times=1)


def test_latencies_within_the_noise_are_not_called_different():
    assert distinguishable(1.0, 1.10, cv=0.01) and distinguishable(1.10, 1.0, cv=0.01)
    assert not distinguishable(1.0, 1.10, cv=0.05)  # 9.5% apart, noise sd 5%: 1.96·√2·5% = 13.9%
    assert not distinguishable(2.0, 2.0, cv=0.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"device": "tpu"}, "unknown latency device 'tpu'"),
    ({"device": "cuda:7"}, "latency device 'cuda:7' is not available"),
    ({"batch": 0}, "latency batch must be at least 1, got 0"),
])
def test_bad_input_is_one_line(kwargs, message):
    with pytest.raises(ScaleSearchError, match=message) as e:
        Meter(**kwargs)
    assert "\n" not in str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_machine_without_it_is_refused():
    with pytest.raises(ScaleSearchError, match="'cuda' is not available: this machine has 0 CUDA device"):
        Meter("cuda")


def test_a_side_below_one_pixel_is_refused(tiny):
    with pytest.raises(ScaleSearchError, match="side must be at least 1 px"):
        Meter("cpu").latency(tiny, 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_measures_in_bf16_channels_last(tiny):
    lat = Meter("cuda", batch=2, num_classes=10, **FAST).latency(tiny, 32)
    assert (lat.conditions.dtype, lat.conditions.memory_format) == ("bfloat16", "channels_last")
    assert lat.conditions.device == torch.cuda.get_device_name(0) and lat.seconds > 0
