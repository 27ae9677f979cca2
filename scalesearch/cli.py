"""The `scalesearch` command: a thin typer layer over the Python API.

Every command turns its options into API calls and renders the result with rich.
User errors (:class:`ScaleSearchError`, bad option values) print one line on
stderr and exit with code 2; anything else keeps its traceback.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

import logging

import optuna
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import arch, cost, export, extrapolate, family, files, provenance, proxy, race, results, search, storage
from . import workers as worker_pool
from . import space as space_mod
from .errors import ScaleSearchError

try:  # typer >= 0.16 vendors click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="EfficientNet-style compound scaling: search (α, β, γ) for your base network, data and budget.")
# Wide tables stay readable when piped to a file or CI log (rich would assume 80 columns).
out = Console(width=None if sys.stdout.isatty() else 180)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 180)
PAPER = (1.2, 1.1, 1.15)


def fail(message: str) -> None:
    raise ScaleSearchError(message)


def parse_phis(text: str) -> list[float]:
    """'3' → [3]; '0..7' → [0, 1, …, 7]; '0..2:0.5' → [0, 0.5, …, 2]."""
    try:
        if ".." not in text:
            return [float(text)]
        span, _, step = text.partition(":")
        lo, hi = (float(v) for v in span.split(".."))
        step_f = float(step) if step else 1.0
    except ValueError:
        fail(f"--phi must be a number or a range such as 0..7 or 0..2:0.5, got {text!r}")
    if step_f <= 0 or hi < lo:
        fail(f"--phi range {text!r} must go upwards with a positive step")
    n = int(round((hi - lo) / step_f))
    return [round(lo + i * step_f, 6) for i in range(n + 1)]


def positive(name: str, value: float | None) -> None:
    if value is not None and value <= 0:
        fail(f"{name} must be > 0, got {value:g}")


def mega(n: float) -> str:
    return f"{n / 1e6:,.2f}"


def network_table(spec: arch.NetworkSpec, base_macs: int, num_classes: int, in_channels: int, verify: bool) -> Table:
    total = cost.network_cost(spec, num_classes=num_classes, in_channels=in_channels)
    title = (f"{spec.name}  width ×{spec.width_mult:.3f}  depth ×{spec.depth_mult:.3f}  {spec.resolution} px  "
             f"{mega(total.params)} M params  {total.macs / 1e9:.3f} GMACs  {mega(total.acts)} M activations  "
             f"{total.macs / base_macs:.2f}× base MACs")
    if verify:
        m = cost.measure(spec, num_classes=num_classes, in_channels=in_channels)
        title += (f"\nfvcore: conv+linear {m['conv_linear_macs'] / 1e9:.3f} GMACs, total with BatchNorm and pooling "
                  f"{m['total_macs'] / 1e9:.3f} GMACs, {mega(m['params'])} M params")
    t = Table(title=title, title_justify="left")
    for col in ("stage", "kernel", "stride", "expand", "repeats", "channels", "MMACs", "params (M)", "activations (M)"):
        t.add_column(col, justify="left" if col == "stage" else "right", no_wrap=True)
    stages = cost.stage_costs(spec, num_classes=num_classes, in_channels=in_channels)
    t.add_row("stem", "3", "2", "", "1", str(spec.stem), mega(stages["stem"].macs), mega(stages["stem"].params), mega(stages["stem"].acts))
    for n, s in enumerate(spec.stages, 1):
        c = stages[f"stage{n}"]
        t.add_row(f"stage{n}", str(s.kernel), str(s.stride), str(s.expand), str(s.repeats), str(s.out_ch), mega(c.macs), mega(c.params), mega(c.acts))
    for key, ch in (("head", spec.head), ("classifier", num_classes)):
        c = stages[key]
        t.add_row(key, "1", "1", "", "1", str(ch), mega(c.macs), mega(c.params), mega(c.acts))
    return t


@app.command()
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
    for name, value in (("--alpha", alpha), ("--beta", beta), ("--gamma", gamma), ("--width", width), ("--depth", depth)):
        positive(name, value)
    if num_classes < 1 or in_channels < 1:
        fail("--num-classes and --in-channels must be >= 1")
    if phi is not None and (width or depth or resolution):
        fail("give either --phi or --width/--depth/--resolution, not both")
    if coefficients and (width or depth or resolution):
        fail("--coefficients goes with --phi, not with --width/--depth/--resolution")
    fam = export.load_family(coefficients) if coefficients else None
    b = fam.base if fam else arch.load_base(base)
    base_spec = arch.scale(b)
    base_macs = cost.network_cost(base_spec, num_classes=num_classes, in_channels=in_channels).macs
    if fam:
        specs = [fam.spec(p) for p in parse_phis(phi or "1")]
    elif phi is not None:
        specs = [family.member(b, alpha, beta, gamma, p) for p in parse_phis(phi)]
    else:
        specs = [arch.scale(b, width or 1.0, depth or 1.0, resolution)]
    for spec in specs:
        out.print(network_table(spec, base_macs, num_classes, in_channels, verify))


@app.command()
def bases() -> None:
    """The known base networks and presets."""
    t = Table(title="Bases (use with --base NAME, or --base path/to/net.toml)", title_justify="left",
              caption=f"b0 … l2 are B0 scaled by the official multipliers; the others are files in {arch.BASES_DIR}",
              caption_justify="left")
    for col in ("name", "width ×", "depth ×", "resolution (px)", "params (M)", "GMACs"):
        t.add_column(col, justify="left" if col == "name" else "right", no_wrap=True)
    for name in arch.known_bases():
        b = arch.load_base(name)
        c = cost.network_cost(arch.scale(b))
        t.add_row(name, f"{b.width:g}", f"{b.depth:g}", str(b.resolution), mega(c.params), f"{c.macs / 1e9:.3f}")
    out.print(t)


@app.command()
def spaces() -> None:
    """The shipped search spaces (use with --space NAME, or --space path/to/space.toml)."""
    t = Table(title="Search spaces (use with --space NAME, or --space path/to/space.toml)", title_justify="left",
              caption=f"files in {space_mod.SPACES_DIR}; each documents its schema and numbers inside", caption_justify="left")
    for col in ("name", "α", "β", "γ", "description"):
        t.add_column(col, justify="left", no_wrap=col != "description")
    for name in space_mod.known_spaces():
        s = space_mod.load_space(name)
        t.add_row(name, *(f"{r.min:g} … {r.max:g} step {r.step:g}" for r in (s.alpha, s.beta, s.gamma)), s.description)
    out.print(t)


def blank(x) -> bool:
    return x is None or x != x


def pct(x: float) -> str:
    return "" if blank(x) else f"{100 * x:.2f}"


# Headers of the ranking; line breaks keep the 17 columns inside a terminal (markdown joins the lines).
RANKING_HEADERS = ["rank", "α", "β", "γ", "nominal\n×", "measured ×\n(target)", "measured ×\n(proxy)", "proxy\nparams (M)",
                   "proxy\nMMACs", "proxy acts\n(M)", "seeds", "val top-1 %\nmean ± std", "score\n(seed-adj.)", "P(best)\n(%)",
                   "tied", "time\n(s)", "status"]


def ranking_cells(r) -> list[str]:
    """One candidate's row as text; blanks where a failed or pruned candidate has no figure."""
    def num(x, spec: str, scale: float = 1.0) -> str:
        return "" if blank(x) else format(x / scale, spec)

    def ratio(x, px) -> str:
        return "" if blank(x) else f"{x:.2f} ({int(px)} px)"

    return [num(r.rank, ".0f"), f"{r.alpha:g}", f"{r.beta:g}", f"{r.gamma:g}", num(r.nominal, ".2f"),
            ratio(r.measured_target, r.target_resolution), ratio(r.measured_proxy, r.proxy_resolution),
            num(r.params, ",.2f", 1e6), num(r.macs_proxy, ".1f", 1e6), num(r.acts_proxy, ".2f", 1e6), str(r.seeds),
            pct(r.acc_mean) + ("" if blank(r.acc_std) else f" ± {pct(r.acc_std)}"), num(getattr(r, "score_mean", None), ".4f"),
            pct(getattr(r, "p_best", None)), "yes" if r.tied else "", num(r.seconds, ".0f"), r.state]


