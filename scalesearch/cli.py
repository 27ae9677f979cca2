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

from . import arch, cost, family
from .errors import ScaleSearchError

try:  # typer >= 0.16 vendors click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="EfficientNet-style compound scaling: search (α, β, γ) for your base network, data and budget.")
out = Console()
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


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors with exit code 2 for anything the user can fix."""
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
