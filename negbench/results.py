"""Result rows and the Parquet results store (polars), written atomically.

``<output>/results.parquet`` holds one row per (dataset, model, strategy, seed, params);
``<output>/per_query.parquet`` holds the per-query score of every metric of every row (long format,
keyed by ``run_id``), which significance tests need; ``<output>/negatives/<run_id>.parquet`` holds each row's
epoch-0 sampled negatives (``run_id``, ``query_id``, ``positive_id``, ``doc_id``; mining strategies only), which
:func:`negbench.overlap.negative_overlap` compares across strategies (one file per run: a row's negatives can
be large, and no append rewrites another run's); ``<output>/steps.parquet`` holds the per-step
records of final runs (hardness probe and dev learning curve, :mod:`negbench.curves`; long format, keyed by
``run_id``). A write goes to a temporary file that replaces
the store with ``os.replace`` under a lock, so a crash never leaves a half-written row or file.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from negbench.curves import STEPS_SCHEMA, StepRecord
from negbench.errors import DataError

RESULTS_FILE = "results.parquet"
PER_QUERY_FILE = "per_query.parquet"
NEGATIVES_DIR = "negatives"
NEGATIVES_SCHEMA = {"run_id": pl.String, "query_id": pl.String, "positive_id": pl.String, "doc_id": pl.String}
STEPS_FILE = "steps.parquet"

# Columns every row has (metrics are added as columns named like "ndcg@10").
BASE_COLUMNS = [
    "run_id", "config_key", "suite", "dataset", "dataset_fingerprint", "model", "model_fingerprint", "strategy",
    "strategy_name", "params", "training", "seed", "trial", "dev_metric", "status", "error",
    # budget: the same examples per epoch in full batches, unless `budget` names a reason by design
    "steps", "examples_seen", "steps_per_epoch", "examples_per_epoch", "mean_batch_size", "min_batch_size",
    "max_batch_size", "budget",
    # costs, split the same way for every strategy; throughput from train_s alone
    "mine_s", "sample_s", "refresh_s", "train_s", "eval_s", "total_s", "train_examples_per_s",
    "train_peak_rss_mb", "eval_peak_rss_mb", "train_peak_gpu_mb", "eval_peak_gpu_mb", "peak_rss_mb", "peak_gpu_mb",
    # negative diagnostics; planted false negatives (a controlled experiment, see negbench.false_negatives)
    "neg_score_gap", "planted_fn_share", "planted_fn_inbatch_share", "planted_fn_rate", "planted_fn_kind",
    "planted_docs", "base_dataset_fingerprint",
    # training wall seconds (measurements excluded) to the first dev-curve point at 95 % of the run's *own* best
    # (not comparable across strategies: the report's time to target uses the best of all of them)
    "time_to_own_95_s",
    "device", "determinism", "versions", "config_hash", "code_revision",
    "git_rev", "created_at",
]


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".results.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def default_file_mode() -> int:
    """The mode ``open()`` gives a new file under this process's umask (``mkstemp`` alone gives 0600, which
    others on a shared cluster could not read)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write(frame: pl.DataFrame, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.write_parquet(tmp)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_parquet(path: Path) -> pl.DataFrame:
    try:  # one open file: polars may reopen a path between footer and pages, and another process can
        with Path(path).open("rb") as fh:  # replace the file in between (os.replace); a name is never a glob
            return pl.read_parquet(fh)
    except OSError as exc:
        raise DataError(f"cannot read the results file: {exc.strerror or exc}", file=path) from None
    except Exception as exc:
        raise DataError(f"not a readable Parquet results file: {exc}", file=path) from None


class ResultStore:
    """The results of one output directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @property
    def results_path(self) -> Path:
        return self.directory / RESULTS_FILE

    @property
    def per_query_path(self) -> Path:
        return self.directory / PER_QUERY_FILE

    def rows(self) -> pl.DataFrame:
        if not self.results_path.is_file():
            return pl.DataFrame()
        return read_parquet(self.results_path)

    def per_query(self) -> pl.DataFrame:
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
        new = pl.DataFrame([{"run_id": run_id, "kind": r.kind, "metric": r.metric, "step": int(r.step),
                             "examples": int(r.examples), "wall_s": float(r.wall_s), "value": float(r.value)}
                            for r in records], schema=STEPS_SCHEMA)
        with _locked(self.directory):
            old = self.steps()
            if new.is_empty() and run_id not in set(old["run_id"].to_list()):
                return
            _atomic_write(pl.concat([old.filter(pl.col("run_id") != run_id), new]), self.steps_path)

    def finished_ids(self) -> set[str]:
        rows = self.rows()
        if rows.is_empty():
            return set()
        return set(rows.filter(pl.col("status") == "ok")["run_id"].to_list())

    def write_negatives(self, run_id: str, negatives: dict[str, list[str]] | None) -> None:
        """``<output>/negatives/<run_id>.parquet`` (one file per run: a store-wide file would be rewritten in
        full on every append); removed when a rerun of ``run_id`` sampled none."""
        path = self.negatives_dir / f"{run_id}.parquet"
        if negatives:
            self.negatives_dir.mkdir(exist_ok=True)
            frame = pl.DataFrame({"run_id": [run_id] * len(negatives["doc_id"]), **negatives}, schema=NEGATIVES_SCHEMA)
            _atomic_write(frame, path)
        else:
            path.unlink(missing_ok=True)

    def flush(self) -> None:
        """Make the Parquet files current (they always are here; a database-backed store exports)."""

    def append(self, row: dict[str, Any], per_query: dict[str, dict[str, float]] | None = None,
               negatives: dict[str, list[str]] | None = None) -> None:
        """Add (or replace, by ``run_id``) one row, its per-query scores and its sampled negatives (columns
        ``query_id``, ``positive_id``, ``doc_id``), atomically; the row is written last."""
        with _locked(self.directory):
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
                pq_new = pl.DataFrame(records, schema={"run_id": pl.String, "metric": pl.String,
                                                       "query_id": pl.String, "score": pl.Float64})
                pq_frame = pl.concat([pq_old, pq_new]) if not pq_old.is_empty() else pq_new
                _atomic_write(pq_frame, self.per_query_path)
            _atomic_write(frame, self.results_path)
