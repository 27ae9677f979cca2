"""Short proxy training runs: one candidate network, a few epochs, validation top-1 per epoch.

The data already sits on the device (:class:`scalesearch.data.DeviceData`);
the hot loop makes no host round trip per step: losses accumulate on the
device and are read once per epoch, which is also where divergence is caught.
On CUDA it trains in bf16 autocast with channels_last (no cudnn autotuning); on
the CPU it uses channels_last (1.5–2.5× faster than contiguous memory for B0 at
32–128 px on 2 threads; README, "Latest figures").

>>> import torch
>>> from scalesearch.arch import load_base, scale
>>> from scalesearch.data import DeviceData, load_data
>>> from scalesearch.space import ProxySettings
>>> data = DeviceData(load_data("synthetic:64"), torch.device("cpu"))
>>> r = train(scale(load_base("tiny-mbconv")), data, ProxySettings(epochs=1, batch_size=32), resolution=16, seed=0)
>>> len(r.val_acc), 0.0 <= r.val_acc[0] <= 1.0
(1, True)
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ..arch._spec import NetworkSpec
from ..data._batches import DeviceData
from ..device import autocast, sync
from ..arch._model import build, zero_init
from ..space._space import ProxySettings

# Called after every epoch with (epoch index from 0, val top-1 in [0, 1], val loss).
# It may raise (e.g. optuna.TrialPruned) to stop the run early.
EpochHook = Callable[[int, float, float], None]


# A mean training loss this many times the uniform guess's ln(classes) means the weights blew up.
EXPLODED = 10


class Diverged(RuntimeError):
    """The training or validation loss became NaN or infinite."""


class DidNotLearn(RuntimeError):
    """Training ended with a val top-1 that chance alone explains: no score to rank."""


def require_learning(result: ProxyResult, num_classes: int, val_images: int) -> None:
    """Raise :class:`DidNotLearn` when the final val loss and val top-1 are both no better than chance.

    The classifier starts at zero, so every network starts at the uniform guess's loss,
    ln(classes), whatever the label smoothing. A run whose val loss ends no lower than
    that and whose val top-1 lies within 3 standard errors of chance has learned
    nothing, and ranking it would rank noise (a learning rate of 1e6 keeps the training
    loss finite near 1e20 and predicts one class).
    """
    chance, uniform = 1 / num_classes, math.log(num_classes)
    bar = chance + 3 * math.sqrt(chance * (1 - chance) / val_images)
    if result.val_loss[-1] >= uniform and result.final_acc <= bar:
        raise DidNotLearn(f"did not learn: val loss {result.val_loss[-1]:.3g} is no lower than the uniform guess's "
                          f"{uniform:.3f} and val top-1 {result.final_acc:.1%} is chance level ({chance:.1%} for "
                          f"{num_classes} classes)")


@dataclass
class ProxyResult:
    val_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    train_images: int = 0
    val_logits: torch.Tensor | None = None  # the last evaluation's, on the CPU in val order; only when asked for

    @property
    def final_acc(self) -> float:
        return self.val_acc[-1]

    @property
    def best_epoch(self) -> int:
        return max(range(len(self.val_acc)), key=self.val_acc.__getitem__)


def make_optimizer(net: nn.Module, s: ProxySettings, reference: nn.Module | None = None) -> torch.optim.Optimizer:
    """The settings' optimiser over `net`; with `reference` (the same network at the proxy base's width),
    each weight's rate is scaled by :func:`width_factors`."""
    # No weight decay on BatchNorm and biases (1-D tensors), as in the official recipe.
    params = list(net.parameters())
    factors = width_factors(net, reference) if reference is not None else [1.0] * len(params)
    alike: dict[tuple[bool, float], list] = {}  # (decayed, rate factor) → parameters
    for p, f in zip(params, factors):
        alike.setdefault((p.ndim > 1, f), []).append(p)
    groups = [{"params": ps, "lr": s.lr * f, "weight_decay": s.weight_decay if decay else 0.0}
              for (decay, f), ps in alike.items()]
    if s.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=s.lr, momentum=s.momentum, nesterov=s.momentum > 0)
    if s.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=s.lr)
    return torch.optim.RMSprop(groups, lr=s.lr, alpha=0.9, eps=1e-3, momentum=s.momentum)


