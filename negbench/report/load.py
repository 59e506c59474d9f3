"""The one way the report stage reads a results store: rows and per-query scores checked for shape and types,
per-step records and sampled-negative overlap when present. A missing or malformed store is a one-line
:class:`~negbench.errors.DataError` naming the file."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from negbench.errors import DataError
from negbench.report.diagnostics import STEPS_COLUMNS
from negbench.report.overlap import negative_overlap
from negbench.report.table import metric_columns
from negbench.run.store.base import STEPS_FILE
from negbench.run.store.parquet import ResultStore
from negbench.run.store.row import NUMERIC_COLUMNS  # the row's columns, declared once

__all__ = ["load_diagnostics", "load_overlap", "load_steps", "load_store"]


def load_store(
    results_dir: str | Path, required: tuple[str, ...] = ("dataset", "model", "strategy", "status")
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows, per-query scores) of a results directory; a missing or malformed store (one without the
    ``required`` columns, or with metric or cost columns that are not numbers) is a DataError."""
    directory = Path(results_dir)
    store = ResultStore(directory)
    if not directory.is_dir():
        raise DataError("results directory not found", file=directory)
    if not store.results_path.is_file():
        raise DataError("no results.parquet in this directory", file=directory)
    rows = store.rows()
    missing = [c for c in required if c not in rows.columns]
    if missing:
        raise DataError(
            f"not a negbench results store: missing column(s) {', '.join(missing)}", file=store.results_path
        )
    numeric = [*metric_columns(rows), *(c for c in NUMERIC_COLUMNS if c in rows.columns)]
    for col in numeric:
        dtype = rows.schema[col]
        if not (dtype.is_numeric() or dtype == pl.Null):
            raise DataError(f"column {col!r} holds {dtype}, not numbers", file=store.results_path)
    per_query = store.per_query()
    if not per_query.is_empty() and "score" in per_query.columns and not per_query.schema["score"].is_numeric():
        raise DataError(f"column 'score' holds {per_query.schema['score']}, not numbers", file=store.per_query_path)
    if not per_query.is_empty():
        lacking = [c for c in ("run_id", "metric", "query_id", "score") if c not in per_query.columns]
        if lacking:
            raise DataError(
                f"malformed per-query scores: missing column(s) {', '.join(lacking)}",
                file=store.per_query_path,
            )
    return rows, per_query


def load_diagnostics(results_dir: str | Path, rows: pl.DataFrame) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """(steps, overlap) of a results directory, each None when absent (see :mod:`negbench.report.diagnostics`)."""
    return load_steps(results_dir), load_overlap(results_dir, rows)


def load_steps(results_dir: str | Path) -> pl.DataFrame | None:
    """``<results_dir>/steps.parquet`` (per-step records of final runs), or None when it does not exist."""
    path = Path(results_dir) / STEPS_FILE
    if not path.is_file():
        return None
    try:
        steps = pl.read_parquet(path)
    except Exception as exc:
        raise DataError(f"unreadable steps.parquet: {exc}", file=path) from exc
    missing = [c for c in STEPS_COLUMNS if c not in steps.columns]
    if missing:
        raise DataError(f"malformed steps.parquet: missing column(s) {', '.join(missing)}", file=path)
    return steps


def load_overlap(results_dir: str | Path, rows: pl.DataFrame) -> pl.DataFrame | None:
    """The overlap frame (dataset, model, strategy_a, strategy_b, jaccard) of a store whose runs stored their
    sampled negatives (``negatives/``); None when none did (section omitted)."""
    negatives = ResultStore(results_dir).negatives()
    if negatives.is_empty():
        return None
    overlap = negative_overlap(rows, negatives)
    return overlap if not overlap.is_empty() else None
