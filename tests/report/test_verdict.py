"""The verdict a board opens with: findings on the primary metric with the table's own numbers, and the caveats
that apply."""

from __future__ import annotations

import polars as pl

from negbench.report.html import render_html
from negbench.report.leaderboard import leaderboard_tables, plain_cell
from negbench.report.markdown import leaderboard_markdown
from negbench.report.pages import write_report
from negbench.report.stats import significance
from negbench.report.verdict import board_verdict, verdicts
from negbench.testing.results import synthetic_frames, synthetic_rows, synthetic_store
from tests.report.test_seed_variance import draw

EFFECTS = {"in-batch": 0.0, "better": 0.06, "worse": -0.06, "same": 0.0}


def board(rows: pl.DataFrame, per_query: pl.DataFrame):
    sig = significance(rows, per_query, "in-batch", None, 0.05)
    (table,) = leaderboard_tables(rows, sig, "in-batch", "ndcg@10", primary="ndcg@10")
    return table


def cell(table, label: str, header: str) -> str:
    row = next(r for r in table.rows if r.label == label)
    return plain_cell(row, next(c for c in table.columns if c.header == header))


def registered_as_in_batch(rows: pl.DataFrame, label: str) -> pl.DataFrame:
    """``rows`` with ``label``'s runs registered as in-batch: a repeat of the baseline's configuration."""
    in_batch = pl.when(pl.col("strategy") == label).then(pl.lit("in-batch")).otherwise(pl.col("strategy_name"))
    return rows.with_columns(in_batch.alias("strategy_name"))


def test_verdict_with_seeds_names_winners_losers_and_what_could_be_seen() -> None:
    rows, per_query = draw(EFFECTS, 1, sd=0.003, n=80)
    table = board(rows, per_query)
    text = board_verdict(table, rows).text
    assert text.startswith("Against in-batch on ndcg@10 (the primary metric), over 80 test queries with 3 seeds")
    for label, word in (("better", "is better"), ("worse", "is worse")):
        assert f"{label} (Δ {cell(table, label, 'Δ vs baseline [95% CI]')}) {word}" in text  # the table's numbers
    assert "Holm-corrected α = 0.05 over 3 comparisons" in text
    assert "same cannot be told apart from in-batch" in text
    assert f"could have detected with 80% power is {cell(table, 'same', 'detectable Δ')}" in text
    assert "one seed" not in text and "unmeasured" not in text


def test_verdict_with_one_seed_calls_nothing_and_says_why() -> None:
    rows, per_query = draw(EFFECTS, 2, seeds=(0,), sd=0.0, n=80)
    table = board(rows, per_query)
    text = board_verdict(table, rows).text
    assert "with one seed per configuration, no strategy can be called better or worse" in text
    assert "training variance is unmeasured" in text and "▲" not in text and "is better" not in text
    # the queries alone still tell the two clear cases from noise; what they could have detected is a lower bound
    assert "On these queries alone, better (Δ " in text and "worse (Δ " in text and "differ from in-batch" in text
    assert "same, is within query noise" in text
    low = min(float(cell(table, s, "detectable Δ").removeprefix("≥ ")) for s in ("better", "worse", "same"))
    assert f"only differences of {low:.4f}" in text and "training variance would raise that" in text
    assert all(cell(table, s, "Holm p").startswith("(") for s in ("better", "worse", "same"))  # query-only p


def test_verdict_with_one_one_seed_strategy_does_not_call_it() -> None:
    """A board of three-seed strategies and one that has run one seed so far (a run in progress): the one-seed
    strategy is not called (the verdict read "so it is called better or worse"), and the query-only sentence
    names it without a stray comma ("On these queries alone, late, is within query noise")."""
    rows, per_query = draw({"in-batch": 0.0, "same": 0.0}, 3, sd=0.003, n=80)
    late_rows, late_pq = draw({"in-batch": 0.0, "late": 0.0}, 4, seeds=(0,), sd=0.0, n=80)
    keep = pl.col("strategy") == "late"
    late_ids = late_rows.filter(keep)["run_id"]
    rows = pl.concat([rows, late_rows.filter(keep)], how="diagonal_relaxed")
    per_query = pl.concat([per_query, late_pq.filter(pl.col("run_id").is_in(late_ids))], how="diagonal_relaxed")
    text = board_verdict(board(rows, per_query), rows).text
    assert "late ran with one seed or against a one-seed baseline" in text
    assert "so it is not called better or worse" in text
    assert "On these queries alone, late is within query noise (Δ " in text


