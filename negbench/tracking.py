"""MLflow tracking: one parent run per suite, a child per job, a child per trial and per final seed.

The default tracking store is a SQLite file in the output directory; an ``http(s)://`` URI in the suite or
``MLFLOW_TRACKING_URI`` takes precedence. A run ends FAILED when its block raises, KILLED on SIGTERM or
SIGINT; runs left RUNNING by a process killed with SIGKILL are marked KILLED when the suite next starts.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from negbench.config import TrackingConfig


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM so open runs are closed as KILLED."""


def _on_sigterm(signum, frame):  # pragma: no cover - exercised through a subprocess test
    raise Terminated(f"signal {signum}")


class Tracker:
    """Thin wrapper over the MLflow client; every method is a no-op when tracking is disabled."""

    def __init__(self, cfg: TrackingConfig, output_dir: Path, experiment: str) -> None:
        self.enabled = cfg.enabled
        self.output_dir = Path(output_dir)
        self.uri = cfg.uri or os.environ.get("MLFLOW_TRACKING_URI") or \
            f"sqlite:///{(self.output_dir / 'mlflow.db').resolve()}"
        self.experiment_name = cfg.experiment or experiment
        self.client = None
        self.experiment_id: str | None = None
        self._stack: list[str] = []

    def start(self, close_stale: bool = True) -> None:
        if not self.enabled:
            return
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("DO_NOT_TRACK", "true")
        import logging

        from mlflow.tracking import MlflowClient  # mlflow configures its loggers on import: quiet them after

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        logging.getLogger("alembic").setLevel(logging.ERROR)

        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.uri)
        experiment = self.client.get_experiment_by_name(self.experiment_name)
        if experiment is None:
            artifacts = None if self.uri.startswith("http") else (self.output_dir / "mlartifacts").resolve().as_uri()
            self.experiment_id = self.client.create_experiment(self.experiment_name, artifact_location=artifacts)
        else:
            self.experiment_id = experiment.experiment_id
        if close_stale:
            self.close_stale()
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):  # negbench.interrupts may handle it
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

    @contextmanager
    def run(self, name: str, *, tags: dict[str, Any] | None = None,
            params: dict[str, Any] | None = None) -> Iterator[str | None]:
        """A nested run under the innermost open one; ends FINISHED, FAILED or KILLED."""
        if self.client is None:
            yield None
            return
        all_tags = {k: str(v) for k, v in (tags or {}).items()}
        if self._stack:
            all_tags["mlflow.parentRunId"] = self._stack[-1]
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
        """Per-step records (:class:`negbench.curves.StepRecord`) as step metrics, in one batch: hardness
        metrics as ``hardness_<metric>``, dev points under their own name (``dev_ndcg_at_10``)."""
        if self.client is None or run_id is None or not records:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric((r.metric if r.kind == "dev" else f"{r.kind}_{r.metric}").replace("@", "_at_"),
                          float(r.value), now, int(r.step)) for r in records if math.isfinite(r.value)]
        for start in range(0, len(metrics), 1000):  # MLflow's batch limit
            self.client.log_batch(run_id, metrics=metrics[start:start + 1000])

    def set_tags(self, run_id: str | None, tags: dict[str, Any]) -> None:
        if self.client is None or run_id is None:
            return
        for key, value in tags.items():
            self.client.set_tag(run_id, key, str(value))

    def log_artifact(self, run_id: str | None, path: Path) -> None:
        if self.client is None or run_id is None or not Path(path).is_file():
            return
        self.client.log_artifact(run_id, str(path))
