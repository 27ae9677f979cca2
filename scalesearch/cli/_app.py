"""The command line's shared parts: the typer app, the consoles, common options and table helpers."""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.table import Table

from .. import search
from ..errors import ScaleSearchError
from ..results import mega
from ..search import Progress

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


COMPILE_OPT = typer.Option(False, "--compile", help="torch.compile each training step: for long runs (compiling takes minutes).")


def chosen(name: str | None, study: str | None) -> str | None:
    """The study named by STUDY or --study (they must agree)."""
    if name and study and name != study:
        fail(f"STUDY {name!r} and --study {study!r} disagree; give one")
    return name or study


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

