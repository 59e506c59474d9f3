"""Leaderboards from a results store: GitHub-flavoured markdown and a rich terminal table.

The static HTML leaderboard lives in :mod:`negbench.html_report`; statistics in :mod:`negbench.stats`.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import polars as pl
from rich.table import Table
from rich.text import Text

from negbench.metrics import parse_metric
from negbench.stats import (
    BETTER,
    CONFIG_KEYS,
    WORSE,
    Significance,
    baseline_config,
    config_notes,
    rank_power_note,
    rank_summary,
    significance,
    t_half_width,
    with_config_labels,
)

# Value columns averaged over seeds (each with ``_std`` and ``_ci``); missing ones (old stores) are skipped.
COST_COLUMNS = [
    "train_examples_per_s", "mine_s", "refresh_s", "train_s", "eval_s", "total_s", "train_peak_rss_mb",
    "eval_peak_rss_mb", "train_peak_gpu_mb", "eval_peak_gpu_mb", "peak_rss_mb", "peak_gpu_mb",
]
# The data budget of a run, aggregated over seeds without intervals (how: polars aggregation).
BUDGET_COLUMNS = {
    "steps": "mean", "examples_seen": "mean", "mean_batch_size": "mean", "min_batch_size": "min",
    "max_batch_size": "max", "steps_per_epoch": "mean", "examples_per_epoch": "mean",
}
# Training peak memory falls back to the whole-run peak of rows recorded before train / eval were split.
MEMORY_FALLBACKS = {"train_peak_rss_mb": "peak_rss_mb", "train_peak_gpu_mb": "peak_gpu_mb"}
GPU_COLUMNS = ("train_peak_gpu_mb", "eval_peak_gpu_mb", "peak_gpu_mb")


def metric_columns(rows: pl.DataFrame) -> list[str]:
    out = []
    for col in rows.columns:
        try:
            parse_metric(col)
        except ValueError:
            continue
        out.append(col)
    return out


def with_cost_fallbacks(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` whose ``train_peak_*_mb`` fall back to the old whole-run ``peak_*_mb`` where missing."""
    for new, old in MEMORY_FALLBACKS.items():
        if old in rows.columns:
            col = pl.col(new).cast(pl.Float64) if new in rows.columns else pl.lit(None, dtype=pl.Float64)
            rows = rows.with_columns(pl.coalesce(col, pl.col(old).cast(pl.Float64)).alias(new))
    return rows


def memory_fallback_used(rows: pl.DataFrame) -> bool:
    """True when some row has a whole-run peak but no training peak (it predates the train / eval split)."""
    for new, old in MEMORY_FALLBACKS.items():
        if old in rows.columns:
            missing = pl.col(new).is_null() if new in rows.columns else pl.lit(True)
            if rows.select((missing & pl.col(old).is_not_null()).any()).item():
                return True
    return False


def has_gpu(rows: pl.DataFrame) -> bool:
    """Whether any row has a GPU memory value (then GPU columns are shown)."""
    return any(
        (v or 0) > 0 for c in GPU_COLUMNS if c in rows.columns for v in rows[c].cast(pl.Float64).to_list()
    )


def has_budget_changes(rows: pl.DataFrame) -> bool:
    """Whether any row's data budget differs from the shared one (then a ``budget`` column is shown)."""
    if "budget" not in rows.columns:
        return False
    return any(b not in (None, "", "equal") for b in rows["budget"].cast(pl.String).to_list())


def cost_columns(rows: pl.DataFrame) -> list[tuple[str, str, int]]:
    """``(header, aggregate column, digits)`` of the cost columns a leaderboard of ``rows`` shows."""
    cols = [
        ("train ex/s", "train_examples_per_s", 1), ("mine s", "mine_s", 1), ("train s", "train_s", 1),
        ("total s", "total_s", 1), ("train RSS MB", "train_peak_rss_mb", 0), ("eval RSS MB", "eval_peak_rss_mb", 0),
    ]
    if has_gpu(rows):
        cols += [("train GPU MB", "train_peak_gpu_mb", 0), ("eval GPU MB", "eval_peak_gpu_mb", 0)]
    return cols


