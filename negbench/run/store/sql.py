"""The results store of workers: rows in the SQL database they already share, Parquet exported from it.

``negbench worker`` processes on several machines share one output directory, often on a network file
system, where the ``fcntl`` lock that serialises the Parquet store's read-modify-write is unreliable. So a
worker writes its result rows and per-query scores to two tables of the database that holds its claims
(and Optuna studies), in one transaction each (replace by ``run_id``: delete, then insert), and
``results.parquet`` / ``per_query.parquet`` are exports of those tables: rewritten whole, atomically, after
every append and when the worker ends. The database is the truth; the files are what reports, ``compare``
and MLflow read. A row is kept as JSON text, so the tables need no migration when a metric column is added.

Rows a single-machine ``negbench run`` wrote to the Parquet store of the same directory earlier are kept in
the export (a database row with the same ``run_id`` wins) and count as finished.
"""

from __future__ import annotations

import json
import time
from typing import Any

import polars as pl
import sqlalchemy as sa

from negbench.run.claims import retry_schema_race
from negbench.run.store.base import PER_QUERY_FILE, PER_QUERY_SCHEMA, StoreFiles, locked, write_parquet_atomic
from negbench.run.store.row import ResultRow

__all__ = ["SqlResultStore"]

metadata = sa.MetaData()
rows_table = sa.Table(
    "negbench_results",
    metadata,
    sa.Column("store", sa.String(256), primary_key=True),  # the suite: one database may serve several
    sa.Column("run_id", sa.String(128), primary_key=True),
    sa.Column("status", sa.String(256), nullable=False),
    sa.Column("row", sa.Text, nullable=False),  # JSON object: the result row
    sa.Column("written_at", sa.Float, nullable=False),
)
per_query_table = sa.Table(
    "negbench_per_query",
    metadata,
    sa.Column("store", sa.String(256), primary_key=True),
    sa.Column("run_id", sa.String(128), primary_key=True),
    sa.Column("scores", sa.Text, nullable=False),  # JSON: {metric: {query_id: score}}
)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows as one frame, each column typed as the file store types it (row by row, relaxed)."""
    if not rows:
        return pl.DataFrame()
    return pl.concat([pl.DataFrame([row]) for row in rows], how="diagonal_relaxed")


class SqlResultStore(StoreFiles):
    """The results of one output directory, kept in a SQL database (``url``) under the key ``store``."""

    def __init__(self, directory, url: str, *, store: str) -> None:
        super().__init__(directory)
        self.url = url
        self.store = store
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        retry_schema_race(lambda: metadata.create_all(self.engine, checkfirst=True))

    # ------------------------------------------------------------------------------ database
    def append(
        self,
        row: ResultRow | dict[str, Any],
        per_query: dict[str, dict[str, float]] | None = None,
        negatives: dict[str, list[str]] | None = None,
    ) -> None:
        """Add (or replace, by ``run_id``) one row and its per-query scores in one transaction; export. A run's
        sampled negatives go to their own Parquet file first (one writer per run_id: no shared file)."""
        row = row.record() if isinstance(row, ResultRow) else row
        run_id = str(row["run_id"])
        self.write_negatives(run_id, negatives)
        key = (rows_table.c.store == self.store) & (rows_table.c.run_id == run_id)
        with self.engine.begin() as conn:
            conn.execute(sa.delete(rows_table).where(key))
            conn.execute(
                sa.insert(rows_table).values(
                    store=self.store,
                    run_id=run_id,
                    status=str(row.get("status")),
                    written_at=time.time(),
                    row=json.dumps(row, default=_json_default),
                )
            )
            if per_query:
                conn.execute(
                    sa.delete(per_query_table).where(
                        (per_query_table.c.store == self.store) & (per_query_table.c.run_id == run_id)
                    )
                )
                scores = {m: {str(q): float(s) for q, s in qs.items()} for m, qs in per_query.items()}
                conn.execute(
                    sa.insert(per_query_table).values(store=self.store, run_id=run_id, scores=json.dumps(scores))
                )
        self.export()

    def db_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            found = (
                conn.execute(
                    sa.select(rows_table.c.row)
                    .where(rows_table.c.store == self.store)
                    .order_by(rows_table.c.written_at, rows_table.c.run_id)
                )
                .scalars()
                .all()
            )
        return [json.loads(text) for text in found]

    def db_per_query(self) -> pl.DataFrame:
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(per_query_table.c.run_id, per_query_table.c.scores)
                .where(per_query_table.c.store == self.store)
                .order_by(per_query_table.c.run_id)
            ).all()
        records = [
            {"run_id": run_id, "metric": metric, "query_id": qid, "score": score}
            for run_id, text in found
            for metric, scores in json.loads(text).items()
            for qid, score in scores.items()
        ]
        return pl.DataFrame(records, schema=PER_QUERY_SCHEMA)

    # ------------------------------------------------------------------------------ reads
    def rows(self) -> pl.DataFrame:
        """The database's rows, and the Parquet store's rows the database does not have (an earlier run's)."""
        db = _frame(self.db_rows())
        old = self.file_rows()
        if not old.is_empty() and not db.is_empty():
            old = old.filter(~pl.col("run_id").is_in(db["run_id"].to_list()))
        if old.is_empty():
            return db
        return pl.concat([old, db], how="diagonal_relaxed") if not db.is_empty() else old

    def per_query(self) -> pl.DataFrame:
        db = self.db_per_query()
        old = self.file_per_query()
        if not old.is_empty():
            old = old.filter(~pl.col("run_id").is_in(db["run_id"].unique().to_list()))
            if not old.is_empty():
                return pl.concat([old.cast(PER_QUERY_SCHEMA), db]) if not db.is_empty() else old
        return db

    def finished_ids(self) -> set[str]:
        with self.engine.connect() as conn:
            ids = set(
                conn.execute(
                    sa.select(rows_table.c.run_id).where(
                        (rows_table.c.store == self.store) & (rows_table.c.status == "ok")
                    )
                ).scalars()
            )
            replaced = set(
                conn.execute(sa.select(rows_table.c.run_id).where(rows_table.c.store == self.store)).scalars()
            )
        old = self.file_rows()
        if not old.is_empty():  # an earlier single-machine run's finished rows, unless the database has them
            ids |= set(old.filter(pl.col("status") == "ok")["run_id"].to_list()) - replaced
        return ids

    # ------------------------------------------------------------------------------ export
    def export(self) -> None:
        """Rewrite ``results.parquet`` and ``per_query.parquet`` from the database (atomically, under the
        directory's file lock where the file system honours it)."""
        with locked(self.directory):
            rows = self.rows()
            if rows.is_empty():
                return
            per_query = self.per_query()
            if not per_query.is_empty() or (self.directory / PER_QUERY_FILE).is_file():
                write_parquet_atomic(per_query, self.per_query_path)
            write_parquet_atomic(rows, self.results_path)

    def flush(self) -> None:
        self.export()