def width_factors(net: nn.Module, reference: nn.Module) -> list[float]:
    """Per parameter of `net`: its layer's fan-in in `reference` over its own for weights, 1 for vectors.

    An Adam step moves every weight by about the rate, so a layer with k times the inputs changes its
    outputs about k times as much per step: at one fixed rate a wider network trains as if at a higher
    rate, which a short proxy rewards. Scaling each weight's rate by the inverse of its fan-in (relative
    to the network at β = 1) is μP's rule for Adam (Yang et al. 2022); depthwise kernels, the stem and all
    vectors keep the rate, as their fan-in does not grow with width.
    """
    pairs = list(zip(net.parameters(), reference.parameters(), strict=True))  # the same layers, or ValueError
    if any(p.ndim != r.ndim for p, r in pairs):
        raise ValueError("the reference network must have the same layers as the network it scales")
    fan_in = lambda t: t.shape[1] * math.prod(t.shape[2:])
    return [fan_in(r) / fan_in(p) if p.ndim > 1 else 1.0 for p, r in pairs]


def lr_factor(s: ProxySettings, step: int, total: int, warmup: int) -> float:
    """Multiplier of the base learning rate at `step` (linear warmup, then the schedule)."""
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    if s.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t))
    if s.schedule == "step":
        return 0.1 ** (int(t >= 0.5) + int(t >= 0.75))
    return 1.0


def train(
    spec: NetworkSpec,
    data: DeviceData,
    settings: ProxySettings,
    resolution: int,
    seed: int = 0,
    on_epoch: EpochHook | None = None,
    on_step: Callable[[int, int], None] | None = None,
    compile: bool = False,
    every_epoch: bool = True,
    keep_logits: bool = False,
    reference: NetworkSpec | None = None,
) -> ProxyResult:
    """Train `spec` from scratch for ``settings.epochs`` epochs; evaluate after each.

    Deterministic on the CPU for a given seed (weights, shuffling, augmentation,
    dropout). Raises :class:`Diverged` on a NaN/inf loss. Without `every_epoch`
    only the last epoch is evaluated (pruners need every epoch; racing does not). With
    `keep_logits` the result holds the last evaluation's val logits (to compare scores).
    `reference` is `spec` at the proxy base's width (β = 1), which ``settings.lr_scaling = "width"``
    scales each layer's rate against (:func:`width_factors`). `compile` runs the
    training steps through torch.compile; it pays only on long runs (on 2 CPU
    cores B0 took 158 s to compile and then trained at 0.92× eager speed).
    """
    device = data.device
    torch.manual_seed(seed)
    net = build(spec, data.num_classes, data.in_channels, drop_path=settings.drop_path, bn_momentum=settings.bn_momentum)
    zero_init(net)
    net = net.to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(net, settings, _reference(reference, data, settings))
    # Only the training step is compiled; evaluation and BN recalibration run eagerly on the
    # same parameters, so switching to eval mode costs no recompilation.
    step_net = torch.compile(net) if compile else net
    scored = averaged(net, settings.ema)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    loss_fn = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(data.num_train / settings.batch_size)
    total, warmup = settings.epochs * steps_per_epoch, settings.warmup_epochs * steps_per_epoch
    amp = autocast(device)
    result, step, start = ProxyResult(), 0, time.perf_counter()
    for epoch in range(settings.epochs):
        net.train()
        loss_sum = torch.zeros((), device=device)
        for x, y in data.train_batches(settings.batch_size, resolution, gen):
            for g, lr in zip(optimizer.param_groups, base_lrs):
                g["lr"] = lr * lr_factor(settings, step, total, warmup)
            loss = train_step(step_net, optimizer, loss_fn, x, y, amp)
            if scored is not net:
                scored.update_parameters(net)
            loss_sum += loss.detach().float() * len(y)
            step += 1
            if on_step:
                on_step(step, total)
        train_loss = loss_sum.item() / data.num_train  # the one sync per epoch
        if not math.isfinite(train_loss) or train_loss > EXPLODED * math.log(data.num_classes):
            raise Diverged(f"training loss became {train_loss:.3g} in epoch {epoch + 1} "
                           f"(it starts at ln({data.num_classes}) = {math.log(data.num_classes):.3f})")
        result.train_images += data.num_train
        if not every_epoch and epoch + 1 < settings.epochs:
            continue
        recalibrate_bn(scored, data, settings.batch_size, resolution, amp, gen)
        logits = [] if keep_logits else None
        acc, val_loss = evaluate(scored, data, settings.batch_size, resolution, amp, logits)
        result.val_logits = torch.cat(logits).cpu() if keep_logits else None
        if not math.isfinite(val_loss):
            raise Diverged(f"validation loss became {val_loss} in epoch {epoch + 1}")
        result.train_loss.append(train_loss)
        result.val_acc.append(acc)
        result.val_loss.append(val_loss)
        result.seconds = time.perf_counter() - start
        if on_epoch:
            on_epoch(epoch, acc, val_loss)
    return result


