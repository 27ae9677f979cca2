"""The search's commands: run, show, export, worker and agree."""
from __future__ import annotations

import json
import math
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .. import comparison, results, search
from ..results import RANKING_HEADERS, markdown_ranking, pct, ranking_caption, ranking_cells, verdict_line
from ..search import Progress, RichProgress, inputs
from ._comparison import show_comparison
from ._app import (COMPILE_OPT, RESULTS_OPT, STORAGE_OPT, STUDY_ARG, STUDY_OPT, app, chosen, err, fail, family_rich,
                   interruptible, out, table)

def ranking_table(ranked, title: str, val_images: int | None = None) -> Table:
    rows = [ranking_cells(r) for r in ranked.itertuples()]
    return table(title, RANKING_HEADERS, rows, ranking_caption(ranked, val_images), left=("status",), wrap=("status",))


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
    max_seeds: Optional[int] = typer.Option(None, help="Seeds any one network may get (the time budget usually ends a run before)."),
    time_budget: Optional[str] = typer.Option(None, "--time", help="Time for the whole run, e.g. 10m, 1h or none (default: the space's)."),
    train_images: Optional[int] = typer.Option(None, "--train", help="Training images per proxy run."),
    val_images: Optional[int] = typer.Option(None, "--val", help="Validation images."),
    batch_size: Optional[int] = typer.Option(None, help="Proxy batch size."),
    lr: Optional[float] = typer.Option(None, help="Proxy learning rate (how strongly short proxies favour width depends on it: check another in a study of its own and compare with scalesearch agree)."),
    lr_scaling: Optional[str] = typer.Option(None, help="none, or width: each wider layer's rate divided by its growth in "
                                             "fan-in from β = 1 (μP), so that width is not rewarded for the larger steps a "
                                             "fixed rate gives it; a check of a width-heavy answer, in a study of its own."),
    proxy_resolution: Optional[int] = typer.Option(None, help="Proxy side in px for γ = 1."),
    data: str = typer.Option("embedded", help="embedded, fashion-mnist-full[:DIR], cifar10:PATH, synthetic[:N] or an image folder."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    study: Optional[str] = typer.Option(None, help="Study name (default from base, budget, space, constraint, data)."),
    storage_url: Optional[str] = typer.Option(None, "--storage", envvar=search.STORAGE_ENV, help="Optuna storage URL (default sqlite in "
                                              "results/<study>/); SCALESEARCH_STORAGE keeps a password off the command line."),
    results_dir: str = typer.Option("results", help="Where results/<study>/ goes."),
    workers: Optional[int] = typer.Option(None, help="Worker processes on this machine, sharing the cores (default: "
                                          "SCALESEARCH_WORKERS, else one per core on the CPU and 1 on a GPU; see also "
                                          "scalesearch worker)."),
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
                            train=train_images, val=val_images, batch_size=batch_size, lr=lr, lr_scaling=lr_scaling,
                            resolution=proxy_resolution,
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


SHOW_FORMATS = ("table", "csv", "json", "markdown")



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
    if results.is_comparison(st):
        return show_comparison(st, fmt)
    trials = results.trials_frame(st)
    ranked = results.sort_ranking(results.ranking(trials, include_all=show_all), sort)
    candidates = int((ranked["seeds"] > 0).sum()) if len(ranked) else 0
    ranked = ranked.head(top) if top else ranked
    config = st.user_attrs["config"]
    epochs, val_images = config.get("proxy", {}).get("epochs", "?"), config.get("data", {}).get("val")
    title = f"Ranking: {st.study_name} ({epochs} proxy epochs, φ = 1; study in {search.redact(url)})"
    if fmt == "csv":
        sys.stdout.write(ranked.to_csv(index=False))
    elif fmt == "json":
        doc = results.ranking_document(st.study_name, search.redact(url), epochs, val_images, ranked,
                                      results.verdict_document(st, trials), results.constraint_summary(config))
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        v = results.study_verdict(st, trials)  # with the boundary notes, as the run printed them
        lines = ([verdict_line(v, candidates)] if v else []) + [results.constraint_line(config)]
        if fmt == "markdown":
            sys.stdout.write(markdown_ranking(ranked, title, val_images) + "".join(f"\n{line}\n" for line in lines))
        else:
            shown = table(title, *results.wide_table(ranked)) if wide else ranking_table(ranked, title, val_images=val_images)
            (Console(width=10_000) if wide else out).print(shown, highlight=False)  # --wide: as wide as its columns
            out.print("\n".join(lines), highlight=False, soft_wrap=True)  # the verdict on one line, however long
            for line in (st.user_attrs.get("comparison") or {}).get("verdicts", {}).values():
                out.print(f"comparison: {line}", highlight=False, soft_wrap=True)
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
    kind = search.load_recorded(storage_url, study)[0].user_attrs["config"].get("kind")
    reopen = comparison.reopen if kind == search.COMPARISON else search.load
    with interruptible(progress, "the current candidate is back in the queue", quiet):
        done, total = search.join(study, storage_url, device, progress, compile_step, reopen)
    if not quiet:
        err.print(f"worker done: {done} of {total} trials of study {study} in {search.redact(storage_url)} done; "
                  f"see the ranking with scalesearch show --storage URL --study {study}", highlight=False)


@app.command()
@inputs
def agree(
    first: str = typer.Argument(..., metavar="STUDY_A", help="A results folder or a study name, as for show."),
    second: str = typer.Argument(..., metavar="STUDY_B", help="The same question asked another way (another --lr, "
                                 "--epochs, seed or data), in a study of its own."),
    fmt: str = typer.Option("text", "--format", help="text or json."),
    storage_url: Optional[str] = STORAGE_OPT,
    results_dir: str = RESULTS_OPT,
) -> None:
    """Do two studies of one base, budget and constraint agree? Each winner against the other's 95% set, and τ-b."""
    if fmt not in ("text", "json"):
        fail(f"--format must be text or json, got {fmt!r}")
    studies = [search.load_recorded(storage_url, name, results_dir)[0] for name in (first, second)]
    r = results.agreement(*studies)
    if fmt == "json":
        doc = {**r.__dict__, "p_in_other": [None if math.isnan(p) else p for p in r.p_in_other],
               "contradict": r.contradict, "words": r.words}
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        return
    config = studies[0].user_attrs["config"]
    unit = "−val loss, nats" if config.get("proxy", {}).get("score", "loss") == "loss" else "val top-1, fraction"
    a, b = r.names
    name = lambda c: f"({', '.join(f'{x:g}' for x in c)})"
    slopes = lambda s: " / ".join(f"{s.get(k, math.nan):+.3f}" for k in ("log_depth", "log_width", "log_side"))
    lines = [f"Agreement of {a} and {b}: {config['base']['name']} at {config['space']['budget']:g}x, "
             f"{config['space']['constraint']} constraint",
             "what differs: " + ("; ".join(r.differences) or "nothing recorded (the same settings)"),
             f"candidates ranked by both: {r.common}",
             *(f"{n}'s winner {name(w)}: in {o}'s 95% set: {'yes' if inside else 'no'} (its P(best) there: "
               f"{'not ranked' if math.isnan(p) else f'{100 * p:.0f}%'})"
               for n, o, w, inside, p in ((a, b, r.winners[0], r.a_in_b, r.p_in_other[0]),
                                          (b, a, r.winners[1], r.b_in_a, r.p_in_other[1]))),
             f"95% sets: {r.set_sizes[0]} and {r.set_sizes[1]} networks (of {r.networks})",
             f"Kendall τ-b of score_fit over the common candidates: {r.tau:+.2f} (p = {r.tau_p:.2g})",
             f"slopes, score ({unit}) per unit log of blocks / channels / side: {a} {slopes(r.slopes[0])}; "
             f"{b} {slopes(r.slopes[1])}",
             r.words]
    if r.shared_seeds:
        lines.append(f"note: the two trained on {r.shared_seeds} of the same seeds, so their noise is in part the same: "
                     "this shows what the change did, not how well the answer repeats across seeds (for that, change "
                     "the space's seed)")
    out.print("\n".join(lines), highlight=False, soft_wrap=True)
