"""User-facing errors: one line, naming the file and the field, exit code 2."""

from __future__ import annotations

from pathlib import Path


class NegbenchError(Exception):
    """An error caused by user input (config, data, model spec); reported as one line, exit 2."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | Path | None = None, field: str | None = None) -> None:
        self.file = str(file) if file is not None else None
        self.field = field
        self.message = message
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = ": ".join(p for p in (self.file, self.field) if p)
        text = f"{where}: {self.message}" if where else self.message
        return " ".join(text.split())


class ConfigError(NegbenchError):
    """The suite TOML is malformed or names something that does not exist."""


class DataError(NegbenchError):
    """A dataset file is missing or malformed."""


class ModelError(NegbenchError):
    """A model spec cannot be resolved or loaded."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the run is recorded as failed and the suite goes on."""


class InvalidTrialError(RuntimeError):
    """A tuning trial drew parameters that the strategy or the budget rejects; that trial fails, not the suite."""
