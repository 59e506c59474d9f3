"""What every rendering of a store starts from (markdown, HTML, a figures block): its rows labelled, the primary
metric, the tests against the baseline and the leaderboard tables, built once the same way for all of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import polars as pl

from negbench.errors import DataError
from negbench.report.leaderboard import LeaderboardTable, leaderboard_tables
from negbench.report.stats import declared_tests, resolve_primary, significance, with_config_labels
from negbench.report.table import metric_columns

__all__ = ["Boards", "boards"]


@dataclass(frozen=True)
class Boards:
    """What every rendering of a store (markdown, HTML, a figures block) starts from: its rows with display labels,
    metric columns, the primary metric, the tests against the baseline and one :class:`LeaderboardTable` per
    dataset × model."""

    rows: pl.DataFrame
    metrics: list[str]
    primary: str | None
    sig: dict
    tables: list[LeaderboardTable]


def boards(
    rows: pl.DataFrame,
    per_query: pl.DataFrame | None,
    baseline: str = "in-batch",
    alpha: float = 0.05,
    primary_metric: str | None = None,
    comparisons: Sequence[tuple[str, str]] = (),
) -> Boards:
    """The :class:`Boards` of a store's ``rows`` and per-query scores (None: no tests, no Δ); ``primary_metric`` as
    :func:`negbench.report.stats.resolve_primary` takes it; ``comparisons`` the suite's declared ``(better, worse)``
    pairs, tested on each board (:func:`negbench.report.stats.declared_tests`)."""
    if per_query is not None and per_query.is_empty():
        per_query = None
    labelled = with_config_labels(rows)
    metrics = metric_columns(rows)
    if primary_metric is not None and metrics and primary_metric not in metrics:  # never a silent fallback
        raise DataError(f"primary metric {primary_metric!r} is not a metric of these results ({', '.join(metrics)})")
    primary = resolve_primary(metrics, primary_metric)
    sig = significance(labelled, per_query, baseline, metrics, alpha, primary) if per_query is not None else {}
    tested = per_query is not None and primary is not None
    tables = leaderboard_tables(labelled, sig, baseline, primary if tested else None, primary=primary, alpha=alpha)
    declared = declared_tests(labelled, per_query, comparisons, primary, alpha)
    tables = [replace(t, declared=tuple(declared.get((t.dataset, t.model), ()))) for t in tables]
    return Boards(labelled, metrics, primary, sig, tables)
