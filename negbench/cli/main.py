"""The ``negbench`` command line (typer + rich): one module of commands per purpose, registered on one app.
User errors print one line and exit 2 (:func:`main` makes the command line's own parse errors do the same)."""

from __future__ import annotations

import typer

from negbench.cli import inspecting, publishing, running  # noqa: F401 - importing registers their commands
from negbench.cli.common import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """The ``negbench`` console script: the app, with the command line's own errors (a missing argument, an
    option that does not parse) in the same one line as every other user error, exit 2."""
    usage_error = typer.BadParameter.__mro__[1]  # the UsageError of the click typer ships (no public name)
    try:
        code = app(args=argv, prog_name="negbench", standalone_mode=False)
    except usage_error as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "negbench"
        typer.echo(f"error: {where}: {' '.join(exc.format_message().split())}", err=True)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("interrupted", err=True)
        return 130
    return code if isinstance(code, int) else 0
