"""The `scalesearch` command: a thin typer layer over the Python API.

Every command turns its options into API calls and renders the result with rich.
User errors (:class:`ScaleSearchError`, bad option values) print one line on
stderr and exit with code 2; anything else keeps its traceback.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import optuna
import typer
from rich.console import Console
from rich.table import Table

from . import arch, results, search, stats
from . import space as space_mod
from .errors import ScaleSearchError
from .results import RANKING_HEADERS, markdown_ranking, mega, pct, ranking_caption, ranking_cells, verdict_line
from .search import Progress, RichProgress, inputs

try:  # typer that vendors click: its usage errors derive from the public TyperException
    from typer import TyperException as ClickException
except ImportError:  # pragma: no cover  (older typer: click is a separate, public dependency)
    from click import ClickException

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="EfficientNet-style compound scaling: search (α, β, γ) for your base network, data and budget.")
# Wide tables stay readable when piped to a file or CI log (rich would assume 80 columns).
out = Console(width=None if sys.stdout.isatty() else 180)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 180)
PAPER = (1.2, 1.1, 1.15)
STORAGE_OPT = typer.Option(None, "--storage", envvar=search.STORAGE_ENV,
                           help="Optuna storage URL; SCALESEARCH_STORAGE keeps a password off the command line.")
RESULTS_OPT = typer.Option("results", help="Where results/<study>/ lives.")
STUDY_OPT = typer.Option(None, help="Study name in --storage.")
STUDY_ARG = typer.Argument(None, metavar="[STUDY]", show_default=False,
                           help="A results folder (results/<study>), or a study name found anywhere under --results-dir "
                                "(default: the latest there).")


def table(title: str, columns, rows, caption: str | None = None, left: tuple[str, ...] = (), wrap: tuple[str, ...] = ()) -> Table:
    """A rich table: numbers right-aligned, the `left` columns left; only the `wrap` columns wrap."""
    t = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for c in columns:
        t.add_column(c, justify="left" if c in left else "right", no_wrap=c not in wrap)
    for row in rows:
        t.add_row(*row)
    return t


def fail(message: str) -> None:
    raise ScaleSearchError(message)


@contextlib.contextmanager
def interruptible(progress: Progress, what: str, quiet: bool = False) -> Iterator[None]:
    """Stop the progress bar however the block ends; Ctrl-C says how to resume and exits 130."""
    try:
        yield
    except KeyboardInterrupt:
        progress.stop()
        if not quiet:
            err.print(f"interrupted: {what}; run the same command again to resume (complete candidates are not "
                      "retrained)", highlight=False)
        sys.exit(130)
    finally:
        progress.stop()


def network_table(spec: arch.NetworkSpec, base_macs: int, num_classes: int, in_channels: int, verify: bool) -> Table:
    total = arch.network_cost(spec, num_classes=num_classes, in_channels=in_channels)
    title = (f"{spec.name}  width ×{spec.width_mult:.3f}  depth ×{spec.depth_mult:.3f}  {spec.resolution} px  "
             f"{mega(total.params)} M params  {total.macs / 1e9:.3f} GMACs  {mega(total.acts)} M activations  "
             f"{total.macs / base_macs:.2f}× base MACs")
    if verify:
        m = arch.fvcore_count(spec, num_classes=num_classes, in_channels=in_channels)
        title += (f"\nfvcore: conv+linear {m['conv_linear_macs'] / 1e9:.3f} GMACs, total with BatchNorm and pooling "
                  f"{m['total_macs'] / 1e9:.3f} GMACs, {mega(m['params'])} M params")
    costs = arch.stage_costs(spec, num_classes=num_classes, in_channels=in_channels)
    layers = [("stem", 3, 2, "", 1, spec.stem)] + [(f"stage{n}", s.kernel, s.stride, s.expand, s.repeats, s.out_ch)
                                                    for n, s in enumerate(spec.stages, 1)]
    layers += [("head", 1, 1, "", 1, spec.head), ("classifier", 1, 1, "", 1, num_classes)]
    rows = [[*map(str, layer), mega(costs[layer[0]].macs), mega(costs[layer[0]].params), mega(costs[layer[0]].acts)]
            for layer in layers]
    return table(title, ("stage", "kernel", "stride", "expand", "repeats", "channels", "MMACs", "params (M)",
                         "activations (M)"), rows, left=("stage",))


@app.command()
@inputs
def info(
    base: str = typer.Option("b0", help="Preset (b0 … b7, b8, l2), shipped base, or path to a base .toml."),
    phi: Optional[str] = typer.Option(None, help="Family members to show: 3, or a range 0..7 (uses --alpha/--beta/--gamma)."),
    alpha: float = typer.Option(PAPER[0], help="Depth coefficient for --phi."),
    beta: float = typer.Option(PAPER[1], help="Width coefficient for --phi."),
    gamma: float = typer.Option(PAPER[2], help="Resolution coefficient for --phi."),
    width: Optional[float] = typer.Option(None, help="Width multiplier on top of the base."),
    depth: Optional[float] = typer.Option(None, help="Depth multiplier on top of the base."),
    resolution: Optional[int] = typer.Option(None, help="Input side in px (default: the base's)."),
    num_classes: int = typer.Option(1000, help="Classifier outputs."),
    in_channels: int = typer.Option(3, help="Input channels."),
    verify: bool = typer.Option(False, help="Also count the built network with fvcore (slow for large nets)."),
    coefficients: Optional[str] = typer.Option(None, help="A file from scalesearch export (.json, .yaml, .toml): its base "
                                                          "and α, β, γ replace --base/--alpha/--beta/--gamma; --phi defaults to 1."),
) -> None:
    """Channels, repeats, params, multiply-adds and activations of a network, per stage."""
    if phi is not None and (width or depth or resolution):
        fail("give either --phi or --width/--depth/--resolution, not both")
    if coefficients and (width or depth or resolution):
        fail("--coefficients goes with --phi, not with --width/--depth/--resolution")
    fam = results.load_family(coefficients) if coefficients else None
    b = fam.base if fam else arch.load_base(base)
    base_spec = arch.scale(b)
    base_macs = arch.network_cost(base_spec, num_classes=num_classes, in_channels=in_channels).macs
    if fam:
        specs = [fam.spec(p) for p in results.parse_phis(phi or "1")]
    elif phi is not None:
        specs = [results.member(b, alpha, beta, gamma, p) for p in results.parse_phis(phi)]
    else:
        specs = [arch.scale(b, width or 1.0, depth or 1.0, resolution)]
    for spec in specs:
        out.print(network_table(spec, base_macs, num_classes, in_channels, verify))


@app.command()
def bases() -> None:
    """The known base networks and presets."""
    rows = [[name, f"{b.width:g}", f"{b.depth:g}", str(b.resolution), mega(c.params), f"{c.macs / 1e9:.3f}"]
            for name in arch.known_bases() for b in [arch.load_base(name)] for c in [arch.network_cost(arch.scale(b))]]
    out.print(table("Bases (use with --base NAME, or --base path/to/net.toml)",
                    ("name", "width ×", "depth ×", "resolution (px)", "params (M)", "GMACs"), rows, left=("name",),
                    caption=f"b0 … l2 are B0 scaled by the official multipliers; the others are files in {arch.BASES_DIR}"))


@app.command()
def spaces() -> None:
    """The shipped search spaces (use with --space NAME, or --space path/to/space.toml)."""
    columns = ("name", "α", "β", "γ", "description")
    rows = [[name, *(f"{r.min:g} … {r.max:g} step {r.step:g}" for r in (s.alpha, s.beta, s.gamma)), s.description]
            for name in space_mod.known_spaces() for s in [space_mod.load_space(name)]]
    out.print(table("Search spaces (use with --space NAME, or --space path/to/space.toml)", columns, rows, left=columns,
                    wrap=("description",), caption=f"files in {space_mod.SPACES_DIR}; each documents its schema and numbers inside"))


def ranking_table(ranked, title: str, val_images: int | None = None) -> Table:
    rows = [ranking_cells(r) for r in ranked.itertuples()]
    return table(title, RANKING_HEADERS, rows, ranking_caption(ranked, val_images), left=("status",), wrap=("status",))


COMPILE_OPT = typer.Option(False, "--compile", help="torch.compile each training step: for long runs (compiling takes minutes).")


@app.command()
@inputs
def run(
    base: str = typer.Option("b0", help="Preset (b0 … b7, b8, l2), shipped base, or path to a base .toml."),
    budget: Optional[str] = typer.Option(None, help="Compute multiplier at φ = 1, e.g. 2x (default: the space file's)."),
    space: str = typer.Option("default", help="Search space: a name from `scalesearch spaces` or a .toml path."),
    constraint: Optional[str] = typer.Option(None, help="nominal (α·β²·γ²), measured (built network's MACs ratio at the target "
                                             "resolution), acts (its activations ratio) or latency (its measured latency ratio)."),
    latency_device: Optional[str] = typer.Option(None, help="Where --constraint latency measures: cpu, cuda or cuda:N (default: --device)."),
    latency_batch: Optional[int] = typer.Option(None, help="Images per timed forward pass for --constraint latency (default 1)."),
    tolerance: Optional[float] = typer.Option(None, help="Relative tolerance on the budget, e.g. 0.05."),
    sampler: Optional[str] = typer.Option(None, help="grid, tpe, random, qmc or cmaes."),
    trials: Optional[int] = typer.Option(None, help="Candidates to sample (not grid)."),
    pruner: Optional[str] = typer.Option(None, help="none, median, sha or hyperband."),
    epochs: Optional[int] = typer.Option(None, help="Proxy epochs per candidate."),
    seeds: Optional[int] = typer.Option(None, help="Paired seeds every candidate gets."),
    max_seeds: Optional[int] = typer.Option(None, help="Seeds a network may get while in the 95% set."),
    time_budget: Optional[str] = typer.Option(None, "--time", help="Time for the whole run, e.g. 10m, 1h or none (default: the space's)."),
    train_images: Optional[int] = typer.Option(None, "--train", help="Training images per proxy run."),
    val_images: Optional[int] = typer.Option(None, "--val", help="Validation images."),
    batch_size: Optional[int] = typer.Option(None, help="Proxy batch size."),
    proxy_resolution: Optional[int] = typer.Option(None, help="Proxy side in px for γ = 1."),
    data: str = typer.Option("embedded", help="embedded, fashion-mnist-full[:DIR], cifar10:PATH, synthetic[:N] or an image folder."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    study: Optional[str] = typer.Option(None, help="Study name (default from base, budget, space, constraint, data)."),
    storage_url: Optional[str] = typer.Option(None, "--storage", envvar=search.STORAGE_ENV, help="Optuna storage URL (default sqlite in "
                                              "results/<study>/); SCALESEARCH_STORAGE keeps a password off the command line."),
    results_dir: str = typer.Option("results", help="Where results/<study>/ goes."),
    workers: int = typer.Option(1, help="Worker processes on this machine, sharing the cores (see also scalesearch worker)."),
    devices: Optional[str] = typer.Option(None, help="One worker process per device, e.g. cuda:0,cuda:1."),
    compile_step: bool = COMPILE_OPT,
    restart: bool = typer.Option(False, "--restart", help="Delete the study of this name (trials and recorded settings) "
                                                          "and start it again, e.g. with other proxy settings."),
) -> None:
    """Search (α, β, γ) under the budget with short proxy runs, rank, extrapolate and export."""
    progress = RichProgress()
    with interruptible(progress, "the current candidate is marked interrupted"):
        result = search.run(base, budget, space=space, progress=progress, workers=workers, devices=devices, restart=restart,
                            data=data, device=device, constraint=constraint, latency_device=latency_device,
                            latency_batch=latency_batch, tolerance=tolerance, sampler=sampler,
                            trials=trials, pruner=pruner, epochs=epochs, seeds=seeds, max_seeds=max_seeds, time=time_budget,
                            train=train_images, val=val_images, batch_size=batch_size, resolution=proxy_resolution,
                            study=study, storage=storage_url, results_dir=results_dir, compile=compile_step)
    print_result(result)


def print_result(r: search.SearchResult) -> None:
    """The ranking, the winner with its verdict, and its family."""
    p = r.plan
    out.print(ranking_table(r.ranking, f"Ranking: {p.study_name} ({p.space.proxy.epochs} proxy epochs, φ = 1)",
                            val_images=len(p.data.val_y)))
    w = r.winner
    out.print(f"winner: α={w.alpha:g} β={w.beta:g} γ={w.gamma:g}  nominal {w.nominal:.2f}×, measured {w.measured_target:.2f}× "
              f"MACs at {int(w.target_resolution)} px; proxy val top-1 {pct(w.acc_mean)}%", highlight=False)
    for line in (verdict_line(r.verdict, len(r.ranking)) if r.verdict else None, results.surface_line(r.surface),
                 results.constraint_line(r.study.user_attrs["config"])):
        out.print(line or "", highlight=False, end="\n" if line else "")
    out.print(family_rich(r.family, f"Family of {p.base.name} (φ = 0 … 7, 1000 classes)", official=False))
    out.print(f"wrote {r.folder}/trials.csv, ranking.csv, coefficients.json", highlight=False)


# ------------------------------------------------------------ show, export

SHOW_FORMATS = ("table", "csv", "json", "markdown")


def chosen(name: str | None, study: str | None) -> str | None:
    """The study named by STUDY or --study (they must agree)."""
    if name and study and name != study:
        fail(f"STUDY {name!r} and --study {study!r} disagree; give one")
    return name or study


@app.command()
@inputs
def show(
    name: Optional[str] = STUDY_ARG,
    fmt: str = typer.Option("table", "--format", help="table, csv, json or markdown."),
    top: Optional[int] = typer.Option(None, help="Only the first K rows (after --sort)."),
    sort: str = typer.Option("rank", help="Order by a column of the csv/json output, e.g. params, or acc_std:desc."),
    show_all: bool = typer.Option(False, "--all", help="Also candidates with no complete seed: pruned and failed, with the reason."),
    wide: bool = typer.Option(False, "--wide", help="Every column of ranking.csv (the default table fits 120 columns)."),
    study: Optional[str] = STUDY_OPT,
    storage_url: Optional[str] = STORAGE_OPT,
    results_dir: str = RESULTS_OPT,
) -> None:
    """The ranked candidates of a study: cost, val top-1 over seeds with 95% intervals and ties, best epoch, state."""
    if fmt not in SHOW_FORMATS:
        fail(f"--format must be one of {', '.join(SHOW_FORMATS)}, got {fmt!r}")
    st, url = search.load_recorded(storage_url, chosen(name, study), results_dir)
    trials = results.trials_frame(st)
    ranked = results.sort_ranking(results.ranking(trials, include_all=show_all), sort)
    v, candidates = stats.verdict(trials), int((ranked["seeds"] > 0).sum()) if len(ranked) else 0
    ranked = ranked.head(top) if top else ranked
    config = st.user_attrs["config"]
    epochs, val_images = config.get("proxy", {}).get("epochs", "?"), config.get("data", {}).get("val")
    title = f"Ranking: {st.study_name} ({epochs} proxy epochs, φ = 1; study in {search.redact(url)})"
    if fmt == "csv":
        sys.stdout.write(ranked.to_csv(index=False))
    elif fmt == "json":
        doc = results.ranking_document(st.study_name, search.redact(url), epochs, val_images, ranked,
                                      results.verdict_document(st), results.constraint_summary(config))
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        lines = ([verdict_line(v, candidates)] if v else []) + [results.constraint_line(config)]
        if fmt == "markdown":
            sys.stdout.write(markdown_ranking(ranked, title, val_images) + "".join(f"\n{line}\n" for line in lines))
        else:
            shown = table(title, *results.wide_table(ranked)) if wide else ranking_table(ranked, title, val_images=val_images)
            (Console(width=10_000) if wide else out).print(shown, highlight=False)  # --wide: as wide as its columns
            out.print("\n".join(lines), highlight=False, soft_wrap=True)  # the verdict on one line, however long
    if ranked.empty:
        err.print("no complete candidate" + ("" if show_all else "; --all also lists pruned and failed ones"), highlight=False)


@app.command("export")
@inputs
def export_command(
    name: Optional[str] = STUDY_ARG,
    fmt: Optional[str] = typer.Option(None, "--format", help="json, yaml, toml or python (default: from -o's extension, else json)."),
    output: Optional[str] = typer.Option(None, "-o", "--output", help="File to write, - for stdout (default results/<study>/coefficients.<ext>)."),
    study: Optional[str] = STUDY_OPT,
    storage_url: Optional[str] = STORAGE_OPT,
    results_dir: str = RESULTS_OPT,
) -> None:
    """The winner's coefficients, family φ = 0 … 7, timm/torchvision equivalents and provenance in one file.

    scalesearch.load_family(FILE).build(phi=3, num_classes=N) reads the json, yaml and toml files back.
    """
    fmt = results.choose_format(fmt, output)
    st, _ = search.load_recorded(storage_url, chosen(name, study), results_dir)
    doc, path = results.export_study(st, fmt, output, results_dir)
    if path is None:
        sys.stdout.write(results.render(doc, fmt))
        return
    out.print(f"wrote {path}: α={doc['alpha']:g} β={doc['beta']:g} γ={doc['gamma']:g} on {doc['base']['name']}, "
              f"family φ = 0 … 7 ({fmt})", highlight=False)


@app.command()
@inputs
def worker(
    study: str = typer.Option(..., help="Name of a study started by scalesearch run."),
    storage_url: str = typer.Option(..., "--storage", envvar=search.STORAGE_ENV, show_envvar=True,
                                    help="Optuna storage URL of the study; SCALESEARCH_STORAGE keeps a password off the command line."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    quiet: bool = typer.Option(False, hidden=True, help="No progress output (workers started by run --workers)."),
    compile_step: bool = COMPILE_OPT,
) -> None:
    """Join a study started by scalesearch run (another machine, GPU or process) and train its queued candidates."""
    search.die_with_parent()  # started by run --workers: not to outlive it
    progress = Progress() if quiet else RichProgress()
    with interruptible(progress, "the current candidate is back in the queue", quiet):
        done, total = search.join(study, storage_url, device, progress, compile_step)
    if not quiet:
        err.print(f"worker done: {done} of {total} trials of study {study} in {search.redact(storage_url)} done; "
                  f"see the ranking with scalesearch show --storage URL --study {study}", highlight=False)


# ------------------------------------------------------------ extrapolate, verify, plot

def family_rich(fam, title: str, official: bool) -> Table:
    cols = ["φ", "depth ×", "width ×", "resolution (px)", "dropout", "params (M)", "GMACs", "activations (M)", "× base MACs", "nominal ×"]
    timed = "latency_ms" in fam.columns
    if timed:
        cols += ["latency (ms)", "× base latency"]
    if official:
        cols += ["official", "width/depth ×", "px", "params (M) ", "GMACs "]
    rows = []
    for r in fam.itertuples():
        row = [f"{r.phi:g}", f"{r.depth_mult:.3f}", f"{r.width_mult:.3f}", str(r.resolution), f"{r.dropout:g}",
               mega(r.params), f"{r.macs / 1e9:#.4g}", mega(r.acts), f"{r.ratio:.2f}", f"{r.nominal:.2f}"]
        if timed:
            row += [f"{r.latency_ms:.2f}", f"{r.latency_ratio:.2f}"]
        if official:
            row += (["", "", "", "", ""] if not isinstance(r.official, str) else
                    [r.official.upper(), f"{r.official_width_mult:g}/{r.official_depth_mult:g}",
                     str(int(r.official_resolution)), mega(r.official_params), f"{r.official_macs / 1e9:#.4g}"])
        rows.append(row)
    return table(title, cols, rows, "official: B0 … B7 as published (B0 scaled by hand-rounded multipliers, not exactly "
                 "(1.2, 1.1, 1.15)^φ); params at 1000 classes, conv + FC multiply-adds" if official else None)


def print_scaling_fit(st: optuna.Study, base: arch.BaseNetwork, trials, w, phis: list[float]) -> None:
    """The proxy-space fit of val top-1 against log10(proxy MACs) through the winner's own runs."""
    fit = results.proxy_fit(st.user_attrs["config"], base, trials, w, phis)
    for line in fit.lines:
        out.print(line, highlight=False)
    if fit.prediction is None:
        return
    rows = [[f"{r.phi:g}", str(r.proxy_resolution), f"{r.macs_proxy / 1e6:.2f}", pct(r.predicted), pct(r.se),
             f"{pct(max(0.0, r.predicted - r.ci95))} … {pct(min(1.0, r.predicted + r.ci95))}", pct(r.measured),
             str(r.runs or "")] for r in fit.prediction.itertuples()]
    out.print(table("Proxy-space prediction per φ", ("φ", "proxy side (px)", "proxy MMACs", "predicted val top-1 %",
                    "± SE (points)", "95% interval %", "measured %", "runs"), rows,
                    "± SE: standard error of prediction for one new run; 95% interval (Student t) clipped to 0 … 100%; "
                    "a straight line in log MACs cannot hold near 100%"))


