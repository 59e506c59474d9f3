"""Figures in markdown rendered from results stores (negbench.report.figures, `negbench figures`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from negbench.cli import app
from negbench.errors import NegbenchError
from negbench.report.figures import (
    find_blocks,
    format_duration,
    metric_label,
    render_block,
    update_file,
)
from negbench.run.store.parquet import ResultStore

REPO = Path(__file__).resolve().parents[2]
REAL_FILES = [REPO / "README.md", REPO / "results" / "README.md"]
runner = CliRunner()


def row(strategy: str, seed: int, ndcg: float | None, status: str = "ok", **extra) -> dict:
    base = {
        "run_id": f"{strategy}-{seed}-{extra.get('config_key', '')}",
        "dataset": "toy",
        "model": "tiny",
        "strategy": strategy,
        "seed": seed,
        "status": status,
        "ndcg@10": ndcg,
        "recall@100": 0.9,
        "steps": 10,
        "examples_seen": 320,
        "train_examples_per_s": 12.5,
        "train_s": 25.6,
        "eval_s": 4.0,
        "mine_s": 0.4,
        "peak_rss_mb": 2048.0,
        "peak_gpu_mb": None,
        "created_at": "2026-01-01T00:00:00+00:00",
    }
    base.update(extra)
    return base


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository root with results/quick (one seed per strategy) and results/seeds (3 seeds, a failure)."""
    quick = ResultStore(tmp_path / "results" / "quick")
    for name, value in [("none", 0.75621), ("in-batch", 0.7758), ("bm25", 0.78014), ("dense", 0.7823)]:
        quick.append(row(name, 0, value), {"ndcg@10": {"q1": value}})
    seeds = ResultStore(tmp_path / "results" / "seeds")
    for seed, value in enumerate([0.70, 0.72, 0.74]):
        seeds.append(row("dense", seed, value))
    seeds.append(row("mochi", 0, None, status="failed: non-finite loss"))
    return tmp_path


def test_metric_labels():
    assert [metric_label(m) for m in ("ndcg@10", "recall@100", "mrr@10", "map@100")] == [
        "nDCG@10",
        "Recall@100",
        "MRR@10",
        "MAP@100",
    ]


def test_inline_in_store_order(repo):
    text = render_block("results/quick metric=ndcg@10 format=inline", repo)
    assert text == "nDCG@10: none 0.7562, in-batch 0.7758, bm25 0.7801, dense 0.7823"
    assert render_block("results/quick", repo) == text  # ndcg@10 and inline are the defaults
    assert render_block("results/quick order=metric digits=3", repo).startswith("nDCG@10: dense 0.782, bm25 0.780")
    assert render_block("results/quick strategy=dense,none", repo) == "nDCG@10: dense 0.7823, none 0.7562"


def test_inline_seeds_ci_and_failure(repo):
    # mean 0.72, sd 0.02, n 3: t(0.975, 2) * 0.02 / sqrt(3) = 0.0497
    assert render_block("results/seeds", repo) == "nDCG@10: dense 0.7200 ± 0.0497, mochi failed"


def test_spread_is_the_seed_sd_largest_first(tmp_path):
    """format=spread: the between-seed SD of the metric, largest first, top=N of them; one-seed and failed
    strategies have no spread and are left out."""
    store = ResultStore(tmp_path / "results" / "s")
    for name, values in [("calm", [0.70, 0.70, 0.71]), ("wild", [0.60, 0.70, 0.80]), ("mid", [0.70, 0.72, 0.74])]:
        for seed, value in enumerate(values):
            store.append(row(name, seed, value))
    store.append(row("single", 0, 0.9))
    store.append(row("broken", 0, None, status="failed: non-finite loss"))
    spread = render_block("results/s format=spread", tmp_path)
    assert spread == "seed sd of nDCG@10: wild 0.1000, mid 0.0200, calm 0.0058"
    assert render_block("results/s format=spread top=2 digits=2", tmp_path) == "seed sd of nDCG@10: wild 0.10, mid 0.02"
    with pytest.raises(NegbenchError, match="no seed spread"):
        render_block("results/s format=spread strategy=single", tmp_path)
    with pytest.raises(NegbenchError, match="top= belongs to format=spread"):
        render_block("results/s format=table top=2", tmp_path)
    for option in ("unit=percent", "order=store"):  # given, even as its default, it would be ignored
        with pytest.raises(NegbenchError, match="takes no order= or unit="):
            render_block(f"results/s format=spread {option}", tmp_path)
    with pytest.raises(NegbenchError, match="top must be a positive integer"):
        render_block("results/s format=spread top=0", tmp_path)


