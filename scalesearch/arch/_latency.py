"""Inference latency of built networks, measured the way the user will run them, once.

Multiply-adds are the paper's budget; users pay in latency on their own device,
and the two disagree (depthwise convs and activations cost more time per MAC
than dense convs). This module times a built network's forward pass: eval mode,
no autograd, the memory format and precision the proxy trains in on that
device, a warm-up, then rounds of :class:`torch.utils.benchmark.Timer` blocks
(the timer synchronises CUDA before reading the clock), each round's median
over its repeats, until two rounds agree. Results are cached on
disk by network identity and measurement conditions, so a rerun or another
worker process reads them instead of measuring again. A latency on a shared
machine is noisy: :func:`repeatability` measures how noisy, and
:func:`distinguishable` refuses to call two latencies different within it.

>>> from scalesearch.arch import load_base, scale
>>> meter = Meter("cpu", batch=1, min_run_time=0.02, warmup=1)
>>> lat = meter.latency(scale(load_base("tiny-mbconv")), 32)
>>> lat.seconds > 0, lat.conditions.dtype, lat.conditions.memory_format, meter.measured
(True, 'float32', 'channels_last', 1)
"""
from __future__ import annotations

import hashlib
import json
import math
import platform
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

import torch

from ._spec import NetworkSpec
from ..errors import ScaleSearchError
from ..files import write_text
from ..device import amp_dtype, autocast, pick_device, sync

# Seconds of timed forward passes per round (after warm-up). B0 at 224 px, batch 1, takes
# 14-20 ms on 2 CPU cores, so a round is a median over some 20 repeats.
MIN_RUN_TIME = 0.3
# Rounds until the two fastest round medians agree within AGREE, at least MIN_ROUNDS, at most MAX_ROUNDS.
# Why rounds: on 2 shared cores another process's burst made one median of B0 at 224 px 1.3 s instead of
# 14 ms (two threads, one of them descheduled, the other spinning); load only ever adds time, so the
# fastest of rounds that agree is the network's own latency, and a round hit by load is outvoted.
MIN_ROUNDS, MAX_ROUNDS, AGREE = 2, 6, 0.03
# Untimed forward passes first: the first calls create oneDNN / cuDNN primitives and allocate.
WARMUP = 3
CACHE_VERSION = 1


@dataclass(frozen=True)
class Conditions:
    """What a latency depends on besides the network; two latencies compare only under equal conditions."""

    device: str  # the hardware's name (CPU model and vector ISA, or the GPU's name), not its index
    torch: str
    threads: int
    batch: int
    dtype: str  # the precision the forward pass computes in (autocast's, if any)
    memory_format: str

    def describe(self) -> str:
        return (f"{self.device}, torch {self.torch}, {self.threads} thread(s), batch {self.batch}, "
                f"{self.dtype}, {self.memory_format}")


@dataclass(frozen=True)
class Latency:
    """One measurement: seconds per forward pass of a batch (the fastest round's median) and its spread."""

    seconds: float
    iqr: float  # interquartile range of the fastest round's per-repeat times, in seconds
    repeats: int  # timed forward passes in the fastest round
    conditions: Conditions
    rounds: int = 1
    settled: bool = True  # whether its two fastest rounds agreed within AGREE (False: load never let up)

    @property
    def spread(self) -> float:
        """IQR relative to the median: how much the repeats of this one measurement disagreed."""
        return self.iqr / self.seconds

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Latency:
        return cls(float(d["seconds"]), float(d["iqr"]), int(d["repeats"]), Conditions(**d["conditions"]),
                   int(d["rounds"]), bool(d["settled"]))


def resolve_device(name: str | torch.device) -> torch.device:
    """`cpu`, `cuda` or `cuda:N` that exists here (or `auto`); anything else is a one-line error."""
    return pick_device(name, role="latency device")


