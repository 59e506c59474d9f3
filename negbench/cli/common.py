"""What every ``negbench`` command shares: the app, its consoles, and the one-line user-error handling."""

from __future__ import annotations

import functools
import sys

import typer
from rich.console import Console

from negbench.errors import NegbenchError

__all__ = ["require", "user_errors"]

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Benchmark negative-sampling strategies.")
console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 200)


def user_errors(fn):
    """Turn :class:`NegbenchError`, and any file-system or decoding error on a user path that got this far,
    into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NegbenchError as exc:
            message = exc.one_line()
        except UnicodeDecodeError as exc:
            message = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        except OSError as exc:
            where = ": ".join(str(p) for p in (exc.filename, exc.filename2) if p)
            message = f"{where}: {exc.strerror or exc}" if where else str(exc)
        typer.echo(f"error: {' '.join(message.split())}", err=True)
        raise typer.Exit(2) from None

    return wrapper


def require(ok: bool, flag: str, message: str) -> None:
    """A command-line value check: one line naming the option, exit 2."""
    if not ok:
        raise NegbenchError(message, field=flag)
