"""The coefficient file: the winner, its family and where it came from, in a versioned schema.

The document is self-contained: it embeds the base network's block strings, so
:func:`scalesearch.results.load_family` can build any φ without the study or the base file. It is
written as JSON, YAML or TOML (all read back) or as a standalone Python snippet
(never read back: loading must not run code), and checked on load against the
JSON Schema shipped in ``scalesearch/schema/``.

>>> doc = family_document(load_base("b0"), 1.2, 1.1, 1.15)
>>> from scalesearch.results import Family
>>> fam = Family.from_document(doc)  # what load_family does with a file
>>> fam.spec(1).resolution, sum(p.numel() for p in fam.build(phi=1).parameters())
(256, 9109994)
"""
from __future__ import annotations

import datetime as dt
import json
import pprint
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .._version import __version__
from ..arch._spec import BaseNetwork, NetworkSpec, encode_block, load_base
from ..arch._cost import network_cost
from ..errors import ScaleSearchError
from ._family import FORMAT, RESOLUTION_MULTIPLE, SCHEMA_VERSION, family_table, member
from ..files import write_text
from ..stats._race import fit as race_fit
from ..stats._surface import FEATURES, LEVEL
from ._record import is_comparison
from ._report import constraint_summary
from ._ranking import has_intervals, study_verdict, trials_frame

if TYPE_CHECKING:
    import optuna

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
    _with_family_latency(doc, study)
    return {
        **{k: doc[k] for k in ("format", "schema_version", "alpha", "beta", "gamma")},
        "budget": config.get("space", {}).get("budget"),
        "constraint": config.get("space", {}).get("constraint"),
        "constraint_detail": constraint_summary(config),
        **{k: _num(w.get(k)) for k in ("acts_target", "latency_target", "latency_s")},
        "nominal": float(w["nominal"]),
        "measured_target": float(w["measured_target"]),
        "measured_proxy": float(w["measured_proxy"]),
        "proxy_val_top1": {"mean": float(w["acc_mean"]), "std": _num(w["acc_std"]), "ci95": _num(w["ci95"]),
                           "seeds": int(w["seeds"]), "interval_available": has_intervals(ranked),
                           "tied_candidates": max(0, int(ranked["tied"].sum()) - 1) if has_intervals(ranked) else None},
        "verdict": verdict_document(study),
        **{k: doc[k] for k in ("base", "resolution_multiple", "family", "equivalents")},
        "units": doc["units"] | {"proxy_val_top1": "fraction of validation images"},
        **_comparison(study),
        "provenance": _provenance(study),
    }


