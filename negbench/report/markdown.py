"""The leaderboard as markdown (``leaderboard.md``), written atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from negbench._io import write_text_atomic
from negbench.report.boards import boards
from negbench.report.captions import method_text
from negbench.report.claims import CLAIM_COLUMNS, claim_cells, claims_caption
from negbench.report.leaderboard import LeaderboardTable, View, plain_cell
from negbench.report.stats import (
    DeclaredTest,
    baseline_config,
    config_notes,
    rank_power_note,
    rank_summary,
    with_config_labels,
)
from negbench.report.table import escape_md, format_value
from negbench.report.verdict import verdicts

__all__ = ["claims_markdown", "diagnostics_markdown", "leaderboard_markdown", "table_markdown", "write_leaderboard"]


def leaderboard_markdown(
    rows: pl.DataFrame,
    title: str = "negbench leaderboard",
    per_query: pl.DataFrame | None = None,
    baseline: str = "in-batch",
    alpha: float = 0.05,
    *,
    steps: pl.DataFrame | None = None,
    primary: str | None = None,
    comparisons: Sequence[tuple[str, str]] = (),
) -> str:
    """A GFM leaderboard that opens with the verdict (:mod:`negbench.report.verdict`), then per dataset × model
    the board's tables (:mod:`negbench.report.leaderboard`): the primary metric with Δ vs the baseline, the test
    and the detectable difference; the secondary metrics (exploratory); costs; memory.

    Tests need ``per_query`` (the store's per-query scores); without them the tables have no Δ and no marks.
    ``primary`` is the primary metric (``[evaluation] primary``; see
    :func:`negbench.report.stats.resolve_primary`); ``comparisons`` the suite's declared ``(better, worse)`` pairs.
    Every user-supplied string goes through :func:`escape_md`.
    ``steps`` (``steps.parquet``) adds time-to-target per dataset × model; a store with several datasets gets the
    rank summary, one with planted false negatives their table; then what each diagnostic means.
    """
    if rows.is_empty():
        return f"# {escape_md(title)}\n\nNo results yet.\n"
    if per_query is not None and per_query.is_empty():
        per_query = None
    board = boards(rows, per_query, baseline, alpha, primary, comparisons)
    labelled, primary, tables = board.rows, board.primary, board.tables
    lines = [f"# {escape_md(title)}", ""]
    devices = sorted(set(rows["device"].drop_nulls().to_list())) if "device" in rows.columns else []
    if devices:
        lines += [f"Device: {escape_md(', '.join(devices))}", ""]
    for verdict in verdicts(tables, labelled, alpha, baseline):
        for paragraph in verdict.markdown():
            lines += [paragraph, ""]
    for table in tables:
        here = labelled.filter((pl.col("dataset") == table.dataset) & (pl.col("model") == table.model))
        lines += [f"## {escape_md(table.dataset)} · {escape_md(table.model)}", ""]
        lines += claims_markdown(table.declared, alpha)
        for view in table.views:
            lines += [f"### {escape_md(view.title)}", ""]
            lines += table_markdown(table, view)
            lines += ["", escape_md(view.caption), ""] if view.caption else [""]
        base = table.baseline
        notes = config_notes(here) + ([base.note()] if base is not None and base.note() else [])
        for note in notes + table.subset_notes() + table.repeat_notes():
            lines += [f"Note: {escape_md(note)}", ""]
    if per_query is None:
        lines.append("Significance not computed (no per-query scores).")
    else:
        lines.append(f"Method: {escape_md(method_text(alpha))}")
    lines += diagnostics_markdown(rows, primary, baseline, alpha, steps)
    return "\n".join(lines) + "\n"


def claims_markdown(tests: Sequence[DeclaredTest], alpha: float) -> list[str]:
    """The declared comparisons of a board as a GFM table with its caption (nothing when the suite declares none)."""
    if not tests:
        return []
    lines = ["### Declared comparisons", "", "| " + " | ".join(CLAIM_COLUMNS) + " |"]
    lines.append("|---|" + "---:|" * (len(CLAIM_COLUMNS) - 2) + "---|")
    for test in tests:
        cells = claim_cells(test)
        lines.append("| " + " | ".join([escape_md(cells[0]), *cells[1:-1], escape_md(cells[-1])]) + " |")
    return [*lines, "", escape_md(claims_caption(tests, alpha)), ""]


def table_markdown(table: LeaderboardTable, view: View | None = None) -> list[str]:
    """One view of a :class:`LeaderboardTable` (default: the primary one) as GFM lines: header, alignment, one
    line per row (text cells escaped)."""
    cols = (view or table.views[0]).columns
    lines = ["| " + " | ".join(escape_md(c.header) for c in cols) + " |"]
    lines.append("|" + "|".join("---" if c.is_text else "---:" for c in cols) + "|")
    for row in table.rows:
        cells = [escape_md(plain_cell(row, c)) if c.is_text else plain_cell(row, c) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def diagnostics_markdown(
    rows: pl.DataFrame, metric: str | None, baseline: str, alpha: float, steps: pl.DataFrame | None
) -> list[str]:
    """The markdown sections after the leaderboard tables: time to target, across datasets, planted false
    negatives, and what the diagnostics mean."""
    from negbench.report.diagnostics import MEANINGS, planted_table

    lines: list[str] = []
    if steps is not None and not steps.is_empty() and "run_id" in rows.columns:
        lines += _time_to_target(rows, steps, baseline)
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


def _time_to_target(rows: pl.DataFrame, steps: pl.DataFrame, baseline: str) -> list[str]:
    """The time-to-target table: when each strategy's dev curve first reaches the baseline's final dev value."""
    from negbench.report.diagnostics import MIN_CURVE_POINTS, strategy_curves, time_to_target

    lines: list[str] = []
    labelled = with_config_labels(rows)
    for (dataset, model, dev_metric), series in strategy_curves(steps, labelled, "dev").items():
        here = labelled.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
        base = baseline_config(here, baseline)
        target, reached = time_to_target(series, base.label if base is not None else None)
        if not lines:
            lines += ["", "## Time to the baseline's final dev value", ""]
        where = f"{escape_md(dataset)} · {escape_md(model)}"
        if target is None:
            lines.append(
                f"{where}: omitted — the baseline's dev curve has fewer than {MIN_CURVE_POINTS} points "
                "(more [evaluation] curve\\_points give one)."
            )
            continue
        lines += [
            f"{where}, {escape_md(dev_metric)}: target {target:.4f}, the final dev value of "
            f"{escape_md(base.label if base else baseline)} (curves of {MIN_CURVE_POINTS} points or more).",
            "",
            "| strategy | training wall time |",
            "|---|---:|",
        ]
        lines += [f"| {escape_md(s)} | {'never' if t is None else f'{t:,.1f} s'} |" for s, t in reached.items()] + [""]
    return lines


def write_leaderboard(
    rows: pl.DataFrame,
    path: Path,
    title: str,
    per_query: pl.DataFrame | None = None,
    baseline: str = "in-batch",
    *,
    primary: str | None = None,
    alpha: float = 0.05,
    steps: pl.DataFrame | None = None,
    comparisons: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write :func:`leaderboard_markdown` to ``path`` atomically."""
    page = leaderboard_markdown(
        rows, title, per_query, baseline, alpha, steps=steps, primary=primary, comparisons=comparisons
    )
    return write_text_atomic(path, page)