def test_verdict_caveats_come_from_the_rows() -> None:
    pairs = synthetic_rows({"in-batch": 0.0, "again": 0.0, "half": 0.02, "none": -0.1}, seeds=(0,), n_queries=30)
    rows, per_query = synthetic_frames(pairs)
    rows = rows.with_columns(
        pl.when(pl.col("strategy") == "again")
        .then(pl.lit("in-batch"))
        .otherwise(pl.col("strategy_name"))
        .alias("strategy_name"),
        pl.when(pl.col("strategy") == "half")
        .then(pl.lit("half: fraction 0.5 (by design)"))
        .otherwise(pl.lit("equal"))
        .alias("budget"),
        pl.when(pl.col("strategy") == "none").then(0).otherwise(pl.col("steps")).alias("steps"),
        pl.when(pl.col("strategy") == "again").then(250.0).otherwise(100.0).alias("train_examples_per_s"),
        pl.when(pl.col("strategy") == "half").then(pl.lit("gpu: H100")).otherwise(pl.col("device")).alias("device"),
        pl.lit("200 of 1,000 documents").alias("subset"),
        pl.lit(0.05).alias("test_only_share"),
        pl.lit(0.02).alias("test_only_share_full"),
    )
    (verdict,) = verdicts(leaderboard_tables(rows, significance(rows, per_query), primary="ndcg@10"), rows)
    caveats = " ".join(verdict.caveats)
    assert "Rows marked (subset) ran on a subset of toy: 200 of 1,000 documents" in caveats
    assert "5.0% of its evaluated corpus, 2.0% of the full corpus" in caveats
    assert "Timings come from 2 devices (cpu: synthetic; gpu: H100)" in caveats
    assert "in-batch and again ran one configuration yet trained at 100.0 and 250.0 examples/s" in caveats
    assert "half changed the data budget or training settings (half: fraction 0.5 (by design)): its Δ mixes" in caveats
    assert "again repeats the configuration of in-batch" in caveats
    assert "none does not train (0 steps)" in caveats


def test_pages_open_with_the_verdict(tmp_path) -> None:
    rows, per_query = draw(EFFECTS, 3, sd=0.003, n=60)
    (verdict,) = verdicts([board(rows, per_query)], rows)
    md = leaderboard_markdown(rows, "t", per_query)
    first = next(block for block in md.split("\n\n")[1:] if not block.startswith("Device"))
    assert first.startswith("**Verdict.** Against in-batch") and "Caveats" not in first
    page = render_html(rows, per_query, generated="x")
    assert page.index('<div class="verdict"><p><strong>Verdict.</strong> Against in-batch') < page.index("<nav>")
    assert " ".join(verdict.findings).replace("'", "&#x27;") in page


def test_primary_metric_comes_from_the_stores_suite(tmp_path) -> None:
    store = synthetic_store(tmp_path / "s", EFFECTS, n_queries=40, metrics=("ndcg@10", "recall@100"))
    (store.directory / "suite.toml").write_text('[suite]\nname = "x"\n[evaluation]\nprimary = "recall@100"\n')
    md = write_report(store.directory, tmp_path / "site")[0].read_text(encoding="utf-8")
    assert "### recall@100 (primary)" in md and "Against in-batch on recall@100 (the primary metric)" in md
    assert "### ndcg@10 (primary)" not in md and "Δ ndcg@10 \\[95% CI\\]" in md  # ndcg@10 is now secondary
    (store.directory / "suite.toml").write_text('[suite]\nname = "x"\n[tuning]\nmetric = "recall@100"\n')
    assert "### recall@100 (primary)" in write_report(store.directory, tmp_path / "b")[0].read_text(encoding="utf-8")


def test_a_board_of_the_baseline_alone_says_so() -> None:
    """tuned-cpu's store holds one strategy, the baseline: its verdict said "the store has no per-query scores"."""
    rows, per_query = synthetic_frames(synthetic_rows({"in-batch": 0.0}, seeds=(0,), n_queries=20))
    table = board(rows, per_query)
    text = board_verdict(table, rows).text
    assert "the board holds only the baseline in-batch" in text and "no per-query scores" not in text


def test_a_strategy_that_trains_some_examples_less_often_is_named() -> None:
    """tas-b's topic batches left some examples out of 12 of 20 epochs (coverage 0.40 against 0.95) while its
    budget read "equal"; the verdict said nothing."""
    rows, per_query = synthetic_frames(synthetic_rows({"in-batch": 0.0, "tas-b": 0.0}, seeds=(0,), n_queries=20))
    rows = rows.with_columns(
        pl.when(pl.col("strategy") == "tas-b").then(0.4).otherwise(0.95).alias("coverage"),
        pl.lit(10).alias("steps"),
    )
    caveats = " ".join(board_verdict(board(rows, per_query), rows).caveats)
    assert "below the best row's 0.95 for tas-b 0.40" in caveats


