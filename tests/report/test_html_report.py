"""The markdown and HTML leaderboards: escaping, CSP, no external URLs, Pareto fronts, `negbench report`."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

import polars as pl
import pytest
from typer.testing import CliRunner

from negbench.cli import app
from negbench.report.html import SCRIPT, STYLE, content_security_policy, render_html
from negbench.report.markdown import leaderboard_markdown, write_leaderboard
from negbench.report.pages import write_report
from negbench.report.plots import FRONT, Point, pareto_front, place_labels, scatter_svg, svg_of_img
from negbench.report.table import escape_md
from negbench.report.terminal import rich_table
from negbench.testing.results import synthetic_frames, synthetic_rows, synthetic_store

XSS = "<img src=x onerror=alert(1)>|x"
runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A synthetic store with a hostile strategy label, params, error text and dataset name."""
    root = tmp_path_factory.mktemp("report-store")
    return synthetic_store(
        root,
        {"in-batch": 0.0, "bm25": 0.06, XSS: 0.0, "none": -0.1, "ghost": 0.01, "broken": 0.0},
        datasets=("toy", "<script>alert('d')</script>"),
        n_queries=60,
        noise=0.03,
        strategy_names={XSS: "in-batch", "ghost": "not-a-registered-strategy"},
        params={"bm25": {"range_max": 30, "note": "</script><script>alert(2)</script>"}},
        failed=("broken",),
    )


@pytest.fixture(scope="module")
def page(store) -> str:
    return render_html(store.rows(), store.per_query(), generated="2025-01-01T00:00:00+00:00")


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in {"script", "style"} else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "script":
            self.scripts.append(data)
        elif self._in == "style":
            self.styles.append(data)


def parse(page: str) -> _Collect:
    parser = _Collect()
    parser.feed(page)
    return parser


def test_html_escapes_every_user_string(page: str) -> None:
    assert XSS not in page
    assert "&lt;img src=x onerror=alert(1)&gt;|x" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;d&#x27;)&lt;/script&gt;" in page
    assert "alert(2)" in page and "</script><script>alert(2)" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page  # the failed run's error text
    tags = parse(page).tags
    assert all((a.get("src") or "").startswith("data:image/svg+xml;base64,") for t, a in tags if t == "img")
    assert sum(1 for t, _ in tags if t == "script") == 1


