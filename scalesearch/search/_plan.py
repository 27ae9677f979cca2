"""The plan of a run: its options validated into a space, base, data and feasible grid, and where its study lives.

:func:`prepare` resolves every option and raises :class:`~scalesearch.errors.ScaleSearchError`
before anything is written; :func:`open_study` creates or joins the Optuna study and records
the configuration (:meth:`Plan.config`) that every later command and export reads back.

>>> opts = RunOptions(base="tiny-mbconv", data="synthetic:64", epochs=1, results_dir="/tmp/scalesearch-doctest")
>>> plan = prepare(opts)  # validates everything, writes nothing
>>> plan.study_name, len(plan.report.feasible) > 0
('tiny-mbconv-2x-default-measured-synthetic', True)
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import optuna

from .._version import __version__
from ..space import _fidelity as fidelity
from ..arch._spec import BaseNetwork, load_base
from ..space._candidates import Assessment, Candidate, assess, resolution_for
from ..space._grid import GridReport, feasible_grid, require_feasible
from ..arch._latency import Meter
from ..arch._latency import Progress as LatencyProgress
from ..space._latency_budget import LatencyCheck, meter_for
from ..data._load import Dataset, data_shape, load_data, pool_size
from ..errors import ScaleSearchError
from ..files import make_folder
from ..results._record import BESIDE, COMPARISON, is_comparison
from ._provenance import OUTPUTS, check as check_provenance
from ..device import pick_device
from ..space._space import SearchSpace, load_space, parse_budget, parse_duration
from ._storage import open_storage, redact
from ..proxy._memory import require_training_memory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """Everything `scalesearch run` takes; None means "as the search-space file says"."""

    base: str = "b0"
    space: str = "default"
    data: str | Dataset = "embedded"  # a spec (see scalesearch.data) or a Dataset object (trained in this process)
    device: str = "auto"
    compile: bool = False  # torch.compile the training step (long runs only)
    budget: str | float | None = None
    constraint: str | None = None
    latency_device: str | None = None  # where `constraint = "latency"` measures (default: the run's device)
    latency_batch: int | None = None  # images per timed forward pass (default 1)
    tolerance: float | None = None
    sampler: str | None = None
    trials: int | None = None
    pruner: str | None = None
    epochs: int | None = None
    seeds: int | None = None
    max_seeds: int | None = None
    time: str | float | None = None  # the run's time budget, e.g. "10m" (default: the space file's)
    train: int | None = None
    val: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr_scaling: str | None = None
    resolution: int | None = None
    study: str | None = None
    storage: str | None = None
    results_dir: str = "results"
    proxy_for: str | None = None  # the device kind whose [proxy.<kind>] settings apply (default: the device's)


@dataclass
class Plan:
    """A validated run: resolved space, base and data, the feasible grid, where the study lives."""

    options: RunOptions
    space: SearchSpace
    base: BaseNetwork
    data: Dataset  # the pool every seed draws its training subset from, and the fixed val images
    report: GridReport
    study_name: str
    storage_url: str
    results_dir: Path
    design: fidelity.ProxyDesign

    def proxy_cost(self, trained: Candidate) -> Assessment:
        """The cost of the member `trained` (coefficients already to the power φ) as this plan's proxy trains it."""
        p = self.space.proxy
        return assess(self.base, trained, p.resolution, self.data.num_classes, self.data.in_channels, p.width)

    @property
    def grid(self) -> bool:
        return self.space.sampler == "grid"

    def scope(self) -> str:
        """What the study trains and on which data, in one line."""
        return f"{self.trains()}; data {self.data.name}: {len(self.data.train_y)} train / {len(self.data.val_y)} val images"

    def trains(self) -> str:
        """What the study trains: the grid within budget."""
        r = self.report
        return (f"grid: {r.total} points; within {self.space.tolerance:.0%} of {self.space.budget:g}x: "
                f"{r.feasible_nominal} nominal, {r.feasible_measured} measured, {r.feasible_acts} acts"
                f"{'' if r.feasible_latency is None else f', {r.feasible_latency} latency'} at {self.base.resolution} px "
                f"(constraint: {self.space.constraint})")

    def config(self) -> dict[str, Any]:
        """The provenance stored in the study and carried into every export."""
        return {
            "scalesearch_version": __version__,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "options": {k: getattr(self.options, k) for k in self.options.__dataclass_fields__}
                       | {"storage": redact(self.storage_url), "data": data_spec(self.options.data)},
            "base": {"name": self.base.name, "source": self.base.source or "preset", "resolution": self.base.resolution,
                     "width": self.base.width, "depth": self.base.depth},
            "space": {"name": self.space.name, "path": self.space.path, "budget": self.space.budget,
                      "tolerance": self.space.tolerance, "constraint": self.space.constraint,
                      "sampler": self.space.sampler, "trials": self.space.trials, "pruner": self.space.pruner,
                      "contenders": self.space.contenders, "phi2": self.space.phi2, "time": self.space.time,
                      "alpha": asdict(self.space.alpha), "beta": asdict(self.space.beta), "gamma": asdict(self.space.gamma)},
            "proxy": asdict(self.space.proxy),
            "proxy_design": asdict(self.design),
            "data": {"spec": data_spec(self.options.data), "name": self.data.name, "source": self.data.source,
                     "classes": self.data.num_classes, "channels": self.data.in_channels,
                     "train": len(self.data.train_y), "val": len(self.data.val_y)},
            "grid": {"points": self.report.total, "feasible_nominal": self.report.feasible_nominal,
                     "feasible_measured": self.report.feasible_measured, "feasible_acts": self.report.feasible_acts,
                     "feasible_latency": self.report.feasible_latency},
            **({"latency": self.report.latency.record()} if self.report.latency else {}),
        }


