"""The published artefacts are generated, never typed: the figures in README.md and results/README.md come from
figures blocks, and every committed store's ``leaderboard.md`` / ``index.html`` is what ``negbench figures``
renders from that store today. After a change to a renderer or a store, regenerate everything with
``negbench figures`` (from the repository root) and commit the result."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from negbench.cli import app
from negbench.report.figures import DEFAULT_FILES, PAGE_FILES, published_stores, render_pages, typed_in_file
from negbench.report.figures.pages import orphaned_pages

REPO = Path(__file__).resolve().parents[1]
STORES = published_stores(REPO)


@pytest.mark.parametrize("name", DEFAULT_FILES)
def test_no_typed_figures_outside_blocks(name: str) -> None:
    """Every figure of the published markdown comes from a ``<!-- figures: … -->`` block.

    The rule (:mod:`negbench.report.figures.typed`, whose docstring is the full statement): outside figures
    blocks (their markers included), comments, fenced code blocks and inline code that is configuration (an
    assignment such as ``batch_size = 32``, a command line, or one token that is a name), a *figure* is a number
    with a decimal point or comma (``0.7562``, ``+0.0227``, ``0,6912``), one in scientific notation with a
    decimal mantissa (``9.8e-2``), a percentage (``24 %``), a duration (``18 min``, ``56 s``, ``29 minutes``,
    ``4 hrs``), a multiple (``19×``), a compute, memory or throughput quantity (``81 TFLOP``, ``3309 MB``) or a
    markdown table row with a cell that is a number; a number in backticks (`` `0.6912` ``) is a figure too.
    Integers in prose (``300 test queries``, ``2-core``, ``14 steps of 32``, ``2,000``), whole-mantissa settings
    (``lr 3e-5``) and dates are not figures. The allow-list (``ALLOWED``) exempts only version numbers (a dotted
    triple such as ``2.13.0``, and ``Python ≥ 3.11``) and the 95% level of the confidence intervals. A figure
    that no store supports is removed, not allow-listed.
    """
    typed = typed_in_file(REPO / name, REPO)
    assert typed == [], "figures typed outside a block (generate them with a figures block or remove them):\n" + (
        "\n".join(typed)
    )


def test_results_has_published_stores() -> None:
    assert [p.name for p in STORES], "no results/*/results.parquet found"
    assert all((p / "results.parquet").is_file() for p in STORES)


def test_no_orphaned_pages() -> None:
    """No folder under results/ keeps a leaderboard.md or index.html without the results.parquet it is rendered
    from: such a page would stay published with nothing to check it against. Delete it or restore the store."""
    orphans = orphaned_pages(REPO)
    assert orphans == [], "pages without a store:\n" + "\n".join(orphans)


@pytest.mark.parametrize("store", STORES, ids=[p.name for p in STORES])
def test_committed_pages_match_their_stores(store: Path) -> None:
    """Each store's committed leaderboard.md and index.html are byte-identical to a re-render in memory (with the
    suite settings of the store's ``suite.toml`` and the newest row's ``created_at`` as the generated stamp)."""
    rendered = render_pages(store)
    assert sorted(rendered) == sorted(PAGE_FILES)
    for name, text in rendered.items():
        path = store / name
        assert path.is_file(), f"{path.relative_to(REPO)} is missing: run `negbench figures`"
        committed = path.read_text(encoding="utf-8")
        assert committed == text, (
            f"{path.relative_to(REPO)} is an older render ({len(committed.encode())} bytes, "
            f"{len(text.encode())} now): run `negbench figures`"
        )


def test_figures_check_passes_on_the_repository() -> None:
    """``negbench figures --check`` (blocks, pages, orphaned pages and typed figures) exits 0 on the committed
    tree."""
    result = CliRunner().invoke(app, ["figures", "--check", "--root", str(REPO)])
    assert result.exit_code == 0, result.output