def test_html_has_csp_matching_its_script_and_style(page: str) -> None:
    parsed = parse(page)
    metas = [
        a for t, a in parsed.tags if t == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy"
    ]
    assert len(metas) == 1
    csp = metas[0]["content"]
    assert csp == content_security_policy()
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert parsed.scripts == [SCRIPT] and parsed.styles == [STYLE]
    digest = base64.b64encode(hashlib.sha256(parsed.scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp
    # the CSP meta comes before the style and the script
    assert page.index("Content-Security-Policy") < page.index("<style>") < page.index("<script>")


def test_html_has_no_external_urls_handlers_or_style_attributes(page: str) -> None:
    assert "http://" not in page and "https://" not in page
    for tag, attrs in parse(page).tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name != "style", tag
            if name in {"src", "href", "action", "srcset", "xlink:href"}:
                assert (value or "").startswith(("#", "data:")), (tag, name, value)


def test_html_content(page: str) -> None:
    assert page.count('<table class="sortable">') == 8  # primary, secondary, costs, memory per dataset × model
    assert page.count('<h3 class="view">ndcg@10 (primary)</h3>') == 2
    images = re.findall(r'<img class="plot"[^>]*>', page)
    assert len(images) == 4  # throughput and memory plot per table
    svgs = [svg_of_img(img) for img in images]
    assert all(FRONT in svg and "bm25" in svg for svg in svgs)  # Pareto front drawn in blue, labels as text
    assert 'class="sig better"' in page and 'class="sig worse"' in page
    assert "Karpukhin et al. 2020" in page  # in-batch citation from the registry
    assert "not registered in this environment" in page  # unknown strategies are tolerated
    assert "fp-toy" in page and "2025-01-01T12:00:00+00:00" in page  # provenance
    assert "cpu: synthetic" in page


def test_empty_store_renders() -> None:
    assert "No results yet" in render_html(pl.DataFrame())


def test_markdown_escapes_and_marks(store) -> None:
    md = leaderboard_markdown(store.rows(), "t <b>", store.per_query())
    assert XSS not in md and "&lt;img src=x onerror=alert(1)&gt;\\|x" in md
    assert "# t &lt;b&gt;" in md and "&lt;script&gt;" in md
    bm25 = next(line for line in md.splitlines() if line.startswith("| bm25 "))
    none = next(line for line in md.splitlines() if line.startswith("| none "))
    assert "▲" in bm25 and "▼" in none
    assert "in-batch (baseline)" in md and "Holm" in md
    tables = [block.splitlines() for block in md.split("\n\n") if block.startswith("|")]
    assert len(tables) >= 3  # two leaderboards, and the rank summary of the two datasets
    for table_lines in tables:
        widths = {len(re.split(r"(?<!\\)\|", line)) for line in table_lines}
        assert len(widths) == 1  # every pipe inside a cell is escaped, so all rows have the same columns


def test_markdown_without_per_query_keeps_old_callers_working(store, tmp_path) -> None:
    md = leaderboard_markdown(store.rows(), "t")
    assert "▲" not in md and "Significance not computed" in md
    path = write_leaderboard(store.rows(), tmp_path / "lb.md", "t")
    assert path.read_text(encoding="utf-8") == md
    assert rich_table(store.rows()).row_count == 12
    assert escape_md("a|b") == "a\\|b"


def test_pareto_front_hand_example() -> None:
    xs = [1.0, 2.0, 0.5, 0.5, 2.0, float("nan")]
    ys = [1.0, 0.5, 2.0, 0.5, 0.5, 9.0]
    assert pareto_front(xs, ys) == [0, 1, 2, 4]  # D(0.5, 0.5) dominated by A; duplicates both kept
    assert pareto_front(xs, ys, x_higher_better=False) == [2]  # C: least x and most y
    assert pareto_front([1, 2, 3], [3, 2, 1]) == [0, 1, 2]
    assert pareto_front([], []) == []


def test_place_labels() -> None:
    spots = place_labels([(100, 100, "aaaa"), (101, 101, "bbbb"), (102, 100, "cccc")], (0, 0, 400, 300))
    boxes = {(x, y) for x, y, _ in spots}
    assert len(boxes) == 3  # three distinct positions for three crowded points


def test_scatter_svg_escapes_labels() -> None:
    svg = scatter_svg([Point("<a>", 1, 0.5, 0.1), Point("b", 2, 0.6)], x_label="x&", y_label="y", title="<t>")
    assert "<a>" not in svg and "&lt;a&gt;" in svg and "x&amp;" in svg and "&lt;t&gt;" in svg
    assert FRONT in svg
    assert "no data" in scatter_svg([], x_label="x", y_label="y", title="t")


def test_report_command_writes_files(store, tmp_path) -> None:
    result = runner.invoke(app, ["report", str(store.directory), "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    md = (tmp_path / "site" / "leaderboard.md").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and "▲" in md
    assert (tmp_path / "site" / "index.html").stat().st_mode & 0o044  # readable by a web server


def test_report_command_bad_store_is_one_line_exit_2(tmp_path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "results directory not found" in result.output
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.parquet").write_bytes(b"not parquet")
    result = runner.invoke(app, ["report", str(tmp_path / "bad")])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("error:")
    with pytest.raises(Exception, match="missing column"):
        pl.DataFrame({"x": [1]}).write_parquet(tmp_path / "bad" / "results.parquet")
        write_report(tmp_path / "bad")


def test_report_on_toy_run_shape(tmp_path) -> None:
    """Stores whose optional columns are all null (peak_gpu_mb, git_rev) still render."""
    store = synthetic_store(tmp_path, {"in-batch": 0.0, "dense": 0.02}, seeds=(0,), n_queries=5)
    rows = store.rows().with_columns(pl.lit(None).alias("git_rev"), pl.lit(None).alias("peak_gpu_mb"))
    html = render_html(rows, store.per_query())
    assert "peak GPU MB" not in html and "not recorded" in html
    assert re.search(r"<td data-sort=\"[0-9.]+\">0\.\d{4}</td>", html)  # one seed: no ± interval


def test_all_failed_store_renders(tmp_path) -> None:
    store = synthetic_store(
        tmp_path, {"in-batch": 0.0, "bm25": 0.1}, seeds=(0,), n_queries=3, failed=("in-batch", "bm25")
    )
    html = render_html(store.rows(), store.per_query())
    assert html.count("failed: RuntimeError") >= 2 and "<img" not in html
    assert "failed: RuntimeError" in leaderboard_markdown(store.rows(), "t", store.per_query())


def test_training_overrides_and_tuning_shown(tmp_path) -> None:
    import json

    store = synthetic_store(tmp_path, {"in-batch": 0.0, "big": 0.0}, seeds=(0,), n_queries=3)
    rows = store.rows().with_columns(
        pl.when(pl.col("strategy") == "big")
        .then(pl.lit(json.dumps({"batch_size": 512, "lr": 2e-5})))
        .otherwise(pl.lit(json.dumps({"batch_size": 32, "lr": 2e-5})))
        .alias("training"),
        pl.when(pl.col("strategy") == "big").then(pl.lit(7)).otherwise(None).alias("trial"),
    )
    rows = pl.concat(
        [rows, rows.filter(pl.col("strategy") == "in-batch").with_columns(pl.lit("extra").alias("run_id"))]
    )  # make the suite default the most common config
    html = render_html(rows, store.per_query())
    assert "<code>batch_size = 512</code>" in html and "best trial 7" in html
    assert html.count("batch_size = ") == 1


def test_the_diagnostics_note_describes_only_columns_the_rows_have() -> None:
    """The strategy cards' note described a "labelled-positive share" that a store without
    ``false_negative_share`` (scifact-cpu) does not show; it names it only where some row has it."""
    rows, per_query = synthetic_frames(synthetic_rows({"in-batch": 0.0, "dense": 0.01}, seeds=(0,), n_queries=10))
    assert "<em>labelled-positive share</em>" not in render_html(rows, per_query, generated="x")
    shared = rows.with_columns(false_negative_share=pl.lit(0.1))
    assert "<em>labelled-positive share</em>" in render_html(shared, per_query, generated="x")