def aggregate(rows: pl.DataFrame) -> pl.DataFrame:
    """Mean over seeds (and run count) of metrics and costs per configuration: dataset × model × strategy ×
    ``config_key`` (never pooled across configurations), with its display ``label`` (see
    :func:`negbench.stats.with_config_labels`).

    Each value column ``c`` comes with ``c_std`` (sample std over seeds) and ``c_ci`` (half-width of the
    95% Student-t confidence interval of the mean; NaN with fewer than two seeds). Budget columns
    (``steps``, ``examples_seen``, batch sizes) are means (``min_batch_size``: min, ``max_batch_size``: max);
    ``budget`` is the configuration's declared budget. ``train_peak_*_mb`` fall back to ``peak_*_mb``.
    """
    rows = with_cost_fallbacks(with_config_labels(rows))
    ok = rows.filter(pl.col("status") == "ok")
    metrics = metric_columns(rows)
    keys = [*CONFIG_KEYS, "label"]
    aggs = [pl.len().alias("seeds")]
    values = metrics + [c for c in COST_COLUMNS if c in rows.columns]
    for col in values:
        aggs.append(pl.col(col).cast(pl.Float64).mean().alias(col))
        aggs.append(pl.col(col).cast(pl.Float64).std().alias(f"{col}_std"))
        aggs.append(pl.col(col).cast(pl.Float64).count().alias(f"{col}_n"))
    aggs += [getattr(pl.col(c).cast(pl.Float64), how)().alias(c) for c, how in BUDGET_COLUMNS.items()
             if c in rows.columns]
    if "budget" in rows.columns:
        aggs.append(pl.col("budget").cast(pl.String).drop_nulls().first().alias("budget"))
    table = ok.group_by(keys, maintain_order=True).agg(aggs) if not ok.is_empty() else pl.DataFrame()
    if not table.is_empty():
        halves = {
            col: [t_half_width(sd, n) for sd, n in zip(table[f"{col}_std"], table[f"{col}_n"], strict=True)]
            for col in values
        }
        table = table.with_columns(pl.Series(f"{col}_ci", halves[col], dtype=pl.Float64) for col in values)
        table = table.drop([f"{col}_n" for col in values])
    failed = rows.filter(pl.col("status") != "ok").group_by(keys, maintain_order=True).agg(
        pl.col("status").first().alias("failed"))
    if table.is_empty():
        return failed
    if not failed.is_empty():
        table = table.join(failed, on=keys, how="full", coalesce=True)
    sort_by = metrics[0] if metrics else "strategy"
    return table.sort(["dataset", "model", sort_by], descending=[False, False, True], nulls_last=True)


def escape_md(text: object) -> str:
    """Escape a user string for a GFM table cell: HTML, pipes, markdown punctuation, newlines."""
    s = str(text).replace("\\", "\\\\")
    for ch, rep in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        s = s.replace(ch, rep)
    for ch in "|`*_[]#!":
        s = s.replace(ch, "\\" + ch)
    return " ".join(s.split())


