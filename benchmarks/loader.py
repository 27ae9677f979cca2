"""Device-resident loader vs the training step it feeds (issue #6): the loader must never be the bottleneck.

The loader figure is a whole shuffled, augmented epoch of the embedded data
(:meth:`scalesearch.data.DeviceData.train_batches`) at the proxy's batch size;
the training figure is ours from throughput.py at the same side and batch.
"""
from __future__ import annotations

import torch

from scalesearch.arch import load_base, scale
from scalesearch.data import DeviceData, load_data
from scalesearch.device import sync
from scalesearch.space import ProxySettings

from .common import best_of, console, isolated, section, table
from .throughput import SIDE, THREADS, steps_for, train_step_rate


def epoch_rate(data: DeviceData, batch: int, resolution: int, repeats: int) -> float:
    """Images/s of the fastest of `repeats` epochs."""
    gen = torch.Generator().manual_seed(0)

    def epoch() -> None:
        for _ in data.train_batches(batch, resolution, gen):
            pass
        sync(data.device)

    epoch()  # warm-up: first-touch allocations
    seconds, _ = best_of(epoch, repeats)
    return data.num_train / seconds


def run(quick: bool = False, device: str = "cpu") -> str:
    repeats = 1 if quick else 3
    warmup, steps = steps_for(quick, device)
    batch, side = ProxySettings().batch_size, SIDE
    torch.set_num_threads(THREADS)
    data = DeviceData(load_data("embedded"), torch.device(device))
    rows = []
    for resolution in (side, 2 * side, 4 * side) + ((224,) if device == "cuda" else ()):
        console.log(f"loader: {resolution} px")
        loaded = epoch_rate(data, batch, resolution, repeats)
        trained = isolated(train_step_rate, scale(load_base("b0"), resolution=resolution), batch, device, "ours", warmup, steps)
        rows.append([resolution, batch, loaded, trained["images_per_s"], f"{loaded / trained['images_per_s']:,.0f}"])
    headers = ["resolution (px)", "batch", "loader (img/s)", "B0 train step (img/s)", "loader / train step (×)"]
    note = (f"Loader: an epoch of {data.num_train:,} images (crop, flip, resize, normalise, channels_last) on {device}, "
            f"fastest of {repeats}; train step: B0, ours, {steps} timed steps after {warmup} warm-up.")
    return section(f"Data loader vs training step ({device})", device, table(headers, rows), note)
