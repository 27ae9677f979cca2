"""Analytic cost of a network spec: multiply-adds, parameters, activations.

Like pycls, every layer has a cost function, so a candidate's cost is known
from its spec without building or running anything. Units: ``macs`` are
multiply-adds of convolutions and linear layers (the paper's "FLOPs"; fvcore's
"flops"; half of ``torch.utils.flop_counter``'s), ``params`` counts every
parameter, ``acts`` counts output elements of every conv and linear layer.
BatchNorm, activations and pooling are not in ``macs``.

>>> from scalesearch.arch import load_base, scale
>>> c = network_cost(scale(load_base("b0")), 224)
>>> c.macs, c.params
(385814752, 5288548)
"""
from __future__ import annotations

from typing import NamedTuple

from ._spec import NetworkSpec


class Cost(NamedTuple):
    """A tuple, for speed: a search costs thousands of candidates (`+` adds field by field)."""

    macs: int = 0
    params: int = 0
    acts: int = 0

    def __add__(self, other: Cost) -> Cost:  # type: ignore[override]
        return Cost(self.macs + other.macs, self.params + other.params, self.acts + other.acts)


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Output side of a conv with the builder's symmetric padding kernel // 2."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def conv_cost(size: int, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
              bias: bool = False, bn: bool = False) -> tuple[Cost, int]:
    """Cost of one conv on a size×size input (with its BatchNorm's scale and shift if `bn`), and its output side."""
    out = conv_out(size, kernel, stride)
    weights = kernel * kernel * cin // groups * cout
    extra = (cout if bias else 0) + (2 * cout if bn else 0)
    return Cost(weights * out * out, weights + extra, cout * out * out), out


def linear_cost(cin: int, cout: int) -> Cost:
    return Cost(macs=cin * cout, params=cin * cout + cout, acts=cout)


def layer_costs(spec: NetworkSpec, resolution: int | None = None, num_classes: int = 1000, in_channels: int = 3) -> list[tuple[str, Cost]]:
    """(layer name, cost) for every layer in order, BatchNorm folded into its conv."""
    size = spec.resolution if resolution is None else resolution
    rows: list[tuple[str, Cost]] = []

    def conv(name: str, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> None:
        nonlocal size
        c, size = conv_cost(size, cin, cout, kernel, stride, groups, bn=True)
        rows.append((name, c))

    conv("stem", in_channels, spec.stem, 3, 2)
    for i, b in enumerate(spec.blocks()):
        name = f"stage{b.stage}.block{i}"
        if b.expand != 1:
            conv(f"{name}.expand", b.in_ch, b.mid_ch)
        conv(f"{name}.depthwise", b.mid_ch, b.mid_ch, b.kernel, b.stride, groups=b.mid_ch)
        if b.se_ch:
            # Squeeze-excitation runs two biased 1×1 convs on the pooled 1×1 map.
            reduce, _ = conv_cost(1, b.mid_ch, b.se_ch, bias=True)
            expand, _ = conv_cost(1, b.se_ch, b.mid_ch, bias=True)
            rows.append((f"{name}.se", reduce + expand))
        conv(f"{name}.project", b.mid_ch, b.out_ch)
    conv("head", spec.stages[-1].out_ch, spec.head)
    rows.append(("classifier", linear_cost(spec.head, num_classes)))
    return rows


def network_cost(spec: NetworkSpec, resolution: int | None = None, num_classes: int = 1000, in_channels: int = 3) -> Cost:
    """Total analytic cost of `spec` at `resolution` (default: the spec's own)."""
    costs = [c for _, c in layer_costs(spec, resolution, num_classes, in_channels)]
    return Cost(*map(sum, zip(*costs)))


def stage_costs(spec: NetworkSpec, resolution: int | None = None, num_classes: int = 1000, in_channels: int = 3) -> dict[str, Cost]:
    """Costs summed per stem, stage1 … stageN, head and classifier."""
    totals: dict[str, Cost] = {}
    for name, c in layer_costs(spec, resolution, num_classes, in_channels):
        key = name.split(".")[0]
        totals[key] = totals.get(key, Cost()) + c
    return totals


def fvcore_count(spec: NetworkSpec, resolution: int | None = None, num_classes: int = 1000, in_channels: int = 3) -> dict[str, int]:
    """Count the built network with fvcore (slow; the analytic figures need no run).

    Returns ``conv_linear_macs`` (fvcore's conv + linear counts, comparable to
    :func:`network_cost`), ``total_macs`` (fvcore's total, BatchNorm and pooling
    included) and ``params`` (``sum(p.numel())``).
    """
    import torch
    from fvcore.nn import FlopCountAnalysis

    from ._model import build

    size = spec.resolution if resolution is None else resolution
    net = build(spec, num_classes, in_channels).eval()
    with torch.no_grad():
        flops = FlopCountAnalysis(net, torch.zeros(1, in_channels, size, size))
        flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_op = flops.by_operator()
        total = flops.total()
    return {
        "conv_linear_macs": int(by_op.get("conv", 0) + by_op.get("linear", 0) + by_op.get("addmm", 0)),
        "total_macs": int(total),
        "params": sum(p.numel() for p in net.parameters()),
    }