def _fmt(value, digits: int = 4, std=None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:.{digits}f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        text += f" ± {std:.{digits}f}"
    return text


def fmt_batch(rec: dict) -> str:
    """Mean / min batch size of an aggregate row, e.g. ``32.0/32`` (``–`` when not recorded)."""
    mean, low = rec.get("mean_batch_size"), rec.get("min_batch_size")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{mean:.1f}" + ("" if low is None or math.isnan(low) else f"/{low:.0f}")


def fmt_delta(sig: Significance | None, digits: int = 4) -> str:
    """``+0.0123 [+0.0050, +0.0190]``: mean paired difference vs the baseline and its bootstrap 95% CI."""
    if sig is None or math.isnan(sig.mean_diff):
        return "–"
    text = f"{sig.mean_diff:+.{digits}f}"
    if not (math.isnan(sig.ci_low) or math.isnan(sig.ci_high)):
        text += f" [{sig.ci_low:+.{digits}f}, {sig.ci_high:+.{digits}f}]"
    return text


def _mark(sig: Significance | None) -> str:
    return f" {sig.mark}" if sig is not None and sig.mark else ""


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
        header = ["strategy", "seeds", *metrics, *(["Δ vs baseline"] if show_delta else []),
                  "steps", "examples", "batch mean/min", *(["budget"] if show_budget else []),
                  *[h for h, _, _ in costs], "status"]
        lines.append("| " + " | ".join(escape_md(h) for h in header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 2) + ["---"]) + "|")
        for rec in group.iter_rows(named=True):
            label = rec["label"]
            is_base = base is not None and label == base.label
            cells = [escape_md(label) + (" (baseline)" if is_base else ""), str(rec.get("seeds") or 0)]
            cells += [_fmt(rec.get(m), 4, rec.get(f"{m}_ci")) + _mark(sig.get((dataset, model, label, m)))
                      for m in metrics]
            if show_delta:
                cells.append("–" if is_base else fmt_delta(sig.get((dataset, model, label, primary))))
            cells += [_fmt(rec.get("steps"), 0), _fmt(rec.get("examples_seen"), 0), fmt_batch(rec)]
            if show_budget:
                cells.append(escape_md(rec.get("budget") or "–"))
            cells += [_fmt(rec.get(col), digits) for _, col, digits in costs]
            cells.append(escape_md(rec.get("failed") or "ok"))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        notes = config_notes(here) + ([base.note()] if base is not None and base.note() else [])
        for note in notes:
            lines += [f"Note: {escape_md(note)}", ""]
    lines.append("Metrics: mean ± half-width of the 95% confidence interval over seeds (Student t) "
                 "on the test split; costs are means. Each row is one configuration (dataset × model × "
                 "strategy × config key); runs of different configurations are never pooled.")
    lines.append("steps / examples: optimiser steps and training examples seen per run; batch: mean/min batch "
                 "size" + ("; budget: a strategy's declared reason for changing the data budget (else equal)"
                           if show_budget else "") + ". Times in seconds (train s: training steps only; total s: "
                 "the whole run); RSS / GPU: peak MB during training and during evaluation.")
    if memory_fallback_used(rows):
        lines.append("train RSS / GPU MB of runs recorded before training and evaluation memory were measured "
                     "apart is the peak of the whole run.")
    if per_query is None:
        lines.append("Significance not computed (no per-query scores).")
    else:
        lines.append(f"{BETTER} / {WORSE}: significantly better / worse than the baseline "
                     f"{escape_md(baseline)} (Wilcoxon signed-rank test on per-query scores averaged over seeds; "
                     "two-sided p = twice the smaller one-sided p, the mark points to that side; "
                     f"Holm-corrected per dataset × model × metric, α = {alpha:g}).")
        if show_delta:
            lines.append(f"Δ vs baseline: mean per-query difference in {escape_md(primary)} against the "
                         "baseline, with its 95% bootstrap confidence interval (percentile, "
                         "seeded, resampling queries).")
    lines += diagnostics_markdown(rows, primary, baseline, alpha, steps)
    return "\n".join(lines) + "\n"


