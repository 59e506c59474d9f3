"""The report's diagnostics (issue 13): matplotlib figures under the CSP, learning curves and time-to-target,
hardness series, overlap heat map, planted false negatives, the rank summary across datasets."""

from __future__ import annotations

import re
from itertools import combinations

import polars as pl
import pytest
from matplotlib.text import Text

from negbench.errors import DataError
from negbench.report.diagnostics import (
    MEANINGS,
    overlap_matrix,
    planted_table,
    strategy_curves,
    time_to_target,
)
from negbench.report.html import render_html
from negbench.report.load import load_overlap, load_steps
from negbench.report.markdown import leaderboard_markdown
from negbench.report.pages import write_report
from negbench.report.plots import (
    Point,
    figure_svg,
    heatmap_figure,
    place_labels,
    scatter_figure,
    scatter_svg,
    svg_img,
    svg_of_img,
)
from negbench.report.stats import rank_power_note, rank_summary
from negbench.testing.results import (
    synthetic_frames,
    synthetic_overlap,
    synthetic_rows,
    synthetic_steps,
    synthetic_store,
)

EFFECTS = {"in-batch": 0.0, "winner": 0.10, "mid": 0.04, "loser": -0.08}


@pytest.fixture(scope="module")
def three_datasets():
    rows, per_query = synthetic_frames(synthetic_rows(EFFECTS, datasets=("d1", "d2", "d3"), n_queries=30))
    return rows, per_query


# --- figures ---------------------------------------------------------------------------------------------


def test_svg_is_style_free_and_byte_stable() -> None:
    points = [Point("in-batch", 100, 0.5, 0.01), Point("bm25", 140, 0.55), Point("dense", 120, 0.52)]
    first = scatter_svg(points, x_label="x", y_label="y", title="t")
    second = scatter_svg(points, x_label="x", y_label="y", title="t")
    assert first == second  # fixed hash salt, no date: regenerated reports are byte-stable
    assert "style=" not in first and "<style" not in first  # nothing the CSP's style-src would block
    assert "<script" not in first and "Date" not in first and "matplotlib.org" not in first
    assert 'stroke-linejoin="round"' in first  # the dropped <style> rule, as root attributes
    img = svg_img(first, 'alt "quoted" <b>')
    assert svg_of_img(img) == first and 'alt="alt &quot;quoted&quot; &lt;b&gt;"' in img


def test_figure_text_is_never_mathtext() -> None:
    svg = scatter_svg([Point("a$b$c", 1, 0.5), Point("$", 2, 0.6)], x_label="$x$", y_label="y", title="t")
    assert "a$b$c" in svg and "$x$" in svg


def _label_boxes(fig):
    fig.canvas.draw()  # lays out the annotations' offset positions
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    return [Text.get_window_extent(t, renderer) for t in ax.texts]  # the text alone, not its leader line


def test_labels_of_identical_points_do_not_collide() -> None:
    points = [
        Point("in-batch", 100, 0.5),
        Point("in-batch-twin", 100, 0.5),
        Point("third", 100, 0.5),
        Point("near", 101, 0.5005),
        Point("far", 200, 0.3),
    ]
    fig = scatter_figure(points, x_label="x", y_label="y", title="t")
    boxes = _label_boxes(fig)
    assert len(boxes) == 5
    assert len({(round(b.x0), round(b.y0)) for b in boxes}) == 5  # distinct positions
    for a, b in combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
    spots = place_labels([(100, 100, "aaaa"), (100, 100, "bbbb")], (0, 0, 400, 300))
    assert spots[0] != spots[1]


def test_heatmap_annotates_values() -> None:
    svg = figure_svg(
        heatmap_figure(["a", "b<", "c"], [[1, 0.25, None], [0.25, 1, 0.7], [None, 0.7, 1]], title="overlap")
    )
    assert "0.25" in svg and "0.70" in svg and "b&lt;" in svg and "style=" not in svg


# --- learning curves, hardness ---------------------------------------------------------------------------


