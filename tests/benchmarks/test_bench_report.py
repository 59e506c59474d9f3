"""Report generation on a synthetic store: 2 datasets × 8 strategies × 3 seeds × 300 queries × 4 metrics."""

from __future__ import annotations

import pytest

from negbench.report.html import render_html
from negbench.report.markdown import leaderboard_markdown
from negbench.report.stats import significance
from negbench.testing.results import synthetic_frames, synthetic_rows

STRATEGIES = {f"s{i}": 0.01 * i for i in range(7)} | {"in-batch": 0.0}
METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100")


@pytest.fixture(scope="module")
def store_frames():
    return synthetic_frames(synthetic_rows(STRATEGIES, datasets=("a", "b"), n_queries=300, metrics=METRICS))


def test_significance(benchmark, store_frames) -> None:
    rows, per_query = store_frames
    sig = benchmark(significance, rows, per_query, "in-batch", list(METRICS))
    assert len(sig) == 2 * 7 * len(METRICS)


def test_markdown_leaderboard(benchmark, store_frames) -> None:
    rows, per_query = store_frames
    assert "▲" in benchmark(leaderboard_markdown, rows, "bench", per_query)


def test_html_report(benchmark, store_frames) -> None:
    rows, per_query = store_frames
    html = benchmark(render_html, rows, per_query)
    assert html.count('<h3 class="view">ndcg@10 (primary)</h3>') == 2  # one board per dataset, four tables each
