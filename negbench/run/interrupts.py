"""Interrupts (Ctrl-C, SIGTERM) are never lost: recorded when they arrive, raised again where it is safe.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be. When that is a garbage-collection
callback or a finalizer (``__del__``, a weakref callback), the interpreter reports the exception as
"unraisable" and goes on: the interrupt is swallowed and the run finishes as if nothing happened. A plugin's
bare ``except:`` swallows it too. Inside :func:`trapped`:

* SIGINT raises ``KeyboardInterrupt`` and SIGTERM raises :class:`~negbench.run.tracking.Terminated`, both after
  recording the interrupt; an interrupt reported as unraisable is recorded as well;
* :func:`check` (called after each trial's garbage collection, before measured phases, after each job)
  raises a recorded interrupt again, and so does the end of the block: once interrupted, the run stops;
* a second Ctrl-C while the first is being handled (runs closed, trials re-queued, job processes stopped)
  exits at once with code 130.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from negbench.errors import Terminated

__all__ = ["EXIT_INTERRUPTED", "INTERRUPTS", "check", "collect", "ctrl_c_exits_quietly", "trapped"]

EXIT_INTERRUPTED = 130
INTERRUPTS = (KeyboardInterrupt, Terminated)

_pending: BaseException | None = None
_depth = 0


def _on_signal(signum: int, frame: Any) -> None:
    global _pending
    if signum == signal.SIGINT and isinstance(_pending, KeyboardInterrupt):
        os.write(2, b"interrupted again: exiting now\n")
        os._exit(EXIT_INTERRUPTED)
    exc: BaseException = KeyboardInterrupt() if signum == signal.SIGINT else Terminated(f"signal {signum}")
    if _pending is None:
        _pending = exc
    raise exc


def _on_unraisable(previous: Any) -> Any:
    def hook(unraisable: Any) -> None:
        global _pending
        if isinstance(unraisable.exc_value, INTERRUPTS):
            if _pending is None:
                _pending = unraisable.exc_value
            return
        previous(unraisable)

    return hook


def check() -> None:
    """Raise the interrupt received in this block (again) if there was one: a safe point to stop."""
    if _pending is not None:
        raise type(_pending)(*_pending.args)


def collect() -> None:
    """``gc.collect()``, then :func:`check`: an interrupt that landed in a gc callback is not lost."""
    gc.collect()
    check()


@contextmanager
def trapped() -> Iterator[None]:
    """Handle SIGINT / SIGTERM and unraisable interrupts as the module says (re-entrant; main thread only)."""
    global _pending, _depth
    if _depth or threading.current_thread() is not threading.main_thread():
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    _pending, _depth = None, 1
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    unraisable = sys.unraisablehook
    for sig in handlers:
        signal.signal(sig, _on_signal)
    sys.unraisablehook = _on_unraisable(unraisable)
    try:
        yield
        check()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        sys.unraisablehook = unraisable
        _pending, _depth = None, 0


@contextmanager
def ctrl_c_exits_quietly(code: int = EXIT_INTERRUPTED) -> Iterator[None]:
    """Inside, Ctrl-C (SIGINT) ends the process at once with ``code`` and prints nothing; the handler found
    before is back after (main thread only). For a helper process that shares the terminal but whose Ctrl-C the
    suite process handles, such as the job fork server while it imports (:mod:`negbench.run.job_preload`)."""

    def leave(signum: int, frame: Any) -> None:
        os._exit(code)

    previous = signal.signal(signal.SIGINT, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
