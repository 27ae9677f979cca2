"""The PyTorch network for a :class:`~scalesearch.arch.NetworkSpec`.

Layer for layer the official EfficientNet: MBConv blocks (1×1 expansion,
k×k depthwise, squeeze-excitation, 1×1 projection, residual with stochastic
depth), SiLU, BatchNorm with eps 1e-3 and PyTorch momentum 0.01 (TF's 0.99),
dropout before the classifier and the official weight initialisation.

>>> from scalesearch.arch import load_base, scale
>>> net = build(scale(load_base("b0")), num_classes=10)
>>> sum(p.numel() for p in net.parameters())
4020358
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._spec import Block, NetworkSpec

BN_EPS, BN_MOMENTUM = 1e-3, 0.01


class _SmallMapDepthwise(torch.autograd.Function):
    """Depthwise conv whose weight gradient is summed tap by tap.

    On the CPU, PyTorch's depthwise weight gradient takes a slow path when the
    kernel is larger than the feature map (the late stages at proxy resolutions):
    B0 at 32 px spent 60% of a training step there (172 ms for one 5×5 conv on
    1×1 maps, batch 256). Summing go × shifted input per tap takes 1-10 ms.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, stride: int) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        ctx.stride = stride
        return F.conv2d(x, w, None, stride, w.shape[-1] // 2, 1, w.shape[0])

    @staticmethod
    def backward(ctx, go: torch.Tensor):
        x, w = ctx.saved_tensors
        s, k = ctx.stride, w.shape[-1]
        gx = torch.ops.aten.convolution_backward(go, x, w, None, [s, s], [k // 2, k // 2], [1, 1], False, [0, 0],
                                                 w.shape[0], (True, False, False))[0]
        xp = F.pad(x, (k // 2,) * 4)
        ho, wo = go.shape[2:]
        gw = torch.stack([(go * xp[:, :, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s]).sum((0, 2, 3))
                          for i in range(k) for j in range(k)], 1)
        return gx, gw.view_as(w), None


class DepthwiseConv(nn.Conv2d):
    """k×k depthwise conv, stride 1 or 2, padding k//2, no bias; fast to train on small maps.

    Where the kernel exceeds the map, only its central (2·side − 1)² taps ever meet
    the input; training uses just those (the outer taps get a zero gradient, as
    they would anyway) and the tap-wise weight gradient above.
    """

    def __init__(self, channels: int, kernel: int, stride: int):
        super().__init__(channels, channels, kernel, stride, kernel // 2, groups=channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, side = self.kernel_size[0], min(x.shape[-2:])
        if k <= side or not (self.training and torch.is_grad_enabled()) or x.device.type != "cpu":
            return super().forward(x)
        c = (k - (2 * side - 1)) // 2 if k > 2 * side - 1 else 0
        return _SmallMapDepthwise.apply(x, self.weight[:, :, c:k - c, c:k - c], self.stride[0])


def conv_bn(in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    """Conv (symmetric padding k//2, no bias) → BatchNorm → optional SiLU."""
    conv = (DepthwiseConv(in_ch, kernel, stride) if groups == in_ch == out_ch and groups > 1
            else nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False))
    layers: list[nn.Module] = [conv, nn.BatchNorm2d(out_ch, eps=BN_EPS, momentum=BN_MOMENTUM)]
    if act:
        layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(self.act(self.reduce(s))))


class MBConv(nn.Module):
    def __init__(self, b: Block, drop_path: float = 0.0):
        super().__init__()
        mid = b.mid_ch
        self.expand = conv_bn(b.in_ch, mid) if b.expand != 1 else nn.Identity()
        self.depthwise = conv_bn(mid, mid, b.kernel, b.stride, groups=mid)
        self.se = SqueezeExcite(mid, b.se_ch) if b.se_ch else nn.Identity()
        self.project = conv_bn(mid, b.out_ch, act=False)
        self.residual = b.residual
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        if not self.residual:
            return out
        if self.training and self.drop_path > 0:
            # Stochastic depth: drop the whole branch per sample, rescale the kept ones.
            keep = 1.0 - self.drop_path
            mask = torch.empty((x.shape[0], 1, 1, 1), device=x.device, dtype=out.dtype).bernoulli_(keep)
            out = out * mask / keep
        return x + out


class EfficientNet(nn.Module):
    def __init__(self, spec: NetworkSpec, num_classes: int = 1000, in_channels: int = 3, drop_path: float = 0.2):
        super().__init__()
        self.spec = spec
        self.stem = conv_bn(in_channels, spec.stem, 3, 2)
        blocks = list(spec.blocks())
        # Stochastic depth grows linearly with block index, as in the official code.
        self.blocks = nn.Sequential(*(MBConv(b, drop_path * i / len(blocks)) for i, b in enumerate(blocks)))
        self.head = conv_bn(blocks[-1].out_ch, spec.head)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.dropout)
        self.classifier = nn.Linear(spec.head, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(self.dropout(torch.flatten(self.pool(x), 1)))


def init_weights(net: nn.Module) -> None:
    """Official init: conv weights normal with std sqrt(2 / fan_out), classifier uniform ±1/sqrt(classes)."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


def zero_init(net: EfficientNet) -> None:
    """Start every residual block as the identity and the classifier at zero logits.

    For short proxy runs: with the official init a few hundred steps are spent
    undoing a random start (B0 at 32 px, 2000 Fashion-MNIST images, 3 epochs:
    26-30% val top-1 with it, 66% with this), which would rank candidates by how
    fast they recover rather than by what they learn.
    """
    nn.init.zeros_(net.classifier.weight)
    for block in net.blocks:
        if block.residual:
            nn.init.zeros_(block.project[1].weight)


def build(spec: NetworkSpec, num_classes: int = 1000, in_channels: int = 3, drop_path: float = 0.2,
          bn_momentum: float = BN_MOMENTUM) -> EfficientNet:
    """The network for `spec` with a `num_classes` classifier on `in_channels` inputs.

    `bn_momentum` is PyTorch's (TF's is 1 − it): the official 0.01 suits long
    runs; a proxy run of a few hundred steps needs 0.1 for usable running stats.
    """
    net = EfficientNet(spec, num_classes, in_channels, drop_path)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = bn_momentum
    return net
