"""One guard around a run's strategy code, in tuning trials and final runs alike.

Whatever a strategy does inside a run — raise, or call ``sys.exit`` (any code, 0 included) — becomes a
:class:`StrategyFailure`: the trial fails (counted against the budget) or the row is recorded as failed, and
the suite goes on with the other strategies. Interrupts (``KeyboardInterrupt``, SIGTERM's ``Terminated``) are
never caught, and neither are negbench's own outcomes, which the callers handle themselves: user errors
(:class:`~negbench.errors.NegbenchError`), rejected draws and budgets, non-finite losses, pruning.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import optuna

from negbench.core.budget import BudgetError
from negbench.errors import InvalidTrialError, NegbenchError, NonFiniteLossError
from negbench.run.interrupts import INTERRUPTS

__all__ = ["PASS_THROUGH", "StrategyFailure", "describe", "guarded"]

log = logging.getLogger(__name__)

PASS_THROUGH: tuple[type[BaseException], ...] = (
    *INTERRUPTS,
    GeneratorExit,
    NegbenchError,
    BudgetError,
    InvalidTrialError,
    NonFiniteLossError,
    optuna.TrialPruned,
)


def describe(exc: BaseException) -> str:
    """One line naming the exception and its message (at most 2000 characters)."""
    if isinstance(exc, StrategyFailure):
        return exc.reason
    if isinstance(exc, SystemExit):
        return f"SystemExit: sys.exit({exc.code!r}) called during the run"
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return " ".join(text.split())[:2000]


class StrategyFailure(Exception):
    """A run's strategy code raised or exited; ``kind`` is the exception's type name, ``reason`` one line."""

    def __init__(self, exc: BaseException) -> None:
        self.kind = type(exc).__name__
        self.reason = describe(exc)
        super().__init__(self.reason)


@contextmanager
def guarded() -> Iterator[None]:
    """Turn any exception or ``SystemExit`` raised in the block into :class:`StrategyFailure`, except
    :data:`PASS_THROUGH` (interrupts and negbench's own outcomes), which propagate unchanged."""
    try:
        yield
    except (*PASS_THROUGH, StrategyFailure):
        raise
    except BaseException as exc:
        log.debug("strategy run failed", exc_info=True)
        raise StrategyFailure(exc) from exc
