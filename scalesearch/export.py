"""The coefficient file: the winner, its family and where it came from, in a versioned schema.

The document is self-contained: it embeds the base network's block strings, so
:func:`load_family` can build any φ without the study or the base file. It is
written as JSON, YAML or TOML (all read back) or as a standalone Python snippet
(never read back: loading must not run code), and checked on load against the
JSON Schema shipped in ``scalesearch/schema/``.

>>> doc = family_document(load_base("b0"), 1.2, 1.1, 1.15)
>>> fam = Family.from_document(doc)
>>> fam.spec(1).resolution, sum(p.numel() for p in fam.build(phi=1).parameters())
(256, 9109994)
"""
from __future__ import annotations

import datetime as dt
import json
import pprint
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import __version__
from .arch import BaseNetwork, NetworkSpec, decode_block, encode_block, load_base
from .cost import network_cost
from .errors import ScaleSearchError
from .family import RESOLUTION_MULTIPLE, family_table, member
from .files import write_text
from .race import verdict
from .results import has_intervals, trials_frame

if TYPE_CHECKING:
    import optuna
    from torch import nn

SCHEMA_VERSION = 1
FORMAT = "scalesearch-coefficients"
SCHEMA_PATH = Path(__file__).parent / "schema" / f"coefficients-v{SCHEMA_VERSION}.schema.json"
FORMATS = {"json": ".json", "yaml": ".yaml", "toml": ".toml", "python": ".py"}


def base_document(base: BaseNetwork) -> dict[str, Any]:
    return {"name": base.name, "resolution": base.resolution, "stem": base.stem, "head": base.head,
            "dropout": base.dropout, "width": base.width, "depth": base.depth,
            "blocks": [encode_block(s) for s in base.stages]}


