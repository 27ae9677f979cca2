"""`scalesearch compare`: compound scaling against each dimension alone, at equal measured MACs per φ."""
from __future__ import annotations

from typing import Optional

import typer

from .. import comparison, search
from ..search import RichProgress, inputs
from ..space import SINGLE
from ._app import COMPILE_OPT, app, interruptible, out
from ._comparison import render


@app.command("compare")
@inputs
def compare_command(
    alpha: Optional[float] = typer.Option(None, help="Depth coefficient α (with --beta and --gamma)."),
    beta: Optional[float] = typer.Option(None, help="Width coefficient β."),
    gamma: Optional[float] = typer.Option(None, help="Resolution coefficient γ."),
    base: Optional[str] = typer.Option(None, help="Base for --alpha/--beta/--gamma (default b0): preset, shipped base or .toml."),
    study: Optional[str] = typer.Option(None, help="Compare this search study's winner (a results folder or a study "
                                                   "name), with its base, data and proxy; the comparison goes beside it."),
    coefficients: Optional[str] = typer.Option(None, "--from", "--coefficients", help="Compare the coefficients of a file from scalesearch export."),
    phi: int = typer.Option(2, help="Largest φ: members φ = 0 … K (the default 2 fits the 10-minute budget on 2 CPU cores)."),
    family: str = typer.Option(",".join(SINGLE), help="Single-dimension families to compare with compound: "
                                                                 "any of width, depth, resolution, comma-separated."),
    interaction: bool = typer.Option(False, "--interaction", help="Also width scaling from deeper and larger bases "
                                                                 "(the paper's Figure 4); more than doubles the cost."),
    space: Optional[str] = typer.Option(None, help="Search space whose proxy settings and tolerance apply (default: the "
                                                   "study's, else default)."),
    data: Optional[str] = typer.Option(None, help="embedded, fashion-mnist-full[:DIR], cifar10:PATH, synthetic[:N] or an "
                                                  "image folder (default: the study's, else embedded)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    epochs: Optional[int] = typer.Option(None, help="Proxy epochs per member."),
    seeds: Optional[int] = typer.Option(None, help="Paired seeds every member gets in the first round."),
    max_seeds: Optional[int] = typer.Option(None, help="Paired seeds a comparison not yet resolved may reach."),
    time_budget: Optional[str] = typer.Option(None, "--time", help="Time for the whole command, e.g. 10m, 1h or none "
                                                                   "(default: the space's)."),
    train_images: Optional[int] = typer.Option(None, "--train", help="Training images per proxy run."),
    val_images: Optional[int] = typer.Option(None, "--val", help="Validation images."),
    batch_size: Optional[int] = typer.Option(None, help="Proxy batch size."),
    proxy_resolution: Optional[int] = typer.Option(None, help="Proxy side in px for side multiplier 1 (default: auto)."),
    storage_url: Optional[str] = typer.Option(None, "--storage", envvar=search.STORAGE_ENV, help="Optuna storage URL "
                                              "(default: the study's, else sqlite in results/<comparison>/)."),
    results_dir: str = typer.Option("results", help="Where results/<study>/ lives."),
    compile_step: bool = COMPILE_OPT,
    workers: Optional[int] = typer.Option(None, help="Worker processes on this machine, sharing the cores (default: "
                                          "SCALESEARCH_WORKERS, else one per core on the CPU and 1 on a GPU; see also "
                                          "scalesearch worker)."),
    devices: Optional[str] = typer.Option(None, help="One worker process per device, e.g. cuda:0,cuda:1."),
    restart: bool = typer.Option(False, "--restart", help="Delete this comparison's trials and start it again."),
) -> None:
    """Compound scaling against width, depth or resolution alone at equal measured MACs per φ, with verdicts.

    Writes comparison.csv, comparison.json and comparison.png; the same command again resumes.

    scalesearch worker joins it; scalesearch export, plot and show of a compared study carry it.
    """
    progress = RichProgress()
    with interruptible(progress, "the current member is back in the queue"):
        r = comparison.compare(base, alpha, beta, gamma, study=study, coefficients=coefficients, phi=phi, families=family,
                               interaction=interaction, progress=progress, restart=restart, space=space, data=data,
                               device=device, epochs=epochs, seeds=seeds, max_seeds=max_seeds, time=time_budget,
                               train=train_images, val=val_images, batch_size=batch_size, resolution=proxy_resolution,
                               storage=storage_url, results_dir=results_dir, compile=compile_step, workers=workers,
                               devices=devices)
    render(r.document, out)
    figures = ", ".join(f"{stem}.png and .svg" for stem in comparison.figures(r.document))
    out.print(f"wrote {r.folder}/comparison.csv, comparison.json, {figures}", highlight=False)
