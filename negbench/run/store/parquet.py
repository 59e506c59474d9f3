"""The Parquet results store (polars): rows and per-query scores in the output directory's files, each
write atomic under the directory's lock (:mod:`negbench.run.store.base`)."""

from __future__ import annotations

from typing import Any

import polars as pl

from negbench.run.store.base import PER_QUERY_SCHEMA, StoreFiles, locked, write_parquet_atomic
from negbench.run.store.row import ResultRow

__all__ = ["ResultStore"]


class ResultStore(StoreFiles):
    """The results of one output directory, kept in its Parquet files."""

    def rows(self) -> pl.DataFrame:
        return self.file_rows()

    def per_query(self) -> pl.DataFrame:
        return self.file_per_query()

    def finished_ids(self) -> set[str]:
        rows = self.rows()
        if rows.is_empty():
            return set()
        return set(rows.filter(pl.col("status") == "ok")["run_id"].to_list())

    def flush(self) -> None:
        """Make the Parquet files current (they always are here; a database-backed store exports)."""

    def append(
        self,
        row: ResultRow | dict[str, Any],
        per_query: dict[str, dict[str, float]] | None = None,
        negatives: dict[str, list[str]] | None = None,
    ) -> None:
        """Add (or replace, by ``run_id``) one row, its per-query scores and its sampled negatives (columns
        ``query_id``, ``positive_id``, ``doc_id``), atomically; the row is written last."""
        row = row.record() if isinstance(row, ResultRow) else row
        with locked(self.directory):
            self.write_negatives(str(row["run_id"]), negatives)
            new = pl.DataFrame([row])
            old = self.rows()
            if not old.is_empty():
                old = old.filter(pl.col("run_id") != row["run_id"])
            frame = pl.concat([old, new], how="diagonal_relaxed") if not old.is_empty() else new
            if per_query:
                records = [
                    {"run_id": row["run_id"], "metric": metric, "query_id": qid, "score": float(score)}
                    for metric, scores in per_query.items()
                    for qid, score in scores.items()
                ]
                pq_old = self.per_query()
                if not pq_old.is_empty():
                    pq_old = pq_old.filter(pl.col("run_id") != row["run_id"])
                pq_new = pl.DataFrame(records, schema=PER_QUERY_SCHEMA)
                pq_frame = pl.concat([pq_old, pq_new]) if not pq_old.is_empty() else pq_new
                write_parquet_atomic(pq_frame, self.per_query_path)
            write_parquet_atomic(frame, self.results_path)
