"""What every result store shares: the output directory's files, their lock, and the store interface.

``<output>/results.parquet`` holds one row per (dataset, model, strategy, seed, params);
``<output>/per_query.parquet`` holds the per-query score of every metric of every row (long format,
keyed by ``run_id``), which significance tests need; ``<output>/negatives/<run_id>.parquet`` holds each row's
epoch-0 sampled negatives (``run_id``, ``query_id``, ``positive_id``, ``doc_id``; mining strategies only), which
:func:`negbench.report.overlap.negative_overlap` compares across strategies (one file per run: a row's negatives can
be large, and no append rewrites another run's); ``<output>/steps.parquet`` holds the per-step
records of final runs (hardness probe and dev learning curve, :mod:`negbench.core.probes.curves`; long format, keyed by
``run_id``). A write goes to a temporary file that replaces
the store with ``os.replace`` under a lock, so a crash never leaves a half-written row or file.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from negbench import _phases as phases
from negbench._io import atomic_write
from negbench.core.probes.curves import STEPS_SCHEMA, StepRecord
from negbench.errors import DataError
from negbench.run.store.row import ResultRow

__all__ = [
    "NEGATIVES_SCHEMA",
    "PER_QUERY_FILE",
    "PER_QUERY_SCHEMA",
    "RESULTS_FILE",
    "SUITE_FILE",
    "RowStore",
    "StoreFiles",
    "locked",
    "read_parquet",
    "write_parquet_atomic",
]

RESULTS_FILE = "results.parquet"
SUITE_FILE = "suite.toml"  # the suite file a store was last run with, copied next to it (its report settings)
PER_QUERY_FILE = "per_query.parquet"
NEGATIVES_DIR = "negatives"
NEGATIVES_SCHEMA = {"run_id": pl.String, "query_id": pl.String, "positive_id": pl.String, "doc_id": pl.String}
STEPS_FILE = "steps.parquet"
PER_QUERY_SCHEMA = {"run_id": pl.String, "metric": pl.String, "query_id": pl.String, "score": pl.Float64}


class RowStore(Protocol):
    """The interface the runner writes through and the report reads through (Parquet or SQL behind it)."""

    results_path: Path

    def rows(self) -> pl.DataFrame: ...
    def per_query(self) -> pl.DataFrame: ...
    def steps(self) -> pl.DataFrame: ...
    def negatives(self, run_ids: list[str] | None = None) -> pl.DataFrame: ...
    def finished_ids(self) -> set[str]: ...
    def append(
        self,
        row: ResultRow | dict[str, Any],
        per_query: dict[str, dict[str, float]] | None = None,
        negatives: dict[str, list[str]] | None = None,
    ) -> None: ...
    def append_steps(self, run_id: str, records: Iterable[StepRecord]) -> None: ...
    def flush(self) -> None: ...


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with phases.phase("store"), (directory / ".results.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Replace ``path`` with ``frame`` (:func:`negbench._io.atomic_write`; temporaries end in ``.tmp``)."""
    atomic_write(path, frame.write_parquet, suffix=".tmp")


def read_parquet(path: Path) -> pl.DataFrame:
    try:  # one open file: polars may reopen a path between footer and pages, and another process can
        with Path(path).open("rb") as fh:  # replace the file in between (os.replace); a name is never a glob
            return pl.read_parquet(fh)
    except OSError as exc:
        raise DataError(f"cannot read the results file: {exc.strerror or exc}", file=path) from None
    except Exception as exc:
        raise DataError(f"not a readable Parquet results file: {exc}", file=path) from None


class StoreFiles:
    """The files of one output directory's store: results and per-query Parquet files (read), each run's sampled
    negatives and the per-step records (read and written), under the directory's lock."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @property
    def results_path(self) -> Path:
        return self.directory / RESULTS_FILE

    @property
    def per_query_path(self) -> Path:
        return self.directory / PER_QUERY_FILE

    def file_rows(self) -> pl.DataFrame:
        """The rows in ``results.parquet`` (empty when there is none)."""
        if not self.results_path.is_file():
            return pl.DataFrame()
        return read_parquet(self.results_path)

    def file_per_query(self) -> pl.DataFrame:
        """The scores in ``per_query.parquet`` (empty when there is none)."""
        if not self.per_query_path.is_file():
            return pl.DataFrame()
        return read_parquet(self.per_query_path)

    @property
    def negatives_dir(self) -> Path:
        return self.directory / NEGATIVES_DIR

    def negatives(self, run_ids: list[str] | None = None) -> pl.DataFrame:
        """Sampled negatives of the stored runs (or of ``run_ids``), long format; empty if none were stored."""
        if not self.negatives_dir.is_dir():
            return pl.DataFrame(schema=NEGATIVES_SCHEMA)
        paths = sorted(self.negatives_dir.glob("*.parquet"))
        if run_ids is not None:
            wanted = set(run_ids)
            paths = [p for p in paths if p.stem in wanted]
        frames = [read_parquet(p) for p in paths]
        return pl.concat(frames) if frames else pl.DataFrame(schema=NEGATIVES_SCHEMA)

    @property
    def steps_path(self) -> Path:
        return self.directory / STEPS_FILE

    def steps(self) -> pl.DataFrame:
        """Per-step records of every final run: run_id, kind, metric, step, examples, wall_s, value."""
        if not self.steps_path.is_file():
            return pl.DataFrame(schema=STEPS_SCHEMA)
        return read_parquet(self.steps_path)

    def append_steps(self, run_id: str, records: Iterable[StepRecord]) -> None:
        """Replace the per-step records of ``run_id`` with ``records``, atomically."""
        new = pl.DataFrame(
            [
                {
                    "run_id": run_id,
                    "kind": r.kind,
                    "metric": r.metric,
                    "step": int(r.step),
                    "examples": int(r.examples),
                    "wall_s": float(r.wall_s),
                    "value": float(r.value),
                }
                for r in records
            ],
            schema=STEPS_SCHEMA,
        )
        with locked(self.directory):
            old = self.steps()
            if new.is_empty() and run_id not in set(old["run_id"].to_list()):
                return
            write_parquet_atomic(pl.concat([old.filter(pl.col("run_id") != run_id), new]), self.steps_path)

    def write_negatives(self, run_id: str, negatives: dict[str, list[str]] | None) -> None:
        """``<output>/negatives/<run_id>.parquet`` (one file per run: a store-wide file would be rewritten in
        full on every append); removed when a rerun of ``run_id`` sampled none."""
        path = self.negatives_dir / f"{run_id}.parquet"
        if negatives:
            self.negatives_dir.mkdir(exist_ok=True)
            frame = pl.DataFrame({"run_id": [run_id] * len(negatives["doc_id"]), **negatives}, schema=NEGATIVES_SCHEMA)
            write_parquet_atomic(frame, path)
        else:
            path.unlink(missing_ok=True)
