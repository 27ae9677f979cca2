"""A compound-scaled family: members φ → (depth α^φ, width β^φ, resolution γ^φ), and a family read back.

:func:`member` and :func:`family_table` build and cost any φ; :class:`Family` is a
family as an exported coefficient file holds it (:func:`load_family` reads the
JSON, YAML and TOML files of :mod:`scalesearch.results`, checked against the JSON
Schema shipped in ``scalesearch/schema/``).

>>> from scalesearch.arch import load_base
>>> spec = member(load_base("b0"), 1.2, 1.1, 1.15, phi=1)
>>> round(spec.width_mult, 3), round(spec.depth_mult, 3), spec.resolution, spec.dropout
(1.1, 1.2, 256, 0.2)
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .._version import __version__
from ..arch._spec import BaseNetwork, NetworkSpec, decode_block, encode_block, scale
from ..arch._cost import network_cost
from ..errors import ScaleSearchError
from ..files import tomllib

if TYPE_CHECKING:
    from torch import nn

SCHEMA_VERSION = 1
FORMAT = "scalesearch-coefficients"
SCHEMA_PATH = Path(__file__).parent / "schema" / f"coefficients-v{SCHEMA_VERSION}.schema.json"

# Official B0-B7 resolutions are all multiples of 4; rounding extrapolated sides
# to the same multiple keeps them friendly to stride-2 stages without drifting far.
RESOLUTION_MULTIPLE = 4


def round_resolution(side: float, multiple: int = RESOLUTION_MULTIPLE) -> int:
    """Nearest multiple of `multiple` (half up), at least `multiple`."""
    return max(multiple, int(side / multiple + 0.5) * multiple)


def dropout_for(base: BaseNetwork, phi: float) -> float:
    """The official schedule: +0.1 every two steps of φ, capped at 0.5 (B0/B1 0.2 … B6/B7 0.5)."""
    return round(min(max(base.dropout, 0.5), base.dropout + 0.1 * int(phi // 2)), 3)


def member(base: BaseNetwork, alpha: float, beta: float, gamma: float, phi: float, multiple: int = RESOLUTION_MULTIPLE) -> NetworkSpec:
    """The family member at `phi`: depth α^φ, width β^φ, resolution base × γ^φ rounded to `multiple`."""
    resolution = round_resolution(base.resolution * gamma**phi, multiple)
    return scale(base, width=beta**phi, depth=alpha**phi, resolution=resolution, dropout=dropout_for(base, phi))


def family_table(base: BaseNetwork, alpha: float, beta: float, gamma: float, phis: list[float] | None = None,
                 multiple: int = RESOLUTION_MULTIPLE) -> pd.DataFrame:
    """One row per φ: multipliers, resolution, dropout and the built network's measured cost (1000 classes)."""
    phis = list(range(8)) if phis is None else phis
    base_macs = network_cost(scale(base)).macs
    rows = []
    for phi in phis:
        spec = member(base, alpha, beta, gamma, phi, multiple)
        c = network_cost(spec)
        rows.append({"phi": phi, "depth_mult": round(alpha**phi, 4), "width_mult": round(beta**phi, 4),
                     "resolution": spec.resolution, "dropout": spec.dropout, "params": c.params, "macs": c.macs,
                     "gmacs": round(c.macs / 1e9, 4), "acts": c.acts, "ratio": round(c.macs / base_macs, 3),
                     "nominal": round((alpha * beta**2 * gamma**2) ** phi, 3)})
    return pd.DataFrame(rows)


def parse_phis(text: str) -> list[float]:
    """'3' → [3]; '0..7' → [0, 1, …, 7]; '0..2:0.5' → [0, 0.5, …, 2]: the one reading of --phi.

    Every φ is finite and from 0 to MAX_PHI, and a range has at most MAX_MEMBERS members
    (:mod:`scalesearch.search`), so no --phi can hang a command.
    """
    from ..limits import MAX_MEMBERS, check_phi

    try:
        if ".." not in text:
            return [check_phi(float(text))]
        span, _, step = text.partition(":")
        lo, hi = (check_phi(float(v)) for v in span.split(".."))
        step_f = float(step) if step else 1.0
    except ValueError:
        raise ScaleSearchError(f"--phi must be a number or a range such as 0..7 or 0..2:0.5, got {text!r}") from None
    if not 0 < step_f < math.inf or hi < lo:
        raise ScaleSearchError(f"--phi range {text!r} must go upwards with a positive step")
    n = int(round((hi - lo) / step_f))
    if n + 1 > MAX_MEMBERS:
        raise ScaleSearchError(f"--phi range {text!r} has more than {MAX_MEMBERS} members; use a larger step")
    return [round(lo + i * step_f, 6) for i in range(n + 1)]