# How a study records data given as an object: it names it, and only the same object can resume the study.
OBJECT = "object:"


def data_spec(data: str | Dataset) -> str:
    return f"{OBJECT}{data.name}" if isinstance(data, Dataset) else data


def default_study_name(base: BaseNetwork, space: SearchSpace, data: str | Dataset) -> str:
    parts = [base.name, f"{space.budget:g}x", space.name, space.constraint]
    spec = data_spec(data)
    if spec.startswith(OBJECT):
        parts.append(data.name)
    elif spec != "embedded":
        parts.append(spec.split(":")[0] if ":" in spec else Path(spec).name or spec)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))


def prepare(options: RunOptions, latency: LatencyCheck | None = None, on_latency: LatencyProgress | None = None) -> Plan:
    """Resolve and validate every option; raises ScaleSearchError, writes nothing but the latency cache.

    Under the latency constraint the grid's latencies are measured (`on_latency` hears each
    network) and cached in ``<results_dir>/latency-cache.json``, unless `latency` holds the
    measurement a study recorded.
    """
    overrides = {k: getattr(options, k) for k in ("constraint", "tolerance", "sampler", "trials", "pruner",
                                                    "epochs", "seeds", "max_seeds", "train", "val", "batch_size",
                                                    "lr", "lr_scaling", "resolution")}
    if options.budget is not None:
        overrides["budget"] = parse_budget(options.budget)
    if options.time is not None:
        overrides["time"] = parse_duration(options.time)
    # A resumed or joined study keeps the kind it was created for, so every worker trains the same proxy.
    options = replace(options, proxy_for=options.proxy_for or pick_device(options.device).type)
    space = load_space(options.space).for_device(options.proxy_for).with_overrides(**overrides)
    base = load_base(options.base)
    if space.constraint in ("acts", "latency") and space.sampler != "grid":
        raise ScaleSearchError(f"constraint {space.constraint} works with the grid sampler only (the other samplers "
                               f"solve for the MACs or nominal budget), got sampler {space.sampler!r}")
    classes, channels = data_shape(options.data)
    meter = latency_meter(options, space) if latency is None else None
    report = feasible_grid(space, base, classes, channels, meter=meter, latency=latency, on_progress=on_latency)
    require_feasible(report, space)
    space, design = fidelity.resolve(space, base, [a.candidate for a in report.feasible], classes, channels)
    report = feasible_grid(space, base, classes, channels, latency=report.latency)
    p = space.proxy
    feasible = [a.candidate for a in report.feasible]
    require_training_memory(base, feasible, space, classes, channels, pick_device(options.device), (1, 2) if space.phi2 else (1,))
    # Image folders are decoded at the largest side any trial trains at (φ = 2 members included), and only
    # the pool every seed draws its training subset from, plus the val images all seeds share.
    side = max(resolution_for(p.resolution, a.candidate.gamma ** 2) for a in report.feasible)
    data = load_data(options.data, side=side, train=pool_size(p.train, p.max_seeds), val=p.val, seed=p.seed)
    name = default_study_name(base, space, options.data) if options.study is None else options.study
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise ScaleSearchError(f"--study must use letters, digits, '.', '_' or '-', got {name!r}")
    results_dir = Path(options.results_dir) / name
    url = options.storage or f"sqlite:///{results_dir / 'study.db'}"
    return Plan(options, space, base, data, report, name, url, results_dir, design)