ONE_SEED = "one seed per candidate: no interval available"


def ranking_caption(ranked, val_images: int | None = None) -> str:
    if results.has_intervals(ranked):
        ties = ("score = seed-adjusted mean of −(final val loss, nats per image), or of val top-1 for older studies; "
                "seeds are paired (same images, order and init seed for every candidate); tied = the leader's lead is "
                "within the 95% margin of the paired fit; P(best) = probability of being best under that fit")
    elif val_images and not blank(best := ranked["acc_mean"].max()):
        se = 100 * results.val_standard_error(best, val_images)  # at the leader's score, in points
        # 1.96·√2·se: the 95% margin of the gap between two scores that each carry this error
        ties = (f"{ONE_SEED}; scoring on {val_images:,} val images alone gives each val top-1 a standard error of "
                f"{se:.1f} points, so gaps under {1.96 * math.sqrt(2) * se:.1f} points may be noise (use --seeds 3)")
    else:
        ties = f"{ONE_SEED}, differences may be noise (use --seeds 3)"
    return (f"{ties}; measured × = built network's multiply-adds / the base's; proxy = the network as trained (data's "
            "classes and channels, proxy width and side); acts = conv and linear output elements; time: training, all seeds")


def ranking_table(ranked, title: str, top: int | None = None, val_images: int | None = None) -> Table:
    t = Table(title=title, title_justify="left", caption=ranking_caption(ranked, val_images), caption_justify="left")
    for c in RANKING_HEADERS:
        t.add_column(c, justify="left" if c == "status" else "right", no_wrap=c != "status")
    for r in (ranked.head(top) if top else ranked).itertuples():
        t.add_row(*ranking_cells(r))
    return t


def family_rich(fam, title: str) -> Table:
    t = Table(title=title, title_justify="left")
    for c in ("φ", "depth ×", "width ×", "resolution (px)", "dropout", "params (M)", "GMACs", "× base MACs", "nominal ×"):
        t.add_column(c, justify="right", no_wrap=True)
    for r in fam.itertuples():
        t.add_row(f"{r.phi:g}", f"{r.depth_mult:.3f}", f"{r.width_mult:.3f}", str(r.resolution), f"{r.dropout:g}",
                  mega(r.params), f"{r.gmacs:.3f}", f"{r.ratio:.2f}", f"{r.nominal:.2f}")
    return t


