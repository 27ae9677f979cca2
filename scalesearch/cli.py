"""The `scalesearch` command: a thin typer layer over the Python API.

Every command turns its options into API calls and renders the result with rich.
User errors (:class:`ScaleSearchError`, bad option values) print one line on
stderr and exit with code 2; anything else keeps its traceback.
"""
from __future__ import annotations

import sys
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

import logging

import optuna
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import arch, cost, export, family, results, search, storage
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
) -> None:
    """Channels, repeats, params, multiply-adds and activations of a network, per stage."""
    for name, value in (("--alpha", alpha), ("--beta", beta), ("--gamma", gamma), ("--width", width), ("--depth", depth)):
        positive(name, value)
    if num_classes < 1 or in_channels < 1:
        fail("--num-classes and --in-channels must be >= 1")
    if phi is not None and (width or depth or resolution):
        fail("give either --phi or --width/--depth/--resolution, not both")
    b = arch.load_base(base)
    base_spec = arch.scale(b)
    base_macs = cost.network_cost(base_spec, num_classes=num_classes, in_channels=in_channels).macs
    if phi is not None:
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


def pct(x: float) -> str:
    return "" if x is None or x != x else f"{100 * x:.2f}"


def ranking_table(ranked, title: str, top: int | None = None) -> Table:
    intervals = results.has_intervals(ranked)
    caption = ("tied = 95% interval overlaps the leader's" if intervals
               else "one seed per candidate: no interval available, differences may be noise (use --seeds 3)")
    t = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    cols = ["rank", "α", "β", "γ", "nominal ×", "measured × (target)", "measured × (proxy)", "params (M)",
            "proxy MMACs", "val top-1 %", "± std", "± 95% CI", "tied", "time (s)", "status"]
    for c in cols:
        t.add_column(c, justify="right", no_wrap=c not in ("status",))
    for r in (ranked.head(top) if top else ranked).itertuples():
        t.add_row("" if r.rank is None or r.rank != r.rank else str(int(r.rank)), f"{r.alpha:g}", f"{r.beta:g}", f"{r.gamma:g}", f"{r.nominal:.2f}",
                  f"{r.measured_target:.2f} ({int(r.target_resolution)} px)", f"{r.measured_proxy:.2f} ({int(r.proxy_resolution)} px)",
                  mega(r.params), f"{r.macs_proxy / 1e6:.1f}", pct(r.acc_mean), pct(r.acc_std), pct(r.ci95),
                  "yes" if r.tied else "", f"{r.seconds:.0f}" if r.seconds == r.seconds else "", r.state)
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

    def stop(self) -> None:
        self.bar.stop()


@app.command()
def run(
    base: str = typer.Option("b0", help="Preset (b0 … b7, b8, l2), shipped base, or path to a base .toml."),
    budget: Optional[str] = typer.Option(None, help="Compute multiplier at φ = 1, e.g. 2x (default: the space file's)."),
    space: str = typer.Option("default", help="Search space: a name in search_spaces/ or a .toml path."),
    constraint: Optional[str] = typer.Option(None, help="nominal (α·β²·γ²) or measured (built network's MACs ratio at the target resolution)."),
    tolerance: Optional[float] = typer.Option(None, help="Relative tolerance on the budget, e.g. 0.05."),
    sampler: Optional[str] = typer.Option(None, help="grid, tpe, random, qmc or cmaes."),
    trials: Optional[int] = typer.Option(None, help="Candidates to sample (not grid)."),
    pruner: Optional[str] = typer.Option(None, help="none, median, sha or hyperband."),
    epochs: Optional[int] = typer.Option(None, help="Proxy epochs per candidate."),
    seeds: Optional[int] = typer.Option(None, help="Training runs per candidate."),
    train_images: Optional[int] = typer.Option(None, "--train", help="Training images per proxy run."),
    val_images: Optional[int] = typer.Option(None, "--val", help="Validation images."),
    batch_size: Optional[int] = typer.Option(None, help="Proxy batch size."),
    proxy_resolution: Optional[int] = typer.Option(None, help="Proxy side in px for γ = 1."),
    data: str = typer.Option("embedded", help="embedded, fashion-mnist-full[:DIR], cifar10:PATH, synthetic[:N] or an image folder."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    study: Optional[str] = typer.Option(None, help="Study name (default from base, budget, space, constraint, data)."),
    storage_url: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL (default sqlite in results/<study>/)."),
    results_dir: str = typer.Option("results", help="Where results/<study>/ goes."),
) -> None:
    """Search (α, β, γ) under the budget with short proxy runs, rank, extrapolate and export."""
    options = search.RunOptions(base=base, space=space, data=data, device=device, budget=budget, constraint=constraint,
                                tolerance=tolerance, sampler=sampler, trials=trials, pruner=pruner, epochs=epochs, seeds=seeds,
                                train=train_images, val=val_images, batch_size=batch_size, resolution=proxy_resolution,
                                study=study, storage=storage_url, results_dir=results_dir)
    progress = RichProgress()
    try:
        plan, st = search.run(options, progress)
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
    out.print(ranking_table(ranked, f"Ranking: {plan.study_name} (val top-1 after {plan.space.proxy.epochs} proxy epochs)"))
    if ranked.empty:
        fail("no candidate completed; see the status column of scalesearch show --all")
    doc = export.coefficients_document(st, ranked, plan.base)
    export.write_json(doc, plan.results_dir / "coefficients.json")
    w = ranked.iloc[0]
    out.print(f"winner: α={w.alpha:g} β={w.beta:g} γ={w.gamma:g}  nominal {w.nominal:.2f}×, measured {w.measured_target:.2f}× "
              f"MACs at {int(w.target_resolution)} px; proxy val top-1 {pct(w.acc_mean)}%", highlight=False)
    fam = family.family_table(plan.base, w.alpha, w.beta, w.gamma)
    out.print(family_rich(fam, f"Family of {plan.base.name} (φ = 0 … 7, 1000 classes)"))
    out.print(f"wrote {plan.results_dir}/trials.csv, ranking.csv, coefficients.json", highlight=False)


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
