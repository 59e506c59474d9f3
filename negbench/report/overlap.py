"""Overlap between strategies: how alike are the negatives two mining strategies sample?

For each dataset × model (one seed), the mean over training examples of the Jaccard overlap
``|A ∩ B| / |A ∪ B|`` of the two strategies' epoch-0 sampled negatives (the negatives store of
:class:`negbench.run.store.parquet.ResultStore`). Near 1: the strategies are the same in practice, whatever their names;
near 0: they train on different negatives. In-batch-only strategies sample none and do not appear.
"""

from __future__ import annotations

import polars as pl

__all__ = ["EXAMPLE", "OVERLAP_COLUMNS", "negative_overlap"]

EXAMPLE = ["dataset", "model", "query_id", "positive_id"]
OVERLAP_COLUMNS = {
    "dataset": pl.String,
    "model": pl.String,
    "strategy_a": pl.String,
    "strategy_b": pl.String,
    "jaccard": pl.Float64,
    "examples": pl.UInt32,
}


def negative_overlap(rows: pl.DataFrame, negatives: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """Mean Jaccard overlap of sampled negatives for every ordered pair of strategies (diagonal included).

    ``rows`` are result rows (``run_id``, ``dataset``, ``model``, ``strategy``, ``seed``, ``status``, and
    ``created_at`` if several runs share a strategy: the newest counts); ``negatives`` is the long format
    (``run_id``, ``query_id``, ``positive_id``, ``doc_id``). Examples are (query, positive) pairs; a pair is
    averaged over the examples both strategies have. Columns: ``dataset``, ``model``, ``strategy_a``,
    ``strategy_b``, ``jaccard``, ``examples``; pivot on ``strategy_b`` for a matrix.
    """
    if rows.is_empty() or negatives.is_empty():
        return pl.DataFrame(schema=OVERLAP_COLUMNS)
    runs = rows.filter((pl.col("status") == "ok") & (pl.col("seed") == seed))
    if "created_at" in runs.columns:
        runs = runs.sort("created_at")
    runs = runs.unique(["dataset", "model", "strategy"], keep="last").select("run_id", "dataset", "model", "strategy")
    sets = (
        negatives.join(runs, on="run_id").group_by([*EXAMPLE, "strategy"]).agg(pl.col("doc_id").unique().alias("docs"))
    )
    pairs = sets.join(sets, on=EXAMPLE, suffix="_b").rename({"strategy": "strategy_a", "docs": "docs_a"})
    scored = pairs.with_columns(
        (
            pl.col("docs_a").list.set_intersection("docs_b").list.len()
            / pl.col("docs_a").list.set_union("docs_b").list.len()
        ).alias("jaccard")
    )
    return (
        scored.group_by(["dataset", "model", "strategy_a", "strategy_b"])
        .agg(pl.col("jaccard").mean(), pl.len().cast(pl.UInt32).alias("examples"))
        .sort(["dataset", "model", "strategy_a", "strategy_b"])
        .select(list(OVERLAP_COLUMNS))
    )
