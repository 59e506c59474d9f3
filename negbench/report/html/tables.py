"""The per-dataset HTML tables and figures: the strategy table, cost plots, learning curves, hardness, overlap."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from negbench.report.diagnostics import (
    MEANINGS,
    TARGET_FRACTION,
    overlap_matrix,
    time_to_target,
)
from negbench.report.html.cells import esc, format_number, memory_column, metric_cell, number, number_cell
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
from negbench.report.stats import (
    BaselineConfig,
)
from negbench.report.table import fmt_batch, fmt_delta

__all__ = ["cost_plots", "format_seconds", "hardness_section", "learning_curves", "overlap_section", "strategy_table"]


def strategy_table(
    group: pl.DataFrame,
    metrics: Sequence[str],
    sig: dict,
    base: BaselineConfig | None,
    dataset: str,
    model: str,
    costs: Sequence[tuple[str, str, int]],
    show_budget: bool,
    delta_metric: str | None,
) -> str:
    """One sortable table: a row per configuration with metrics, Δ vs baseline, data budget and costs."""
    heads = [
        ("strategy", "text"),
        ("seeds", "num"),
        *[(m, "num") for m in metrics],
        *([("Δ vs baseline", "num")] if delta_metric else []),
        ("steps", "num"),
        ("examples", "num"),
        ("batch mean/min", "num"),
        *([("budget", "text")] if show_budget else []),
        *[(h, "num") for h, _, _ in costs],
        ("status", "text"),
    ]
    out = ['<table class="sortable"><thead><tr>']
    for label, kind in heads:
        cls = ' class="text"' if kind == "text" else ""
        out.append(f'<th scope="col" data-type="{kind}"{cls}><button type="button">{esc(label)}</button></th>')
    out.append("</tr></thead><tbody>")
    for rec in group.iter_rows(named=True):
        label = rec["label"]
        is_base = base is not None and label == base.label
        tag = ' <span class="tag">baseline</span>' if is_base else ""
        out.append(f'<tr><td class="text" data-sort="{esc(label)}">{esc(label)}{tag}</td>')
        out.append(f'<td data-sort="{rec.get("seeds") or 0}">{rec.get("seeds") or 0}</td>')
        out += [metric_cell(rec, m, sig.get((dataset, model, label, m))) for m in metrics]
        if delta_metric:
            d = None if is_base else sig.get((dataset, model, label, delta_metric))
            key = "" if d is None or number(d.mean_diff) is None else repr(d.mean_diff)
            out.append(f'<td data-sort="{key}">{esc(fmt_delta(d))}</td>')
        out += [number_cell(rec.get("steps"), 0), number_cell(rec.get("examples_seen"), 0)]
        batch = number(rec.get("mean_batch_size"))
        out.append(f'<td data-sort="{"" if batch is None else repr(batch)}">{esc(fmt_batch(rec))}</td>')
        if show_budget:
            budget = str(rec.get("budget") or "–")
            out.append(f'<td class="text" data-sort="{esc(budget)}">{esc(budget)}</td>')
        out += [number_cell(rec.get(col), digits) for _, col, digits in costs]
        status = rec.get("failed") or "ok"
        cls = "text failed" if status != "ok" else "text"
        out.append(f'<td class="{cls}" data-sort="{esc(status)}">{esc(status)}</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def cost_plots(group: pl.DataFrame, metric: str, legacy_memory: bool = False) -> str:
    """Accuracy vs training throughput and vs training peak memory, one point per configuration."""
    ok = [r for r in group.iter_rows(named=True) if number(r.get(metric)) is not None]
    mem_col, mem_label = memory_column(group)
    tp = [
        Point(r["label"], number(r.get("train_examples_per_s")), r[metric], number(r.get(f"{metric}_ci"))) for r in ok
    ]
    mem = [Point(r["label"], number(r.get(mem_col)), r[metric], number(r.get(f"{metric}_ci"))) for r in ok]
    skipped_tp = [p.label for p in tp if p.x is None]
    skipped_mem = [p.label for p in mem if p.x is None]
    tp = [p for p in tp if p.x is not None]
    mem = [p for p in mem if p.x is not None]
    figs = []
    for points, x_label, higher, caption, skipped in (
        (
            tp,
            "training throughput (examples/s)",
            True,
            "Pareto front (blue points, dashed line): no other strategy is both faster and more accurate.",
            skipped_tp,
        ),
        (
            mem,
            mem_label,
            False,
            "Pareto front (blue points, dashed line): no other strategy uses less memory and is more accurate.",
            skipped_mem,
        ),
    ):
        svg = scatter_svg(
            points, x_label=x_label, y_label=metric, title=f"{metric} vs {x_label}", x_higher_better=higher
        )
        front = [
            points[i].label for i in pareto_front([p.x for p in points], [p.y for p in points], x_higher_better=higher)
        ]
        text = caption + (f" On the front: {', '.join(front)}." if front else "")
        text += f" Not plotted (no value): {', '.join(skipped)}." if skipped else ""
        text += " Bars: 95% CI over seeds."
        if legacy_memory and points is mem:
            text += " Runs recorded before training memory was measured apart show their whole-run peak."
        alt = f"Scatter of {metric} vs {x_label}, one point per strategy. {text}"
        figs.append(f"<figure>{svg_img(svg, alt)}<figcaption>{esc(text)}</figcaption></figure>")
    return '<div class="plots">' + "".join(figs) + "</div>"


def format_seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:,.1f} s"


def learning_curves(curves: dict, dataset: str, model: str) -> str:
    """Dev metric vs training wall seconds (a line per strategy, mean over seeds) and time-to-target."""
    out = []
    for (d, m, metric), series in curves.items():
        if (d, m) != (dataset, model) or not series:
            continue
        target, reached = time_to_target(series)
        fig = lines_figure(
            series,
            x_label="training wall time (s)",
            y_label=f"dev {metric}",
            title=f"Dev {metric} during training",
            target=target,
        )
        caption = (
            f"Mean over seeds at each evaluation point; dotted line: the target, "
            f"{TARGET_FRACTION:.0%} of the best dev {metric} of any strategy ({target:.4f})."
        )
        rows = "".join(
            f'<tr><td class="text">{esc(s)}</td>'
            f'<td data-sort="{"" if t is None else repr(t)}">{esc(format_seconds(t))}</td>'
            f"<td>{format_number(series[s][1][-1] if series[s][1] else None, 4)}</td></tr>"
            for s, t in reached.items()
        )
        out.append(
            '<div class="diag learning-curves"><h3>Learning curves</h3><div class="plots"><figure>'
            + svg_img(figure_svg(fig), f"Dev {metric} against training wall seconds, one line per strategy.")
            + f"<figcaption>{esc(caption)}</figcaption></figure>"
            '<table class="sortable"><thead><tr><th scope="col" data-type="text" class="text"><button '
            'type="button">strategy</button></th><th scope="col" data-type="num"><button type="button">'
            f'time to {TARGET_FRACTION:.0%} of best</button></th><th scope="col" data-type="num"><button '
            f'type="button">final dev {esc(metric)}</button></th></tr></thead><tbody>{rows}</tbody></table>'
            "</div></div>"
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
