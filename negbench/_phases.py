"""Where a job's time goes before and around its own work (issue 28): start-up phases, timed on request.

When ``$NEGBENCH_STARTUP_LOG`` names a file, every :func:`phase` block appends one JSON line to it: the phase's
name, its start and end on the ``perf_counter`` clock (``CLOCK_MONOTONIC`` on Linux: one clock for every process
of the machine, so a fork in the suite process and the first line of its job process compare), the process id
and the job being run (:func:`job`). Without the variable a phase costs one environment look-up.
``tests/benchmarks/job_startup.py`` reads the file into a per-job breakdown.

Phase names: ``spawn`` (suite process: from just before a job process is started until ``start()`` returned),
``child`` (job process: an instant, its first line), ``imports``, ``setup`` (a job process's runner and code
check), ``dataset``, ``tracking`` (MLflow: connecting, creating and closing runs), ``model`` (reading weights),
``store`` (result writes under the store's lock), ``job`` (the whole of ``run_job``: work plus the phases in it),
``exit`` (job process: an instant, its last line) and ``joined`` (suite process: the job process has ended).
A phase nested in one of the same name is counted once, in the outer one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ENV", "enabled", "job", "mark", "phase"]

ENV = "NEGBENCH_STARTUP_LOG"
_job: str | None = None
_open: dict[str, int] = {}  # phase name -> blocks of that name open now (only the outermost is written)


def enabled() -> bool:
    return bool(os.environ.get(ENV))


def mark(name: str, start: float | None = None, end: float | None = None, **fields: object) -> None:
    """Append one phase (an instant when neither ``start`` nor ``end`` is given) to the log, if one is named."""
    path = os.environ.get(ENV)
    if not path:
        return
    end = time.perf_counter() if end is None else end
    record = {"phase": name, "start": end if start is None else start, "end": end, "pid": os.getpid(), "job": _job}
    line = (json.dumps({**record, **fields}, default=str) + "\n").encode()
    try:  # one write on an O_APPEND descriptor: lines of several processes never interleave
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError:  # timing is a diagnostic: it never fails a run
        pass


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as phase ``name`` (nothing is timed or written when no log is named)."""
    if not enabled() or _open.get(name):
        yield
        return
    _open[name] = 1
    start = time.perf_counter()
    try:
        yield
    finally:
        _open[name] = 0
        mark(name, start)


@contextmanager
def job(name: str) -> Iterator[None]:
    """Label the phases written in the block with the job ``name``."""
    global _job
    before, _job = _job, name
    try:
        yield
    finally:
        _job = before