def test_a_repeated_configuration_joins_no_holm_family() -> None:
    """``in-batch-last`` (the baseline's configuration again, under another label) is no hypothesis: counted in
    the Holm family it raised m (scifact-cpu: simans' raw p 0.0037 went from Holm 0.048 over 13 to 0.051 over 14).
    It keeps its Δ and is said to be a repeat; the other comparisons' family and Holm p do not count it."""
    rows, per_query = draw({"in-batch": 0.0, "better": 0.03, "again": 0.0}, 5, sd=0.002, n=80)
    rows = registered_as_in_batch(rows, "again")
    sig = {label: s for (_, _, label, metric), s in significance(rows, per_query).items() if metric == "ndcg@10"}
    assert sig["again"].family == 0 and sig["again"].mark == "" and sig["again"].p_holm != sig["again"].p_holm
    assert sig["better"].family == 1 and sig["better"].p_holm == sig["better"].p_value
    table = board(rows, per_query)
    text = board_verdict(table, rows).text
    assert "over 1 comparison)" in text and "again cannot be told apart" not in text
    assert "again repeats the configuration of in-batch" in text
    assert cell(table, "again", "Holm p") == "–" and cell(table, "again", "detectable Δ") == "–"
    assert "joins no Holm family" in table.views[0].caption


def test_one_seed_caption_counts_one_comparison_in_words() -> None:
    """A one-seed board with a single comparison: its caption read "over those 1 comparison"."""
    rows, per_query = draw({"in-batch": 0.0, "other": 0.0}, 6, seeds=(0,), sd=0.0, n=40)
    caption = board(rows, per_query).views[0].caption
    assert "over the one comparison" in caption and "those 1 comparison" not in caption


def _significance_of(rows: pl.DataFrame, per_query: pl.DataFrame) -> dict[str, object]:
    return {label: s for (_, _, label, metric), s in significance(rows, per_query).items() if metric == "ndcg@10"}


def test_a_repeat_of_a_configuration_that_failed_is_its_only_finished_run() -> None:
    """dense failed on every seed and dense-again ran its configuration: dense-again is no repeat (it was put out
    of the family, so a clear +0.05 went unmarked and the verdict said no strategy is better)."""
    pairs = synthetic_rows(
        {"in-batch": 0.0, "dense": 0.05, "dense-again": 0.05, "b2": 0.0},
        strategy_names={"dense-again": "dense"},
        failed=("dense",),
        n_queries=80,
    )
    rows, per_query = synthetic_frames(pairs)
    sig = _significance_of(rows, per_query)
    assert sig["dense-again"].family == 2 and sig["dense-again"].mark == "▲"
    assert "dense-again (Δ" in board_verdict(board(rows, per_query), rows).text


def test_the_baseline_is_never_the_repeat_and_versions_of_one_label_are_not_repeats() -> None:
    """in-batch-last stored before in-batch made in-batch the repeat (tagged, out of the family) and counted
    in-batch-last as a comparison; two configuration keys of one label were called repeats of each other."""
    rows, per_query = draw({"in-batch-last": 0.0, "in-batch": 0.0, "better": 0.03}, 7, sd=0.002, n=80)
    rows = registered_as_in_batch(rows, "in-batch-last")
    table = board(rows, per_query)
    tags = {r.label: r.repeat_of for r in table.rows}
    assert tags["in-batch"] is None and tags["in-batch-last"] == "in-batch" and table.baseline.label == "in-batch"
    assert _significance_of(rows, per_query)["better"].family == 1
    versions = rows.filter(pl.col("strategy") == "better").with_columns(
        pl.lit("k2").alias("config_key"), pl.col("run_id") + "-v2"
    )
    more_pq = per_query.filter(pl.col("run_id").str.contains("-better-")).with_columns(pl.col("run_id") + "-v2")
    both = pl.concat([rows, versions], how="diagonal_relaxed")
    table = board(both, pl.concat([per_query, more_pq]))
    assert [r.repeat_of for r in table.rows if r.label.startswith("better")] == [None, None]


def test_a_rerun_of_the_baseline_that_moved_says_how_far() -> None:
    """A repeat of the baseline whose scores moved (-0.047) was left out of the verdict with only "repeats the
    configuration of in-batch": the note now gives its Δ and whether it lies beyond the CI of a reproduction."""
    rows, per_query = draw({"in-batch": 0.0, "again": -0.047}, 8, sd=0.002, n=80)
    rows = registered_as_in_batch(rows, "again")
    table = board(rows, per_query)
    text = board_verdict(table, rows).text
    assert "again repeats the configuration of in-batch" in text
    assert f"yet scores Δ {cell(table, 'again', 'Δ vs baseline [95% CI]')} against it (beyond the CI" in text
    assert "No verdict on ndcg@10: again only repeats another row's configuration (see the caveats)" in text
    caption = table.views[0].caption
    assert "with its 95% CI over queries and seeds" in caption and "CI A repeat" not in caption
