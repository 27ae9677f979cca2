"""Device-resident batching: a Dataset's uint8 tensors on the training device, as ready float batches.

Proxy training is short, so per-image Python in the input pipeline would
dominate: crops, flips, resizing and normalising are whole-batch tensor ops.
Small images get a padded random crop and flip; photos (image folders of
colour images of at least ``folder.PHOTO_SIDE`` px) ImageNet-style
random-resized crops and flips, and a centre crop for val.

>>> from scalesearch.data import load_data
>>> data = DeviceData(load_data("synthetic:40"), torch.device("cpu"))
>>> x, y = next(data.train_batches(16, 24, torch.Generator().manual_seed(0)))
>>> tuple(x.shape), x.dtype
((16, 1, 24, 24), torch.float32)
"""
from __future__ import annotations

import math
from typing import Iterator

import torch
import torch.nn.functional as F

from ._load import Dataset

RRC_SCALE = (0.25, 1.0)  # area fraction of a random-resized crop: 0.08 is too harsh for 2-epoch proxies
RRC_RATIO = (3 / 4, 4 / 3)
VAL_CROP = 0.875  # photos are scored on their centre region, as on ImageNet


class DeviceData:
    """Holds a Dataset's uint8 tensors on `device` once; yields ready float batches.

    Train batches of small images get the standard small-image augmentation
    (random crop from a zero-padded image, padding 1/8 of the side, i.e. 4 px at
    32 px, and a random horizontal flip) and are then resized to the trial's
    resolution. Photos (``ds.augment == "random-resized-crop"``) get a random crop
    of RRC_SCALE of the area and RRC_RATIO aspect, flipped and resized in one
    grid_sample, and are scored on their centre VAL_CROP. Every batch is then
    normalised with the train set's per-channel mean and std and, if asked, made
    channels_last. All of it is whole-batch tensor ops on the device.
    """

    def __init__(self, ds: Dataset, device: torch.device, channels_last: bool = True):
        self.device = torch.device(device)
        self.channels_last = channels_last
        self.num_classes, self.in_channels = ds.num_classes, ds.in_channels
        self.train_x, self.train_y = ds.train_x.to(self.device), ds.train_y.to(self.device)
        self.val_x, self.val_y = ds.val_x.to(self.device), ds.val_y.to(self.device)
        mean, std = _channel_stats(ds.train_x)
        self.mean, self.std = tuple(mean.tolist()), tuple(std.tolist())
        # Normalising uint8 values v: (v / 255 - mean) / std == v * scale + shift.
        self._scale = (1 / (255 * std)).float().view(1, -1, 1, 1).to(self.device)
        self._shift = (-mean / std).float().view(1, -1, 1, 1).to(self.device)
        self.pad = max(1, round(min(ds.train_x.shape[-2:]) / 8))
        self.photos = ds.augment == "random-resized-crop"

    @property
    def num_train(self) -> int:
        return len(self.train_y)

    @property
    def num_val(self) -> int:
        return len(self.val_y)

    def train_batches(self, batch_size: int, resolution: int,
                      generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One shuffled, augmented epoch; every image once, the last batch may be smaller."""
        n, gdev = self.num_train, generator.device
        # The whole epoch's random draws at once, on the generator's device: one copy, reproducible.
        perm = torch.randperm(n, generator=generator, device=gdev).to(self.device)
        if self.photos:
            draws = torch.rand((n, 4), generator=generator, device=gdev).to(self.device)
        else:
            draws = torch.randint(0, 2 * self.pad + 1, (n, 2), generator=generator, device=gdev).to(self.device)
        flips = torch.randint(0, 2, (n,), generator=generator, device=gdev).bool().to(self.device)
        for start in range(0, n, batch_size):
            idx, end = perm[start:start + batch_size], start + batch_size
            if self.photos:
                x = self._resized_crop_flip(self.train_x[idx], draws[start:end], flips[start:end], resolution)
            else:
                x = self._crop_flip(self.train_x[idx], draws[start:end], flips[start:end])
            yield self._finish(x, resolution), self.train_y[idx]

    def val_batches(self, batch_size: int, resolution: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The val set in a fixed order, without augmentation."""
        side = self.val_x.shape[-1]
        m = round(side * (1 - VAL_CROP) / 2) if self.photos else 0
        for start in range(0, self.num_val, batch_size):
            x = self.val_x[start:start + batch_size, :, m:side - m, m:side - m]
            yield self._finish(x, resolution), self.val_y[start:start + batch_size]

    def _crop_flip(self, x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
        """Per-sample crop of the padded batch, the flip folded into the column index: one gather."""
        b, c, h, w = x.shape
        width = w + 2 * self.pad
        padded = F.pad(x, (self.pad,) * 4).view(b, c, -1)
        rows = offsets[:, :1] + torch.arange(h, device=x.device)
        cols = torch.arange(w, device=x.device).expand(b, w)
        cols = offsets[:, 1:] + torch.where(flips[:, None], w - 1 - cols, cols)
        # A flat index per output pixel; 4x faster on CPU than 4-tensor advanced indexing.
        flat = (rows[:, :, None] * width + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
        return padded.gather(2, flat).view(b, c, h, w)

    def _resized_crop_flip(self, x: torch.Tensor, draws: torch.Tensor, flips: torch.Tensor,
                           resolution: int) -> torch.Tensor:
        """Random-resized crops (uniform area fraction, log-uniform aspect, uniform place), flipped
        and resized to `resolution`; float out.

        grid_sample does not antialias, and 2 px detail aliases into noise when it shrinks: the
        crops are sampled at the stored side (a crop only ever grows there), then shrunk with an
        antialiased resize. Stored sides beyond 2 × `resolution` are shrunk to that first, to bound the cost.
        """
        x = x.float()
        if min(x.shape[-2:]) > 2 * resolution:
            x = F.interpolate(x, size=(2 * resolution, 2 * resolution), mode="bilinear", antialias=True)
        out = max(resolution, x.shape[-1])
        area = RRC_SCALE[0] + (RRC_SCALE[1] - RRC_SCALE[0]) * draws[:, 0]
        lo, hi = math.log(RRC_RATIO[0]), math.log(RRC_RATIO[1])
        ratio = torch.exp(lo + (hi - lo) * draws[:, 1])
        w, h = (area * ratio).sqrt().clamp(max=1), (area / ratio).sqrt().clamp(max=1)  # fractions of the side
        theta = torch.zeros(len(x), 2, 3, device=x.device)
        theta[:, 0, 0] = torch.where(flips, -w, w)
        theta[:, 1, 1] = h
        theta[:, 0, 2] = (1 - w) * (2 * draws[:, 2] - 1)  # centre, in [-1, 1] image coordinates
        theta[:, 1, 2] = (1 - h) * (2 * draws[:, 3] - 1)
        grid = F.affine_grid(theta, [len(x), x.shape[1], out, out], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if out == resolution:
            return x
        return F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True)

    def _finish(self, x: torch.Tensor, resolution: int) -> torch.Tensor:
        x = x.float()
        if self.channels_last:  # before resizing: interpolate keeps the memory format
            x = x.contiguous(memory_format=torch.channels_last)
        if x.shape[-2:] != (resolution, resolution):
            # Antialias only acts when shrinking (e.g. a 64 px folder at 32 px) and avoids aliasing there.
            x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False,
                              antialias=resolution < min(x.shape[-2:]))
        return x.mul_(self._scale).add_(self._shift)


def _channel_stats(x: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images in [0, 1] units, in float64 chunks to bound memory."""
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk].double()
        total += part.sum((0, 2, 3))
        squares += part.square().sum((0, 2, 3))
    count = max(1, x.numel() // x.shape[1])
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    return mean / 255, (std / 255).clamp_min(1e-3)  # a constant channel must not divide by zero
