"""The command line: ``negbench`` (typer); one module of commands per stage."""

from negbench.cli.main import app, main

__all__ = ["app", "main"]
