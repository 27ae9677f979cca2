"""The architecture as data: block strings → base network → scaled spec.

A base network is a TOML file of official EfficientNet block strings. Scaling is
one pure function, :func:`scale`, that applies the official rounding rules; the
result, a :class:`NetworkSpec`, is plain data that both the cost model
(:mod:`scalesearch.arch`) and the PyTorch builder (:mod:`scalesearch.arch`) read.

>>> spec = scale(load_base("b0"), width=1.1, depth=1.2)
>>> [s.repeats for s in spec.stages], spec.head
([2, 3, 3, 4, 4, 5, 2], 1408)
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from ..errors import ScaleSearchError
from ..files import read_toml, toml_text
from ..limits import MAX_BLOCKS, MAX_CHANNELS, MAX_COEFF, MAX_EXPAND, MAX_KERNEL, MAX_REPEATS, MAX_SIDE


BASES_DIR = Path(__file__).parent / "bases"

# Official compound-scaling presets on top of B0: (width, depth, resolution, dropout).
# From TF efficientnet_builder.efficientnet_params.
PRESETS: dict[str, tuple[float, float, int, float]] = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
    "b8": (2.2, 3.6, 672, 0.5),
    "l2": (4.3, 5.3, 800, 0.5),
}

_BLOCK_KEYS = {"r": "repeats", "k": "kernel", "s": "stride", "e": "expand", "i": "in_ch", "o": "out_ch"}


@dataclass(frozen=True)
class Stage:
    """One stage: `repeats` MBConv blocks; the first has `stride` and `in_ch`."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    in_ch: int
    out_ch: int
    se_ratio: float = 0.25


@dataclass(frozen=True)
class Block:
    """One MBConv block, as the builder and the cost model both see it."""

    in_ch: int
    out_ch: int
    kernel: int
    stride: int
    expand: int
    se_ch: int  # squeeze channels; 0 means no squeeze-excitation
    stage: int = 1

    @property
    def mid_ch(self) -> int:
        return self.in_ch * self.expand

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_ch == self.out_ch


@dataclass(frozen=True)
class BaseNetwork:
    """A base as written in its TOML file, plus the multipliers a preset applies."""

    name: str
    stages: tuple[Stage, ...]
    stem: int
    head: int
    resolution: int
    dropout: float = 0.2
    width: float = 1.0
    depth: float = 1.0
    source: str = ""


@dataclass(frozen=True)
class NetworkSpec:
    """A concrete network: every channel count and repeat already rounded."""

    name: str
    width_mult: float
    depth_mult: float
    resolution: int
    dropout: float
    stem: int
    head: int
    stages: tuple[Stage, ...]

    def blocks(self) -> Iterator[Block]:
        """Every MBConv block in order; stage repeats after the first keep stride 1."""
        for n, s in enumerate(self.stages, 1):
            se_ch = max(1, int(s.in_ch * s.se_ratio)) if s.se_ratio > 0 else 0
            yield Block(s.in_ch, s.out_ch, s.kernel, s.stride, s.expand, se_ch, n)
            se_ch = max(1, int(s.out_ch * s.se_ratio)) if s.se_ratio > 0 else 0
            for _ in range(s.repeats - 1):
                yield Block(s.out_ch, s.out_ch, s.kernel, 1, s.expand, se_ch, n)