class RichProgress(search.Progress):
    """Live progress on stderr: candidates done / total with ETA; the current candidate's epoch and steps."""

    def __init__(self) -> None:
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err)
        self.overall: int | None = None
        self.current: int | None = None
        self.label = ""

    def start(self, plan: search.Plan, total: int, done: int) -> None:
        r = plan.report
        err.print(f"study {plan.study_name} in {storage.redact(plan.storage_url)}", highlight=False)
        err.print(f"grid: {r.total} points; within {plan.space.tolerance:.0%} of {plan.space.budget:g}x: "
                  f"{r.feasible_nominal} nominal, {r.feasible_measured} measured at {plan.base.resolution} px "
                  f"(constraint: {plan.space.constraint}); data {plan.data.name}: {len(plan.data.train_y)} train / "
                  f"{len(plan.data.val_y)} val images", highlight=False)
        p, d = plan.space.proxy, plan.design
        err.print(f"proxy: {plan.base.name} narrowed to width ×{d.width:g}, {d.side} px × γ{' (auto)' if d.auto else ''}, "
                  f"{p.epochs} epochs of {min(p.train, len(plan.data.train_y))} images per seed, {p.seeds} paired seeds "
                  f"(up to {p.max_seeds} while tied), scored on {len(plan.data.val_y)} val images by "
                  f"{'val loss' if p.score == 'loss' else 'val top-1'}; proxy cost ratios within {d.deviation:.0%} of "
                  f"the target's (proxy MACs max/min {d.spread:.2f})", highlight=False)
        if done:
            err.print(f"resuming: {done} of {total} trials already done", highlight=False)
        self.bar.start()
        self.overall = self.bar.add_task("trials", total=total, completed=done)

    def candidate(self, c, seed: int, resolution: int, epochs: int) -> None:
        self.label, self.epochs = f"α={c.alpha:g} β={c.beta:g} γ={c.gamma:g} seed {seed} {resolution} px", epochs
        if self.current is not None:
            self.bar.remove_task(self.current)
        self.current = self.bar.add_task(f"{self.label} epoch 1/{epochs}", total=None)

    def step(self, step: int, total: int) -> None:
        self.bar.update(self.current, completed=step, total=total)

    def epoch(self, epoch: int, acc: float) -> None:
        nxt = min(epoch + 2, self.epochs)
        self.bar.update(self.current, description=f"{self.label} epoch {nxt}/{self.epochs} (val top-1 {acc:.1%})")

    def finished(self, state: str, acc: float | None) -> None:
        self.bar.advance(self.overall)

    def failed(self, reason: str) -> None:
        self.bar.console.print(f"{self.label}: {reason}", highlight=False)

    def round(self, name: str, queued: int) -> None:
        self.bar.console.print(f"{name}: {queued} more trials", highlight=False)
        task = next((t for t in self.bar.tasks if t.id == self.overall), None)
        if task is not None and task.total is not None:
            self.bar.update(self.overall, total=task.total + queued)

    def stop(self) -> None:
        if self.overall is not None:  # a bar never started would still print a blank line
            self.bar.stop()

    def poll(self, done: int, total: int, alive: int) -> None:
        """Trials done by worker processes, as read from the storage."""
        self.bar.update(self.overall, completed=done, total=total, description=f"trials ({alive} workers running)")


class QuietProgress(search.Progress):
    """Worker processes started by `run --workers`: the parent draws the progress."""

    def stop(self) -> None: ...


COMPILE_OPT = typer.Option(False, "--compile", help="torch.compile each training step: for long runs (compiling takes minutes).")