def coefficients_document(study: optuna.Study, ranked: pd.DataFrame, base: BaseNetwork) -> dict[str, Any]:
    """The winner of `ranked` with its φ = 0 … 7 family and the study's provenance."""
    config = study.user_attrs.get("config", {})
    w = ranked.iloc[0]
    doc = family_document(base, float(w["alpha"]), float(w["beta"]), float(w["gamma"]))
    return {
        **{k: doc[k] for k in ("format", "schema_version", "alpha", "beta", "gamma")},
        "budget": config.get("space", {}).get("budget"),
        "constraint": config.get("space", {}).get("constraint"),
        "nominal": float(w["nominal"]),
        "measured_target": float(w["measured_target"]),
        "measured_proxy": float(w["measured_proxy"]),
        "proxy_val_top1": {"mean": float(w["acc_mean"]), "std": _num(w["acc_std"]), "ci95": _num(w["ci95"]),
                           "seeds": int(w["seeds"]), "interval_available": has_intervals(ranked),
                           "tied_candidates": max(0, int(ranked["tied"].sum()) - 1) if has_intervals(ranked) else None},
        "verdict": verdict_document(study),
        **{k: doc[k] for k in ("base", "resolution_multiple", "family", "equivalents")},
        "units": doc["units"] | {"proxy_val_top1": "fraction of validation images"},
        "provenance": {"study": study.study_name, "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                       "scalesearch_version": __version__, **config},
    }


def verdict_document(study: optuna.Study) -> dict[str, Any] | None:
    """How far the evidence carries the winner (:func:`scalesearch.race.verdict`); None for older studies."""
    v = verdict(trials_frame(study))
    if v is None:
        return None
    return {"resolved": v.resolved, "words": v.words, "p_best": _num(v.p_best), "decided_at_phi": v.stage,
            "tied_at_phi1": [list(c) for c in v.tied], "reason": v.reason}


def _num(x: Any) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def write_json(doc: dict[str, Any], path: Path) -> None:
    write_text(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def family_document(base: BaseNetwork, alpha: float, beta: float, gamma: float, phis: list[int] | None = None) -> dict[str, Any]:
    """The part of the file that needs no study: coefficients, base, family (φ = 0 … 7), equivalents."""
    fam = family_table(base, alpha, beta, gamma, phis)
    rows = fam[["phi", "width_mult", "depth_mult", "resolution", "dropout", "params", "gmacs"]].to_dict("records")
    return {
        "format": FORMAT, "schema_version": SCHEMA_VERSION, "alpha": alpha, "beta": beta, "gamma": gamma,
        "base": base_document(base), "resolution_multiple": RESOLUTION_MULTIPLE,
        "family": [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in rows],
        "equivalents": equivalents(base, alpha, beta, gamma, fam["phi"].tolist()),
        "units": {"params": "parameters at 1000 classes, 3 input channels", "gmacs": "10^9 multiply-adds (conv + linear)",
                  "resolution": "input side in px", "width_mult": "channels multiplier on top of the base's own",
                  "depth_mult": "repeats multiplier on top of the base's own"},
    }


# ------------------------------------------------------------ timm and torchvision

def is_b0_derived(base: BaseNetwork) -> bool:
    """True when the base is EfficientNet-B0's architecture (any preset multipliers on top)."""
    b0 = load_base("b0")
    return (base.stages, base.stem, base.head) == (b0.stages, b0.stem, b0.head)


def torchvision_head(spec: NetworkSpec) -> int:
    """torchvision's default head: 4 × the last stage's channels (the official rule is round_filters(1280, w))."""
    return 4 * spec.stages[-1].out_ch


def equivalents(base: BaseNetwork, alpha: float, beta: float, gamma: float, phis: list[float]) -> dict[str, Any]:
    """The constructor arguments of timm and torchvision that build the same members, where they exist."""
    if not is_b0_derived(base):
        return {"applies": False,
                "note": f"base {base.name!r} is not EfficientNet-B0's architecture; timm's and torchvision's EfficientNet "
                        "constructors build B0-derived networks only: use scalesearch.load_family(FILE).build(phi=...)"}
    members = []
    for phi in phis:
        spec = member(base, alpha, beta, gamma, phi)
        tv_head = torchvision_head(spec)
        tv_params = network_cost(NetworkSpec(**{**spec.__dict__, "head": tv_head})).params
        members.append({"phi": phi, "width": round(spec.width_mult, 6), "depth": round(spec.depth_mult, 6),
                        "dropout": spec.dropout, "head": spec.head, "torchvision_default_head": tv_head,
                        "torchvision_default_params": tv_params})
    return {
        "applies": True,
        "note": "width and depth are the absolute multipliers on EfficientNet-B0 (the base's own times beta^phi and "
                "alpha^phi); the input side is the family's resolution for that phi",
        "timm": {"call": "timm.models.efficientnet._gen_efficientnet('efficientnet_b0', channel_multiplier={width}, "
                         "depth_multiplier={depth}, drop_rate={dropout}, num_classes=N)",
                 "note": "a private helper behind timm's efficientnet_b0 ... b7 (timm.create_model cannot change the "
                         "multipliers); it uses the official channel, depth and head rounding"},
        "torchvision": {"call": "torchvision.models.EfficientNet(torchvision.models.efficientnet._efficientnet_conf("
                                "'efficientnet_b0', width_mult={width}, depth_mult={depth})[0], dropout={dropout}, "
                                "last_channel={head}, num_classes=N)",
                        "note": "torchvision's head defaults to 4 x the last stage's channels (4 x round_filters(320, w)), "
                                "not the official round_filters(1280, w); the two agree for B0 ... B7 but not for every "
                                "width (w = 1.21: 1536 vs 1552 channels), so pass last_channel={head} to match; "
                                "torchvision_default_head and torchvision_default_params say what its default gives. "
                                "Its B0 ... B4 also use BatchNorm eps 1e-5 (official 1e-3) and its stem takes 3 channels"},
        "members": members,
    }


# ------------------------------------------------------------ writing

def render(doc: dict[str, Any], fmt: str) -> str:
    """The document as text in `fmt`: json, yaml, toml (no null in TOML: null keys are left out) or python."""
    if fmt == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)
    if fmt == "toml":
        import tomli_w

        return tomli_w.dumps(drop_nulls(doc))
    if fmt == "python":
        return python_snippet(doc)
    raise ScaleSearchError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def write(doc: dict[str, Any], path: Path, fmt: str) -> None:
    write_text(path, render(doc, fmt))


def drop_nulls(value: Any) -> Any:
    """Nested dicts without their None values (lists keep their items): TOML's form of null."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def python_snippet(doc: dict[str, Any]) -> str:
    """A standalone module with the numbers as literals; run it to print the family."""
    prov = doc.get("provenance", {})

    def lit(v: Any) -> str:  # one family member per line reads as a table
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            return "[\n" + "".join(f"    {x!r},\n" for x in v) + "]"
        return pprint.pformat(v, width=110, sort_dicts=False)

    return "\n".join([
        f'"""Compound-scaling coefficients for {doc["base"]["name"]}, exported by scalesearch {__version__}'
        f'{" from study " + prov["study"] if prov.get("study") else ""}{" on " + prov["exported"] if prov.get("exported") else ""}.',
        "",
        "Member phi: depth multiplier ALPHA**phi, width multiplier BETA**phi, input side",
        f"base resolution x GAMMA**phi rounded to a multiple of {doc['resolution_multiple']} px. FAMILY lists phi = 0 ... 7 with",
        "the built networks' params (1000 classes, 3 channels) and GMACs (10^9 conv + linear multiply-adds).",
        'Build a member with scalesearch: scalesearch.load_family("coefficients.json").build(phi=3, num_classes=N).',
        '"""',
        f"ALPHA = {doc['alpha']!r}",
        f"BETA = {doc['beta']!r}",
        f"GAMMA = {doc['gamma']!r}",
        f"BUDGET = {doc.get('budget')!r}",
        f"RESOLUTION_MULTIPLE = {doc['resolution_multiple']!r}",
        f"BASE = {lit(doc['base'])}",
        f"FAMILY = {lit(doc['family'])}",
        f"EQUIVALENTS = {lit(drop_nulls(doc.get('equivalents')))}",
        "",
        'if __name__ == "__main__":',
        '    print(f"alpha={ALPHA} beta={BETA} gamma={GAMMA} on {BASE[\'name\']}")',
        '    print("phi  width x  depth x  side (px)  dropout  params (M)  GMACs")',
        "    for m in FAMILY:",
        '        print(f"{m[\'phi\']:>3}  {m[\'width_mult\']:7.3f}  {m[\'depth_mult\']:7.3f}  {m[\'resolution\']:9d}  '
        '{m[\'dropout\']:7.2f}  {m[\'params\'] / 1e6:9.2f}  {m[\'gmacs\']:5.3f}")',
        "",
    ])


# ------------------------------------------------------------ reading

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
        if phi < 0:
            raise ScaleSearchError(f"phi must be >= 0, got {phi:g}")
        return member(self.base, self.alpha, self.beta, self.gamma, phi, self.resolution_multiple)

    def build(self, phi: float = 1, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
        """Member φ as a PyTorch module (see :func:`scalesearch.model.build` for `kwargs`)."""
        from .model import build

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
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
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