def test_time_to_target_hand_example() -> None:
    """The target is the baseline's final dev value; a curve of two points says when the first evaluation
    happened, not how fast a run learns: it is left out (and with it the target, when it is the baseline's)."""
    curves = {
        "base": ([1.0, 2.0, 3.0], [0.2, 0.5, 0.6]),
        "fast": ([1.0, 2.0, 3.0], [0.5, 0.6, 0.7]),
        "slow": ([1.0, 2.0, 4.0], [0.1, 0.3, 0.65]),
        "never": ([1.0, 2.0, 3.0], [0.1, 0.2, 0.59]),
        "short": ([1.0, 2.0], [0.9, 0.95]),
    }
    target, reached = time_to_target(curves, "base")
    assert target == pytest.approx(0.6)
    assert reached == {"base": 3.0, "fast": 2.0, "slow": 4.0, "never": None}
    assert time_to_target({**curves, "base": ([1.0, 2.0], [0.2, 0.6])}, "base") == (None, {})
    assert time_to_target(curves, "absent") == (None, {})


def test_strategy_curves_mean_over_seeds(three_datasets) -> None:
    rows, _ = three_datasets
    steps = synthetic_steps(rows, EFFECTS)
    curves = strategy_curves(steps, rows, "dev")
    assert set(curves) == {(d, "tiny", "ndcg@10") for d in ("d1", "d2", "d3")}
    xs, ys = curves[("d1", "tiny", "ndcg@10")]["winner"]
    assert xs == pytest.approx([1.8, 3.6, 5.4, 7.2, 9.0])
    assert ys[0] == pytest.approx(0.3 + 0.1 + 0.001)  # seeds 0, 1, 2 add 0, .001, .002: mean .001
    hard = strategy_curves(steps, rows, "hardness", x="step")
    assert {m for _, _, m in hard} == {"pos_score", "neg_score", "hardest_share", "active_negatives"}


def test_report_with_and_without_steps(tmp_path) -> None:
    store = synthetic_store(tmp_path / "s", EFFECTS, seeds=(0, 1), n_queries=10)
    _, html_path = write_report(store.directory, tmp_path / "old")
    old = html_path.read_text(encoding="utf-8")
    assert "Learning curves" not in old and "Hardness during training" not in old  # old stores: omitted
    synthetic_steps(store.rows(), EFFECTS).write_parquet(store.directory / "steps.parquet")
    md_path, html_path = write_report(store.directory, tmp_path / "new")
    page, md = html_path.read_text(encoding="utf-8"), md_path.read_text(encoding="utf-8")
    assert "Learning curves" in page and "Hardness during training" in page
    assert "time to the baseline's final dev" in page and "never" in page
    assert "## Time to the baseline's final dev value" in md
    # target: in-batch's final dev value 0.3 + 0.05 ln 5 + 0.0005 = 0.3810; winner starts at 0.4005 (1.8 s),
    # mid (0.3405 + 0.05 ln k) first reaches it at point 3 (2 × 3 × 0.96 = 5.76 s), loser never
    assert "target 0.3810" in md
    assert "| winner | 1.8 s |" in md and "| mid | 5.8 s |" in md and "| loser | never |" in md
    assert len(re.findall(r'<img class="plot"', page)) == 4  # two scatters, curves, hardness
    (store.directory / "steps.parquet").write_bytes(b"nope")
    with pytest.raises(DataError, match=r"steps\.parquet"):
        load_steps(store.directory)
    pl.DataFrame({"run_id": ["x"]}).write_parquet(store.directory / "steps.parquet")
    with pytest.raises(DataError, match="missing column"):
        load_steps(store.directory)


# --- overlap -----------------------------------------------------------------------------------------------


def test_overlap_matrix_and_section(three_datasets) -> None:
    rows, per_query = three_datasets
    frame = synthetic_overlap(rows)
    labels, matrix = overlap_matrix(frame, "d1", "tiny")
    assert labels == list(EFFECTS)
    assert matrix[0][0] == 1.0 and matrix[0][1] == matrix[1][0] == 0.3
    page = render_html(rows, per_query, overlap=frame, generated="g")
    assert page.count("Overlap of sampled negatives</h3>") == 3
    svg = svg_of_img(page[page.index("Overlap of sampled negatives</h3>") :])
    assert "0.30" in svg and "winner" in svg
    assert "Overlap of sampled negatives" not in render_html(rows, per_query, generated="g")


