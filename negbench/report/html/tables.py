"""The per-dataset HTML tables and figures: the strategy table, cost plots, learning curves, hardness, overlap."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from negbench.report.claims import CLAIM_COLUMNS, claim_cells, claims_caption
from negbench.report.diagnostics import (
    MEANINGS,
    MIN_CURVE_POINTS,
    overlap_matrix,
    time_to_target,
)
from negbench.report.html.cells import esc, format_number, memory_column, number, number_cell, p_cell
from negbench.report.leaderboard import Column, LeaderboardTable, Row, View, plain_cell
from negbench.report.plots import (
    Point,
    figure_svg,
    heatmap_figure,
    lines_figure,
    pareto_front,
    scatter_svg,
    small_multiples_figure,
    svg_img,
)
from negbench.report.stats import DeclaredTest

__all__ = [
    "claims_table",
    "cost_plots",
    "format_seconds",
    "hardness_section",
    "learning_curves",
    "overlap_section",
    "strategy_table",
]


TEXT_CLASS = ' class="text"'


def claims_table(tests: Sequence[DeclaredTest], alpha: float) -> str:
    """A board's declared comparisons (:mod:`negbench.report.claims`) as a table with its caption; "" without any."""
    if not tests:
        return ""
    out = ['<h3 class="view">Declared comparisons</h3><div class="scroll"><table><thead><tr>']
    text = {CLAIM_COLUMNS[0], CLAIM_COLUMNS[-1]}
    out += [f'<th scope="col"{TEXT_CLASS if h in text else ""}>{esc(h)}</th>' for h in CLAIM_COLUMNS]
    out.append("</tr></thead><tbody>")
    for test in tests:
        cells = claim_cells(test)
        outcome = ' class="text sig better"' if test.supported else ' class="text"'
        middle = "".join(f"<td>{esc(c)}</td>" for c in cells[1:-1])
        out.append(f'<tr><td class="text">{esc(cells[0])}</td>{middle}<td{outcome}>{esc(cells[-1])}</td></tr>')
    out.append(f'</tbody></table></div><p class="note">{esc(claims_caption(tests, alpha))}</p>')
    return "".join(out)


