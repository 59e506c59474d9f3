"""Reading a suite file: TOML parsed and validated into a :class:`~negbench.config.suite.Suite`, any problem a
one-line :class:`~negbench.errors.ConfigError` naming the file and the field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from negbench.config.suite import Suite
from negbench.errors import ConfigError

__all__ = ["dotted_path", "load_suite", "parse_suite", "read_suite"]


def dotted_path(loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location as a TOML-style dotted path: ``datasets[0].source``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite TOML file; any problem raises one-line :class:`ConfigError`."""
    return read_suite(path)[0]


def read_suite(path: str | Path) -> tuple[Suite, str]:
    """The validated suite and the text it was parsed from (read once: what a run copies into its store)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            "suite file not found" if not path.is_dir() else "is a directory, not a suite file", file=path
        )
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", file=path) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text: {exc}", file=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the suite file: {exc.strerror or exc}", file=path) from None
    return parse_suite(raw, path), text


def parse_suite(raw: dict[str, Any], path: str | Path = "<suite>") -> Suite:
    try:
        return Suite.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        raise ConfigError(message, file=path, field=dotted_path(first["loc"])) from None
