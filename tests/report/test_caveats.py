"""Caveats a hostile reader found missing from the verdict, and inputs that must not be read silently: a NaN or
missing per-query score, seeds that trained at different speeds, a failed seed, unbalanced seeds, a configuration
identical to the baseline, a primary metric the store does not hold, the store's own baseline."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from negbench.cli import app
from negbench.errors import DataError
from negbench.report.boards import boards
from negbench.report.figures.stores import store_settings
from negbench.report.pages import write_report
from negbench.report.stats import seed_query_test
from negbench.report.verdict import verdicts
from negbench.testing.results import synthetic_frames, synthetic_rows, synthetic_store

EFFECTS = {"in-batch": 0.0, "dense": 0.02, "random": 0.0}


def verdict_of(rows: pl.DataFrame, per_query: pl.DataFrame):
    board = boards(rows, per_query, "in-batch", primary_metric="ndcg@10")
    return board, verdicts(board.tables, board.rows)[0]


def frames(**kwargs):
    return synthetic_frames(synthetic_rows(EFFECTS, n_queries=40, metrics=("ndcg@10",), **kwargs))


def test_a_nan_score_leaves_one_query_out_not_the_whole_comparison() -> None:
    """One NaN per-query score of dense: the comparison runs over the other 39 queries (it was a made-up p = 1 with
    no Δ), and the caveats say which test left queries out."""
    rows, per_query = frames()
    nan = (pl.col("run_id") == "toy-dense-0") & (pl.col("query_id") == "q3")
    per_query = per_query.with_columns(pl.when(nan).then(float("nan")).otherwise(pl.col("score")).alias("score"))
    board, verdict = verdict_of(rows, per_query)
    sig = board.sig[("toy", "tiny", "dense", "ndcg@10")]
    assert sig.n == 39 and sig.dropped == 1 and 0 < sig.p_value < 1 and math.isfinite(sig.mean_diff)
    assert any("dense over 39 (1 left out)" in c for c in verdict.caveats)


def test_queries_missing_from_the_baseline_are_named() -> None:
    rows, per_query = frames()
    per_query = per_query.filter(~(pl.col("run_id").str.contains("in-batch") & (pl.col("query_id") == "q0")))
    _, verdict = verdict_of(rows, per_query)
    assert any("dense over 39 (1 left out)" in c and "random over 39 (1 left out)" in c for c in verdict.caveats)


def test_seeds_at_different_speeds_make_timings_indicative() -> None:
    rows, per_query = frames()
    slow = pl.col("run_id") == "toy-random-1"
    rows = rows.with_columns(
        pl.when(slow).then(pl.col("train_examples_per_s") / 3).otherwise(pl.col("train_examples_per_s"))
    )
    _, verdict = verdict_of(rows, per_query)
    spread = [c for c in verdict.caveats if "trained at clearly different speeds" in c]
    assert len(spread) == 1 and "random 3.1×" in spread[0] and "1 configuration " in spread[0]
    assert not any("different speeds" in c for c in verdict_of(*frames())[1].caveats)


def test_a_failed_seed_is_stated() -> None:
    rows, per_query = frames()
    failed = pl.col("run_id") == "toy-dense-2"
    rows = rows.with_columns(
        pl.when(failed).then(pl.lit("failed: non-finite loss")).otherwise("status").alias("status")
    )
    _, verdict = verdict_of(rows, per_query.filter(pl.col("run_id") != "toy-dense-2"))
    assert (
        "dense: 1 of 3 seeds failed (failed: non-finite loss); its figures and tests come from the 2 that finished."
        in (verdict.caveats)
    )


def test_unbalanced_seeds_are_said_to_make_the_test_liberal() -> None:
    """Six seeds against two (a merged store, failures): the seed × query test is then above its nominal α, and
    the verdict says so for that test and that declared claim only; three against three draws no caveat."""
    pairs = synthetic_rows({"in-batch": 0.0, "random": 0.0}, seeds=range(6), n_queries=40, metrics=("ndcg@10",))
    pairs += synthetic_rows({"dense": 0.02}, seeds=(0, 1), n_queries=40, metrics=("ndcg@10",))
    rows, per_query = synthetic_frames(pairs)
    board = boards(rows, per_query, "in-batch", primary_metric="ndcg@10", comparisons=[("dense", "random")])
    caveats = " ".join(verdicts(board.tables, board.rows)[0].caveats)
    assert "Seeds are unbalanced in dense (2 vs 6), dense > random (2 vs 6):" in caveats
    _, balanced = verdict_of(*frames())
    assert "unbalanced" not in " ".join(balanced.caveats)
    pairs = synthetic_rows({"in-batch": 0.0}, seeds=range(4), n_queries=40, metrics=("ndcg@10",))
    pairs += synthetic_rows({"dense": 0.02}, seeds=(0, 1), n_queries=40, metrics=("ndcg@10",))
    _, four_vs_two = verdict_of(*synthetic_frames(pairs))  # near nominal in simulation: no caveat
    assert "unbalanced" not in " ".join(four_vs_two.caveats)


def test_a_configuration_identical_to_the_baseline_is_flagged_and_an_exact_shift_is_certain() -> None:
    rows, per_query = frames()
    copy = per_query.filter(pl.col("run_id").str.starts_with("toy-in-batch-"))
    twin = copy.with_columns(pl.col("run_id").str.replace("in-batch", "random"))
    per_query = pl.concat([per_query.filter(~pl.col("run_id").str.contains("random")), twin])
    _, verdict = verdict_of(rows, per_query)
    assert any(c.startswith("random has the baseline's ndcg@10 on every query and seed") for c in verdict.caveats)
    exact = seed_query_test([[0.6, 0.7], [0.6, 0.7]], [[0.5, 0.6], [0.5, 0.6]])
    assert exact.mean_diff == pytest.approx(0.1) and exact.p_greater == 0.0 and exact.p_value == 0.0


@pytest.fixture
def store(tmp_path: Path) -> Path:
    synthetic_store(tmp_path / "s", EFFECTS, n_queries=30, metrics=("ndcg@10", "mrr@10"))
    return tmp_path / "s"


def test_report_rests_on_the_primary_metric_the_run_did(store: Path) -> None:
    """No [evaluation] primary and a tuning metric the suite does not evaluate: the run's leaderboard.md uses the
    first evaluated metric (Suite.primary_metric), and so does `negbench report` (it took the default ndcg@10)."""
    (store / "suite.toml").write_text(
        '[suite]\nname = "s"\n[evaluation]\nmetrics = ["mrr@10", "ndcg@10"]\n[tuning]\nmetric = "map@100"\n'
    )
    assert store_settings(store).primary_among(["ndcg@10", "mrr@10"]) == "mrr@10"
    write_report(store)
    assert "Against in-batch on mrr@10 (the primary metric)" in (store / "leaderboard.md").read_text()
    (store / "suite.toml").write_text('[suite]\nname = "s"\n[evaluation]\nmetrics = "ndcg@10"\n')
    with pytest.raises(DataError, match=r"evaluation\.metrics"):
        store_settings(store)


def test_a_primary_metric_the_store_lacks_is_an_error_not_a_fallback(store: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(store), "--primary", "bogus@7"])
    assert result.exit_code != 0 and "--primary" in result.output and "'bogus@7' is not a metric" in result.output
    assert not (store / "leaderboard.md").exists()
    (store / "suite.toml").write_text('[suite]\nname = "s"\n[evaluation]\nprimary = "recall@100"\n')
    with pytest.raises(DataError, match=r"evaluation\.primary") as info:
        write_report(store)
    assert str(store / "suite.toml") in str(info.value)
    # a [tuning] metric the store does not evaluate is no declaration: the default rule applies
    (store / "suite.toml").write_text('[suite]\nname = "s"\n[tuning]\nmetric = "recall@100"\n')
    assert "on ndcg@10 (the primary metric)" in write_report(store)[0].read_text()


def test_report_compares_with_the_stores_own_baseline(store: Path) -> None:
    (store / "suite.toml").write_text('[suite]\nname = "s"\nbaseline = "random"\n')
    result = CliRunner().invoke(app, ["report", str(store)])
    assert result.exit_code == 0, result.output
    assert "Against random on ndcg@10" in (store / "leaderboard.md").read_text()


def test_a_configuration_that_failed_every_seed_is_named_with_its_reason() -> None:
    """Under the equal-compute rule a strategy whose preparation alone exceeds the budget fails every seed: the
    verdict says it was not compared, and why (the board showed only a status column)."""
    pairs = synthetic_rows(EFFECTS, n_queries=40, metrics=("ndcg@10",), failed=("dense",))
    rows, per_query = synthetic_frames(pairs)
    error = "negbench.errors.BudgetError: strategy 'dense': its preparation alone exceeds the compute budget"
    rows = rows.with_columns(
        pl.when(pl.col("strategy") == "dense").then(pl.lit(error)).otherwise(pl.col("error")).alias("error")
    )
    _, verdict = verdict_of(rows, per_query)
    assert verdict.findings[-1] == (
        "Not compared: dense failed on every seed (failed: RuntimeError; e.g. strategy 'dense': its preparation "
        "alone exceeds the compute budget), so it has no score on this board."
    )