def strategy_table(table: LeaderboardTable, view: View | None = None) -> str:
    """One view of a board (default: the primary one) as a sortable table, in a box that scrolls sideways rather
    than widening the page."""
    columns = (view or table.views[0]).columns
    out = ['<div class="scroll"><table class="sortable"><thead><tr>']
    for col in columns:
        kind, cls = ("text", ' class="text"') if col.is_text else ("num", "")
        out.append(f'<th scope="col" data-type="{kind}"{cls}><button type="button">{esc(col.header)}</button></th>')
    out.append("</tr></thead><tbody>")
    for row in table.rows:
        out.append("<tr>" + "".join(_html_cell(row, col) for col in columns) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _html_cell(row: Row, col: Column) -> str:
    """One ``<td>`` of :func:`strategy_table`: a sort key, numbers grouped, the mark coloured."""
    rec = row.record
    if col.kind == "label":
        tag = ' <span class="tag">baseline</span>' if row.is_baseline else ""
        tag += ' <span class="tag">subset</span>' if row.subset else ""
        tag += f' <span class="tag">repeat of {esc(row.repeat_of)}</span>' if row.repeat_of else ""
        return f'<td class="text" data-sort="{esc(row.label)}">{esc(row.label)}{tag}</td>'
    if col.kind == "count":
        return f'<td data-sort="{rec.get(col.key) or 0}">{rec.get(col.key) or 0}</td>'
    if col.kind == "mean":
        return number_cell(rec.get(col.key), col.digits)
    if col.kind == "test":
        return p_cell(None if row.is_baseline else row.sig.get(col.key), plain_cell(row, col))
    if col.kind in ("delta", "detectable", "spread"):
        sig = None if row.is_baseline else row.sig.get(col.key)
        value = {
            "delta": sig.mean_diff if sig else None,
            "detectable": sig.detectable if sig else None,
            "spread": rec.get(f"{col.key}_std") if row.seeds > 1 else None,
        }[col.kind]
        key = "" if number(value) is None else repr(number(value))
        return f'<td data-sort="{key}">{esc(plain_cell(row, col))}</td>'
    if col.kind == "batch":
        batch = number(rec.get(col.key))
        return f'<td data-sort="{"" if batch is None else repr(batch)}">{esc(plain_cell(row, col))}</td>'
    if col.kind in ("text", "status"):
        text = plain_cell(row, col)
        cls = "text failed" if col.kind == "status" and text != "ok" else "text"
        return f'<td class="{cls}" data-sort="{esc(text)}">{esc(text)}</td>'
    return number_cell(rec.get(col.key), col.digits)


def _compute(row: dict) -> float | None:
    """Training + preparation TFLOPs of an aggregate row (None where either was not counted)."""
    train, prep = number(row.get("train_tflop")), number(row.get("prep_tflop"))
    return None if train is None or prep is None else train + prep


def cost_plots(group: pl.DataFrame, metric: str, legacy_memory: bool = False) -> str:
    """Accuracy vs training + preparation compute (TFLOPs; training throughput for stores that predate them) and vs
    training peak memory, one point per configuration that trains (the zero-shot ``none`` has no training cost: it is
    named under the plots, never drawn on them)."""
    steps = [number(r.get("steps")) for r in group.iter_rows(named=True)]
    idle = [r["label"] for r, n in zip(group.iter_rows(named=True), steps, strict=True) if n is not None and n <= 0]
    trains = group.filter(~pl.col("label").is_in(idle)) if idle else group
    ok = [r for r in trains.iter_rows(named=True) if number(r.get(metric)) is not None]
    several = any((r.get("seeds") or 0) > 1 for r in ok)
    mem_col, mem_label = memory_column(trains)
    if any(_compute(r) is not None for r in ok):
        cost = [Point(r["label"], _compute(r), r[metric], number(r.get(f"{metric}_ci"))) for r in ok]
        first = (cost, "training + preparation compute (TFLOP)", False, "uses less compute")
    else:
        cost = [
            Point(r["label"], number(r.get("train_examples_per_s")), r[metric], number(r.get(f"{metric}_ci")))
            for r in ok
        ]
        first = (cost, "training throughput (examples/s)", True, "faster")
    mem = [Point(r["label"], number(r.get(mem_col)), r[metric], number(r.get(f"{metric}_ci"))) for r in ok]
    figs = []
    for points, x_label, higher, what in (first, (mem, mem_label, False, "uses less memory")):
        skipped = [p.label for p in points if p.x is None]
        points = [p for p in points if p.x is not None]
        svg = scatter_svg(
            points, x_label=x_label, y_label=metric, title=f"{metric} vs {x_label}", x_higher_better=higher
        )
        front = [
            points[i].label for i in pareto_front([p.x for p in points], [p.y for p in points], x_higher_better=higher)
        ]
        text = f"Pareto front (blue points, dashed line): no other strategy {what} and is more accurate."
        text += f" On the front: {', '.join(front)}." if front else ""
        text += f" Not plotted (no value): {', '.join(skipped)}." if skipped else ""
        text += f" Not plotted: {', '.join(idle)} (does not train)." if idle else ""
        text += (
            " Bars: 95% CI over seeds (Student t)."
            if several
            else " One seed per strategy: no error bars, training variance is unmeasured."
        )
        if what == "uses less compute":
            text += (
                " Compute: FLOPs counted from the tokens each encoder processed (see Costs), the same on any machine."
            )
        if legacy_memory and what == "uses less memory":
            text += " Runs recorded before training memory was measured apart show their whole-run peak."
        alt = f"Scatter of {metric} vs {x_label}, one point per strategy that trains. {text}"
        figs.append(f"<figure>{svg_img(svg, alt)}<figcaption>{esc(text)}</figcaption></figure>")
    return '<div class="plots">' + "".join(figs) + "</div>"


def format_seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:,.1f} s"


