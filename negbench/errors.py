"""Every exception negbench raises on purpose, in one module.

User errors (:class:`NegbenchError` and its kinds) are reported as one line naming the file and the field, exit
code 2. The others fail one run, one trial or the whole process in a defined way; each says which.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BudgetError",
    "ConfigError",
    "DataError",
    "InvalidTrialError",
    "ModelError",
    "NegbenchError",
    "NonFiniteLossError",
    "OutputDirInUse",
    "Terminated",
]


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


class OutputDirInUse(NegbenchError):
    """Another negbench process holds the output directory's lock (:mod:`negbench.run.lock`)."""


class BudgetError(RuntimeError):
    """A batch composer broke the budget rule (not full batches, too few of them, repeated examples): the run is
    recorded as failed and the suite goes on."""


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM so open runs are closed as KILLED (a BaseException: no ``except
    Exception`` in strategy code may swallow it)."""
