"""The commands on a study's winner and its family: extrapolate, verify and plot."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import optuna
import typer

from .. import arch, results, search
from ..results import pct
from ..search import RichProgress, inputs
from ._app import (COMPILE_OPT, RESULTS_OPT, STORAGE_OPT, STUDY_ARG, STUDY_OPT, app, chosen, err, fail, family_rich,
                   interruptible, out, table)


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
    """PNG and SVG figures: accuracy vs MMACs with the Pareto front, the (α, β) plane, the family vs official B0 … B7.

    A study with a comparison (scalesearch compare) gets its figures too; a comparison's own study, those only.
    """
    from ..comparison import figures  # matplotlib loads only for this command
    from ..results import plots

    phis = results.parse_phis(phi)
    st, _ = search.load_recorded(storage_url, chosen(name, study), results_dir)
    compared = st.user_attrs.get("comparison")
    if results.is_comparison(st) and not compared:
        fail(f"comparison {st.study_name!r} has not finished: run scalesearch compare again")
    folder = Path(output) if output else Path(results_dir) / st.study_name / "plots"
    if folder.exists() and not folder.is_dir():
        fail(f"-o {folder} exists and is not a folder")
    if results.is_comparison(st):
        written = plots.save(figures(compared), folder)
    else:
        trials, _ = results.study_winner(st)
        written = plots.write_plots(trials, results.study_base(st), folder, st.study_name, phis,
                                    figures(compared) if compared else None)
    for path in written:
        out.print(f"wrote {path}", highlight=False)
