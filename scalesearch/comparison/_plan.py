"""A comparison's plan: where its coefficients come from, the members it trains, their proxy and its study.

The coefficients come from ``--alpha/--beta/--gamma`` (on ``--base``), from a search study's winner
(``--study``) or from an exported coefficient file (``--from``). A comparison of a study's winner lives
beside it: in the study's storage as ``<study>-compare``, its outputs in the study's results folder,
trained with the study's base, data and proxy settings, so that ``scalesearch export`` and ``plot`` of the
study carry it. Any other comparison has a study and a folder of its own.

The members (:func:`scalesearch.space.family_members`) are queued as search trials are: each carries
its depth, width and side multipliers at φ = 1 (the multipliers as they are) and a paired seed, so the
search's worker trains them, shares twins (φ = 0, the base, once for every family) and records them.
The proxy is the search's: the space's settings, at the side where every member's proxy cost keeps its
target ratio (``resolution = "auto"``, chosen over the members).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import optuna

from ..arch._spec import BaseNetwork, known_bases, load_base
from ..data._load import data_shape, load_data, pool_size
from ..device import pick_device
from ..errors import ScaleSearchError
from ..proxy._memory import require_training_memory
from ..results._export import study_base
from ..results._family import load_family
from ..results._ranking import study_winner
from ..search._driver import as_file
from ..search._plan import BESIDE, COMPARISON, OBJECT, Plan, RunOptions, data_spec, load_recorded, open_study
from ..space._candidates import Assessment, assess
from ..space._families import SINGLE, Member, family_members, interaction_members
from ..space._fidelity import resolve as resolve_proxy
from ..space._grid import GridReport
from ..space._space import load_space, parse_duration

# What a comparison takes from the search study it compares (the proxy it trains, its base and data).
INHERITED = ("base", "space", "data", "epochs", "train", "val", "batch_size", "resolution", "tolerance", "proxy_for")
# RunOptions that mean nothing to a comparison: it trains the members on the grid sampler, without pruning.
NOT_TAKEN = {"budget", "constraint", "latency_device", "latency_batch", "sampler", "trials", "pruner", "study", "proxy_for"}
TAKEN = tuple(f.name for f in fields(RunOptions) if f.name not in NOT_TAKEN)


@dataclass(frozen=True)
class Settings:
    """What a comparison trains, as its study records it."""

    alpha: float
    beta: float
    gamma: float
    phi: int = 2  # members φ = 0 … phi
    families: tuple[str, ...] = SINGLE
    interaction: bool = False  # also the width curves from deeper, larger bases (the paper's Figure 4)
    source: str = "given"  # where α, β, γ came from, in words
    beside: str | None = None  # the search study whose storage and results folder it shares

    @property
    def coefficients(self) -> tuple[float, float, float]:
        return self.alpha, self.beta, self.gamma


@dataclass
class ComparisonPlan(Plan):
    """A :class:`~scalesearch.search.Plan` whose trials are a comparison's members."""

    settings: Settings = field(default=None)  # type: ignore[assignment]  (always given; Plan's fields come first)
    members: list[Member] = field(default_factory=list)
    curves: list[Member] = field(default_factory=list)  # the interaction's width curves (empty without it)

    @property
    def proxy(self) -> dict[tuple, Assessment]:
        """Each trained network's cost at the proxy, by its multipliers' key."""
        return {a.candidate.key: a for a in self.report.feasible}

    def config(self) -> dict[str, Any]:
        """The search's provenance, with what the comparison trains (a resume must train the same)."""
        members = [{"family": m.family, "phi": m.phi, "setting": list(m.setting), **asdict(m.candidate), "macs": m.macs,
                    "macs_ratio": m.ratio} for m in self.members + self.curves]
        return super().config() | {"kind": COMPARISON, "compare": {
            **asdict(self.settings), "constraint": "measured", "members": members}}

    def trains(self) -> str:
        s = self.settings
        return (f"comparison of {self.base.name} with α={s.alpha:g} β={s.beta:g} γ={s.gamma:g} ({s.source}): compound, "
                f"{', '.join(s.families)} only, φ = 0 … {s.phi}{' and the width curves of the interaction' * s.interaction};"
                f" {len(self.report.feasible)} networks; each single-dimension member costs the compound member's "
                f"measured MACs (at the target side) within {self.space.tolerance:.0%}, or is flagged")