def test_value_and_wall(repo):
    assert render_block("results/quick format=value strategy=bm25", repo) == "0.7801"
    assert render_block("results/quick format=value metric=recall@100 digits=3 strategy=none", repo) == "0.900"
    with pytest.raises(NegbenchError, match="one strategy"):
        render_block("results/quick format=value", repo)
    assert render_block("results/quick format=wall", repo) == "2 min 0 s"  # 4 × (25.6 + 4.0 + 0.4)
    assert format_duration(4099.4) == "68 min 19 s"
    assert format_duration(42) == "42 s"
    assert format_duration(7500) == "2 h 5 min 0 s"


def test_wall_prefers_total_s(tmp_path):
    store = ResultStore(tmp_path / "r")
    store.append(row("a", 0, 0.5, total_s=100.0))
    store.append(row("b", 0, 0.5, total_s=None))  # falls back to train + eval + mine = 30 s
    assert render_block("r format=wall", tmp_path) == "2 min 10 s"


def test_table(repo):
    lines = render_block("results/seeds format=table", repo).splitlines()
    assert lines[0] == (
        "| strategy | seeds | nDCG@10 | seed sd | steps | examples seen | train ex/s | mine s | train s | peak RSS MB |"
    )
    assert lines[2] == "| dense | 3 | 0.7200 ± 0.0497 | 0.0200 | 10 | 320 | 12.5 | 0.4 | 25.6 | 2048 |"
    assert lines[3] == "| mochi | 0 | failed: non-finite loss | – | – | – | – | – | – | – |"


def test_table_shows_compute_where_the_store_counted_it(tmp_path):
    """Machine-independent compute (TFLOPs) beside the wall-time columns of the device the rows ran on."""
    store = ResultStore(tmp_path / "r")
    store.append(row("in-batch", 0, 0.5, train_tflop=4.35, prep_tflop=0.0))
    store.append(row("dense", 0, 0.6, train_tflop=8.7, prep_tflop=5.98))
    lines = render_block("r format=table", tmp_path).splitlines()
    assert "| steps | examples seen | train TFLOP | prep TFLOP | train ex/s |" in lines[0]
    assert "| 8.70 | 5.98 |" in lines[3]


def test_table_of_a_fair_protocol_store_shows_costs_memory_split_and_budget(tmp_path):
    store = ResultStore(tmp_path / "r")
    store.append(
        row("in-batch", 0, 0.5, total_s=40.0, train_peak_rss_mb=3000.0, eval_peak_rss_mb=1500.0, budget="equal")
    )
    store.append(
        row(
            "rs2",
            0,
            0.4,
            total_s=20.0,
            train_peak_rss_mb=2900.0,
            eval_peak_rss_mb=1500.0,
            budget="rs2: fraction 0.5 of the examples per epoch (by design)",
        )
    )
    lines = render_block("r format=table", tmp_path).splitlines()
    assert lines[0] == (
        "| strategy | seeds | nDCG@10 | steps | examples seen | train ex/s | mine s | train s | "
        "total s | train RSS MB | eval RSS MB | budget |"
    )
    assert lines[3].endswith("| 20.0 | 2900 | 1500 | rs2: fraction 0.5 of the examples per epoch (by design) |")


def test_table_wall_times_are_the_leaderboards_medians(tmp_path):
    """The leaderboard shows wall times as medians over seeds; the figures table took means, so the README's
    table and leaderboard.md disagreed (neighbourhood's train s 382.2 against 110.3). A NaN is left out."""
    store = ResultStore(tmp_path / "r")
    for seed, (train_s, total_s) in enumerate([(10.0, 20.0), (930.0, float("nan")), (12.0, 30.0)]):
        store.append(row("dense", seed, 0.5 + seed / 100, train_s=train_s, total_s=total_s, train_peak_rss_mb=100.0))
    header, _, cells = render_block("r format=table", tmp_path).splitlines()[:3]
    values = dict(zip(header.split(" | "), cells.split(" | "), strict=True))
    assert values["train s"] == "12.0" and values["total s"] == "25.0" and values["train RSS MB"] == "100"


def test_table_missing_columns_and_gpu_memory(tmp_path):
    store = ResultStore(tmp_path / "r")
    bare = {"run_id": "x", "strategy": "in-batch", "status": "ok", "ndcg@10": 0.5, "peak_gpu_mb": 900.0}
    store.append(bare)
    lines = render_block("r format=table", tmp_path).splitlines()
    assert lines[0].endswith("| peak GPU MB |")
    assert lines[2] == "| in-batch | 1 | 0.5000 | – | – | – | 900 |"  # no timing columns in this store


def test_newest_config_only(tmp_path):
    store = ResultStore(tmp_path / "r")
    store.append(row("dense", 0, 0.10, config_key="old", created_at="2026-01-01T00:00:00+00:00"))
    store.append(row("dense", 0, 0.30, config_key="new", created_at="2026-02-01T00:00:00+00:00"))
    store.append(row("bm25", 0, 0.50, config_key="k", created_at="2025-01-01T00:00:00+00:00"))
    assert render_block("r", tmp_path) == "nDCG@10: dense 0.3000, bm25 0.5000"


