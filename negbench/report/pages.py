"""A results store's published pages: ``leaderboard.md`` and the self-contained ``index.html``, written
atomically from the store (:func:`negbench.report.load.load_store`)."""

from __future__ import annotations

from pathlib import Path

from negbench._io import write_text_atomic
from negbench.errors import DataError
from negbench.report.figures.stores import store_settings
from negbench.report.html import render_html
from negbench.report.html.sections import distinct
from negbench.report.load import load_diagnostics, load_store
from negbench.report.markdown import leaderboard_markdown
from negbench.report.table import metric_columns

__all__ = ["write_report"]


def write_report(
    results_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    baseline: str | None = None,
    title: str | None = None,
    alpha: float = 0.05,
    primary: str | None = None,
) -> tuple[Path, Path]:
    """Write ``leaderboard.md`` and ``index.html`` for a results directory; return their paths.

    ``baseline`` defaults to the store's ``suite.toml`` ``[suite] baseline`` (else ``in-batch``). ``primary`` is the
    metric the verdict and the marks rest on (one the store holds); by default the one the store's ``suite.toml``
    declares (``[evaluation] primary``, else ``[tuning] metric``), else ``ndcg@10`` or the first metric. The
    suite.toml's ``[[comparisons]]`` are tested on every board."""
    rows, per_query = load_store(results_dir)
    settings = store_settings(results_dir)
    metrics = metric_columns(rows)
    if primary is not None and metrics and primary not in metrics:
        raise DataError(f"{primary!r} is not a metric of this store ({', '.join(metrics)})", field="--primary")
    primary = primary or settings.primary_among(metrics)
    baseline = baseline or settings.baseline
    out = Path(out_dir) if out_dir is not None else Path(results_dir)
    if out.exists() and not out.is_dir():
        raise DataError("is a file; --out names the folder for leaderboard.md and index.html", file=out, field="--out")
    if title is None:
        suites = distinct(rows, "suite")
        title = "negbench · " + ", ".join(suites) if suites else "negbench leaderboard"
    pq = per_query if not per_query.is_empty() else None
    steps, overlap = load_diagnostics(results_dir, rows)
    md_path, html_path = out / "leaderboard.md", out / "index.html"
    claims = settings.comparisons
    markdown = leaderboard_markdown(rows, title, pq, baseline, alpha, steps=steps, primary=primary, comparisons=claims)
    page = render_html(
        rows,
        pq,
        baseline=baseline,
        title=title,
        alpha=alpha,
        primary_metric=primary,
        steps=steps,
        overlap=overlap,
        comparisons=claims,
    )
    write_text_atomic(md_path, markdown)
    write_text_atomic(html_path, page)
    return md_path, html_path