def device_name(device: torch.device) -> str:
    """The hardware, read at run time: hosts sold under one CPU name differ in vector ISA (AVX2 vs AVX-512)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu {cpu_model()} ({torch.backends.cpu.get_cpu_capability()})"


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it (else what platform knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def precision(device: torch.device) -> tuple[torch.dtype | None, torch.memory_format]:
    """Autocast dtype (None: plain float32) and memory format: those :func:`scalesearch.proxy.train` uses.

    A latency budget should describe the network as the search runs it: bf16
    autocast with channels_last on CUDA, float32 with channels_last on the CPU.
    """
    return amp_dtype(device), torch.channels_last


def conditions_for(device: torch.device, batch: int, threads: int | None = None) -> Conditions:
    if batch < 1:
        raise ScaleSearchError(f"latency batch must be at least 1, got {batch}")
    dtype, fmt = precision(device)
    return Conditions(device_name(device), torch.__version__, threads or torch.get_num_threads(), batch,
                      str(dtype or torch.float32).removeprefix("torch."), str(fmt).removeprefix("torch."))


def network_identity(spec: NetworkSpec) -> str:
    """The canonical text of what a spec builds for inference.

    As :func:`scalesearch.arch.network_key`, the multipliers that led to the spec
    are cleared; so are its nominal resolution (the side is part of the cache key)
    and dropout (no effect in eval mode), so twins share one measurement.
    """
    return repr(replace(spec, name="", width_mult=1.0, depth_mult=1.0, resolution=0, dropout=0.0))


def cache_key(spec: NetworkSpec, side: int, num_classes: int, in_channels: int, cond: Conditions) -> str:
    text = json.dumps([network_identity(spec), side, num_classes, in_channels, asdict(cond)], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()


def time_network(net: torch.nn.Module, side: int, in_channels: int, device: torch.device, cond: Conditions,
                 min_run_time: float = MIN_RUN_TIME, warmup: int = WARMUP) -> Latency:
    """Time `net`'s forward pass on a batch of ``cond.batch`` images of `side` px; the one place that measures."""
    from torch.utils.benchmark import Timer

    _, fmt = precision(device)
    net = net.to(device, memory_format=fmt).eval()
    x = torch.randn(cond.batch, in_channels, side, side, device=device).contiguous(memory_format=fmt)
    amp = autocast(device)

    def forward() -> None:
        with torch.inference_mode(), amp:
            net(x)

    for _ in range(warmup):
        forward()
    sync(device)
    timer = Timer("forward()", globals={"forward": forward}, num_threads=cond.threads)
    rounds = []
    while len(rounds) < MAX_ROUNDS:
        rounds.append(timer.blocked_autorange(min_run_time=min_run_time))
        if len(rounds) >= MIN_ROUNDS and _agree(sorted(r.median for r in rounds)[:2]):
            break
    best = min(rounds, key=lambda r: r.median)
    settled = _agree(sorted(r.median for r in rounds)[:2])
    return Latency(best.median, best.iqr, len(best.times), cond, len(rounds), settled)


def _agree(fastest: list[float]) -> bool:
    return len(fastest) == 2 and fastest[1] <= fastest[0] * (1 + AGREE)