@app.command("extrapolate")
@inputs
def extrapolate_command(
    name: Optional[str] = STUDY_ARG,
    alpha: Optional[float] = typer.Option(None, help="Depth coefficient (with --beta and --gamma, instead of a study)."),
    beta: Optional[float] = typer.Option(None, help="Width coefficient."),
    gamma: Optional[float] = typer.Option(None, help="Resolution coefficient."),
    base: Optional[str] = typer.Option(None, help="Base for --alpha/--beta/--gamma (default b0); a study brings its own."),
    phi: str = typer.Option("0..7", help="Members: 3, a range 0..7, or 0..4:0.5 with a step."),
    compare_official: bool = typer.Option(False, help="Put the official B0 … B7 beside the rows of the same φ."),
    fmt: str = typer.Option("table", "--format", help="table, or csv: the family with exact integers and nothing else."),
    latency: bool = typer.Option(False, "--latency", help="Also time each member's inference latency (cached in the results folder)."),
    latency_device: str = typer.Option("auto", help="Where --latency times: auto, cpu, cuda or cuda:N."),
    latency_batch: int = typer.Option(1, help="Images per timed forward pass for --latency."),
    study: Optional[str] = STUDY_OPT,
    storage_url: Optional[str] = STORAGE_OPT,
    results_dir: str = RESULTS_OPT,
) -> None:
    """The winner's family for larger φ (built networks' params, GMACs, activations) and a proxy-space accuracy fit.

    Resolution is base resolution × γ^φ rounded to a multiple of 4 px, as the official B0 … B7 sides are.
    """
    phis = results.parse_phis(phi)
    if fmt not in ("table", "csv"):
        fail(f"--format must be table or csv, got {fmt!r}")
    given = [v for v in (alpha, beta, gamma) if v is not None]
    st = trials = w = None
    if given:
        if len(given) < 3:
            fail("give all three of --alpha, --beta and --gamma")
        if name or study or (storage_url and storage_url != os.environ.get(search.STORAGE_ENV)):  # the variable is no choice
            fail("give either a study or --alpha/--beta/--gamma, not both")
        b = arch.load_base(base or "b0")
    else:
        if base:
            fail("--base goes with --alpha/--beta/--gamma; a study brings its own base")
        st, _ = search.load_recorded(storage_url, chosen(name, study), results_dir)
        trials, w = results.study_winner(st)
        alpha, beta, gamma, b = float(w.alpha), float(w.beta), float(w.gamma), results.study_base(st)
        for note in results.boundary_warnings(st, trials):
            err.print(f"warning: {note}", highlight=False)
    fam = results.family_table(b, alpha, beta, gamma, phis)
    if compare_official:
        fam = results.with_official(fam)
    if latency:
        fam, note = search.with_family_latency(fam, b, alpha, beta, gamma, latency_device, latency_batch, results_dir,
                                                       lambda line: err.print(line, highlight=False))
        err.print(note, highlight=False)
    if fmt == "csv":
        sys.stdout.write(fam.to_csv(index=False))
        return
    title = (f"Family of {b.name}: α={alpha:g} β={beta:g} γ={gamma:g}; side = {b.resolution} px × γ^φ rounded to a "
             f"multiple of {results.RESOLUTION_MULTIPLE} px; built networks at 1000 classes, 3 channels")
    out.print(family_rich(fam, title, compare_official))
    if st is not None:
        print_scaling_fit(st, b, trials, w, phis)