@app.command()
def run(
    base: str = typer.Option("b0", help="Preset (b0 … b7, b8, l2), shipped base, or path to a base .toml."),
    budget: Optional[str] = typer.Option(None, help="Compute multiplier at φ = 1, e.g. 2x (default: the space file's)."),
    space: str = typer.Option("default", help="Search space: a name from `scalesearch spaces` or a .toml path."),
    constraint: Optional[str] = typer.Option(None, help="nominal (α·β²·γ²) or measured (built network's MACs ratio at the target resolution)."),
    tolerance: Optional[float] = typer.Option(None, help="Relative tolerance on the budget, e.g. 0.05."),
    sampler: Optional[str] = typer.Option(None, help="grid, tpe, random, qmc or cmaes."),
    trials: Optional[int] = typer.Option(None, help="Candidates to sample (not grid)."),
    pruner: Optional[str] = typer.Option(None, help="none, median, sha or hyperband."),
    epochs: Optional[int] = typer.Option(None, help="Proxy epochs per candidate."),
    seeds: Optional[int] = typer.Option(None, help="Paired seeds every candidate gets."),
    max_seeds: Optional[int] = typer.Option(None, help="Racing: seeds a candidate may get while tied with the leader."),
    train_images: Optional[int] = typer.Option(None, "--train", help="Training images per proxy run."),
    val_images: Optional[int] = typer.Option(None, "--val", help="Validation images."),
    batch_size: Optional[int] = typer.Option(None, help="Proxy batch size."),
    proxy_resolution: Optional[int] = typer.Option(None, help="Proxy side in px for γ = 1."),
    data: str = typer.Option("embedded", help="embedded, fashion-mnist-full[:DIR], cifar10:PATH, synthetic[:N] or an image folder."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    study: Optional[str] = typer.Option(None, help="Study name (default from base, budget, space, constraint, data)."),
    storage_url: Optional[str] = typer.Option(None, "--storage", envvar=storage.ENV, help="Optuna storage URL (default sqlite in "
                                              "results/<study>/); SCALESEARCH_STORAGE keeps a password off the command line."),
    results_dir: str = typer.Option("results", help="Where results/<study>/ goes."),
    workers: int = typer.Option(1, help="Worker processes on this machine, sharing the cores (see also scalesearch worker)."),
    devices: Optional[str] = typer.Option(None, help="One worker process per device, e.g. cuda:0,cuda:1."),
    compile_step: bool = COMPILE_OPT,
    restart: bool = typer.Option(False, "--restart", help="Delete the study of this name (trials and recorded settings) "
                                                          "and start it again, e.g. with other proxy settings."),
) -> None:
    """Search (α, β, γ) under the budget with short proxy runs, rank, extrapolate and export."""
    options = search.RunOptions(base=base, space=space, data=data, device=device, budget=budget, constraint=constraint,
                                tolerance=tolerance, sampler=sampler, trials=trials, pruner=pruner, epochs=epochs, seeds=seeds, max_seeds=max_seeds,
                                train=train_images, val=val_images, batch_size=batch_size, resolution=proxy_resolution,
                                study=study, storage=storage_url, results_dir=results_dir, compile=compile_step)
    if restart:
        err.print(provenance.restart(options), highlight=False)
    progress = RichProgress()
    try:
        if workers == 1 and devices is None:
            plan, st = search.run(options, progress)
        else:
            plan, st = worker_pool.run(options, workers, devices, progress.start, progress.poll)
    except KeyboardInterrupt:
        progress.stop()
        err.print("interrupted: the current candidate is marked interrupted; run the same command again to resume "
                  "(complete candidates are not retrained)", highlight=False)
        sys.exit(130)
    finally:
        progress.stop()
    finish(plan, st)


def finish(plan: search.Plan, st: optuna.Study) -> None:
    """Write trials.csv, ranking.csv and coefficients.json; print the ranking, winner and family."""
    trials, ranked = results.write_tables(st, plan.results_dir)
    out.print(ranking_table(ranked, f"Ranking: {plan.study_name} (val top-1 after {plan.space.proxy.epochs} proxy epochs)",
                            val_images=len(plan.data.val_y)))
    if ranked.empty:
        fail("no candidate completed; see the status column of scalesearch show --all")
    doc = export.coefficients_document(st, ranked, plan.base)
    export.write_json(doc, plan.results_dir / "coefficients.json")
    w = results.winner(ranked)
    v = race.verdict(trials)
    out.print(f"winner: α={w.alpha:g} β={w.beta:g} γ={w.gamma:g}  nominal {w.nominal:.2f}×, measured {w.measured_target:.2f}× "
              f"MACs at {int(w.target_resolution)} px; proxy val top-1 {pct(w.acc_mean)}%", highlight=False)
    if v is not None:
        out.print(verdict_line(v, len(ranked)), highlight=False)
    fam = family.family_table(plan.base, w.alpha, w.beta, w.gamma)
    out.print(family_rich(fam, f"Family of {plan.base.name} (φ = 0 … 7, 1000 classes)"))
    out.print(f"wrote {plan.results_dir}/trials.csv, ranking.csv, coefficients.json", highlight=False)


# ------------------------------------------------------------ show, export

SHOW_FORMATS = ("table", "csv", "json", "markdown")
SHOW_UNITS = {"acc_mean, acc_std, ci95": "fraction of validation images (ci95: half-width of the 95% Student-t interval)",
              "nominal, measured_target, measured_proxy": "cost multiplier on the base (α·β²·γ²; built network's multiply-adds)",
              "params, macs_proxy, acts_proxy": "the network as trained: parameters, multiply-adds, conv/linear output elements",
              "macs_target": "multiply-adds at the target side, 1000 classes", "seconds": "training time summed over seeds",
              "best_epoch": "1-based, most common over seeds"}


def recorded_study(name: str | None, study: str | None, storage_url: str | None, results_dir: str) -> tuple[optuna.Study, str]:
    """(study, storage URL) named by STUDY or --study, read without loading its data."""
    if name and study and name != study:
        fail(f"STUDY {name!r} and --study {study!r} disagree; give one")
    return search.load_recorded(storage_url, name or study, results_dir)


def sorted_ranking(ranked, sort: str):
    """`ranked` ordered by COLUMN or COLUMN:desc; unranked and blank values last."""
    column, _, order = sort.partition(":")
    if order not in ("", "asc", "desc"):
        fail(f"--sort {sort!r}: the order after ':' must be asc or desc")
    if ranked.empty:
        return ranked
    if column not in ranked.columns:
        fail(f"--sort: unknown column {column!r}; choose one of {', '.join(ranked.columns)}")
    return ranked.sort_values(column, ascending=order != "desc", kind="stable", na_position="last")


def verdict_line(v, candidates: int) -> str:
    p = "no estimate" if blank(v.p_best) else f"{pct(v.p_best)}%"
    return (f"verdict: {v.words}: P(best) {p} at φ = {v.stage}; {len(v.tied)} of {candidates} candidates tied at "
            f"φ = 1; {v.reason}")


def markdown_ranking(ranked, title: str, val_images: int | None = None) -> str:
    head = [h.replace("\n", " ") for h in RANKING_HEADERS]
    rows = ["| " + " | ".join(c.replace("|", "\\|") for c in ranking_cells(r)) + " |" for r in ranked.itertuples()]
    return "\n".join([f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---:|" * (len(head) - 1) + ":---|",
                      *rows, "", ranking_caption(ranked, val_images), ""])


@app.command()
def show(
    name: Optional[str] = typer.Argument(None, metavar="[STUDY]", show_default=False,
                                         help="Study name: a folder under --results-dir (default: the latest there)."),
    fmt: str = typer.Option("table", "--format", help="table, csv, json or markdown."),
    top: Optional[int] = typer.Option(None, help="Only the first K rows (after --sort)."),
    sort: str = typer.Option("rank", help="Order by a column of the csv/json output, e.g. params, or acc_std:desc."),
    show_all: bool = typer.Option(False, "--all", help="Also candidates with no complete seed: pruned and failed, with the reason."),
    study: Optional[str] = typer.Option(None, help="Study name in --storage."),
    storage_url: Optional[str] = typer.Option(None, "--storage", envvar=storage.ENV,
                                              help="Optuna storage URL; SCALESEARCH_STORAGE keeps a password off the command line."),
    results_dir: str = typer.Option("results", help="Where results/<study>/ lives."),
) -> None:
    """The ranked candidates of a study: cost, val top-1 over seeds with 95% intervals and ties, best epoch, state."""
    if fmt not in SHOW_FORMATS:
        fail(f"--format must be one of {', '.join(SHOW_FORMATS)}, got {fmt!r}")
    if top is not None and top < 1:
        fail(f"--top must be >= 1, got {top}")
    st, url = recorded_study(name, study, storage_url, results_dir)
    trials = results.trials_frame(st)
    ranked = sorted_ranking(results.ranking(trials, include_all=show_all), sort)
    v, candidates = race.verdict(trials), int((ranked["seeds"] > 0).sum()) if len(ranked) else 0
    ranked = ranked.head(top) if top else ranked
    epochs = st.user_attrs["config"].get("proxy", {}).get("epochs", "?")
    val_images = st.user_attrs["config"].get("data", {}).get("val")
    title = f"Ranking: {st.study_name} in {storage.redact(url)} (val top-1 after {epochs} proxy epochs, φ = 1)"
    if fmt == "csv":
        sys.stdout.write(ranked.to_csv(index=False))
    elif fmt == "json":
        doc = {"study": st.study_name, "storage": storage.redact(url), "proxy_epochs": epochs, "val_images": val_images,
               "interval_available": results.has_intervals(ranked), "units": SHOW_UNITS,
               "verdict": export.verdict_document(st),
               "candidates": json.loads(ranked.to_json(orient="records"))}
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    elif fmt == "markdown":
        sys.stdout.write(markdown_ranking(ranked, title, val_images) + (f"\n{verdict_line(v, candidates)}\n" if v else ""))
    else:
        out.print(ranking_table(ranked, title, val_images=val_images))
        if v is not None:
            out.print(verdict_line(v, candidates), highlight=False)
    if ranked.empty:
        err.print("no complete candidate" + ("" if show_all else "; --all also lists pruned and failed ones"), highlight=False)


def study_base(st: optuna.Study) -> arch.BaseNetwork:
    """The base network the study was run on, from the name or path it recorded."""
    recorded = st.user_attrs["config"]["options"]["base"]
    try:
        return arch.load_base(recorded)
    except ScaleSearchError as exc:
        fail(f"study {st.study_name!r} was run on base {recorded!r}, which cannot be loaded here: {exc}")


@app.command("export")
def export_command(
    name: Optional[str] = typer.Argument(None, metavar="[STUDY]", show_default=False,
                                         help="Study name: a folder under --results-dir (default: the latest there)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="json, yaml, toml or python (default: from -o's extension, else json)."),
    output: Optional[str] = typer.Option(None, "-o", "--output", help="File to write, - for stdout (default results/<study>/coefficients.<ext>)."),
    study: Optional[str] = typer.Option(None, help="Study name in --storage."),
    storage_url: Optional[str] = typer.Option(None, "--storage", envvar=storage.ENV,
                                              help="Optuna storage URL; SCALESEARCH_STORAGE keeps a password off the command line."),
    results_dir: str = typer.Option("results", help="Where results/<study>/ lives."),
) -> None:
    """The winner's coefficients, family φ = 0 … 7, timm/torchvision equivalents and provenance in one file.

    scalesearch.load_family(FILE).build(phi=3, num_classes=N) reads the json, yaml and toml files back.
    """
    by_suffix = {ext: f for f, ext in export.FORMATS.items()} | {".yml": "yaml"}
    suffix = Path(output).suffix.lower() if output and output != "-" else ""
    if fmt is None:
        fmt = by_suffix.get(suffix, "json")
    if fmt not in export.FORMATS:
        fail(f"--format must be one of {', '.join(export.FORMATS)}, got {fmt!r}")
    if suffix in by_suffix and by_suffix[suffix] != fmt:
        fail(f"--format {fmt} does not match -o {output} (a {by_suffix[suffix]} file name)")
    st, _ = recorded_study(name, study, storage_url, results_dir)
    ranked = results.ranking(results.trials_frame(st))
    if ranked.empty:
        fail(f"study {st.study_name!r} has no complete candidate yet; run or resume scalesearch run first")
    doc = export.coefficients_document(st, ranked, study_base(st))
    text = export.render(doc, fmt)
    if output == "-":
        sys.stdout.write(text)
        return
    path = Path(output) if output else Path(results_dir) / st.study_name / f"coefficients{export.FORMATS[fmt]}"
    if path.is_dir():
        fail(f"-o {path} is a folder; give a file name")
    files.write_text(path, text)
    out.print(f"wrote {path}: α={doc['alpha']:g} β={doc['beta']:g} γ={doc['gamma']:g} on {doc['base']['name']}, "
              f"family φ = 0 … 7 ({fmt})", highlight=False)


@app.command()
def worker(
    study: str = typer.Option(..., help="Name of a study started by scalesearch run."),
    storage_url: str = typer.Option(..., "--storage", envvar=storage.ENV, show_envvar=True,
                                    help="Optuna storage URL of the study; SCALESEARCH_STORAGE keeps a password off the command line."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    quiet: bool = typer.Option(False, hidden=True, help="No progress output (workers started by run --workers)."),
    compile_step: bool = COMPILE_OPT,
) -> None:
    """Join a study started by scalesearch run (another machine, GPU or process) and train its queued candidates."""
    worker_pool.die_with_parent()  # started by run --workers: not to outlive it
    plan, st = search.load(storage_url, study)
    dev = proxy.pick_device(device)
    progress = QuietProgress() if quiet else RichProgress()
    done, total = search.progress_counts(plan, st)
    progress.start(plan, total, done)
    try:
        search.Worker(plan, st, dev, progress, compile_step).work()
    except KeyboardInterrupt:
        progress.stop()
        if not quiet:
            err.print("interrupted: the current candidate is back in the queue; run the same command again to resume "
                      "(complete candidates are not retrained)", highlight=False)
        sys.exit(130)
    finally:
        progress.stop()
    if not quiet:
        done, total = search.progress_counts(plan, st)
        err.print(f"worker done: {done} of {total} trials of study {study} in {storage.redact(storage_url)} done; "
                  f"see the ranking with scalesearch show --storage URL --study {study}", highlight=False)


# ------------------------------------------------------------ extrapolate, verify, plot

STUDY_ARG = typer.Argument(None, metavar="[STUDY]", show_default=False,
                           help="Study name: a folder under --results-dir (default: the latest there).")


def study_from_args(name: str | None, study: str | None, storage_url: str | None, results_dir: str) -> tuple[search.Plan, optuna.Study]:
    """The study named by STUDY or --study (in --storage, else under --results-dir)."""
    if name and study and name != study:
        fail(f"STUDY {name!r} and --study {study!r} disagree; give one")
    return search.load(storage_url, name or study, results_dir)


def study_winner(st: optuna.Study) -> tuple:
    """(trials frame, best complete φ = 1 candidate) of a study."""
    trials = results.trials_frame(st)
    w = results.winner(results.ranking(trials))
    if w is None:
        fail(f"study {st.study_name!r} has no complete candidate yet; run or resume scalesearch run first")
    return trials, w


def extrapolate_rich(fam, title: str, official: bool) -> Table:
    t = Table(title=title, title_justify="left", caption_justify="left",
              caption="official: B0 … B7 as published (B0 scaled by hand-rounded multipliers, not exactly "
                      "(1.2, 1.1, 1.15)^φ); params at 1000 classes, conv + FC multiply-adds" if official else None)
    cols = ["φ", "depth ×", "width ×", "resolution (px)", "dropout", "params (M)", "GMACs", "activations (M)", "× base MACs", "nominal ×"]
    if official:
        cols += ["official", "width/depth ×", "px", "params (M) ", "GMACs "]
    for c in cols:
        t.add_column(c, justify="right", no_wrap=True)
    for r in fam.itertuples():
        row = [f"{r.phi:g}", f"{r.depth_mult:.3f}", f"{r.width_mult:.3f}", str(r.resolution), f"{r.dropout:g}",
               mega(r.params), f"{r.macs / 1e9:#.4g}", mega(r.acts), f"{r.ratio:.2f}", f"{r.nominal:.2f}"]
        if official:
            row += (["", "", "", "", ""] if not isinstance(r.official, str) else
                    [r.official.upper(), f"{r.official_width_mult:g}/{r.official_depth_mult:g}",
                     str(int(r.official_resolution)), mega(r.official_params), f"{r.official_macs / 1e9:#.4g}"])
        t.add_row(*row)
    return t


def print_scaling_fit(st: optuna.Study, base: arch.BaseNetwork, trials, w, phis: list[float]) -> None:
    """The proxy-space fit of val top-1 against log10(proxy MACs) through the winner's own runs."""
    config = st.user_attrs["config"]
    points = extrapolate.family_points(trials, w.alpha, w.beta, w.gamma)
    runs = ", ".join(f"φ = {p:g}: {n}" for p, n in points.groupby("phi").size().items()) or "none"
    out.print(f"\nScaling fit in proxy space (val top-1 after {config['proxy']['epochs']} proxy epochs at the proxy "
              f"resolution, not full-training accuracy) against log10(proxy MACs); runs of the winner's family: {runs}",
              highlight=False)
    try:
        line = extrapolate.scaling_fit(points)
    except extrapolate.Underdetermined as exc:
        out.print(f"fit underdetermined: {exc}; no prediction printed. Run scalesearch verify to add the base (φ = 0) "
                  "and φ = 2 runs.", highlight=False)
        return
    out.print(f"{100 * line.slope:+.2f} points of val top-1 per 10× proxy MACs (val top-1 = {100 * line.intercept:.2f}% "
              f"{100 * line.slope:+.2f} × log10 MACs); residual std {100 * line.resid_std:.2f} points over {line.n} runs",
              highlight=False)
    pred = extrapolate.predict(base, w.alpha, w.beta, w.gamma, phis, config["proxy"]["resolution"],
                               config["data"]["classes"], config["data"]["channels"], line, points)
    t = Table(title="Proxy-space prediction per φ", title_justify="left", caption_justify="left",
              caption="± SE: standard error of prediction for one new run; 95% interval (Student t) clipped to 0 … 100%; "
                      "a straight line in log MACs cannot hold near 100%")
    for c in ("φ", "proxy side (px)", "proxy MMACs", "predicted val top-1 %", "± SE (points)", "95% interval %", "measured %", "runs"):
        t.add_column(c, justify="right", no_wrap=True)
    for r in pred.itertuples():
        t.add_row(f"{r.phi:g}", str(r.proxy_resolution), f"{r.macs_proxy / 1e6:.2f}", pct(r.predicted), pct(r.se),
                  f"{pct(max(0.0, r.predicted - r.ci95))} … {pct(min(1.0, r.predicted + r.ci95))}", pct(r.measured),
                  str(r.runs or ""))
    out.print(t)


@app.command("extrapolate")
def extrapolate_command(
    name: Optional[str] = STUDY_ARG,
    alpha: Optional[float] = typer.Option(None, help="Depth coefficient (with --beta and --gamma, instead of a study)."),
    beta: Optional[float] = typer.Option(None, help="Width coefficient."),
    gamma: Optional[float] = typer.Option(None, help="Resolution coefficient."),
    base: Optional[str] = typer.Option(None, help="Base for --alpha/--beta/--gamma (default b0); a study brings its own."),
    phi: str = typer.Option("0..7", help="Members: 3, a range 0..7, or 0..4:0.5 with a step."),
    compare_official: bool = typer.Option(False, help="Put the official B0 … B7 beside the rows of the same φ."),
    fmt: str = typer.Option("table", "--format", help="table, or csv: the family with exact integers and nothing else."),
    study: Optional[str] = typer.Option(None, help="Study name in --storage."),
    storage_url: Optional[str] = typer.Option(None, "--storage", envvar=storage.ENV,
                                              help="Optuna storage URL; SCALESEARCH_STORAGE keeps a password off the command line."),
    results_dir: str = typer.Option("results", help="Where results/<study>/ lives."),
) -> None:
    """The winner's family for larger φ (built networks' params, GMACs, activations) and a proxy-space accuracy fit.

    Resolution is base resolution × γ^φ rounded to a multiple of 4 px, as the official B0 … B7 sides are.
    """
    phis = parse_phis(phi)
    if phis[0] < 0:
        fail(f"--phi must be >= 0, got {phi!r}")
    if fmt not in ("table", "csv"):
        fail(f"--format must be table or csv, got {fmt!r}")
    given = [v for v in (alpha, beta, gamma) if v is not None]
    st = trials = w = None
    if given:
        if len(given) < 3:
            fail("give all three of --alpha, --beta and --gamma")
        if name or study or (storage_url and storage_url != os.environ.get(storage.ENV)):  # the variable is no choice
            fail("give either a study or --alpha/--beta/--gamma, not both")
        for flag, value in (("--alpha", alpha), ("--beta", beta), ("--gamma", gamma)):
            positive(flag, value)
        b = arch.load_base(base or "b0")
    else:
        if base:
            fail("--base goes with --alpha/--beta/--gamma; a study brings its own base")
        st, _ = recorded_study(name, study, storage_url, results_dir)
        trials, w = study_winner(st)
        alpha, beta, gamma, b = float(w.alpha), float(w.beta), float(w.gamma), study_base(st)
    fam = family.family_table(b, alpha, beta, gamma, phis)
    if compare_official:
        fam = extrapolate.with_official(fam)
    if fmt == "csv":
        sys.stdout.write(fam.to_csv(index=False))
        return
    title = (f"Family of {b.name}: α={alpha:g} β={beta:g} γ={gamma:g}; side = {b.resolution} px × γ^φ rounded to a "
             f"multiple of {family.RESOLUTION_MULTIPLE} px; built networks at 1000 classes, 3 channels")
    out.print(extrapolate_rich(fam, title, compare_official))
    if st is not None:
        print_scaling_fit(st, b, trials, w, phis)


@app.command("verify")
def verify_command(
    name: Optional[str] = STUDY_ARG,
    top: int = typer.Option(3, help="How many of the best φ = 1 candidates to train again."),
    phi: float = typer.Option(2.0, help="The φ to train them at (coefficients to this power); > 1."),
    base_run: bool = typer.Option(True, help="Also train the base at φ = 0, the scaling fit's reference point."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    study: Optional[str] = typer.Option(None, help="Study name in --storage."),
    storage_url: Optional[str] = typer.Option(None, "--storage", envvar=storage.ENV,
                                              help="Optuna storage URL; SCALESEARCH_STORAGE keeps a password off the command line."),
    results_dir: str = typer.Option("results", help="Where results/<study>/ lives."),
    compile_step: bool = COMPILE_OPT,
) -> None:
    """Transfer check: train the top K again at φ = 2 and compare the rankings (Kendall τ-b, winner held?)."""
    if top < 1:
        fail(f"--top must be >= 1, got {top}")
    if not phi > 1:
        fail(f"--phi must be > 1 (φ = 1 is the search itself), got {phi:g}")
    phi = int(phi) if float(phi).is_integer() else phi
    plan, st = study_from_args(name, study, storage_url, results_dir)
    trials, _ = study_winner(st)
    candidates = extrapolate.top_candidates(trials, top)
    if len(candidates) < top:
        err.print(f"only {len(candidates)} complete candidate(s) in the study; verifying all of them", highlight=False)
    progress = RichProgress()
    try:
        search.verify(plan, st, candidates, phi=phi, device=device, progress=progress, base_run=base_run,
                      compile=compile_step)
    except KeyboardInterrupt:
        progress.stop()
        err.print("interrupted: run the same command again to resume (complete runs are not retrained)", highlight=False)
        sys.exit(130)
    finally:
        progress.stop()
    trials, _ = results.write_tables(st, plan.results_dir)
    check = extrapolate.transfer_check(trials, candidates, phi)
    t = Table(title=f"Transfer check: top {len(candidates)} at φ = 1 trained again at φ = {phi:g} "
                    f"(val top-1 after {plan.space.proxy.epochs} proxy epochs)", title_justify="left",
              caption="ranks among these candidates; equal accuracies share a rank", caption_justify="left")
    for c in ("α", "β", "γ", "rank φ = 1", "val top-1 % φ = 1", f"rank φ = {phi:g}", f"val top-1 % φ = {phi:g}"):
        t.add_column(c, justify="right", no_wrap=True)
    for r in check.table.itertuples():
        t.add_row(f"{r.alpha:g}", f"{r.beta:g}", f"{r.gamma:g}", f"{r.rank_1:.0f}", pct(r.acc_1),
                  "" if r.rank_phi != r.rank_phi else f"{r.rank_phi:.0f}", pct(r.acc_phi) or "did not complete")
    out.print(t)
    compared = int(check.table[["acc_1", "acc_phi"]].notna().all(axis=1).sum())
    if compared < 2:
        out.print(f"Kendall τ-b: undefined: it needs at least 2 candidates with both runs complete, have {compared}",
                  highlight=False)
    elif check.tau != check.tau:
        out.print("Kendall τ-b: undefined: every accuracy on one side is tied", highlight=False)
    else:
        out.print(f"Kendall τ-b between the φ = 1 and φ = {phi:g} rankings: {check.tau:+.2f} over {compared} candidates "
                  "(+1 same order, −1 reversed)", highlight=False)
    lead = check.table.iloc[0]
    held = {True: "held first place", False: "did not hold first place", None: "has no complete run"}[check.winner_held]
    out.print(f"winner α={lead.alpha:g} β={lead.beta:g} γ={lead.gamma:g} {held} at φ = {phi:g}", highlight=False)
    out.print(f"wrote {plan.results_dir}/trials.csv; scalesearch extrapolate now fits through these runs", highlight=False)


@app.command("plot")
def plot_command(
    name: Optional[str] = STUDY_ARG,
    output: Optional[str] = typer.Option(None, "-o", "--output", help="Folder for the PNG and SVG files (default results/<study>/plots)."),
    phi: str = typer.Option("0..7", help="Family members in the growth plot: a range such as 0..7."),
    study: Optional[str] = typer.Option(None, help="Study name in --storage."),
    storage_url: Optional[str] = typer.Option(None, "--storage", envvar=storage.ENV,
                                              help="Optuna storage URL; SCALESEARCH_STORAGE keeps a password off the command line."),
    results_dir: str = typer.Option("results", help="Where results/<study>/ lives."),
) -> None:
    """PNG and SVG figures: accuracy vs MMACs with the Pareto front, the (α, β) plane, the family vs official B0 … B7."""
    from . import plots  # matplotlib loads only for this command

    phis = parse_phis(phi)
    if phis[0] < 0:
        fail(f"--phi must be >= 0, got {phi!r}")
    st, _ = recorded_study(name, study, storage_url, results_dir)
    trials, _ = study_winner(st)
    folder = Path(output) if output else Path(results_dir) / st.study_name / "plots"
    if folder.exists() and not folder.is_dir():
        fail(f"-o {folder} exists and is not a folder")
    for path in plots.write_plots(trials, study_base(st), folder, st.study_name, phis):
        out.print(f"wrote {path}", highlight=False)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors with exit code 2 for anything the user can fix."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="scalesearch", standalone_mode=False)
    except (ScaleSearchError, ClickException) as exc:
        message = exc.format_message() if isinstance(exc, ClickException) else str(exc)
        if not message:  # bare `scalesearch`: click has already shown the help
            sys.exit(0)
        print(f"scalesearch: error: {' '.join(message.split())}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