def latency_meter(options: RunOptions, space: SearchSpace) -> Meter | None:
    """The meter the latency constraint measures with (None under other constraints); bad options are one line."""
    if options.latency_batch is not None and options.latency_batch < 1:
        raise ScaleSearchError(f"--latency-batch must be at least 1, got {options.latency_batch}")
    if space.constraint != "latency":
        return None
    return meter_for(options.latency_device or options.device, options.latency_batch, options.results_dir)


def open_study(plan: Plan, create: bool = True) -> optuna.Study:
    """Create (or join) the study; the creator records the run's configuration."""
    if plan.options.storage is None:  # only the default results/<study>/ folder is made; a URL's must exist
        make_folder(plan.results_dir)
    storage = open_storage(plan.storage_url, "create" if create else "write")
    pruner = make_pruner(plan.space.pruner, plan.space.proxy.epochs)
    sampler = make_sampler(plan.space.sampler, plan.space.proxy.seed)
    if not create:
        try:
            return optuna.load_study(study_name=plan.study_name, storage=storage, sampler=sampler, pruner=pruner)
        except KeyError:
            raise ScaleSearchError(f"no study {plan.study_name!r} in {redact(plan.storage_url)}") from None
    study = optuna.create_study(study_name=plan.study_name, storage=storage, sampler=sampler, pruner=pruner,
                                direction="maximize", load_if_exists=True)
    _say_if_data_is_short(plan)
    # a study run with other settings is never resumed
    check_provenance(study, plan.config(), f"study {plan.study_name!r} in {redact(plan.storage_url)}")
    if "config" not in study.user_attrs:
        study.set_user_attr("config", plan.config())
    return study


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    # grid trials are all enqueued; random only pads the rare race described in _objective
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, epochs), reduction_factor=2)
    return optuna.pruners.NopPruner()


def seed_list(space: SearchSpace, count: int | None = None) -> list[int]:
    """The seeds every candidate gets (or the first `count`): consecutive from the space's `seed`."""
    return [space.proxy.seed + k for k in range(space.proxy.seeds if count is None else count)]


def latest_study(results_dir: str | Path = "results") -> tuple[str, str]:
    """(storage URL, study name) of the most recently written study.db anywhere under `results_dir`."""
    dbs = sorted(Path(results_dir).rglob("study.db"), key=lambda p: p.stat().st_mtime)
    if not dbs:
        raise ScaleSearchError(f"no study under {results_dir}/: run scalesearch run first, or give --storage URL --study NAME")
    return f"sqlite:///{dbs[-1]}", dbs[-1].parent.name


def find_study(name: str | None, results_dir: str | Path = "results") -> tuple[str, str | None]:
    """(storage URL, study name) of STUDY as commands take it: a results folder (or its study.db), else a study
    name found anywhere under `results_dir`, nested folders too; None is the latest. A folder's name is not
    assumed to be its study's: None lets the one study in its database answer."""
    if name is None:
        return latest_study(results_dir)
    folder = Path(name).parent if Path(name).name == "study.db" else Path(name)
    if (folder / "study.db").is_file():
        return f"sqlite:///{folder / 'study.db'}", None
    found = sorted(db for db in Path(results_dir).rglob("study.db") if db.parent.name == name)
    if not found and name.endswith(BESIDE):  # X-compare lives in X's folder
        found = sorted(db for db in Path(results_dir).rglob("study.db") if db.parent.name == name[: -len(BESIDE)])
    if not found:
        raise ScaleSearchError(f"no study {name!r}: no results folder {name} and no {name}/study.db under {results_dir}/")
    if len(found) > 1:
        raise ScaleSearchError(f"study {name!r} is in {len(found)} folders: {', '.join(str(db.parent) for db in found)}; "
                               "give the folder's path")
    return f"sqlite:///{found[0]}", name