def resolve(options: dict[str, Any], base: str | None, alpha: float | None, beta: float | None, gamma: float | None,
            study: str | None, coefficients: str | None, **settings: Any) -> tuple[RunOptions, Settings]:
    """The run options and settings of a comparison, from exactly one source of coefficients; `options` are the
    given RunOptions fields (None: as the source study, or the default)."""
    given = [v for v in (alpha, beta, gamma) if v is not None]
    if given and len(given) < 3:
        raise ScaleSearchError("give all three of --alpha, --beta and --gamma")
    sources = [name for name, used in (("--alpha/--beta/--gamma", given), ("--study", study), ("--from", coefficients))
               if used]
    if len(sources) != 1:
        raise ScaleSearchError("give the coefficients one way: --alpha/--beta/--gamma (on --base), --study NAME (a "
                               "search's winner) or --from FILE (an exported coefficient file)" +
                               (f"; got {' and '.join(sources)}" if sources else ""))
    unknown = sorted(set(options) - set(TAKEN))
    if unknown:
        raise ScaleSearchError(f"unknown option {unknown[0]!r}; expected one of {', '.join(TAKEN)}")
    if base is not None and not given:
        raise ScaleSearchError("--base goes with --alpha/--beta/--gamma; a study or a coefficient file brings its own base")
    options = {k: v for k, v in options.items() if v is not None}
    if study is not None:
        return _beside_study(options, study, settings)
    if coefficients is not None:
        fam = load_family(coefficients)
        name = fam.base.name
        known = name in known_bases() and load_base(name) == fam.base
        return (RunOptions(**({"base": name if known else fam.base} | options)),
                Settings(*fam.coefficients, source=f"file {coefficients}", **settings))
    return RunOptions(**({"base": base or "b0"} | options)), Settings(*given, source="given", **settings)


def _beside_study(options: dict[str, Any], name: str, settings: dict[str, Any]) -> tuple[RunOptions, Settings]:
    st, url = load_recorded(options.get("storage"), name, options.get("results_dir", "results"))
    config = st.user_attrs["config"]
    if config.get("kind") == COMPARISON:
        raise ScaleSearchError(f"study {st.study_name!r} is itself a comparison; give the search study it compares")
    if str(config["options"].get("data", "")).startswith(OBJECT):
        raise ScaleSearchError(f"study {st.study_name!r} trained on a Dataset object: give data= that Dataset")
    _, w = study_winner(st)
    study_base(st)  # its base must load here
    recorded = {k: config["options"][k] for k in INHERITED if config["options"].get(k) is not None}
    run = RunOptions(**(recorded | options | {"storage": url}))
    return run, Settings(float(w.alpha), float(w.beta), float(w.gamma), source=f"winner of study {st.study_name}",
                         beside=st.study_name, **settings)


def study_name(options: RunOptions, settings: Settings) -> str:
    """``<study>-compare`` beside a study; else from the base, the coefficients, a space other than the default and the data."""
    if settings.beside:
        return f"{settings.beside}{BESIDE}"
    base = options.base if isinstance(options.base, BaseNetwork) else load_base(options.base)
    parts = [base.name, "compare", *(f"{x:g}" for x in settings.coefficients)]
    parts += [] if options.space == "default" else [Path(options.space).stem]
    spec = data_spec(options.data)
    parts += [] if spec == "embedded" else [spec.split(":")[0] if ":" in spec else Path(spec).name or spec]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))


def folder(options: RunOptions, settings: Settings, name: str) -> Path:
    """Where the outputs go: beside an SQLite study, its folder; else ``<results_dir>/<study>``."""
    url = options.storage or ""
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):]).parent
    return Path(options.results_dir) / (settings.beside or name)


