"""MLflow tracking: one parent run per suite, a child per job, a child per trial and per final seed.

The default tracking store is a SQLite file in the output directory; an ``http(s)://`` URI in the suite or
``MLFLOW_TRACKING_URI`` takes precedence. A run ends FAILED when its block raises, KILLED on SIGTERM or
SIGINT; runs left RUNNING by a process killed with SIGKILL are marked KILLED when the suite next starts, or
at once when a worker takes over the dead worker's unit of work (runs carry their worker's id as a tag).

A SQLite tracking file is created and migrated once, whoever starts first: under an exclusive lock beside it
(``mlflow.db.lock``), in a temporary file that is renamed into place only once MLflow's schema migration has
finished, so workers started together never migrate one file at the same time and a process killed while
migrating leaves no half-migrated database. A file that was half-migrated earlier is reported in one line.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import signal
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from negbench import _phases as phases
from negbench._io import default_file_mode
from negbench.config.suite import TrackingConfig
from negbench.errors import NegbenchError, Terminated

__all__ = ["TMP_PREFIX", "WORKER_TAG", "Tracker", "disable_telemetry", "sqlite_path"]

WORKER_TAG = "negbench.worker"  # the claim owner of the worker that created a run (see negbench.run.claims)


def _on_sigterm(signum, frame):  # pragma: no cover - exercised through a subprocess test
    raise Terminated(f"signal {signum}")


def disable_telemetry() -> None:
    """Before MLflow is imported: no telemetry (MLflow starts a thread for it on import, and none may run in a process
    that forks job processes), unless the user's environment asks for it."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")


class Tracker:
    """Thin wrapper over the MLflow client; every method is a no-op when tracking is disabled."""

    def __init__(self, cfg: TrackingConfig, output_dir: Path, experiment: str) -> None:
        self.enabled = cfg.enabled
        self.output_dir = Path(output_dir)
        self.uri = (
            cfg.uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(self.output_dir / 'mlflow.db').resolve()}"
        )
        self.experiment_name = cfg.experiment or experiment
        self.client = None
        self.experiment_id: str | None = None
        self.worker: str | None = None  # set by a worker: every run it creates is tagged with it
        self._stack: list[str] = []

    def start(self, close_stale: bool = True) -> None:
        if not self.enabled:
            return
        with phases.phase("tracking"):
            self._start(close_stale)

    def _start(self, close_stale: bool) -> None:
        disable_telemetry()
        import logging

        with phases.phase("imports"):
            from mlflow.tracking import MlflowClient  # mlflow configures its loggers on import: quiet them after

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        logging.getLogger("alembic").setLevel(logging.ERROR)

        self.output_dir.mkdir(parents=True, exist_ok=True)
        database = sqlite_path(self.uri)
        with _exclusive(database) if database else contextlib.nullcontext():
            if database is not None:
                _create_once(database, (self.output_dir / "mlartifacts").resolve().as_uri())
            self.client = MlflowClient(tracking_uri=self.uri)
            experiment = self.client.get_experiment_by_name(self.experiment_name)
            if experiment is None:
                artifacts = (
                    None if self.uri.startswith("http") else (self.output_dir / "mlartifacts").resolve().as_uri()
                )
                self.experiment_id = self.client.create_experiment(self.experiment_name, artifact_location=artifacts)
            else:
                self.experiment_id = experiment.experiment_id
        if close_stale:
            self.close_stale()
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):  # negbench.run.interrupts may handle it
            signal.signal(signal.SIGTERM, _on_sigterm)

    def attach(self, parent_run: str | None) -> None:
        """In a job process: connect without closing the suite's open runs, nesting under ``parent_run``."""
        if not self.enabled:
            return
        self.start(close_stale=False)
        if parent_run:
            self._stack.append(parent_run)

    def fail_open_runs(self, keep: set[str]) -> int:
        """Mark every RUNNING run except ``keep`` FAILED (the runs of a job process that crashed)."""
        if self.client is None:
            return 0
        open_runs = self.client.search_runs([self.experiment_id], "attributes.status = 'RUNNING'", max_results=5000)
        failed = [run for run in open_runs if run.info.run_id not in keep]
        for run in failed:
            self.client.set_terminated(run.info.run_id, status="FAILED")
        return len(failed)

    def close_stale(self) -> int:
        """Mark runs left RUNNING by an earlier, killed process as KILLED."""
        if self.client is None:
            return 0
        stale = self.client.search_runs([self.experiment_id], "attributes.status = 'RUNNING'", max_results=5000)
        for run in stale:
            self.client.set_terminated(run.info.run_id, status="KILLED")
        return len(stale)

    def _running_by_worker(self) -> dict[str, list[str]]:
        """Run ids of the RUNNING runs of this experiment by the worker tag they carry (tag values are compared
        here, not in MLflow's filter: a host name may hold a quote)."""
        runs = self.client.search_runs([self.experiment_id], "attributes.status = 'RUNNING'", max_results=5000)
        by_worker: dict[str, list[str]] = {}
        for run in runs:
            worker = run.data.tags.get(WORKER_TAG)
            if worker is not None:
                by_worker.setdefault(worker, []).append(run.info.run_id)
        return by_worker

    def close_runs_of(self, worker: str) -> int:
        """Mark the RUNNING runs of a dead ``worker`` KILLED (its unit of work was taken over)."""
        if self.client is None:
            return 0
        stale = self._running_by_worker().get(worker, [])
        for run_id in stale:
            self.client.set_terminated(run_id, status="KILLED")
        return len(stale)

    def close_dead_workers(self, is_dead: Callable[[str], bool]) -> int:
        """Mark KILLED the RUNNING runs of every other worker that ``is_dead`` says is gone (a worker killed
        while it held no claim leaves no unit to take over). Runs of live workers, of workers that cannot be
        checked from here, and untagged runs are left alone: a worker never closes another's live runs."""
        if self.client is None:
            return 0
        closed = 0
        for worker, run_ids in self._running_by_worker().items():
            if worker != self.worker and is_dead(worker):
                for run_id in run_ids:
                    self.client.set_terminated(run_id, status="KILLED")
                closed += len(run_ids)
        return closed

    @contextmanager
    def run(
        self, name: str, *, tags: dict[str, Any] | None = None, params: dict[str, Any] | None = None
    ) -> Iterator[str | None]:
        """A nested run under the innermost open one; ends FINISHED, FAILED or KILLED."""
        if self.client is None:
            yield None
            return
        all_tags = {k: str(v) for k, v in (tags or {}).items()}
        if self._stack:
            all_tags["mlflow.parentRunId"] = self._stack[-1]
        if self.worker:
            all_tags[WORKER_TAG] = self.worker
        with phases.phase("tracking"):
            run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        run_id = run.info.run_id
        self._stack.append(run_id)
        status = "FINISHED"
        try:
            if params:
                self.log_params(run_id, params)
            yield run_id
        except (KeyboardInterrupt, Terminated):
            status = "KILLED"
            raise
        except BaseException:
            status = "FAILED"
            raise
        finally:
            self._stack.pop()
            with phases.phase("tracking"):
                self.client.set_terminated(run_id, status=status)

    def log_params(self, run_id: str | None, params: dict[str, Any]) -> None:
        if self.client is None or run_id is None:
            return
        for key, value in params.items():
            self.client.log_param(run_id, key, str(value)[:6000])

    def log_metrics(self, run_id: str | None, metrics: dict[str, Any], step: int | None = None) -> None:
        if self.client is None or run_id is None:
            return
        for key, value in metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                self.client.log_metric(run_id, key.replace("@", "_at_"), float(value), step=step or 0)

    def log_steps(self, run_id: str | None, records) -> None:
        """Per-step records (:class:`negbench.core.probes.curves.StepRecord`) as step metrics, in one batch: hardness
        metrics as ``hardness_<metric>``, dev points under their own name (``dev_ndcg_at_10``)."""
        if self.client is None or run_id is None or not records:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(
                (r.metric if r.kind == "dev" else f"{r.kind}_{r.metric}").replace("@", "_at_"),
                float(r.value),
                now,
                int(r.step),
            )
            for r in records
            if math.isfinite(r.value)
        ]
        for start in range(0, len(metrics), 1000):  # MLflow's batch limit
            self.client.log_batch(run_id, metrics=metrics[start : start + 1000])

    def set_tags(self, run_id: str | None, tags: dict[str, Any]) -> None:
        if self.client is None or run_id is None:
            return
        for key, value in tags.items():
            self.client.set_tag(run_id, key, str(value))

    def log_artifact(self, run_id: str | None, path: Path) -> None:
        if self.client is None or run_id is None or not Path(path).is_file():
            return
        self.client.log_artifact(run_id, str(path))