def test_overlap_is_loaded_from_the_stored_negatives(tmp_path) -> None:
    store = synthetic_store(tmp_path, {"in-batch": 0.0, "bm25": 0.05}, seeds=(0,), n_queries=5)
    rows = store.rows()
    assert load_overlap(tmp_path, rows) is None  # no run stored sampled negatives: section omitted
    for run_id in rows["run_id"].to_list():
        store.write_negatives(run_id, {"query_id": ["q1", "q2"], "positive_id": ["p1", "p2"], "doc_id": ["x", "y"]})
    frame = load_overlap(tmp_path, rows)
    assert frame is not None and set(frame["jaccard"].to_list()) == {1.0}
    _, html_path = write_report(tmp_path, tmp_path / "site")
    assert "Overlap of sampled negatives" in html_path.read_text(encoding="utf-8")


# --- planted false negatives -------------------------------------------------------------------------------


def _planted_rows() -> pl.DataFrame:
    rows, _ = synthetic_frames(synthetic_rows({"in-batch": 0.0, "bm25": 0.05}, n_queries=10, seeds=(0, 1)))
    clean = rows.with_columns(
        pl.lit(None, dtype=pl.Float64).alias("planted_fn_rate"),
        pl.lit(None, dtype=pl.String).alias("planted_fn_kind"),
        pl.lit(None, dtype=pl.Float64).alias("planted_fn_share"),
        pl.lit(None, dtype=pl.Float64).alias("planted_fn_inbatch_share"),
        pl.col("dataset").alias("dataset_base"),
    )
    planted = clean.with_columns(
        (pl.col("run_id") + "-fn").alias("run_id"),
        pl.lit("toy+fn").alias("dataset"),
        pl.lit(0.1).alias("planted_fn_rate"),
        pl.lit("duplicate").alias("planted_fn_kind"),
        pl.lit(0.02).alias("planted_fn_share"),
        pl.lit(0.005).alias("planted_fn_inbatch_share"),
        (pl.col("ndcg@10") - pl.when(pl.col("strategy") == "bm25").then(0.1).otherwise(0.01)).alias("ndcg@10"),
    )
    return pl.concat([clean, planted])


def test_planted_table_drop_and_shares() -> None:
    rows = _planted_rows()
    table = planted_table(rows, "ndcg@10")
    assert table is not None and table.height == 2
    bm25 = table.filter(pl.col("strategy") == "bm25").row(0, named=True)
    assert bm25["drop"] == pytest.approx(0.1) and bm25["planted_fn_share"] == pytest.approx(0.02)
    assert bm25["planted_fn_kind"] == "duplicate" and bm25["dataset_base"] == "toy"
    assert planted_table(rows.drop("planted_fn_rate"), "ndcg@10") is None  # columns absent: omitted
    assert planted_table(rows.filter(pl.col("planted_fn_rate").is_null()), "ndcg@10") is None  # no pairs
    page = render_html(rows, generated="g")
    assert '<section id="planted">' in page and "planted FN in-batch share" in page
    md = leaderboard_markdown(rows, "t")
    assert "## Planted false negatives" in md and "| toy · tiny | bm25 | 0.10 duplicate |" in md


# --- rank summary across datasets --------------------------------------------------------------------------


def test_rank_summary_known_winner(three_datasets) -> None:
    rows, _ = three_datasets
    (summary,) = rank_summary(rows, "ndcg@10", "in-batch")
    assert summary.datasets == ["d1", "d2", "d3"]
    assert summary.mean_rank == {"winner": 1.0, "mid": 2.0, "in-batch": 3.0, "loser": 4.0}
    assert list(summary.mean_rank) == ["winner", "mid", "in-batch", "loser"]
    # perfectly consistent ranks, n = 3, k = 4: chi2 = 12n/(k(k+1)) * sum R^2 - 3n(k+1) = 9
    assert summary.friedman_stat == pytest.approx(9.0) and summary.friedman_p == pytest.approx(0.0293, abs=1e-4)
    assert {p.strategy for p in summary.pairs} == {"winner", "mid", "loser"}
    assert all(p.reference == "in-batch" and p.n == 3 for p in summary.pairs)
    winner = next(p for p in summary.pairs if p.strategy == "winner")
    assert (winner.wins, winner.losses) == (3, 0)
    assert winner.p_value == pytest.approx(0.25) and winner.p_holm == pytest.approx(0.75)  # Holm: 3 × 0.25
    assert summary.min_p == pytest.approx(0.25)


