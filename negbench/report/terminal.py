"""The leaderboard as a rich table for the terminal."""

from __future__ import annotations

import polars as pl
from rich.table import Table
from rich.text import Text

from negbench.report.table import (
    aggregate,
    cost_columns,
    fmt_batch,
    format_value,
    has_budget_changes,
    leaderboard_header,
    metric_columns,
)

__all__ = ["rich_table"]


def rich_table(rows: pl.DataFrame, title: str = "negbench") -> Table:
    """A terminal leaderboard: one row per configuration with metrics, data budget and costs."""
    table = Table(title=Text(title))
    metrics = metric_columns(rows)
    show_budget = has_budget_changes(rows)
    costs = cost_columns(rows)
    heads = ["dataset", "model", *leaderboard_header(metrics, costs, show_budget=show_budget)]
    for col in heads:
        left = col in {"dataset", "model", "strategy", "budget", "status"}
        table.add_column(col, justify="left" if left else "right")
    if rows.is_empty():
        return table
    for rec in aggregate(rows).iter_rows(named=True):
        table.add_row(
            Text(str(rec["dataset"])),
            Text(str(rec["model"])),
            Text(str(rec["label"])),
            str(rec.get("seeds") or 0),
            *[format_value(rec.get(m)) for m in metrics],
            format_value(rec.get("steps"), 0),
            format_value(rec.get("examples_seen"), 0),
            fmt_batch(rec),
            *([Text(str(rec.get("budget") or "–"))] if show_budget else []),
            *[format_value(rec.get(col), digits) for _, col, digits in costs],
            Text(str(rec.get("failed") or "ok")),
        )
    return table
