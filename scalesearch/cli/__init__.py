"""The `scalesearch` command: a thin typer layer over the Python API.

Every command turns its options into API calls and renders the result with rich; one module per group of
commands registers them on the one typer app. User errors (:class:`ScaleSearchError`, bad option values)
print one line on stderr and exit with code 2; anything else keeps its traceback.
"""
from __future__ import annotations

import logging
import sys

import optuna
import typer

from ..errors import ScaleSearchError
from . import _network, _search, _family, _compare  # noqa: F401, I001  (each registers its commands, in --help's order)
from ._app import app

try:  # typer that vendors click: its usage errors derive from the public TyperException
    from typer import TyperException as ClickException
except ImportError:  # pragma: no cover  (older typer: click is a separate, public dependency)
    from click import ClickException


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



__all__ = ["app", "main"]