def test_rank_summary_ties_and_not_applicable() -> None:
    rows = pl.DataFrame(
        {
            "dataset": ["a", "a", "b", "b"],
            "model": ["m"] * 4,
            "strategy": ["x", "y", "x", "y"],
            "status": ["ok"] * 4,
            "ndcg@10": [0.5, 0.5, 0.6, 0.4],
        }
    )
    (summary,) = rank_summary(rows, "ndcg@10", "in-batch")
    assert summary.ranks["x"] == {"a": 1.5, "b": 1.0} and summary.mean_rank == {"x": 1.25, "y": 1.75}
    assert summary.friedman_p is None and "at least 3 strategies" in summary.friedman_note
    assert [(p.strategy, p.reference) for p in summary.pairs] == [("x", "y")]  # no baseline: all pairs
    assert rank_summary(rows.filter(pl.col("dataset") == "a"), "ndcg@10") == []  # one dataset: no summary


def test_rank_summary_in_html_and_markdown(three_datasets) -> None:
    rows, per_query = three_datasets
    page = render_html(rows, per_query, generated="g")
    assert '<section id="ranks">' in page and 'class="sortable rank-summary"' in page
    assert "Friedman χ² = 9" in page and "never be significant" in page
    md = leaderboard_markdown(rows, "t", per_query)
    assert "## Across datasets: tiny, ndcg@10" in md and "| winner | 1.00 |" in md
    assert "| winner vs in-batch | 3/0 | 0.25 | 0.75 |" in md


def test_what_the_diagnostics_mean(three_datasets) -> None:
    rows, per_query = three_datasets
    page = render_html(rows, per_query, generated="g")
    md = leaderboard_markdown(rows, "t", per_query)
    assert '<section id="diagnostics"><h2>What the diagnostics mean</h2>' in page
    assert "## What the diagnostics mean" in md
    for key in (
        "neg_score_gap",
        "planted_fn_share",
        "planted_fn_inbatch_share",
        "hardness",
        "time_to_target",
        "overlap",
    ):
        assert f"**{key}**" in md and MEANINGS[key].count(". ") <= 1  # one sentence each


def test_planted_rows_pair_with_plain_rows_by_base_fingerprint() -> None:
    """Rows as the runner writes them: no dataset_base column; a planted row names the plain dataset's
    fingerprint in base_dataset_fingerprint."""
    rows = _planted_rows().drop("dataset_base")
    rows = rows.with_columns(
        pl.when(pl.col("dataset") == "toy")
        .then(pl.lit("fp-plain"))
        .otherwise(pl.lit("fp-planted"))
        .alias("dataset_fingerprint"),
        pl.when(pl.col("dataset") == "toy")
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.lit("fp-plain"))
        .alias("base_dataset_fingerprint"),
    )
    table = planted_table(rows, "ndcg@10")
    assert table is not None and set(table["dataset_base"].to_list()) == {"toy"}
    assert table.filter(pl.col("strategy") == "bm25")["drop"].item() == pytest.approx(0.1)


def test_null_points_in_steps_are_not_drawn_and_do_not_crash(tmp_path) -> None:
    """A hostile review found a null value in steps.parquet crashed `negbench report` with a traceback."""
    effects = {"in-batch": 0.0, "bm25": 0.05}
    store = synthetic_store(tmp_path, effects, seeds=(0,), n_queries=5)
    steps = synthetic_steps(store.rows(), effects)
    steps = steps.with_columns(
        pl.when(pl.col("step") == pl.col("step").min()).then(None).otherwise(pl.col("value")).alias("value")
    )
    steps.write_parquet(tmp_path / "steps.parquet")
    curves = strategy_curves(steps, store.rows(), "dev")
    assert curves and all(None not in ys for c in curves.values() for _, ys in c.values())
    _, html_path = write_report(tmp_path, tmp_path / "site")
    assert html_path.is_file()