@app.command("verify")
@inputs
def verify_command(
    name: Optional[str] = STUDY_ARG,
    top: int = typer.Option(3, help="How many of the best φ = 1 candidates to train again."),
    phi: float = typer.Option(2.0, help="The φ to train them at (coefficients to this power); > 1."),
    base_run: bool = typer.Option(True, help="Also train the base at φ = 0, the scaling fit's reference point."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    study: Optional[str] = STUDY_OPT,
    storage_url: Optional[str] = STORAGE_OPT,
    results_dir: str = RESULTS_OPT,
    compile_step: bool = COMPILE_OPT,
) -> None:
    """Transfer check: train the top K again at φ = 2 and compare the rankings (Kendall τ-b, winner held?)."""
    phi = int(phi) if float(phi).is_integer() else phi
    plan, st = search.load(storage_url, chosen(name, study), results_dir)
    trials, _ = results.study_winner(st)
    candidates = results.top_candidates(trials, top)
    if len(candidates) < top:
        err.print(f"only {len(candidates)} complete candidate(s) in the study; verifying all of them", highlight=False)
    progress = RichProgress()
    with interruptible(progress, "the current run is back in the queue"):
        search.verify(plan, st, candidates, phi=phi, device=device, progress=progress, base_run=base_run,
                      compile=compile_step)
    trials, _ = results.write_tables(st, plan.results_dir)
    check = results.transfer_check(trials, candidates, phi)
    rows = [[f"{r.alpha:g}", f"{r.beta:g}", f"{r.gamma:g}", f"{r.rank_1:.0f}", pct(r.acc_1),
             "" if r.rank_phi != r.rank_phi else f"{r.rank_phi:.0f}", pct(r.acc_phi) or "did not complete"]
            for r in check.table.itertuples()]
    out.print(table(f"Transfer check: top {len(candidates)} at φ = 1 trained again at φ = {phi:g} (val top-1 after "
                    f"{plan.space.proxy.epochs} proxy epochs)", ("α", "β", "γ", "rank φ = 1", "val top-1 % φ = 1",
                    f"rank φ = {phi:g}", f"val top-1 % φ = {phi:g}"), rows, "ranks among these candidates; equal accuracies share a rank"))
    for line in check.summary():
        out.print(line, highlight=False)
    out.print(f"wrote {plan.results_dir}/trials.csv; scalesearch extrapolate now fits through these runs", highlight=False)


@app.command("plot")
@inputs
def plot_command(
    name: Optional[str] = STUDY_ARG,
    output: Optional[str] = typer.Option(None, "-o", "--output", help="Folder for the PNG and SVG files (default results/<study>/plots)."),
    phi: str = typer.Option("0..7", help="Family members in the growth plot: a range such as 0..7."),
    study: Optional[str] = STUDY_OPT,
    storage_url: Optional[str] = STORAGE_OPT,
    results_dir: str = RESULTS_OPT,
) -> None:
    """PNG and SVG figures: accuracy vs MMACs with the Pareto front, the (α, β) plane, the family vs official B0 … B7."""
    from .results import plots  # matplotlib loads only for this command

    phis = results.parse_phis(phi)
    st, _ = search.load_recorded(storage_url, chosen(name, study), results_dir)
    trials, _ = results.study_winner(st)
    folder = Path(output) if output else Path(results_dir) / st.study_name / "plots"
    if folder.exists() and not folder.is_dir():
        fail(f"-o {folder} exists and is not a folder")
    for path in plots.write_plots(trials, results.study_base(st), folder, st.study_name, phis):
        out.print(f"wrote {path}", highlight=False)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors with exit code 2 for anything the user can fix."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="scalesearch", standalone_mode=False)
    except (ScaleSearchError, ClickException) as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if not message:  # bare `scalesearch`: click has already shown the help
            sys.exit(0)
        print(f"scalesearch: error: {' '.join(message.split())}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
