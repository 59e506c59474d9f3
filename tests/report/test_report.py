"""Leaderboards (markdown, rich, HTML) and compare: configurations, Δ vs baseline, data budget and costs."""

from __future__ import annotations

import io
import json
import re

import polars as pl
from rich.console import Console

from negbench.report.compare import compare_stores
from negbench.report.html import render_html
from negbench.report.markdown import leaderboard_markdown
from negbench.report.stats import BETTER
from negbench.report.terminal import rich_table, rich_tables
from negbench.run.store.parquet import ResultStore
from negbench.testing.results import synthetic_frames, synthetic_rows, synthetic_store
from tests.report.test_stats import two_config_frames

XSS = "<img src=x onerror=alert(1)>|x"


def table_line(md: str, prefix: str) -> str:
    return next(line for line in md.splitlines() if line.startswith(prefix))


def cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def view_table(md: str, title: str) -> tuple[list[str], dict[str, list[str]]]:
    """(header, {first cell without tags: cells}) of the first markdown table under ``### title``."""
    block = md.split(f"### {title}\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    rows = [cells(line) for line in block[2:]]
    return cells(block[0]), {r[0].split(" (")[0]: r for r in rows}


def rich_text(table) -> str:
    console = Console(width=400, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


def test_markdown_shows_each_configuration_as_its_own_row() -> None:
    rows, per_query = two_config_frames(new_schema=True)
    md = leaderboard_markdown(rows, "t", per_query)
    primary = md.split("### ndcg@10 (primary)", 1)[1].split("###", 1)[0]
    in_batch = [line for line in primary.splitlines() if line.startswith("| in-batch \\[cfg ")]
    assert len(in_batch) == 2
    assert sum("(baseline)" in line for line in in_batch) == 1
    assert "2 configurations of in-batch" in md and "never pooled" in md
    assert "the newest (by run date) of the 2 configurations" in md
    header = cells(table_line(md, "| strategy "))
    older = cells(next(line for line in in_batch if "(baseline)" not in line))
    delta = header.index("Δ vs baseline \\[95% CI\\]")
    assert older[header.index("seeds")] == "1" and older[delta].startswith("-")
    text = rich_text(rich_table(rows))
    assert text.count("in-batch [cfg ") == 2  # rich markup does not swallow the bracketed key


def test_markdown_delta_vs_baseline_column() -> None:
    rows, per_query = synthetic_frames(synthetic_rows({"in-batch": 0.0, "bm25": 0.06}, n_queries=60, noise=0.03))
    md = leaderboard_markdown(rows, "t", per_query)
    header, body = view_table(md, "ndcg@10 (primary)")
    delta = body["bm25"][header.index("Δ vs baseline \\[95% CI\\]")]
    mean, low, high = map(float, re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", delta).groups())
    assert 0 < low <= mean <= high and mean == round(mean, 4)
    assert body["bm25"][header.index("Holm p")].startswith(BETTER)  # three seeds each: a seed-aware test
    assert body["in-batch"][header.index("Δ vs baseline \\[95% CI\\]")] == "–"
    assert "variance-components" in md
    assert "Δ vs baseline" not in leaderboard_markdown(rows, "t")  # no per-query scores, no Δ


def budget_rows() -> tuple[pl.DataFrame, pl.DataFrame]:
    """A store of the new schema: a big-batch strategy with a declared budget change, GPU memory."""
    pairs = synthetic_rows({"in-batch": 0.0, "big": 0.02}, seeds=(0, 1), n_queries=30)
    for row, _ in pairs:
        big = row["strategy"] == "big"
        row.update(
            config_key=f"key-{row['strategy']}",
            steps=8 if big else 32,
            examples_seen=1024,
            mean_batch_size=128.0 if big else 31.5,
            min_batch_size=128 if big else 16,
            max_batch_size=128 if big else 32,
            steps_per_epoch=8 if big else 32,
            examples_per_epoch=1024,
            budget=f"batch_size 128 (large batches by design) {XSS}" if big else "equal",
            refresh_s=0.0,
            total_s=14.5,
            train_peak_rss_mb=700.0,
            eval_peak_rss_mb=650.0,
            train_peak_gpu_mb=2048.0 if big else 1024.0,
            eval_peak_gpu_mb=512.0,
            peak_gpu_mb=2048.0,
        )
    return synthetic_frames(pairs)


def test_leaderboards_show_budget_and_costs() -> None:
    rows, per_query = budget_rows()
    md = leaderboard_markdown(rows, "t", per_query)
    header, body = view_table(md, "ndcg@10 (primary)")
    assert "budget" in header and "steps" not in header  # the primary table stays narrow
    assert body["big"][header.index("budget")].startswith("batch\\_size 128")
    assert body["in-batch"][header.index("budget")] == "equal"
    costs, spent = view_table(md, "Costs")
    memory, held = view_table(md, "Memory")
    for col in ("steps", "examples", "batch mean/min", "train ex/s", "mine s", "train s", "total s"):
        assert col in costs, col
    for col in ("train RSS MB", "eval RSS MB", "train GPU MB", "eval GPU MB"):
        assert col in memory, col
    big, base = spent["big"], spent["in-batch"]
    assert big[costs.index("batch mean/min")] == "128.0/128" and base[costs.index("batch mean/min")] == "31.5/16"
    assert big[costs.index("steps")] == "8" and big[costs.index("examples")] == "1024"
    assert held["big"][memory.index("train GPU MB")] == "2048" and held["big"][memory.index("eval RSS MB")] == "650"
    assert XSS not in md and "&lt;img src=x onerror=alert(1)&gt;\\|x" in md
    for block in md.split("\n\n"):
        if block.startswith("|"):
            assert len({len(cells(line)) for line in block.splitlines()}) == 1

    text = rich_text(rich_tables(rows))
    assert "128.0/128" in text and "train GPU MB" in text and "batch_size 128 (large batches" in text

    page = render_html(rows, per_query, generated="x")
    assert XSS not in page and "&lt;img src=x onerror=alert(1)&gt;|x" in page
    for col in (
        "steps",
        "examples",
        "batch mean/min",
        "budget",
        "total s",
        "train RSS MB",
        "eval GPU MB",
        "Δ vs baseline [95% CI]",
    ):
        assert f'<button type="button">{col}</button>' in page, col
    assert "training peak GPU memory (MB)" in page and "128.0/128" in page


def test_old_store_without_new_columns_renders_dashes(tmp_path) -> None:
    store = synthetic_store(tmp_path, {"in-batch": 0.0, "bm25": 0.05}, seeds=(0,), n_queries=20)
    rows = store.rows().drop(["steps", "examples_seen", "mine_s"])  # an old store: no budget, no split memory
    md = leaderboard_markdown(rows, "t", store.per_query())
    costs, spent = view_table(md, "Costs")
    memory, held = view_table(md, "Memory")
    for col in ("steps", "examples", "batch mean/min", "mine s", "total s"):
        assert spent["bm25"][costs.index(col)] == "–", col
    assert held["bm25"][memory.index("eval RSS MB")] == "–"
    assert held["bm25"][memory.index("train RSS MB")] == "625"  # falls back to the whole-run peak_rss_mb
    assert "budget" not in cells(table_line(md, "| strategy ")) and "train GPU MB" not in memory
    assert "whole run" in md
    assert rich_table(rows).row_count == 2
    page = render_html(rows, store.per_query(), generated="x")
    assert "training peak RSS (MB)" in page and "whole-run peak" in page


def test_html_keeps_configurations_apart(tmp_path) -> None:
    rows, per_query = two_config_frames(new_schema=False)
    page = render_html(rows, per_query, generated="x")
    labels = set(re.findall(r"in-batch \[cfg [0-9a-f]+\]", page))
    assert len(labels) == 2
    assert page.count('<section class="card"') == 3  # bm25 and one card per in-batch configuration
    assert "2 configurations of in-batch" in page and "the newest (by run date)" in page
    assert "<code>lr = 0.0001</code>" in page or "<code>lr = 2e-05</code>" in page


def write_store(path, pairs) -> ResultStore:
    store = ResultStore(path)
    for row, pq in pairs:
        store.append(row, pq)
    return store


def test_compare_uses_the_newest_configuration_within_a_store(tmp_path) -> None:
    effects = {"in-batch": 0.0, "bm25": 0.05}
    base = write_store(tmp_path / "base", synthetic_rows(effects, n_queries=80, noise=0.04))
    older = synthetic_rows({"bm25": -0.2}, n_queries=80, noise=0.04, rng_seed=2)  # an old, much worse config
    for row, _ in older:
        row.update(run_id=row["run_id"] + "-old", params=json.dumps({"k": 1}), created_at="2024-01-01T00:00:00+00:00")
    new = write_store(tmp_path / "new", synthetic_rows(effects, n_queries=80, noise=0.04, rng_seed=5) + older)
    result = compare_stores(base.directory, new.directory)
    assert not result.regressions  # pooled, bm25 would have dropped by ~0.12
    assert len(result.notes) == 1 and "toy/tiny/bm25 has 2 configurations" in result.notes[0]
    assert "only the newest" in result.markdown()