def load(storage_url: str | None = None, study_name: str | None = None, results_dir: str | Path = "results") -> tuple[Plan, optuna.Study]:
    """Reopen a study written by `run`, with the plan rebuilt from the configuration it recorded.

    With no storage, `study_name` names a folder under `results_dir` (default: the latest).
    """
    recorded_study, storage_url = load_recorded(storage_url, study_name, results_dir)
    config = recorded_study.user_attrs["config"]
    if config.get("kind") == COMPARISON:
        raise ScaleSearchError(f"study {recorded_study.study_name!r} is a comparison: scalesearch compare resumes it and "
                               "scalesearch worker joins it")
    known = {f for f in RunOptions.__dataclass_fields__}
    recorded = {k: v for k, v in config["options"].items() if k in known}
    if str(recorded.get("data", "")).startswith(OBJECT):
        raise ScaleSearchError(f"study {recorded_study.study_name!r} trained on a Dataset object "
                               f"({recorded['data'][len(OBJECT):]}), which only Python holds: continue it with "
                               "scalesearch.run(..., data=<that Dataset>) in one process")
    options = RunOptions(**(recorded | {"storage": storage_url, "study": recorded_study.study_name}))
    measured = config.get("latency")  # workers and later commands judge the points the creator measured
    plan = prepare(options, latency=LatencyCheck.from_record(measured) if measured else None)
    return plan, open_study(plan, create=False)


def load_recorded(storage_url: str | None = None, study_name: str | None = None,
                  results_dir: str | Path = "results") -> tuple[optuna.Study, str]:
    """(study, storage URL) of a study written by `run`, read as it is: no data loaded, no plan rebuilt.

    The light path for reading results (`show`, `export`); :func:`load` builds on it to train more.
    """
    if storage_url is None:
        storage_url, study_name = find_study(study_name, results_dir)
    storage = open_storage(storage_url, "read")
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    names = [s.study_name for s in summaries]
    if study_name is None:
        # A search and the comparisons made of its winner share its storage: the search is the folder's study.
        searches = [s.study_name for s in summaries if not is_comparison(s)]
        if len(names) != 1 and len(searches) != 1:
            raise ScaleSearchError(f"{redact(storage_url)} holds {len(names)} studies; choose one with --study: {', '.join(names) or 'none'}")
        study_name = names[0] if len(names) == 1 else searches[0]
    if study_name not in names:
        raise ScaleSearchError(f"no study {study_name!r} in {redact(storage_url)}; it holds: {', '.join(names) or 'none'}")
    study = optuna.load_study(study_name=study_name, storage=storage)
    config = study.user_attrs.get("config")
    if not config or "options" not in config:
        raise ScaleSearchError(f"study {study_name!r} was not written by scalesearch (no recorded configuration)")
    return study, storage_url


def _say_if_data_is_short(plan: Plan) -> None:
    """--train or --val above what the data has: the proxies use all of it; say so rather than train on less unasked.

    (The space file's defaults are not reported: the run's data line shows how many images there are.)
    """
    o = plan.options
    for flag, asked, have, split in (("--train", o.train, len(plan.data.train_y), "train"),
                                     ("--val", o.val, len(plan.data.val_y), "val")):
        if asked is not None and have < asked:
            log.warning("%s %d: data %s has only %d %s images; using all %d", flag, asked, plan.data.name, have, split, have)


def restart(options: RunOptions) -> str:
    """Delete the study `options` would run in, and its output tables; returns what was deleted, in words."""
    plan = prepare(options)
    url = plan.storage_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return f"--restart: no study {plan.study_name!r} yet in {redact(url)}"
    storage = open_storage(url)
    try:
        trials = len(optuna.load_study(study_name=plan.study_name, storage=storage).get_trials(deepcopy=False))
        optuna.delete_study(study_name=plan.study_name, storage=storage)
    except KeyError:
        return f"--restart: no study {plan.study_name!r} yet in {redact(url)}"
    for name in OUTPUTS:  # a new run that ends without a winner must not leave the old one's files standing
        try:
            (plan.results_dir / name).unlink(missing_ok=True)
        except OSError as exc:
            raise ScaleSearchError(f"--restart: cannot delete {plan.results_dir / name}: {exc.strerror}") from None
    return f"--restart: deleted study {plan.study_name!r} ({trials} trials) from {redact(url)}"