def test_several_datasets_need_a_filter(tmp_path):
    store = ResultStore(tmp_path / "r")
    store.append(row("dense", 0, 0.1, dataset="a"))
    store.append(row("dense", 0, 0.2, dataset="b", run_id="other"))
    with pytest.raises(NegbenchError, match="dataset=NAME"):
        render_block("r", tmp_path)
    assert render_block("r dataset=b", tmp_path) == "nDCG@10: dense 0.2000"


DOC = """# Title

Quickstart: <!-- figures: results/quick metric=ndcg@10 format=inline -->typed by hand<!-- /figures -->.

- A list item with a table:

  <!-- figures: results/seeds format=table -->
  <!-- /figures -->

End.
"""


def test_update_then_check(repo):
    doc = repo / "README.md"
    doc.write_text(DOC, encoding="utf-8")
    stale = update_file(doc, repo, check=True)
    assert stale == [
        "README.md:3: results/quick metric=ndcg@10 format=inline",
        "README.md:7: results/seeds format=table",
    ]
    assert doc.read_text(encoding="utf-8") == DOC  # check writes nothing
    assert update_file(doc, repo) == stale
    text = doc.read_text(encoding="utf-8")
    assert (
        "Quickstart: <!-- figures: results/quick metric=ndcg@10 format=inline -->nDCG@10: none 0.7562, "
        "in-batch 0.7758, bm25 0.7801, dense 0.7823<!-- /figures -->."
    ) in text
    assert "format=table -->\n\n  | strategy | seeds |" in text  # indented like its marker, after a blank line
    assert "\n  | dense | 3 | 0.7200 ± 0.0497 |" in text
    assert "  | mochi | 0 | failed: non-finite loss | – | – | – | – | – | – | – |\n\n  <!-- /figures -->\n" in text
    assert update_file(doc, repo, check=True) == []  # idempotent
    assert update_file(doc, repo) == []
    assert doc.read_text(encoding="utf-8") == text


def test_check_detects_hand_edit(repo):
    doc = repo / "README.md"
    doc.write_text(DOC, encoding="utf-8")
    update_file(doc, repo)
    doc.write_text(doc.read_text(encoding="utf-8").replace("bm25 0.7801", "bm25 0.7810"), encoding="utf-8")
    assert update_file(doc, repo, check=True) == ["README.md:3: results/quick metric=ndcg@10 format=inline"]
    result = runner.invoke(app, ["figures", str(doc), "--root", str(repo), "--check"])
    assert result.exit_code == 1
    assert "stale: README.md:3: results/quick" in result.output
    result = runner.invoke(app, ["figures", str(doc), "--root", str(repo)])
    assert result.exit_code == 0, result.output
    assert "bm25 0.7801" in doc.read_text(encoding="utf-8")
    result = runner.invoke(app, ["figures", str(doc), "--root", str(repo), "--check"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("results/nowhere metric=ndcg@10", "results directory results/nowhere not found"),
        ("results/quick metric=ndcg@1000", "unknown metric 'ndcg@1000'"),
        ("results/quick format=pie", "unknown format 'pie'"),
        ("results/quick colour=red", "bad option 'colour=red'"),
    ],
)
def test_bad_block_names_file_and_line(repo, spec, message):
    doc = repo / "doc.md"
    doc.write_text(f"one\ntwo\nthree <!-- figures: {spec} -->x<!-- /figures -->\n", encoding="utf-8")
    with pytest.raises(NegbenchError) as err:
        update_file(doc, repo, check=True)
    line = err.value.one_line()
    assert line.startswith("doc.md:3: ") and message in line and "\n" not in line
    result = runner.invoke(app, ["figures", str(doc), "--root", str(repo)])
    assert result.exit_code == 2
    assert "doc.md:3" in result.output


def test_unclosed_and_stray_markers(repo):
    with pytest.raises(NegbenchError, match=r"doc.md:2: .*not closed"):
        find_blocks("a\n<!-- figures: results/quick -->\n<!-- figures: results/quick --><!-- /figures -->", "doc.md")
    with pytest.raises(NegbenchError, match=r"doc.md:1: .*without an opening"):
        find_blocks("<!-- /figures -->", "doc.md")


def test_bad_input_leaves_other_files_untouched(repo):
    good, bad = repo / "good.md", repo / "bad.md"
    good.write_text(DOC, encoding="utf-8")
    bad.write_text("<!-- figures: results/nowhere -->x<!-- /figures -->\n", encoding="utf-8")
    result = runner.invoke(app, ["figures", str(good), str(bad), "--root", str(repo)])
    assert result.exit_code == 2
    assert good.read_text(encoding="utf-8") == DOC


def test_readme_figures_are_not_stale():
    """`negbench figures --check` over the real README.md and results/README.md."""
    stale = [entry for path in REAL_FILES for entry in update_file(path, REPO, check=True)]
    assert stale == [], f"stale figure blocks (run `negbench figures`): {stale}"
