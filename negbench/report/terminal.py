"""The leaderboard as rich tables for the terminal: the views of :mod:`negbench.report.leaderboard`."""

from __future__ import annotations

import polars as pl
from rich.console import Group
from rich.table import Table
from rich.text import Text

from negbench.report.leaderboard import LeaderboardTable, board_views, leaderboard_tables, plain_cell
from negbench.report.stats import resolve_primary
from negbench.report.table import cost_columns, has_budget_changes, metric_columns

__all__ = ["rich_table", "rich_tables"]


def rich_table(
    rows: pl.DataFrame,
    title: str = "negbench",
    baseline: str = "in-batch",
    *,
    view: str = "primary",
    primary: str | None = None,
) -> Table:
    """One view of the leaderboard (default: the primary metric), a row per configuration after the dataset and
    the model: the columns of :func:`negbench.report.leaderboard.leaderboard_tables`."""
    return _table(leaderboard_tables(rows, baseline=baseline, primary=primary), rows, title, view, primary)


def rich_tables(
    rows: pl.DataFrame, title: str = "negbench", baseline: str = "in-batch", *, primary: str | None = None
) -> Group:
    """Every view of the leaderboard, one rich table each (primary, secondary, costs, memory)."""
    boards = leaderboard_tables(rows, baseline=baseline, primary=primary)
    names = [v.name for v in boards[0].views] if boards else ["primary"]
    titles = [title if i == 0 else f"{title} · {name}" for i, name in enumerate(names)]
    return Group(*(_table(boards, rows, t, name, primary) for t, name in zip(titles, names, strict=True)))


def _table(boards: list[LeaderboardTable], rows: pl.DataFrame, title: str, view: str, primary: str | None) -> Table:
    table = Table(title=Text(title))
    found = boards[0].view(view) if boards else None
    if found is not None:
        columns = found.columns
    else:
        metrics = metric_columns(rows)
        views = board_views(
            metrics,
            resolve_primary(metrics, primary),
            cost_columns(rows),
            tested=False,
            show_budget=has_budget_changes(rows),
            show_spread=False,
            show_status=False,
        )
        columns = next((v.columns for v in views if v.name == view), views[0].columns)
    for head in ("dataset", "model"):
        table.add_column(head, justify="left")
    for col in columns:
        table.add_column(col.header, justify="left" if col.is_text else "right")
    for board in boards:
        cols = (board.view(view) or board.views[0]).columns
        for row in board.rows:
            cells = [Text(plain_cell(row, c)) if c.is_text else plain_cell(row, c) for c in cols]
            table.add_row(Text(board.dataset), Text(board.model), *cells)
    return table