def learning_curves(curves: dict, dataset: str, model: str, baseline: str | None) -> str:
    """Dev metric vs training wall seconds (a line per strategy, mean over seeds) and the time each strategy takes
    to reach the ``baseline``'s final dev value; curves with fewer than three points are left out, and so is the
    section when no curve has that many."""
    out = []
    for (d, m, metric), series in curves.items():
        if (d, m) != (dataset, model) or not series:
            continue
        kept = {s: xy for s, xy in series.items() if len(xy[1]) >= MIN_CURVE_POINTS}
        if not kept:
            points = max(len(ys) for _, ys in series.values())
            out.append(
                '<div class="diag learning-curves"><h3>Learning curves</h3><p class="note">Omitted: each run has '
                f"at most {points} dev evaluation{'s' if points != 1 else ''} (fewer than {MIN_CURVE_POINTS} make "
                "no curve); more <code>[evaluation] curve_points</code> give one.</p></div>"
            )
            continue
        target, reached = time_to_target(kept, baseline)
        fig = lines_figure(
            kept,
            x_label="training wall time (s)",
            y_label=f"dev {metric}",
            title=f"Dev {metric} during training",
            target=target,
        )
        dropped = sorted(set(series) - set(kept))
        caption = "Mean over seeds at each evaluation point."
        caption += (
            f" Dotted line: the target, the final dev {metric} of the baseline {baseline} ({target:.4f})."
            if target is not None
            else " No time to target: the baseline has no curve of three points or more."
        )
        caption += f" Left out (fewer than {MIN_CURVE_POINTS} points): {', '.join(dropped)}." if dropped else ""
        table = ""
        if target is not None:
            rows = "".join(
                f'<tr><td class="text">{esc(s)}</td>'
                f'<td data-sort="{"" if t is None else repr(t)}">{esc(format_seconds(t))}</td>'
                f"<td>{format_number(kept[s][1][-1] if kept[s][1] else None, 4)}</td></tr>"
                for s, t in reached.items()
            )
            table = (
                '<table class="sortable"><thead><tr><th scope="col" data-type="text" class="text"><button '
                'type="button">strategy</button></th><th scope="col" data-type="num"><button type="button">'
                'time to the baseline\'s final dev</button></th><th scope="col" data-type="num"><button '
                f'type="button">final dev {esc(metric)}</button></th></tr></thead><tbody>{rows}</tbody></table>'
            )
        out.append(
            '<div class="diag learning-curves"><h3>Learning curves</h3><div class="plots"><figure>'
            + svg_img(figure_svg(fig), f"Dev {metric} against training wall seconds, one line per strategy.")
            + f"<figcaption>{esc(caption)}</figcaption></figure>{table}</div></div>"
        )
    return "".join(out)


def hardness_section(curves: dict, dataset: str, model: str) -> str:
    """Small multiples of the hardness metrics vs step (a line per strategy, mean over seeds)."""
    panels = {metric: series for (d, m, metric), series in curves.items() if (d, m) == (dataset, model) and series}
    if not panels:
        return ""
    fig = small_multiples_figure(panels, x_label="step")  # the section heading is its title
    alt = "Hardness metrics (" + ", ".join(panels) + ") against training step, one line per strategy."
    return (
        '<div class="diag hardness"><h3>Hardness during training</h3><figure>'
        + svg_img(figure_svg(fig), alt)
        + f"<figcaption>{esc(MEANINGS['hardness'])} Means over seeds.</figcaption></figure></div>"
    )


def overlap_section(frame: pl.DataFrame | None, dataset: str, model: str) -> str:
    """The heat map of mean Jaccard overlap between strategies' sampled negatives (or "")."""
    if frame is None or frame.is_empty():
        return ""
    labels, matrix = overlap_matrix(frame, dataset, model)
    if len(labels) < 2:
        return ""
    fig = heatmap_figure(labels, matrix, title="Overlap of sampled negatives (mean Jaccard)")
    alt = "Heat map of the mean Jaccard overlap of sampled negative sets between " + ", ".join(labels) + "."
    return (
        '<div class="diag overlap"><h3>Overlap of sampled negatives</h3><figure>'
        + svg_img(figure_svg(fig), alt)
        + f"<figcaption>{esc(MEANINGS['overlap'])}</figcaption></figure></div>"
    )
