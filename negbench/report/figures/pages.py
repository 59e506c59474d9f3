"""Each published store's ``leaderboard.md`` and ``index.html``, re-rendered in memory from the store and
compared with (or written over) the committed files: the pages ``negbench figures`` keeps in step.

A folder under ``results/`` with a page but no ``results.parquet`` is an *orphan* (:func:`orphaned_pages`): its
page would stay published with nothing to re-render it from, so ``negbench figures`` fails on it.

A page is a pure function of its store: the suite settings come from the store's ``suite.toml`` (or the
defaults) and the "generated" stamp is the newest row's ``created_at``, so a re-render is byte-identical."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from negbench._io import write_text_atomic
from negbench.errors import DataError
from negbench.report.figures.stores import RESULTS_ROOT, SUITE_FILE, generated_at, published_stores, store_settings
from negbench.report.html import render_html
from negbench.report.load import load_diagnostics, load_store
from negbench.report.markdown import leaderboard_markdown
from negbench.report.table import metric_columns
from negbench.run.store.base import RESULTS_FILE

__all__ = ["PAGE_FILES", "Page", "orphaned_pages", "plan_pages", "render_pages", "write_pages"]


PAGE_FILES = ("leaderboard.md", "index.html")


def render_pages(directory: str | Path) -> dict[str, str]:
    """``{"leaderboard.md": …, "index.html": …}`` of one store, rendered in memory. A baseline that the store
    does not hold is a DataError naming the store's ``suite.toml`` (the pages would compare with nothing)."""
    directory = Path(directory)
    rows, per_query = load_store(directory)
    settings = store_settings(directory)
    strategies = set(rows["strategy"].drop_nulls().to_list())
    if strategies and settings.baseline not in strategies:
        raise DataError(
            f"baseline {settings.baseline!r} is not a strategy of this store ({', '.join(sorted(strategies))}): "
            f"set [suite] baseline in {SUITE_FILE}",
            file=directory / SUITE_FILE,
        )
    if settings.suite is not None:
        suites = [settings.suite]
    elif "suite" in rows.columns:
        suites = sorted({str(v) for v in rows["suite"].drop_nulls().to_list()})
    else:
        suites = []
    title = "negbench · " + ", ".join(suites) if suites else "negbench leaderboard"
    pq = per_query if not per_query.is_empty() else None
    steps, overlap = load_diagnostics(directory, rows)
    baseline = settings.baseline
    primary = settings.primary_among(metric_columns(rows))
    markdown = leaderboard_markdown(
        rows, title, pq, baseline, steps=steps, primary=primary, comparisons=settings.comparisons
    )
    html = render_html(
        rows,
        pq,
        baseline=baseline,
        title=title,
        generated=generated_at(rows),
        steps=steps,
        overlap=overlap,
        primary_metric=primary,
        comparisons=settings.comparisons,
    )
    return dict(zip(PAGE_FILES, (markdown, html), strict=True))


@dataclass(frozen=True)
class Page:
    """One page file of a store: where it goes, its fresh text, and whether the committed file differs."""

    path: Path
    text: str
    where: str

    @property
    def stale(self) -> bool:
        return not self.path.is_file() or self.path.read_text(encoding="utf-8") != self.text


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def plan_pages(root: str | Path, stores: list[Path] | None = None) -> list[Page]:
    """Every page of every published store under ``root`` (or of ``stores``), rendered in memory; nothing is
    written, so a store that fails to render leaves all files as they were."""
    root = Path(root)
    pages = []
    for directory in published_stores(root) if stores is None else stores:
        for name, text in render_pages(directory).items():
            path = directory / name
            pages.append(Page(path, text, _display(path, root)))
    return pages


def write_pages(pages: list[Page]) -> list[str]:
    """Write the stale pages atomically; return where each one was (``results/x/index.html``)."""
    written = []
    for page in pages:
        if page.stale:
            write_text_atomic(page.path, page.text)
            written.append(page.where)
    return written


def orphaned_pages(root: str | Path) -> list[str]:
    """One line per folder under ``ROOT/results`` that holds a page (``leaderboard.md`` / ``index.html``) but no
    ``results.parquet``, sorted by path: ``results/old: index.html without a results.parquet: …``."""
    base = Path(root) / RESULTS_ROOT
    if not base.is_dir():
        return []
    folders = sorted({p.parent for name in PAGE_FILES for p in base.rglob(name) if p.is_file()})
    return [
        f"{_display(folder, Path(root))}: {', '.join(n for n in PAGE_FILES if (folder / n).is_file())} without a "
        f"{RESULTS_FILE}: restore the store or delete the page"
        for folder in folders
        if not (folder / RESULTS_FILE).is_file()
    ]