class LatencyCache:
    """Measured latencies in one JSON file, written whole (atomically) after each new entry.

    Each write merges what is on disk first, so workers sharing the file keep each
    other's entries; two writing at the same instant can still drop one entry,
    which costs a measurement again, never a wrong figure.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.entries: dict[str, dict] = self._read()

    def _read(self) -> dict[str, dict]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") != CACHE_VERSION:
                return {}  # an older layout: measure again rather than misread it
            return dict(data["entries"])
        except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
            raise ScaleSearchError(f"latency cache {self.path} is unreadable ({exc}); delete it to measure again") from None

    def get(self, key: str) -> Latency | None:
        entry = self.entries.get(key)
        return Latency.from_dict(entry) if entry else None

    def put(self, key: str, latency: Latency) -> None:
        self.entries = {**self._read(), **self.entries, key: latency.to_dict()}
        write_text(self.path, json.dumps({"version": CACHE_VERSION, "entries": self.entries}, indent=1, sort_keys=True))


# Called after each network with (networks done, networks asked for, its latency, whether it came from the cache).
Progress = Callable[[int, int, Latency, bool], None]


class Meter:
    """Measures networks under fixed conditions, reusing cached figures; counts what it measured and the time spent.

    `device` must exist (``cuda`` on a machine without one is an error), `batch` is
    the images per forward pass, `threads` defaults to torch's current setting.
    """

    def __init__(self, device: str | torch.device = "cpu", batch: int = 1, *, threads: int | None = None,
                 cache: LatencyCache | str | Path | None = None, num_classes: int = 1000, in_channels: int = 3,
                 min_run_time: float = MIN_RUN_TIME, warmup: int = WARMUP):
        self.device = resolve_device(device)
        self.conditions = conditions_for(self.device, batch, threads)
        self.cache = LatencyCache(cache) if isinstance(cache, (str, Path)) else cache
        self.num_classes, self.in_channels = num_classes, in_channels
        self.min_run_time, self.warmup = min_run_time, warmup
        self.measured = self.reused = 0
        self.seconds = 0.0  # wall time spent building and measuring (cache hits cost ~nothing)

    def measure(self, spec: NetworkSpec, side: int) -> Latency:
        """A fresh measurement of `spec` at `side` px, cache neither read nor written."""
        if side < 1:
            raise ScaleSearchError(f"latency side must be at least 1 px, got {side}")
        from ._model import build

        start = time.perf_counter()
        net = build(spec, self.num_classes, self.in_channels)
        lat = time_network(net, side, self.in_channels, self.device, self.conditions, self.min_run_time, self.warmup)
        self.measured += 1
        self.seconds += time.perf_counter() - start
        return lat

    def key(self, spec: NetworkSpec, side: int) -> str:
        return cache_key(spec, side, self.num_classes, self.in_channels, self.conditions)

    def cached(self, spec: NetworkSpec, side: int) -> Latency | None:
        return self.cache.get(self.key(spec, side)) if self.cache is not None else None

    def remember(self, spec: NetworkSpec, side: int, lat: Latency) -> None:
        """Store a measurement made outside :meth:`latency` (e.g. the fastest of several)."""
        if self.cache is not None:
            self.cache.put(self.key(spec, side), lat)

    def latency(self, spec: NetworkSpec, side: int) -> Latency:
        """`spec`'s latency at `side` px: from the cache when measured before under these conditions."""
        hit = self.cached(spec, side)
        if hit is not None:
            self.reused += 1
            return hit
        lat = self.measure(spec, side)
        self.remember(spec, side, lat)
        return lat

    def many(self, items: Iterable[tuple[NetworkSpec, int]], on_progress: Progress | None = None) -> list[Latency]:
        """Latencies of (spec, side) pairs in order; each network once, however often it appears."""
        items = list(items)
        done: dict[str, Latency] = {}
        out = []
        for i, (spec, side) in enumerate(items, 1):
            key = self.key(spec, side)
            before = self.measured
            if key not in done:
                done[key] = self.latency(spec, side)
            out.append(done[key])
            if on_progress:
                on_progress(i, len(items), done[key], self.measured == before)
        return out


def repeatability(meter: Meter, spec: NetworkSpec, side: int, times: int = 3) -> float:
    """Coefficient of variation of `times` fresh measurements (medians) of one network.

    It is the noise of the whole procedure on this machine now (load from other
    work included), which the IQR of one measurement understates when the load
    changes between measurements.
    """
    if times < 2:
        raise ScaleSearchError(f"repeatability needs at least 2 measurements, got {times}")
    medians = [meter.measure(spec, side).seconds for _ in range(times)]
    return statistics.stdev(medians) / statistics.fmean(medians)


def distinguishable(a: float, b: float, cv: float, z: float = 1.96) -> bool:
    """Whether latencies `a` and `b` differ by more than measurement noise with relative sd `cv` explains.

    The log-ratio of two independent measurements has sd ≈ cv·√2; a gap within
    `z` of those (95% by default) is not called a difference.
    """
    if a <= 0 or b <= 0:
        raise ValueError(f"latencies must be positive, got {a} and {b}")
    return abs(math.log(a / b)) > z * math.sqrt(2) * cv
