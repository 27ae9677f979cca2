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
from torch import nn

from .arch import Block, NetworkSpec

BN_EPS, BN_MOMENTUM = 1e-3, 0.01


def conv_bn(in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    """Conv (symmetric padding k//2, no bias) → BatchNorm → optional SiLU."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch, eps=BN_EPS, momentum=BN_MOMENTUM),
    ]
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


def build(spec: NetworkSpec, num_classes: int = 1000, in_channels: int = 3, drop_path: float = 0.2) -> EfficientNet:
    """The network for `spec` with a `num_classes` classifier on `in_channels` inputs."""
    return EfficientNet(spec, num_classes, in_channels, drop_path)