@dataclass(frozen=True)
class Family:
    """A compound-scaled family: coefficients and the base they scale; builds any φ.

    Read one with :func:`load_family`, then ``fam.build(phi=3, num_classes=10)``.
    """

    alpha: float
    beta: float
    gamma: float
    base: BaseNetwork
    resolution_multiple: int = RESOLUTION_MULTIPLE
    document: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def coefficients(self) -> tuple[float, float, float]:
        """(α depth, β width, γ resolution)."""
        return self.alpha, self.beta, self.gamma

    def spec(self, phi: float = 1) -> NetworkSpec:
        """Member φ as data: depth α^φ, width β^φ, side rounded to `resolution_multiple` px."""
        from ..limits import check_phi

        check_phi(phi, "phi")
        return member(self.base, self.alpha, self.beta, self.gamma, phi, self.resolution_multiple)

    def build(self, phi: float = 1, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
        """Member φ as a PyTorch module (see :func:`scalesearch.arch.build` for `kwargs`)."""
        from ..arch._model import build

        return build(self.spec(phi), num_classes=num_classes, in_channels=in_channels, **kwargs)

    def table(self, phis: list[float] | None = None) -> pd.DataFrame:
        """Multipliers, side, dropout and the built networks' cost for each φ (default 0 … 7)."""
        return family_table(self.base, self.alpha, self.beta, self.gamma, phis, self.resolution_multiple)

    @classmethod
    def from_document(cls, doc: Any, where: str = "document") -> Family:
        """Check `doc` against the schema and the embedded family table; ScaleSearchError if it fails."""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ScaleSearchError(f"{where} is not a scalesearch coefficient file (no format: {FORMAT})")
        if doc.get("schema_version") != SCHEMA_VERSION:
            raise ScaleSearchError(f"{where}: schema_version {doc.get('schema_version')!r} is not one this scalesearch "
                                   f"{__version__} reads ({SCHEMA_VERSION})")
        validate(doc, schema(), where)
        b = doc["base"]
        try:
            stages = tuple(decode_block(s) for s in b["blocks"])
        except ScaleSearchError as exc:
            raise ScaleSearchError(f"{where}: base: {exc}") from None
        for s, prev in zip(stages, [b["stem"]] + [s.out_ch for s in stages]):
            if s.in_ch != prev:
                raise ScaleSearchError(f"{where}: base block {encode_block(s)!r} has i{s.in_ch} but the previous layer gives {prev}")
        base = BaseNetwork(name=b["name"], stages=stages, stem=b["stem"], head=b["head"], resolution=b["resolution"],
                           dropout=float(b.get("dropout", 0.2)), width=float(b.get("width", 1.0)),
                           depth=float(b.get("depth", 1.0)), source=where)
        fam = cls(float(doc["alpha"]), float(doc["beta"]), float(doc["gamma"]), base, doc["resolution_multiple"], doc)
        for row in doc["family"]:  # a hand-edited coefficient or a changed rounding rule shows up here
            spec = fam.spec(row["phi"])
            params = network_cost(spec).params
            if (spec.resolution, params) != (row["resolution"], row["params"]):
                raise ScaleSearchError(f"{where}: family row phi={row['phi']:g} lists {row['resolution']} px and "
                                       f"{row['params']} params, but the coefficients build {spec.resolution} px and {params}")
        return fam


def load_family(path: str | Path) -> Family:
    """Read a coefficient file written by `scalesearch export` (.json, .yaml/.yml or .toml).

    Only data formats are read (YAML with the safe loader); nothing is unpickled or executed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".py":
        raise ScaleSearchError(f"{path}: the Python export is a snippet to copy, not a file to load; "
                               "load the .json, .yaml or .toml export")
    if suffix not in (".json", ".yaml", ".yml", ".toml"):
        raise ScaleSearchError(f"{path}: unknown file type {suffix or '(none)'!r}; expected .json, .yaml, .yml or .toml")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScaleSearchError(f"cannot read {path}: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    return Family.from_document(_parse(text, suffix, path), str(path))


def _parse(text: str, suffix: str, path: Path) -> Any:
    try:
        if suffix == ".json":
            return json.loads(text)
        if suffix == ".toml":
            return tomllib.loads(text)
        import yaml

        return yaml.safe_load(text)
    except Exception as exc:  # every parser's syntax error: one line naming the file
        detail = " ".join(str(exc).split())
        raise ScaleSearchError(f"{path}: not valid {suffix[1:].upper()}: {detail[:200]}") from None


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def validate(value: Any, rule: dict[str, Any], where: str, at: str = "") -> None:
    """The subset of JSON Schema the coefficient schema uses: type, const, required, properties,
    items, minItems, minimum, exclusiveMinimum. Raises ScaleSearchError naming the first bad key."""
    name = at or "the document"
    kinds = rule.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, k) for k in kinds):
            raise ScaleSearchError(f"{where}: {name} must be {' or '.join(kinds)}, got {value!r}"[:300])
    if "const" in rule and value != rule["const"]:
        raise ScaleSearchError(f"{where}: {name} must be {rule['const']!r}, got {value!r}")
    if _is(value, "number"):
        if "minimum" in rule and value < rule["minimum"]:
            raise ScaleSearchError(f"{where}: {name} must be >= {rule['minimum']}, got {value!r}")
        if "exclusiveMinimum" in rule and value <= rule["exclusiveMinimum"]:
            raise ScaleSearchError(f"{where}: {name} must be > {rule['exclusiveMinimum']}, got {value!r}")
    if isinstance(value, dict):
        for key in rule.get("required", []):
            if key not in value:
                raise ScaleSearchError(f"{where}: missing key {(at + '.' if at else '') + key!r}")
        for key, sub in rule.get("properties", {}).items():
            if key in value:
                validate(value[key], sub, where, f"{at}.{key}" if at else key)
    if isinstance(value, list):
        if len(value) < rule.get("minItems", 0):
            raise ScaleSearchError(f"{where}: {name} needs at least {rule['minItems']} item(s)")
        for i, item in enumerate(value):
            validate(item, rule.get("items", {}), where, f"{at}[{i}]")