def _reference(spec: NetworkSpec | None, data: DeviceData, settings: ProxySettings) -> nn.Module | None:
    """The network whose fan-ins width scaling divides by, shapes only (no memory), or None without it."""
    if settings.lr_scaling != "width":
        return None
    if spec is None:
        raise ValueError('lr_scaling = "width" needs the network at β = 1 (`reference`)')
    with torch.device("meta"):
        return build(spec, data.num_classes, data.in_channels)


def averaged(net: nn.Module, decay: float) -> nn.Module:
    """The network that is evaluated: `net` itself, or with `decay` > 0 an exponential moving average
    of its weights over the training steps (its BatchNorm statistics are recalibrated before use)."""
    if decay <= 0:
        return net
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)


# Steps of a fresh network left out of its timing (allocation and kernel choice).
WARMUP_STEPS = 3


def seconds_per_image(spec: NetworkSpec, data: DeviceData, settings: ProxySettings, resolution: int, steps: int = 4,
                      warmup: int = WARMUP_STEPS) -> float:
    """Training seconds per image of `spec` on `data`'s device: the median of `steps` timed steps after `warmup`.

    For the run's expected time: a few steps cost a second or two, and a proxy's cost scales
    with its multiply-adds, so one timed network prices every candidate. The first steps of a
    fresh network allocate and pick kernels (several times a later step's time on the CPU), so
    they are left out; the median keeps a moment of contention on a shared machine from deciding.
    """
    net = build(spec, data.num_classes, data.in_channels).to(data.device, memory_format=torch.channels_last).train()
    optimizer = make_optimizer(net, settings)
    loss_fn = nn.CrossEntropyLoss()
    amp = autocast(data.device)
    gen = torch.Generator().manual_seed(0)
    batches = itertools.chain.from_iterable(data.train_batches(settings.batch_size, resolution, gen)
                                            for _ in itertools.count())  # epochs on end: tiny data has few batches
    per_image, last = [], time.perf_counter()
    for _, (x, y) in zip(range(warmup + steps), batches):  # each step's time includes making its batch (augmentation)
        train_step(net, optimizer, loss_fn, x, y, amp)
        sync(data.device)
        now = time.perf_counter()
        per_image.append((now - last) / len(y))
        last = now
    timed = sorted(per_image[warmup:])
    return timed[len(timed) // 2]


def train_step(net: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor,
               amp: torch.autocast) -> torch.Tensor:
    """One optimiser step on a batch; returns the loss (not synchronised)."""
    with amp:
        loss = loss_fn(net(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


# Images whose batch statistics become the BatchNorm running stats before each evaluation.
BN_CALIBRATION_IMAGES = 256


@torch.no_grad()
def recalibrate_bn(net: nn.Module, data: DeviceData, batch_size: int, resolution: int, amp, gen: torch.Generator) -> None:
    """Reset BatchNorm running stats to plain averages over a few training batches.

    A proxy run is too short for momentum averages to catch up with weights that
    are still moving fast: B0 at 32 px on 1000 images scored chance (10%) after
    its first epoch with them and 46% with recalibrated stats, so early-epoch
    scores (which the pruners act on) measure the network, not the lag of its
    statistics.
    """
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    momentum = bns[0].momentum if bns else None
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    seen = 0
    for x, _ in data.train_batches(batch_size, resolution, gen):
        with amp:
            net(x)
        seen += len(x)
        if seen >= BN_CALIBRATION_IMAGES:
            break
    for m in bns:
        m.momentum = momentum


@torch.no_grad()
def evaluate(net: nn.Module, data: DeviceData, batch_size: int, resolution: int, amp,
             logits_out: list | None = None) -> tuple[float, float]:
    """Validation top-1 (fraction) and mean cross-entropy; each batch's logits appended to `logits_out` if given."""
    net.eval()
    correct = torch.zeros((), device=data.device)
    loss_sum = torch.zeros((), device=data.device)
    for x, y in data.val_batches(batch_size * 2, resolution):
        with amp:
            logits = net(x).float()
        if logits_out is not None:
            logits_out.append(logits)
        correct += (logits.argmax(1) == y).sum()
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum")
    n = data.num_val
    return correct.item() / n, loss_sum.item() / n
