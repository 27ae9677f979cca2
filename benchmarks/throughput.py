"""Proxy training throughput and peak memory: ours (channels_last) vs contiguous vs timm (issue #6).

Each configuration trains in a fresh process (so its peak memory is its own)
on one fixed batch of the embedded data: forward, backward and an SGD step as
:func:`scalesearch.proxy.train` runs them (same builder, zero init, loss,
parameter groups; bf16 autocast on CUDA). The loader is measured apart (loader.py).
"""
from __future__ import annotations

import time
from dataclasses import replace

import torch
from torch import nn

from scalesearch.proxy import _train as proxy
from scalesearch.arch import NetworkSpec, load_base, scale
from scalesearch.data import DeviceData, load_data
from scalesearch.arch import build, zero_init
from scalesearch.space import Candidate, assess, candidate_spec
from scalesearch.space import ProxySettings

from .common import console, isolated, peak_rss_mb, section, table

THREADS = 2  # the CPU figures are for this many threads, whatever the machine has
CANDIDATE = Candidate(1.2, 1.1, 1.15)  # the paper's B1 step: 2× nominal (α·β²·γ² = 1.92)
TIMM_MISSING = "timm not installed"
# B0's smallest side in the tables (then 2× and 4× on the CPU). Not ProxySettings().resolution: that is
# "auto" since the proxy's side is chosen per grid (scalesearch.space).
SIDE = 32


def networks(device: str) -> list[tuple[str, NetworkSpec]]:
    """(label, spec at its training side): B0 at the proxy sides, plus the 2× candidate at its proxy side."""
    base, proxy_res = load_base("b0"), SIDE
    sides = (224, proxy_res) if device == "cuda" else (proxy_res, 2 * proxy_res, 4 * proxy_res)
    specs = [("B0", scale(base, resolution=side)) for side in sides]
    c, a = CANDIDATE, assess(base, CANDIDATE, proxy_res)
    label = f"2× candidate α={c.alpha} β={c.beta} γ={c.gamma} ({a.measured_target:.2f}× measured)"
    specs.append((label, candidate_spec(base, c, a.proxy_resolution)))
    return specs


def train_step_rate(spec: NetworkSpec, batch: int, device: str, layout: str = "ours", warmup: int = 3, steps: int = 10,
                    max_seconds: float = 30.0) -> dict:
    """Images/s of the training step and peak memory; layout is ours (channels_last), contiguous or timm.

    Times `steps` steps, or fewer (at least 2) once `max_seconds` have passed: a
    contiguous B0 at 128 px, batch 256, takes about a minute per step on 2 threads.
    """
    dev = torch.device(device)
    proxy.configure(dev)
    torch.set_num_threads(THREADS)
    data = DeviceData(load_data("embedded"), dev, channels_last=layout != "contiguous")
    x, y = next(data.train_batches(batch, spec.resolution, torch.Generator().manual_seed(0)))
    settings = replace(ProxySettings(), optimizer="sgd")
    rss_before = peak_rss_mb()
    torch.manual_seed(0)
    if layout == "timm":
        import timm

        net = timm.create_model("efficientnet_b0", num_classes=data.num_classes, in_chans=data.in_channels)
    else:
        net = build(spec, data.num_classes, data.in_channels, drop_path=settings.drop_path, bn_momentum=settings.bn_momentum)
        zero_init(net)
    fmt = torch.contiguous_format if layout == "contiguous" else torch.channels_last
    net = net.to(dev, memory_format=fmt).train()
    optimizer = proxy.make_optimizer(net, settings)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    amp = proxy.autocast(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    def step() -> None:
        proxy.train_step(net, optimizer, loss_fn, x, y, amp)

    for _ in range(warmup):
        step()
    proxy.sync(dev)
    t0, done = time.perf_counter(), 0
    # The clock is read without a sync, so it bounds CPU runs only (CUDA steps take milliseconds).
    while done < steps and (dev.type == "cuda" or done < 2 or time.perf_counter() - t0 < max_seconds):
        step()
        done += 1
    proxy.sync(dev)
    seconds = time.perf_counter() - t0
    return {"images_per_s": done * batch / seconds, "steps": done, "peak_rss_mb": peak_rss_mb(), "rss_delta_mb": peak_rss_mb() - rss_before,
            "cuda_max_mb": torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None}


def steps_for(quick: bool, device: str) -> tuple[int, int]:
    """(warm-up, timed) steps: a GPU step takes milliseconds, so it needs more of both to settle."""
    warmup, steps = (2, 3) if quick else (3, 10)
    return (warmup * 5, steps * 5) if device == "cuda" else (warmup, steps)


def timm_available() -> bool:
    try:
        import timm  # noqa: F401
    except ImportError:
        return False
    return True


def run(quick: bool = False, device: str = "cpu") -> str:
    warmup, steps = steps_for(quick, device)
    batches = [ProxySettings().batch_size] + ([] if quick else [256])
    has_timm = timm_available()
    torch.set_num_threads(THREADS)  # as in the children, so the machine line says what they ran with
    rows = []
    for label, spec in networks(device):
        for batch in batches:
            console.log(f"throughput: {label} at {spec.resolution} px, batch {batch}")
            ours = isolated(train_step_rate, spec, batch, device, "ours", warmup, steps)
            plain = isolated(train_step_rate, spec, batch, device, "contiguous", warmup, steps)
            if not has_timm:
                timm_rate, vs_timm = TIMM_MISSING, "—"
            elif label == "B0":
                timm_rate = isolated(train_step_rate, spec, batch, device, "timm", warmup, steps)["images_per_s"]
                vs_timm = f"{ours['images_per_s'] / timm_rate:.2f}"
            else:
                timm_rate, vs_timm = "— (B0 only)", "—"
            memory = ([f"{ours['cuda_max_mb']:,.0f}"] if device == "cuda"
                      else [f"{ours['peak_rss_mb']:,.0f}", f"{ours['rss_delta_mb']:,.0f}"])
            rows.append([label, spec.resolution, batch, ours["images_per_s"], plain["images_per_s"],
                         f"{ours['images_per_s'] / plain['images_per_s']:.2f}", timm_rate, vs_timm, *memory])
    memory_headers = (["ours CUDA max allocated (MB)"] if device == "cuda"
                      else ["ours peak RSS (MB)", "ours RSS growth in training (MB)"])
    headers = ["network", "resolution (px)", "batch", "ours channels_last (img/s)", "contiguous (img/s)",
               "ours / contiguous (×)", "timm efficientnet_b0 channels_last (img/s)", "ours / timm (×)", *memory_headers]
    precision = "bf16 autocast" if device == "cuda" else f"fp32, {THREADS} threads"
    note = (f"Forward + backward + SGD step on one fixed batch of the embedded data ({precision}); {warmup} warm-up steps, "
            f"then {steps} timed (fewer, at least 2, past 30 s); each configuration in its own process. "
            f"Batch {batches[0]} is the proxy's.")
    return section(f"Proxy training throughput ({device})", device, table(headers, rows), note)
