"""The one table model: markdown, HTML and the terminal show the same columns, rows and cells."""

from __future__ import annotations

import re

import polars as pl

from negbench.report.html import render_html
from negbench.report.leaderboard import leaderboard_tables, plain_cell
from negbench.report.markdown import leaderboard_markdown
from negbench.report.stats import significance
from negbench.report.table import escape_md
from negbench.report.terminal import rich_table
from negbench.testing.results import synthetic_frames, synthetic_rows
from tests.report.test_report import cells, rich_text


def _board():
    rows, per_query = synthetic_frames(synthetic_rows({"in-batch": 0.0, "bm25": 0.06, "none": -0.05}, n_queries=40))
    rows = rows.with_columns(
        pl.when(pl.col("strategy") == "bm25")
        .then(pl.lit("batch_size 16 (suite: 32)"))
        .otherwise(pl.lit("equal"))
        .alias("budget")
    )
    return rows, per_query


def test_every_renderer_shows_the_models_columns_and_rows_in_its_order() -> None:
    rows, per_query = _board()
    metrics = [c for c in rows.columns if "@" in c]
    sig = significance(rows, per_query, "in-batch", metrics, 0.05)
    (table,) = leaderboard_tables(rows, sig, "in-batch", metrics[0])
    assert [v.name for v in table.views] == ["primary", "secondary", "costs", "memory"]
    headers = [c.header for c in table.columns]
    assert "budget" in headers and "Δ vs baseline [95% CI]" in headers and "detectable Δ" in headers
    labels = [r.label for r in table.rows]

    md = leaderboard_markdown(rows, "t", per_query)
    page = render_html(rows, per_query, generated="x")
    md_tables = [block.splitlines() for block in md.split("\n\n") if block.startswith("| ")]
    html_tables = re.findall(r"<table class=\"sortable\"><thead>(.*?)</table>", page)
    for view, md_lines, html_table in zip(table.views, md_tables, html_tables, strict=False):
        view_heads = [c.header for c in view.columns]
        assert cells(md_lines[0]) == [escape_md(h) for h in view_heads]
        md_rows = [cells(line) for line in md_lines[2:]]
        assert [r[0].removesuffix(" (baseline)") for r in md_rows] == labels
        for row, md_row in zip(table.rows, md_rows, strict=True):
            assert md_row == [escape_md(plain_cell(row, c)) if c.is_text else plain_cell(row, c) for c in view.columns]
        html_heads = re.findall(r'<th scope="col"[^>]*><button type="button">([^<]*)</button>', html_table)
        assert html_heads == view_heads
        assert re.findall(r'<tr><td class="text" data-sort="([^"]*)">', html_table) == labels

    text = rich_text(rich_table(rows))  # no per-query scores here: no Δ column, no marks
    (plain,) = leaderboard_tables(rows)
    assert "Δ vs baseline [95% CI]" not in [c.header for c in plain.columns]
    head = next(line for line in text.splitlines() if " strategy " in line)
    assert [h.strip() for h in head.strip("┃│ ").split("┃")] == ["dataset", "model", *[c.header for c in plain.columns]]
    positions = [text.index(f" {label} ") for label in labels]
    assert positions == sorted(positions)
    budget = next(r for r in table.rows if r.label == "bm25")
    assert plain_cell(budget, next(c for c in table.columns if c.header == "budget")) in text
