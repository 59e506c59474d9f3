"""The board marks rows run on a subset and gives its share of test-only documents next to the full corpus's."""

from __future__ import annotations

import polars as pl

from negbench.report.html import render_html
from negbench.report.leaderboard import leaderboard_tables, plain_cell
from negbench.report.markdown import leaderboard_markdown
from negbench.testing.results import synthetic_frames, synthetic_rows
from tests.report.test_report import cells

SUBSET = "1,000 of 5,183 documents, 400 of 726 train, 81 of 81 dev and 46 of 300 test queries"


def _rows(subset: str | None) -> pl.DataFrame:
    rows, _ = synthetic_frames(synthetic_rows({"in-batch": 0.0, "bm25": 0.05}, seeds=(0, 1)))
    return rows.with_columns(
        pl.lit(subset, pl.String).alias("subset"),
        pl.lit(0.033 if subset else 0.0224).alias("test_only_share"),
        pl.lit(0.0224).alias("test_only_share_full"),
        pl.lit(2).alias("test_twins_dropped"),
    )


def test_board_marks_subset_rows_and_gives_both_shares() -> None:
    rows = _rows(SUBSET)
    (table,) = leaderboard_tables(rows)
    label = next(c for c in table.columns if c.kind == "label")
    assert all(plain_cell(r, label).endswith(" (subset)") for r in table.rows)
    note = (
        f"Rows marked (subset) ran on a subset of toy: {SUBSET}. Documents relevant only to test queries make "
        "3.3% of its evaluated corpus, 2.2% of the full corpus."
    )
    assert table.subset_notes() == [note]

    md = leaderboard_markdown(rows, "t")
    first = next(line for line in md.splitlines() if line.startswith("| ") and "strategy" not in line)
    assert cells(first)[0].endswith("(subset)")
    assert "Documents relevant only to test queries make 3.3% of its evaluated corpus, 2.2% of the full corpus." in md

    page = render_html(rows, None, generated="x")
    assert page.count('<span class="tag">subset</span>') == len(table.rows) * len(table.views)  # tagged in every view
    assert "3.3% of its evaluated corpus, 2.2% of the full corpus" in page


def test_rows_on_the_full_dataset_are_not_marked() -> None:
    for rows in (_rows(None), _rows(None).drop("subset", "test_only_share", "test_only_share_full")):
        (table,) = leaderboard_tables(rows)
        assert not any(r.subset for r in table.rows) and table.subset_notes() == []
        md = leaderboard_markdown(rows, "t")
        assert "(subset)" not in md and "Rows marked (subset)" not in md
        assert '<span class="tag">subset</span>' not in render_html(rows, None, generated="x")