# --- hostile-review defects: variants, configurations and seeds are never pooled ---------------------------


def _older_config(rows: pl.DataFrame, strategy: str, shift: float) -> pl.DataFrame:
    """Rows of an older configuration of ``strategy`` (other params, earlier dates) scoring ``shift`` more."""
    return rows.filter(pl.col("strategy") == strategy).with_columns(
        (pl.col("run_id") + "-old").alias("run_id"),
        pl.lit('{"lr": 1}').alias("params"),
        pl.lit("2024-01-01T00:00:00+00:00").alias("created_at"),
        (pl.col("ndcg@10") + shift).alias("ndcg@10"),
    )


def test_rank_summary_leaves_out_planted_variants_older_configs_and_renamed_copies(three_datasets) -> None:
    rows, _ = three_datasets
    rows = rows.with_columns(pl.lit(None, dtype=pl.Float64).alias("planted_fn_rate"))
    planted = rows.filter(pl.col("dataset") == "d1").with_columns(
        (pl.col("run_id") + "-fn").alias("run_id"),
        pl.lit("d1+fn0.3dup").alias("dataset"),
        pl.lit("fp-d1-planted").alias("dataset_fingerprint"),
        pl.lit(0.3).alias("planted_fn_rate"),
    )
    renamed = rows.filter(pl.col("dataset") == "d2").with_columns(
        (pl.col("run_id") + "-again").alias("run_id"), pl.lit("d2-again").alias("dataset")
    )
    noisy = pl.concat([rows, planted, renamed, _older_config(rows, "loser", 1.0)], how="diagonal_relaxed")
    (summary,) = rank_summary(noisy, "ndcg@10", "in-batch")
    assert summary.datasets == ["d1", "d2", "d3"]  # not the planted variant, not d2 twice
    assert summary.mean_rank == {"winner": 1.0, "mid": 2.0, "in-batch": 3.0, "loser": 4.0}  # newest config only
    assert summary.older_configs == 3 and "3 older left out" in rank_power_note(summary)


def test_curves_of_two_configurations_are_two_curves(three_datasets) -> None:
    rows, _ = three_datasets
    rows = pl.concat([rows, _older_config(rows, "winner", 0.0)], how="diagonal_relaxed")
    steps = synthetic_steps(rows, EFFECTS)
    curves = strategy_curves(steps, rows, "dev")[("d1", "tiny", "ndcg@10")]
    winners = [label for label in curves if label.startswith("winner")]
    assert len(winners) == 2 and all("[cfg " in label for label in winners)
    assert "winner" not in curves  # the two configurations are not averaged under the bare label


def test_planted_drop_pairs_seeds() -> None:
    """Seed 1 ran without planting only: the drop compares seed 0 with seed 0 (n = 1), not a two-seed mean
    with a one-seed mean."""
    rows = _planted_rows()
    rows = rows.filter(~((pl.col("dataset") == "toy+fn") & (pl.col("seed") == 1)))
    rows = rows.with_columns(
        pl.when((pl.col("dataset") == "toy") & (pl.col("seed") == 1))
        .then(pl.col("ndcg@10") + 0.5)
        .otherwise(pl.col("ndcg@10"))
        .alias("ndcg@10")
    )
    bm25 = planted_table(rows, "ndcg@10").filter(pl.col("strategy") == "bm25").row(0, named=True)
    assert bm25["n"] == 1 and bm25["drop"] == pytest.approx(0.1)
    older = _older_config(rows.filter(pl.col("dataset") == "toy"), "bm25", 0.3)
    bm25 = (
        planted_table(pl.concat([rows, older], how="diagonal_relaxed"), "ndcg@10")
        .filter(pl.col("strategy") == "bm25")
        .row(0, named=True)
    )
    assert bm25["n"] == 1 and bm25["drop"] == pytest.approx(0.1)  # the older configuration is not paired