def diagnostics_markdown(rows: pl.DataFrame, metric: str | None, baseline: str, alpha: float,
                         steps: pl.DataFrame | None) -> list[str]:
    """The markdown sections after the leaderboard tables: time to target, across datasets, planted false
    negatives, and what the diagnostics mean."""
    from negbench.diagnostics import MEANINGS, TARGET_FRACTION, planted_table, strategy_curves, time_to_target

    lines: list[str] = []
    if steps is not None and not steps.is_empty() and "run_id" in rows.columns:
        curves = strategy_curves(steps, rows, "dev")
        if curves:
            lines += ["", f"## Time to {TARGET_FRACTION:.0%} of the best dev value", ""]
            lines += ["| dataset · model | dev metric | target | strategy | training wall time |",
                      "|---|---|---:|---|---:|"]
            for (dataset, model, dev_metric), series in curves.items():
                target, reached = time_to_target(series)
                for strategy, t in reached.items():
                    lines.append(f"| {escape_md(dataset)} · {escape_md(model)} | {escape_md(dev_metric)} | "
                                 f"{target:.4f} | {escape_md(strategy)} | {'never' if t is None else f'{t:,.1f} s'} |")
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
                lines += [f"| {escape_md(p.strategy)} vs {escape_md(p.reference)} | {p.wins}/{p.losses} | "
                          f"{p.p_value:.3g} | {p.p_holm:.3g}{' ✓' if p.p_holm < alpha else ''} |"
                          for p in summary.pairs]
            if summary.excluded:
                lines += ["", "Not ranked (missing on some dataset): " + escape_md(", ".join(summary.excluded))]
            lines += ["", f"Cells: mean {escape_md(metric)} over seeds (rank on that dataset; 1 = best, ties "
                      "averaged). Pairs: two-sided Wilcoxon signed-rank over datasets of the per-dataset means, "
                      f"Holm-corrected (✓: Holm p < {alpha:g}). " + escape_md(rank_power_note(summary))]
        table = planted_table(rows, metric)
        if table is not None:
            lines += ["", "## Planted false negatives", "",
                      f"| dataset · model | strategy | planted | {escape_md(metric)} without | with | drop | n | "
                      "planted FN share | planted FN in-batch share |",
                      "|---|---|---|---:|---:|---:|---:|---:|---:|"]
            for r in table.iter_rows(named=True):
                planted = _fmt(r["planted_fn_rate"], 2) + (f" {escape_md(r['planted_fn_kind'])}"
                                                           if r["planted_fn_kind"] else "")
                lines.append(f"| {escape_md(r['dataset_base'])} · {escape_md(r['model'])} | "
                             f"{escape_md(r['strategy'])} | {planted} | {_fmt(r['without'])} | {_fmt(r['with'])} | "
                             f"{_fmt(r['drop'])} | {r['n']} | {_fmt(r['planted_fn_share'])} | "
                             f"{_fmt(r['planted_fn_inbatch_share'])} |")
            lines += ["", "Seeds paired: drop is the mean over the n seeds run both ways of without − with "
                      "(positive: planting hurt)."]
    lines += ["", "## What the diagnostics mean", ""]
    lines += [f"- **{name}**: {text}" for name, text in MEANINGS.items()]
    return lines


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace``, readable as the umask allows
    (``mkstemp`` alone creates 0600 files, which a static web server could not serve)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_leaderboard(rows: pl.DataFrame, path: Path, title: str, per_query: pl.DataFrame | None = None,
                      baseline: str = "in-batch") -> Path:
    """Write :func:`leaderboard_markdown` to ``path`` atomically."""
    return write_text_atomic(path, leaderboard_markdown(rows, title, per_query, baseline))


def rich_table(rows: pl.DataFrame, title: str = "negbench") -> Table:
    """A terminal leaderboard: one row per configuration with metrics, data budget and costs."""
    table = Table(title=Text(title))
    metrics = metric_columns(rows)
    show_budget = has_budget_changes(rows)
    costs = cost_columns(rows)
    heads = ["dataset", "model", "strategy", "seeds", *metrics, "steps", "examples", "batch mean/min",
             *(["budget"] if show_budget else []), *[h for h, _, _ in costs], "status"]
    for col in heads:
        left = col in {"dataset", "model", "strategy", "budget", "status"}
        table.add_column(col, justify="left" if left else "right")
    if rows.is_empty():
        return table
    for rec in aggregate(rows).iter_rows(named=True):
        table.add_row(
            Text(str(rec["dataset"])), Text(str(rec["model"])), Text(str(rec["label"])), str(rec.get("seeds") or 0),
            *[_fmt(rec.get(m)) for m in metrics],
            _fmt(rec.get("steps"), 0), _fmt(rec.get("examples_seen"), 0), fmt_batch(rec),
            *([Text(str(rec.get("budget") or "–"))] if show_budget else []),
            *[_fmt(rec.get(col), digits) for _, col, digits in costs],
            Text(str(rec.get("failed") or "ok")),
        )
    return table
