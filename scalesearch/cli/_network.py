"""The commands about networks and spaces, which train nothing: info, bases, spaces."""
from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from .. import arch, results
from .. import space as space_mod
from ..results import mega
from ..search import inputs
from ._app import PAPER, app, fail, out, table

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