def network_key(spec: NetworkSpec) -> str:
    """Identity of the network a spec builds (the multipliers that led to it left out)."""
    canonical = replace(spec, name="", width_mult=1.0, depth_mult=1.0)
    return hashlib.sha1(repr(canonical).encode()).hexdigest()[:16]


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Official channel rounding: nearest multiple of 8, never more than 10% down."""
    scaled = channels * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if new < 0.9 * scaled:
        new += divisor
    return int(new)


def round_repeats(repeats: int, depth: float) -> int:
    """Official depth rounding: always up."""
    return int(math.ceil(repeats * depth))


def scale(
    base: BaseNetwork,
    width: float = 1.0,
    depth: float = 1.0,
    resolution: int | None = None,
    dropout: float | None = None,
) -> NetworkSpec:
    """Scale `base` by (width, depth) on top of its own preset multipliers.

    Rounding always starts from the unrounded block strings, so scaling B0 by
    1.2 twice equals scaling it by 1.44 once, as in the official construction.
    """
    if not (0 < width < math.inf and 0 < depth < math.inf):
        raise ScaleSearchError(f"width and depth multipliers must be finite and > 0, got width={width}, depth={depth}")
    w, d = base.width * width, base.depth * depth
    stages = tuple(
        replace(
            s,
            repeats=round_repeats(s.repeats, d),
            in_ch=round_filters(s.in_ch, w),
            out_ch=round_filters(s.out_ch, w),
        )
        for s in base.stages
    )
    res = base.resolution if resolution is None else int(resolution)
    if res < 8:
        raise ScaleSearchError(f"resolution must be at least 8 px, got {res}")
    _check_size(base, w, d)
    return NetworkSpec(
        name=base.name,
        width_mult=w,
        depth_mult=d,
        resolution=res,
        dropout=base.dropout if dropout is None else dropout,
        stem=round_filters(base.stem, w),
        head=round_filters(base.head, w),
        stages=stages,
    )


def _check_size(base: BaseNetwork, width: float, depth: float) -> None:
    """Refuse, by arithmetic before any block exists, networks beyond MAX_BLOCKS blocks or MAX_CHANNELS channels."""
    blocks = sum(math.ceil(s.repeats * depth) for s in base.stages)
    channels = max(base.head, base.stem, *(s.out_ch * s.expand for s in base.stages)) * width
    if blocks > MAX_BLOCKS or channels > MAX_CHANNELS:
        raise ScaleSearchError(f"{base.name} at width ×{width:.4g}, depth ×{depth:.4g} has {blocks:,} blocks and layers "
                               f"of {channels:,.0f} channels: more than the {MAX_BLOCKS:,} blocks or {MAX_CHANNELS:,} "
                               "channels a network may have (scalesearch.search); use a smaller φ or multiplier")


def decode_block(text: str) -> Stage:
    """Parse an official block string such as ``r2_k3_s22_e6_i16_o24_se0.25``."""
    fields: dict[str, object] = {"se_ratio": 0.0}
    for part in text.strip().split("_"):
        m = re.fullmatch(r"(se|[rksieo])(\d+(?:\.\d+)?)", part)
        if not m:
            raise ScaleSearchError(f"block {text!r}: cannot read {part!r} (expected e.g. r2_k3_s22_e6_i16_o24_se0.25)")
        key, value = m.groups()
        if key == "se":
            fields["se_ratio"] = float(value)
        elif key == "s":
            # Official strings give the stride per axis ("s22"); only square strides exist.
            if len(set(value)) != 1 or value[0] not in "12":
                raise ScaleSearchError(f"block {text!r}: stride must be s1/s11 or s2/s22, got s{value}")
            fields["stride"] = int(value[0])
        else:
            if "." in value:
                raise ScaleSearchError(f"block {text!r}: {key} must be a whole number, got {value}")
            fields[_BLOCK_KEYS[key]] = int(value)
    missing = [f"{k} ({v})" for k, v in _BLOCK_KEYS.items() if v not in fields]
    if missing:
        raise ScaleSearchError(f"block {text!r}: missing {', '.join(missing)}")
    stage = Stage(**fields)  # type: ignore[arg-type]
    if min(stage.repeats, stage.expand, stage.in_ch, stage.out_ch) < 1 or stage.kernel % 2 == 0:
        raise ScaleSearchError(f"block {text!r}: repeats, expansion and channels must be >= 1 and the kernel odd")
    for key, value, limit in (("r", stage.repeats, MAX_REPEATS), ("k", stage.kernel, MAX_KERNEL), ("e", stage.expand, MAX_EXPAND),
                              ("i", stage.in_ch, MAX_CHANNELS), ("o", stage.out_ch, MAX_CHANNELS)):
        if value > limit:
            raise ScaleSearchError(f"block {text!r}: {key} must be at most {limit:,}, got {value:,}")
    if not 0 <= stage.se_ratio <= 1:
        raise ScaleSearchError(f"block {text!r}: se ratio must be in [0, 1]")
    return stage


def encode_block(stage: Stage) -> str:
    """The official string for a stage (inverse of :func:`decode_block`)."""
    s = stage.stride
    text = f"r{stage.repeats}_k{stage.kernel}_s{s}{s}_e{stage.expand}_i{stage.in_ch}_o{stage.out_ch}"
    return text + (f"_se{stage.se_ratio:g}" if stage.se_ratio else "")


def known_bases() -> list[str]:
    """Names accepted by ``--base`` besides a path to a TOML file."""
    files = sorted(p.stem for p in BASES_DIR.glob("*.toml") if p.stem != "efficientnet-b0")
    return list(PRESETS) + files


def load_base(name_or_path: str | Path) -> BaseNetwork:
    """A preset name (b0 … b7, b8, l2), a shipped base, or a path to a base TOML file."""
    key = str(name_or_path)
    if key.lower() in PRESETS:
        width, depth, res, dropout = PRESETS[key.lower()]
        b0 = _read_base_file(BASES_DIR / "efficientnet-b0.toml")
        return replace(b0, name=key.lower(), width=width, depth=depth, resolution=res, dropout=dropout)
    path = Path(key)
    if not path.suffix and (BASES_DIR / f"{key}.toml").exists():
        path = BASES_DIR / f"{key}.toml"
    if path.suffix != ".toml" or not path.exists():
        raise ScaleSearchError(f"unknown base {key!r}: choose one of {', '.join(known_bases())} or give a path to a .toml file")
    return _read_base_file(path)


def _read_base_file(path: Path) -> BaseNetwork:
    data = read_toml(path)
    where = str(path)
    allowed = {"name", "resolution", "stem", "head", "dropout", "blocks", "width", "depth"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ScaleSearchError(f"{where}: unknown key {unknown[0]!r}; expected {', '.join(sorted(allowed))}")

    def need(key: str, kind: type, low: float, high: float) -> object:
        if key not in data:
            raise ScaleSearchError(f"{where}: missing key {key!r}")
        value = data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) or not low <= value <= high:
            raise ScaleSearchError(f"{where}: {key!r} must be a {kind.__name__} from {low} to {high:,}, got {value!r}")
        return value

    blocks = data.get("blocks")
    if not isinstance(blocks, list) or not blocks or not all(isinstance(b, str) for b in blocks):
        raise ScaleSearchError(f"{where}: 'blocks' must be a non-empty list of block strings")
    try:
        stages = tuple(decode_block(b) for b in blocks)
    except ScaleSearchError as exc:
        raise ScaleSearchError(f"{where}: {exc}") from None
    stem = need("stem", int, 1, MAX_CHANNELS)
    channels = [stem] + [s.out_ch for s in stages]
    for s, prev in zip(stages, channels):
        if s.in_ch != prev:
            raise ScaleSearchError(f"{where}: block {encode_block(s)!r} has i{s.in_ch} but the previous layer gives {prev} channels")
    dropout = data.get("dropout", 0.2)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ScaleSearchError(f"{where}: 'dropout' must be a number in [0, 1), got {dropout!r}")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise ScaleSearchError(f"{where}: 'name' must be a non-empty string")
    return BaseNetwork(
        name=name,
        stages=stages,
        stem=stem,  # type: ignore[arg-type]
        head=need("head", int, 1, MAX_CHANNELS),  # type: ignore[arg-type]
        resolution=need("resolution", int, 8, MAX_SIDE),  # type: ignore[arg-type]
        dropout=float(dropout),
        width=need("width", float, 0.01, MAX_COEFF) if "width" in data else 1.0,  # type: ignore[arg-type]
        depth=need("depth", float, 0.01, MAX_COEFF) if "depth" in data else 1.0,  # type: ignore[arg-type]
        source=str(path),
    )


def base_toml(base: BaseNetwork) -> str:
    """`base` as a base TOML file (the inverse of :func:`load_base` on a path)."""
    return toml_text({"name": base.name, "resolution": base.resolution, "stem": base.stem, "head": base.head,
                      "dropout": base.dropout, "width": base.width, "depth": base.depth,
                      "blocks": [encode_block(s) for s in base.stages]})