# ---------------------------------------------------------------------------------------- SQLite store
TMP_PREFIX = ".mlflow-init-"  # a tracking file being created (removed with a killed run's temporaries)


def sqlite_path(uri: str) -> Path | None:
    """The file behind a ``sqlite:///`` tracking URI (None for a server or another database)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri[len(prefix) :] in ("", ":memory:"):
        return None
    return Path(uri[len(prefix) :].split("?", 1)[0])


@contextmanager
def _exclusive(database: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<database>.lock`` (released by the kernel however the holder ends)."""
    database.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{database}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _create_once(database: Path, artifacts: str) -> None:
    """Create ``database`` with MLflow's full schema unless it exists; call with :func:`_exclusive` held.

    MLflow creates and migrates a new file when a client first opens it. That happens here in a temporary file
    beside it, renamed into place when done: a process killed meanwhile leaves only the temporary file. An
    existing file is checked for the traces of a migration that was interrupted before this lock existed."""
    if database.exists() and database.stat().st_size > 0:
        _check_migrated(database)
        return
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=".db", dir=database.parent)
    os.close(fd)
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        SqlAlchemyStore(f"sqlite:///{tmp}", artifacts).engine.dispose()  # creates and migrates the schema
        os.chmod(tmp, default_file_mode())  # mkstemp's 0600 would keep colleagues' `mlflow ui` out
        os.replace(tmp, database)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _check_migrated(database: Path) -> None:
    """A one-line error when ``database`` holds a half-finished schema migration (it would break every run).

    Opened read-write (``mode=rw`` never creates a file): a writer killed mid-transaction leaves a hot journal that
    SQLite rolls back on the first read, which a read-only connection cannot do."""
    try:
        with contextlib.closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=rw", uri=True)) as conn:
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise NegbenchError(
            f"not a readable tracking database ({exc}); move it aside to start a new one "
            "(it holds MLflow's tracking only; results are kept elsewhere)",
            file=database,
        ) from None
    leftovers = sorted(name for name in tables if name.startswith("_alembic_tmp_"))
    if leftovers or (tables and "alembic_version" not in tables):
        what = f"leftover tables {', '.join(leftovers)}" if leftovers else "no alembic_version table"
        raise NegbenchError(
            f"an MLflow schema migration was interrupted ({what}); move the file aside to start a "
            "new tracking database (it holds MLflow's tracking only; results are kept elsewhere)",
            file=database,
        )
