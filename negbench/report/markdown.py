"""The leaderboard as markdown (``leaderboard.md``), written atomically."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from negbench._io import write_text_atomic
from negbench.report.stats import (
    BETTER,
    WORSE,
    baseline_config,
    config_notes,
    rank_power_note,
    rank_summary,
    significance,
    with_config_labels,
)
from negbench.report.table import (
    aggregate,
    cost_columns,
    escape_md,
    fmt_batch,
    fmt_delta,
    format_value,
    has_budget_changes,
    leaderboard_header,
    mark_cell,
    memory_fallback_used,
    metric_columns,
)

__all__ = ["diagnostics_markdown", "leaderboard_markdown", "write_leaderboard"]


def leaderboard_markdown(
    rows: pl.DataFrame,
    title: str = "negbench leaderboard",
    per_query: pl.DataFrame | None = None,
    baseline: str = "in-batch",
    alpha: float = 0.05,
    *,
    steps: pl.DataFrame | None = None,
) -> str:
    """A GFM leaderboard: one table per dataset × model, one row per configuration, mean ± 95% CI over
    seeds, significance marks, the Δ of the primary (first) metric vs the baseline, data budget and costs.

    Marks (▲ better, ▼ worse than ``baseline``) and Δ need ``per_query`` (the store's per-query scores);
    without them the table has neither. Every user-supplied string goes through :func:`escape_md`.
    ``steps`` (``steps.parquet``) adds time-to-target per dataset × model; a store with several datasets
    gets the rank summary, one with planted false negatives their table; then what each diagnostic means.
    """
    if rows.is_empty():
        return f"# {escape_md(title)}\n\nNo results yet.\n"
    if per_query is not None and per_query.is_empty():
        per_query = None
    labelled = with_config_labels(rows)
    table = aggregate(labelled)
    metrics = metric_columns(rows)
    primary = metrics[0] if metrics else None
    sig = significance(labelled, per_query, baseline, metrics, alpha) if per_query is not None else {}
    show_delta = per_query is not None and primary is not None
    show_budget = has_budget_changes(rows)
    costs = cost_columns(rows)
    lines = [f"# {escape_md(title)}", ""]
    devices = sorted(set(rows["device"].drop_nulls().to_list())) if "device" in rows.columns else []
    if devices:
        lines += [f"Device: {escape_md(', '.join(devices))}", ""]
    for (dataset, model), group in table.group_by(["dataset", "model"], maintain_order=True):
        here = labelled.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
        base = baseline_config(here, baseline)
        lines += [f"## {escape_md(dataset)} · {escape_md(model)}", ""]
        header = leaderboard_header(metrics, costs, show_delta=show_delta, show_budget=show_budget)
        lines.append("| " + " | ".join(escape_md(h) for h in header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 2) + ["---"]) + "|")
        lines += [
            _row(rec, dataset, model, base, metrics, sig, show_delta, primary, show_budget, costs)
            for rec in group.iter_rows(named=True)
        ]
        lines.append("")
        notes = config_notes(here) + ([base.note()] if base is not None and base.note() else [])
        for note in notes:
            lines += [f"Note: {escape_md(note)}", ""]
    lines += _legend(rows, per_query is not None, show_budget, show_delta, primary, baseline, alpha)
    lines += diagnostics_markdown(rows, primary, baseline, alpha, steps)
    return "\n".join(lines) + "\n"


def _row(
    rec: dict,
    dataset: str,
    model: str,
    base,
    metrics: list[str],
    sig: dict,
    show_delta: bool,
    primary: str | None,
    show_budget: bool,
    costs: list,
) -> str:
    """One configuration's line of the markdown table."""
    label = rec["label"]
    is_base = base is not None and label == base.label
    cells = [escape_md(label) + (" (baseline)" if is_base else ""), str(rec.get("seeds") or 0)]
    cells += [
        format_value(rec.get(m), 4, rec.get(f"{m}_ci")) + mark_cell(sig.get((dataset, model, label, m)))
        for m in metrics
    ]
    if show_delta:
        cells.append("–" if is_base else fmt_delta(sig.get((dataset, model, label, primary))))
    cells += [format_value(rec.get("steps"), 0), format_value(rec.get("examples_seen"), 0), fmt_batch(rec)]
    if show_budget:
        cells.append(escape_md(rec.get("budget") or "–"))
    cells += [format_value(rec.get(col), digits) for _, col, digits in costs]
    cells.append(escape_md(rec.get("failed") or "ok"))
    return "| " + " | ".join(cells) + " |"


def _legend(
    rows: pl.DataFrame,
    has_per_query: bool,
    show_budget: bool,
    show_delta: bool,
    primary: str | None,
    baseline: str,
    alpha: float,
) -> list[str]:
    """What the leaderboard's columns, marks and Δ mean."""
    lines: list[str] = []
    lines.append(
        "Metrics: mean ± half-width of the 95% confidence interval over seeds (Student t) "
        "on the test split; costs are means. Each row is one configuration (dataset × model × "
        "strategy × config key); runs of different configurations are never pooled."
    )
    lines.append(
        "steps / examples: optimiser steps and training examples seen per run; batch: mean/min batch "
        "size"
        + ("; budget: a strategy's declared reason for changing the data budget (else equal)" if show_budget else "")
        + ". Times in seconds (train s: training steps only; total s: "
        "the whole run); RSS / GPU: peak MB during training and during evaluation."
    )
    if memory_fallback_used(rows):
        lines.append(
            "train RSS / GPU MB of runs recorded before training and evaluation memory were measured "
            "apart is the peak of the whole run."
        )
    if not has_per_query:
        lines.append("Significance not computed (no per-query scores).")
    else:
        lines.append(
            f"{BETTER} / {WORSE}: significantly better / worse than the baseline "
            f"{escape_md(baseline)} (Wilcoxon signed-rank test on per-query scores averaged over seeds; "
            "two-sided p = twice the smaller one-sided p, the mark points to that side; "
            f"Holm-corrected per dataset × model × metric, α = {alpha:g})."
        )
        if show_delta:
            lines.append(
                f"Δ vs baseline: mean per-query difference in {escape_md(primary)} against the "
                "baseline, with its 95% bootstrap confidence interval (percentile, "
                "seeded, resampling queries)."
            )
    return lines


def diagnostics_markdown(
    rows: pl.DataFrame, metric: str | None, baseline: str, alpha: float, steps: pl.DataFrame | None
) -> list[str]:
    """The markdown sections after the leaderboard tables: time to target, across datasets, planted false
    negatives, and what the diagnostics mean."""
    from negbench.report.diagnostics import MEANINGS, TARGET_FRACTION, planted_table, strategy_curves, time_to_target

    lines: list[str] = []
    if steps is not None and not steps.is_empty() and "run_id" in rows.columns:
        curves = strategy_curves(steps, rows, "dev")
        if curves:
            lines += ["", f"## Time to {TARGET_FRACTION:.0%} of the best dev value", ""]
            lines += [
                "| dataset · model | dev metric | target | strategy | training wall time |",
                "|---|---|---:|---|---:|",
            ]
            for (dataset, model, dev_metric), series in curves.items():
                target, reached = time_to_target(series)
                for strategy, t in reached.items():
                    lines.append(
                        f"| {escape_md(dataset)} · {escape_md(model)} | {escape_md(dev_metric)} | "
                        f"{target:.4f} | {escape_md(strategy)} | {'never' if t is None else f'{t:,.1f} s'} |"
                    )
    if metric is not None:
        for summary in rank_summary(rows, metric, baseline):
            lines += ["", f"## Across datasets: {escape_md(summary.model)}, {escape_md(metric)}", ""]
            lines.append("| strategy | mean rank | " + " | ".join(escape_md(d) for d in summary.datasets) + " |")
            lines.append("|---|---:|" + "---:|" * len(summary.datasets))
            for s, r in summary.mean_rank.items():
                cells = [f"{summary.scores[s][d]:.4f} ({summary.ranks[s][d]:g})" for d in summary.datasets]
                lines.append(f"| {escape_md(s)} | {r:.2f} | " + " | ".join(cells) + " |")
            lines += ["", escape_md(summary.friedman_note)]
            if summary.pairs:
                lines += ["", "| pair | wins/losses | p | Holm p |", "|---|---:|---:|---:|"]
                lines += [
                    f"| {escape_md(p.strategy)} vs {escape_md(p.reference)} | {p.wins}/{p.losses} | "
                    f"{p.p_value:.3g} | {p.p_holm:.3g}{' ✓' if p.p_holm < alpha else ''} |"
                    for p in summary.pairs
                ]
            if summary.excluded:
                lines += ["", "Not ranked (missing on some dataset): " + escape_md(", ".join(summary.excluded))]
            lines += [
                "",
                f"Cells: mean {escape_md(metric)} over seeds (rank on that dataset; 1 = best, ties "
                "averaged). Pairs: two-sided Wilcoxon signed-rank over datasets of the per-dataset means, "
                f"Holm-corrected (✓: Holm p < {alpha:g}). " + escape_md(rank_power_note(summary)),
            ]
        table = planted_table(rows, metric)
        if table is not None:
            lines += [
                "",
                "## Planted false negatives",
                "",
                f"| dataset · model | strategy | planted | {escape_md(metric)} without | with | drop | n | "
                "planted FN share | planted FN in-batch share |",
                "|---|---|---|---:|---:|---:|---:|---:|---:|",
            ]
            for r in table.iter_rows(named=True):
                planted = format_value(r["planted_fn_rate"], 2) + (
                    f" {escape_md(r['planted_fn_kind'])}" if r["planted_fn_kind"] else ""
                )
                lines.append(
                    f"| {escape_md(r['dataset_base'])} · {escape_md(r['model'])} | "
                    f"{escape_md(r['strategy'])} | {planted} | {format_value(r['without'])} | "
                    f"{format_value(r['with'])} | "
                    f"{format_value(r['drop'])} | {r['n']} | {format_value(r['planted_fn_share'])} | "
                    f"{format_value(r['planted_fn_inbatch_share'])} |"
                )
            lines += [
                "",
                "Seeds paired: drop is the mean over the n seeds run both ways of without − with "
                "(positive: planting hurt).",
            ]
    lines += ["", "## What the diagnostics mean", ""]
    lines += [f"- **{name}**: {text}" for name, text in MEANINGS.items()]
    return lines


def write_leaderboard(
    rows: pl.DataFrame, path: Path, title: str, per_query: pl.DataFrame | None = None, baseline: str = "in-batch"
) -> Path:
    """Write :func:`leaderboard_markdown` to ``path`` atomically."""
    return write_text_atomic(path, leaderboard_markdown(rows, title, per_query, baseline))
