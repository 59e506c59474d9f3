"""MLflow's tracking client and SQL store, imported once by the fork server that job processes come from
(:func:`negbench.run.isolation.job_context`, when the suite tracks runs): every job process connects to MLflow, and
importing it there took seconds per job (issue 28). Imports only: telemetry is turned off first, as
:meth:`negbench.run.tracking.Tracker.start` does, since MLflow starts it on import (no thread may run in a process
that forks), and no connection is made (none may be shared across a fork)."""

from __future__ import annotations

from negbench.run.interrupts import ctrl_c_exits_quietly
from negbench.run.tracking import disable_telemetry

__all__: list[str] = []  # imported for its effect

disable_telemetry()

with ctrl_c_exits_quietly():  # the fork server imports this, and a Ctrl-C is the suite's to handle (job_preload)
    import mlflow.store.tracking.sqlalchemy_store  # after telemetry is off: what a SQL store imports
    import mlflow.tracking  # noqa: F401 - the client (Tracker.start)