def prepare(options: RunOptions, settings: Settings) -> ComparisonPlan:
    """Validate and resolve everything a comparison needs; raises ScaleSearchError and writes nothing."""
    if settings.interaction and settings.phi < 1:
        raise ScaleSearchError("--interaction needs --phi 1 or more: its width curves grow with φ")
    options = replace(options, proxy_for=options.proxy_for or pick_device(options.device).type)
    overrides = {k: getattr(options, k) for k in ("tolerance", "epochs", "seeds", "max_seeds", "train", "val",
                                                   "batch_size", "resolution")}
    if options.time is not None:
        overrides["time"] = parse_duration(options.time)
    space = load_space(options.space).for_device(options.proxy_for).with_overrides(
        **overrides, sampler="grid", pruner="none", constraint="measured")
    base = options.base if isinstance(options.base, BaseNetwork) else load_base(options.base)
    classes, channels = data_shape(options.data)
    members = family_members(base, settings.coefficients, settings.phi, settings.families)
    curves = interaction_members(base, settings.coefficients, settings.phi) if settings.interaction else []
    networks = list({m.candidate.key: m.candidate for m in members + curves}.values())
    space, design = resolve_proxy(space, base, networks, classes, channels)
    p = space.proxy
    assessed = [assess(base, c, int(p.resolution), classes, channels, p.width) for c in networks]
    require_training_memory(base, networks, space, classes, channels, pick_device(options.device))
    data = load_data(options.data, side=max(a.proxy_resolution for a in assessed), train=pool_size(p.train, p.max_seeds),
                     val=p.val, seed=p.seed)
    name = study_name(options, settings)
    where = folder(options, settings, name)
    url = options.storage or f"sqlite:///{where / 'study.db'}"
    report = GridReport(assessed, len(assessed), 0, len(assessed), [])
    return ComparisonPlan(replace(options, study=name), space, base, data, report, name, url, where, design,
                          settings=settings, members=members, curves=curves)


def open_comparison(plan: ComparisonPlan) -> optuna.Study:
    """Create or resume the comparison's study; a base given as an object is written beside the results first,
    so a worker or a resume can read it back."""
    if isinstance(plan.options.base, BaseNetwork):
        plan.options = replace(plan.options, base=as_file(plan.base, Path(plan.options.results_dir), "base"))
    return open_study(plan)


def reopen(storage_url: str, name: str) -> tuple[ComparisonPlan, optuna.Study]:
    """A comparison's plan rebuilt from what its study recorded (``scalesearch worker``)."""
    st, url = load_recorded(storage_url, name)
    config = st.user_attrs["config"]
    if config.get("kind") != COMPARISON:
        raise ScaleSearchError(f"study {name!r} is not a comparison")
    known = set(TAKEN) | {"proxy_for"}
    options = RunOptions(**({k: v for k, v in config["options"].items() if k in known} | {"storage": url}))
    recorded = config["compare"]
    settings = Settings(**{f.name: recorded[f.name] for f in fields(Settings)} | {"families": tuple(recorded["families"])})
    plan = prepare(options, settings)
    return plan, open_study(plan, create=False)


def restart(plan: ComparisonPlan, outputs: tuple[str, ...]) -> str:
    """Delete the comparison's study and its outputs (never the study it sits beside); returns what, in words."""
    from ..search._storage import open_storage, redact

    url = plan.storage_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return f"--restart: no comparison {plan.study_name!r} yet in {redact(url)}"
    try:
        storage = open_storage(plan.storage_url)
        trials = len(optuna.load_study(study_name=plan.study_name, storage=storage).get_trials(deepcopy=False))
        optuna.delete_study(study_name=plan.study_name, storage=storage)
    except KeyError:
        return f"--restart: no comparison {plan.study_name!r} yet in {redact(plan.storage_url)}"
    for name in outputs:
        (plan.results_dir / name).unlink(missing_ok=True)
    return f"--restart: deleted comparison {plan.study_name!r} ({trials} trials) from {redact(plan.storage_url)}"
