"""The self-contained HTML leaderboard page (:func:`render_html`)."""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from typing import Any

import polars as pl

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
from negbench.report.html.tables import cost_plots, hardness_section, learning_curves, overlap_section, strategy_table
from negbench.report.stats import (
    BETTER,
    WORSE,
    baseline_config,
    config_notes,
    significance,
    with_config_labels,
)
from negbench.report.table import aggregate, cost_columns, has_budget_changes, memory_fallback_used, metric_columns

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
    page = _Board.of(rows, per_query, baseline, alpha, primary_metric, steps, overlap)
    rows = page.rows
    devices = distinct(rows, "device")
    body.append(
        f'<p class="muted">{rows.height} runs · device: {esc(", ".join(devices) or "unknown")} · '
        f"baseline: {esc(baseline)} · generated {esc(generated)}</p>"
    )
    body.append(page.nav())
    body += [page.dataset_section(i, dataset, model, group) for i, ((dataset, model), group) in enumerate(page.groups)]
    if page.ranks:
        body.append('<section id="ranks"><h2>Across datasets</h2>' + page.ranks + "</section>")
    if page.planted:
        body.append('<section id="planted"><h2>Planted false negatives</h2>' + page.planted + "</section>")
    body.append('<section id="strategies"><h2>Strategies</h2>' + strategy_sections(rows, reg) + "</section>")
    body.append('<section id="diagnostics"><h2>What the diagnostics mean</h2>' + meanings_section() + "</section>")
    body.append('<section id="provenance"><h2>Provenance</h2>' + provenance_section(rows, generated) + "</section>")
    body.append(_method_section(alpha))
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
    costs: list
    show_budget: bool
    legacy_memory: bool
    dev_curves: dict
    hard_curves: dict
    overlap: pl.DataFrame | None
    ranks: str
    planted: str

    @classmethod
    def of(cls, rows, per_query, baseline, alpha, primary_metric, steps, overlap) -> _Board:
        metrics = metric_columns(rows)
        primary = primary_metric if primary_metric in metrics else (metrics[0] if metrics else None)
        rows = with_config_labels(rows)
        sig = significance(rows, per_query, baseline, metrics, alpha) if per_query is not None else {}
        has_steps = steps is not None and not steps.is_empty() and "run_id" in rows.columns
        return cls(
            rows=rows,
            baseline=baseline,
            metrics=metrics,
            primary=primary,
            sig=sig,
            groups=list(aggregate(rows).group_by(["dataset", "model"], maintain_order=True)),
            costs=cost_columns(rows),
            show_budget=has_budget_changes(rows),
            legacy_memory=memory_fallback_used(rows),
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

    def dataset_section(self, i: int, dataset: str, model: str, group: pl.DataFrame) -> str:
        """One dataset × model: its table, notes, cost plots and diagnostics."""
        here = self.rows.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
        base = baseline_config(here, self.baseline)
        delta_metric = self.primary if self.sig else None
        out = [f'<section id="dm-{i}"><h2>{esc(dataset)} · {esc(model)}</h2>']
        if base is None:
            out.append(
                f'<p class="note">Baseline {esc(self.baseline)} not in these results: no significance marks.</p>'
            )
        out.append(
            strategy_table(
                group, self.metrics, self.sig, base, dataset, model, self.costs, self.show_budget, delta_metric
            )
        )
        out.append(
            '<p class="note">Click a column header to sort. Metrics: mean ± 95% CI over seeds. '
            f'<span class="sig better">{esc(BETTER)}</span> / <span class="sig worse">{esc(WORSE)}</span>: '
            "significantly better / worse than the baseline (hover for p-values)."
            + (
                f" Δ vs baseline: mean per-query difference in {esc(delta_metric)} with its 95% bootstrap CI."
                if delta_metric
                else ""
            )
            + "</p>"
        )
        notes = config_notes(here) + ([base.note()] if base is not None and base.note() else [])
        out += [f'<p class="note">{esc(note)}</p>' for note in notes]
        if self.primary:
            out.append(cost_plots(group, self.primary, self.legacy_memory))
        out.append(learning_curves(self.dev_curves, dataset, model))
        out.append(hardness_section(self.hard_curves, dataset, model))
        out.append(overlap_section(self.overlap, dataset, model))
        out.append("</section>")
        return "\n".join(out)


def _method_section(alpha: float) -> str:
    return (
        '<section id="method"><h2>Method</h2><p>Each row aggregates the finished runs (seeds) of one '
        "configuration: dataset × model × strategy × config key (a hash of everything but the seed that "
        "changes the result); configurations are never pooled, and a label with several is shown once "
        "per configuration with a short key. Metrics are computed on the test split after training; the "
        "interval is the 95% Student-t confidence interval of the mean over seeds. Significance: "
        "per-query scores are averaged over seeds, each configuration is compared with the baseline "
        "(the newest configuration of the baseline label) by a Wilcoxon signed-rank test (Pratt's "
        "treatment of ties); the two-sided p is twice the smaller one-sided p, the mark points to that "
        "side, and the p-values of one dataset × model × metric are Holm-corrected; marks at "
        f"α = {alpha:g}. Δ vs baseline is the mean per-query difference with a seeded percentile-bootstrap "
        "95% CI. Costs (throughput, time, memory) are means over seeds; steps, examples and batch sizes "
        "show each configuration's data budget.</p></section>"
    )


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