def _provenance(study: optuna.Study) -> dict[str, Any]:
    """Which study, when, by which version, and the configuration it recorded."""
    return {"study": study.study_name, "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "scalesearch_version": __version__, **study.user_attrs.get("config", {})}


def _comparison(study: optuna.Study) -> dict[str, Any]:
    """The `comparison` section: compound against single-dimension scaling (scalesearch compare), when the study has one."""
    doc = study.user_attrs.get("comparison")
    return {"comparison": doc} if doc else {}


def comparison_export(study: optuna.Study) -> dict[str, Any]:
    """The file of a comparison's own study: its coefficients' family, the comparison and the provenance."""
    settings = study.user_attrs["config"]["compare"]
    doc = family_document(study_base(study), settings["alpha"], settings["beta"], settings["gamma"])
    if not study.user_attrs.get("comparison"):
        raise ScaleSearchError(f"comparison {study.study_name!r} has not finished: run scalesearch compare again")
    return doc | _comparison(study) | {"provenance": _provenance(study)}


def _with_family_latency(doc: dict[str, Any], study: optuna.Study) -> None:
    """Each member's measured latency, where the run timed the family of this winner (latency constraint)."""
    timed = study.user_attrs.get("family_latency")
    if not timed or timed["winner"] != [doc["alpha"], doc["beta"], doc["gamma"]]:
        return
    by_phi = {r["phi"]: r for r in timed["rows"]}
    for row in doc["family"]:
        row.update({k: by_phi[row["phi"]][k] for k in ("latency_s", "latency_ratio")} if row["phi"] in by_phi else {})
    doc["units"] = doc["units"] | {"latency_s": "measured inference seconds per batch at the member's side "
                                                "(conditions: constraint_detail.latency.conditions)",
                                   "latency_ratio": "latency_s / φ = 0's"}


def verdict_document(study: optuna.Study, trials: pd.DataFrame | None = None) -> dict[str, Any] | None:
    """How far the evidence carries the winner (:func:`scalesearch.stats.verdict`); None for older studies."""
    trials = trials_frame(study) if trials is None else trials
    v = study_verdict(study, trials)
    if v is None:
        return None
    s = race_fit(trials)
    return {"resolved": v.resolved, "words": v.words, "p_best": _num(v.p_best), "decided_at_phi": v.stage,
            "confidence_set": [list(c) for c in v.tied], "set_networks": v.networks, "level": LEVEL,
            "tied_at_phi1": [list(c) for c in v.tied], "reason": v.reason, "boundary": list(v.boundary),
            "seeds_needed": None if v.seeds_needed is None or v.seeds_needed == float("inf") else int(v.seeds_needed),
            "training_s_needed": None if v.seconds_needed is None or v.seconds_needed == float("inf")
            else round(v.seconds_needed),
            "model": {"form": s.form, "noise_sd": _num(s.sigma), "network_sd": _num(s.tau),
                      "lack_of_fit_p": _num(s.lack_of_fit), "networks_differ_p": _num(s.differ),
                      "features": list(FEATURES),
                      "fitted_spread": _num(s.table["fit"].max() - s.table["fit"].min())}}


def _num(x: Any) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def json_text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def write_json(doc: dict[str, Any], path: Path) -> None:
    write_text(path, json_text(doc))


def family_document(base: BaseNetwork, alpha: float, beta: float, gamma: float, phis: list[int] | None = None) -> dict[str, Any]:
    """The part of the file that needs no study: coefficients, base, family (φ = 0 … 7), equivalents."""
    fam = family_table(base, alpha, beta, gamma, phis)
    rows = fam[["phi", "width_mult", "depth_mult", "resolution", "dropout", "params", "gmacs", "acts"]].to_dict("records")
    return {
        "format": FORMAT, "schema_version": SCHEMA_VERSION, "alpha": alpha, "beta": beta, "gamma": gamma,
        "base": base_document(base), "resolution_multiple": RESOLUTION_MULTIPLE,
        "family": [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in rows],
        "equivalents": equivalents(base, alpha, beta, gamma, fam["phi"].tolist()),
        "units": {"params": "parameters at 1000 classes, 3 input channels", "gmacs": "10^9 multiply-adds (conv + linear)",
                  "resolution": "input side in px", "width_mult": "channels multiplier on top of the base's own",
                  "acts": "conv and linear output elements at 1000 classes, 3 input channels",
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


def study_base(study: optuna.Study) -> BaseNetwork:
    """The base network a study was run on, from the name or path it recorded."""
    recorded = study.user_attrs["config"]["options"]["base"]
    try:
        return load_base(recorded)
    except ScaleSearchError as exc:
        raise ScaleSearchError(f"study {study.study_name!r} was run on base {recorded!r}, which cannot be loaded here: {exc}") from None


def choose_format(fmt: str | None, output: str | None) -> str:
    """The export format: as given, else from the output file's extension, else json; a mismatch is an error."""
    by_suffix = {ext: f for f, ext in FORMATS.items()} | {".yml": "yaml"}
    suffix = Path(output).suffix.lower() if output and output != "-" else ""
    fmt = fmt or by_suffix.get(suffix, "json")
    if fmt not in FORMATS:
        raise ScaleSearchError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if suffix in by_suffix and by_suffix[suffix] != fmt:
        raise ScaleSearchError(f"--format {fmt} does not match -o {output} (a {by_suffix[suffix]} file name)")
    return fmt


def write(doc: dict[str, Any], path: Path, fmt: str) -> None:
    write_text(path, render(doc, fmt))


def export_study(study: optuna.Study, fmt: str = "json", output: str | Path | None = None,
                 results_dir: str | Path = "results") -> tuple[dict[str, Any], Path | None]:
    """The winner's coefficients document of `study` and where it was written: `output`, by default
    ``<results_dir>/<study>/coefficients.<ext>``; ``output="-"`` writes nothing (path None)."""
    from ._ranking import ranking, study_winner

    if is_comparison(study):
        doc = comparison_export(study)
    else:
        trials, _ = study_winner(study)  # a one-line error when nothing completed
        doc = coefficients_document(study, ranking(trials), study_base(study))
    if str(output) == "-":
        return doc, None
    path = Path(output) if output else Path(results_dir) / study.study_name / f"coefficients{FORMATS[fmt]}"
    if path.is_dir():
        raise ScaleSearchError(f"-o {path} is a folder; give a file name")
    write(doc, path, fmt)
    return doc, path


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
