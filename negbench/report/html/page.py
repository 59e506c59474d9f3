"""The self-contained HTML leaderboard page (:func:`render_html`)."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from negbench.report.boards import boards
from negbench.report.captions import method_text
from negbench.report.diagnostics import (
    strategy_curves,
)
from negbench.report.html.assets import SCRIPT, STYLE, content_security_policy
from negbench.report.html.cells import esc
from negbench.report.html.sections import (
    distinct,
    meanings_section,
    planted_section,
    provenance_section,
    rank_section,
    strategy_sections,
)
from negbench.report.html.tables import (
    claims_table,
    cost_plots,
    hardness_section,
    learning_curves,
    overlap_section,
    strategy_table,
)
from negbench.report.leaderboard import LeaderboardTable
from negbench.report.stats import config_notes
from negbench.report.table import aggregate, memory_fallback_used
from negbench.report.verdict import Verdict, verdicts

__all__ = ["render_html"]


def render_html(
    rows: pl.DataFrame,
    per_query: pl.DataFrame | None = None,
    *,
    baseline: str = "in-batch",
    title: str | None = None,
    alpha: float = 0.05,
    primary_metric: str | None = None,
    generated: str | None = None,
    reg: Any = None,
    steps: pl.DataFrame | None = None,
    overlap: pl.DataFrame | None = None,
    comparisons: Sequence[tuple[str, str]] = (),
) -> str:
    """The whole ``index.html`` as a string (see the module docstring for what it guarantees).

    ``steps`` (``steps.parquet``) adds learning curves, time-to-target and hardness series per dataset ×
    model; ``overlap`` (:func:`negbench.report.load.load_overlap`) adds the overlap heat map."""
    generated = generated or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if title is None:
        suites = distinct(rows, "suite")
        title = "negbench · " + ", ".join(suites) if suites else "negbench leaderboard"
    body: list[str] = [f"<h1>{esc(title)}</h1>"]
    if rows.is_empty():
        body.append("<p>No results yet.</p>")
        return _page(title, body)
    page = _Board.of(rows, per_query, baseline, alpha, primary_metric, steps, overlap, comparisons)
    rows = page.rows
    devices = distinct(rows, "device")
    body.append(
        f'<p class="muted">{rows.height} runs · device: {esc(", ".join(devices) or "unknown")} · '
        f"baseline: {esc(baseline)} · generated {esc(generated)}</p>"
    )
    body += [_verdict_html(v) for v in page.verdicts]
    body.append(page.nav())
    body += [
        page.dataset_section(i, table, group)
        for i, (table, (_, group)) in enumerate(zip(page.tables, page.groups, strict=True))
    ]
    if page.ranks:
        body.append('<section id="ranks"><h2>Across datasets</h2>' + page.ranks + "</section>")
    if page.planted:
        body.append('<section id="planted"><h2>Planted false negatives</h2>' + page.planted + "</section>")
    body.append('<section id="strategies"><h2>Strategies</h2>' + strategy_sections(rows, reg) + "</section>")
    body.append('<section id="diagnostics"><h2>What the diagnostics mean</h2>' + meanings_section() + "</section>")
    body.append('<section id="provenance"><h2>Provenance</h2>' + provenance_section(rows, generated) + "</section>")
    body.append(f'<section id="method"><h2>Method</h2><p>{esc(method_text(alpha))}</p></section>')
    return _page(title, body)


@dataclass
class _Board:
    """What every section of one page is computed from, computed once."""

    rows: pl.DataFrame
    baseline: str
    metrics: list[str]
    primary: str | None
    sig: dict
    groups: list
    tables: list[LeaderboardTable]
    verdicts: list[Verdict]
    alpha: float
    legacy_memory: bool
    dev_curves: dict
    hard_curves: dict
    overlap: pl.DataFrame | None
    ranks: str
    planted: str

    @classmethod
    def of(cls, rows, per_query, baseline, alpha, primary_metric, steps, overlap, comparisons) -> _Board:
        board = boards(rows, per_query, baseline, alpha, primary_metric, comparisons)
        rows, metrics, primary, sig, tables = board.rows, board.metrics, board.primary, board.sig, board.tables
        has_steps = steps is not None and not steps.is_empty() and "run_id" in rows.columns
        return cls(
            rows=rows,
            baseline=baseline,
            metrics=metrics,
            primary=primary,
            sig=sig,
            groups=list(aggregate(rows).group_by(["dataset", "model"], maintain_order=True)),
            tables=tables,
            verdicts=verdicts(tables, rows, alpha, baseline),
            alpha=alpha,
            legacy_memory=memory_fallback_used(_training(rows)),
            dev_curves=strategy_curves(steps, rows, "dev") if has_steps else {},
            hard_curves=strategy_curves(steps, rows, "hardness", x="step") if has_steps else {},
            overlap=overlap,
            ranks=rank_section(rows, primary, baseline, alpha) if primary else "",
            planted=planted_section(rows, primary) if primary else "",
        )

    def nav(self) -> str:
        nav = ["<nav><strong>Contents</strong><ul>"]
        nav += [f'<li><a href="#dm-{i}">{esc(d)} · {esc(m)}</a></li>' for i, ((d, m), _) in enumerate(self.groups)]
        nav += ['<li><a href="#ranks">Across datasets</a></li>'] if self.ranks else []
        nav += ['<li><a href="#planted">Planted false negatives</a></li>'] if self.planted else []
        nav.append(
            '<li><a href="#strategies">Strategies</a></li><li><a href="#diagnostics">What the diagnostics '
            'mean</a></li><li><a href="#provenance">Provenance</a></li><li><a href="#method">Method</a></li>'
            "</ul></nav>"
        )
        return "".join(nav)

    def dataset_section(self, i: int, table: LeaderboardTable, group: pl.DataFrame) -> str:
        """One dataset × model: its table, notes, cost plots and diagnostics."""
        dataset, model, base = table.dataset, table.model, table.baseline
        here = self.rows.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
        out = [f'<section id="dm-{i}"><h2>{esc(dataset)} · {esc(model)}</h2>']
        if base is None:
            out.append(
                f'<p class="note">Baseline {esc(self.baseline)} not in these results: no significance marks.</p>'
            )
        out += [claims_table(table.declared, self.alpha)] if table.declared else []
        for view in table.views:
            out.append(f'<h3 class="view">{esc(view.title)}</h3>' + strategy_table(table, view))
            out.append(f'<p class="note">{esc(view.caption)}</p>' if view.caption else "")
        out.append('<p class="note">Click a column header to sort.</p>')
        notes = config_notes(here) + ([base.note()] if base is not None and base.note() else [])
        out += [f'<p class="note">{esc(note)}</p>' for note in notes + table.subset_notes() + table.repeat_notes()]
        if self.primary:
            out.append(cost_plots(group, self.primary, self.legacy_memory))
        out.append(learning_curves(self.dev_curves, dataset, model, base.label if base is not None else None))
        out.append(hardness_section(self.hard_curves, dataset, model))
        out.append(overlap_section(self.overlap, dataset, model))
        out.append("</section>")
        return "\n".join(out)


def _training(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows of runs that trained (the zero-shot ``none`` takes no step and has no training memory)."""
    return rows.filter(pl.col("steps").fill_null(1) > 0) if "steps" in rows.columns else rows


def _verdict_html(verdict: Verdict) -> str:
    caveats = f"<p><strong>Caveats.</strong> {esc(' '.join(verdict.caveats))}</p>" if verdict.caveats else ""
    return f'<div class="verdict"><p><strong>Verdict.</strong> {esc(" ".join(verdict.findings))}</p>{caveats}</div>'


def _page(title: str, body: list[str]) -> str:
    csp = html.escape(content_security_policy(), quote=False)  # no '"' inside; keep the quotes readable
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n<body>"
        + "\n".join(body)
        + f"\n<script>{SCRIPT}</script></body></html>\n"
    )
