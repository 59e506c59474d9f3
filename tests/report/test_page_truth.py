"""A page that says only what holds: captions that match the seed count, no ``none`` on a training-cost plot,
time to target from curves of three points or more, a label that repeats a configuration flagged."""

from __future__ import annotations

import re

import polars as pl
import pytest

from negbench.report.html import render_html
from negbench.report.markdown import leaderboard_markdown
from negbench.report.pages import write_report
from negbench.testing.results import synthetic_frames, synthetic_rows, synthetic_steps, synthetic_store

EFFECTS = {"in-batch": 0.0, "better": 0.06, "worse": -0.06, "same": 0.0}


def test_captions_match_the_seed_count() -> None:
    one = synthetic_frames(synthetic_rows(EFFECTS, seeds=(0,), n_queries=30))
    three = synthetic_frames(synthetic_rows(EFFECTS, seeds=(0, 1, 2), n_queries=30))
    for (rows, per_query), several in ((one, False), (three, True)):
        page, md = render_html(rows, per_query, generated="x"), leaderboard_markdown(rows, "t", per_query)
        for text in (page, md):
            assert ("95% CI over queries and seeds" in text) == several
            assert ("training variance is unmeasured" in text) != several
        assert ("Bars: 95% CI over seeds" in page) == several and ("no error bars" in page) != several
        assert ("seed SD" in md) == several


def test_none_is_never_on_a_training_cost_plot() -> None:
    rows, per_query = synthetic_frames(synthetic_rows(EFFECTS | {"none": -0.1}, seeds=(0,), n_queries=30))
    rows = rows.with_columns(  # as a real store: the zero-shot run takes no step and has only a whole-run peak
        pl.when(pl.col("strategy") == "none").then(0).otherwise(pl.col("steps")).alias("steps"),
        pl.when(pl.col("strategy") == "none").then(None).otherwise(100.0).alias("train_examples_per_s"),
    )
    page = render_html(rows, per_query, generated="x")
    alts = re.findall(r'<img class="plot"[^>]*alt="([^"]*)"', page)
    assert len(alts) == 2 and all("Not plotted: none (does not train)" in alt for alt in alts)
    assert all("On the front" in alt and "none," not in alt.split("On the front:")[1].split(".")[0] for alt in alts)
    md = leaderboard_markdown(rows, "t", per_query)
    memory = md.split("### Memory", 1)[1].split("\n\n")[1].splitlines()
    column = [c.strip() for c in memory[0].split("|")].index("train RSS MB")
    none = next(line for line in memory if line.startswith("| none "))
    assert [c.strip() for c in none.split("|")][column] == "–"  # not its evaluation's peak


def test_time_to_target_needs_real_curves(tmp_path) -> None:
    store = synthetic_store(tmp_path / "s", EFFECTS, seeds=(0,), n_queries=20)
    synthetic_steps(store.rows(), EFFECTS, points=2).write_parquet(store.directory / "steps.parquet")
    md_path, html_path = write_report(store.directory, tmp_path / "site")
    md, page = md_path.read_text(encoding="utf-8"), html_path.read_text(encoding="utf-8")
    assert (
        "omitted — the baseline's dev curve has fewer than 3 points" in md
        and "| better |" not in md.split("## Time to")[1].split("##")[0]
    )
    assert "Omitted: each run has at most 2 dev evaluations" in page and "time to the baseline" not in page


@pytest.mark.parametrize("seeds", [(0,), (0, 1, 2)])
def test_a_label_repeating_a_configuration_is_flagged(seeds: tuple[int, ...]) -> None:
    """With three seeds the note never said the scores were identical: it asked for a zero standard error, which
    the seed part of the test (seeds modelled independent) does not give even for a bit-identical rerun."""
    rows, per_query = synthetic_frames(synthetic_rows({"in-batch": 0.0, "in-batch-last": 0.0}, seeds=seeds))
    rows = rows.with_columns(pl.lit("in-batch").alias("strategy_name"))
    base = per_query.filter(pl.col("run_id").str.starts_with("toy-in-batch-") & ~pl.col("run_id").str.contains("last"))
    rerun = base.with_columns(pl.col("run_id").str.replace("toy-in-batch-", "toy-in-batch-last-"))
    per_query = pl.concat([base, rerun])  # a deterministic rerun: identical scores, seed by seed
    md = leaderboard_markdown(rows, "t", per_query)
    assert "| in-batch-last (repeat of in-batch) |" in md
    note = "in-batch-last repeats the configuration of in-batch (same strategy, parameters, training settings"
    assert note in md and "Its per-query scores equal the baseline's: a deterministic rerun, not a second seed." in md
    assert "repeat of in-batch" in render_html(rows, per_query, generated="x")
