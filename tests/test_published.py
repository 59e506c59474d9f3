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

REPO = Path(__file__).resolve().parents[1]
STORES = published_stores(REPO)


@pytest.mark.parametrize("name", DEFAULT_FILES)
def test_no_typed_figures_outside_blocks(name: str) -> None:
    """Every figure of the published markdown comes from a ``<!-- figures: … -->`` block.

    The rule (:mod:`negbench.report.figures.typed`): outside figures blocks (their markers included), fenced
    code blocks and inline code spans (commands, suite settings, file and dataset names), a *figure* is a
    number with a decimal point (``0.7562``, ``+0.0227``), a percentage (``24 %``), a duration (``18 min``,
    ``56 s``) or a markdown table row with a cell that is a number. Integers in prose (``300 test queries``,
    ``2-core``, ``14 steps of 32``) and dates are not figures. The allow-list (``ALLOWED``) exempts only
    version numbers (a dotted triple such as ``2.13.0``, and ``Python ≥ 3.11``) and the 95% level of the
    confidence intervals. A figure that no store supports is removed, not allow-listed.
    """
    typed = typed_in_file(REPO / name, REPO)
    assert typed == [], "figures typed outside a block (generate them with a figures block or remove them):\n" + (
        "\n".join(typed)
    )


def test_results_has_published_stores() -> None:
    assert [p.name for p in STORES], "no results/*/results.parquet found"
    assert all((p / "results.parquet").is_file() for p in STORES)


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
    """``negbench figures --check`` (blocks, pages and typed figures) exits 0 on the committed tree."""
    result = CliRunner().invoke(app, ["figures", "--check", "--root", str(REPO)])
    assert result.exit_code == 0, result.output
