"""The leaderboard's table model: one row per configuration (mean and CI over seeds), its metric, budget and
cost columns, and the cell formatters the markdown, HTML and terminal renderers share."""

from __future__ import annotations

import math

import polars as pl

from negbench.config.metrics import parse_metric
from negbench.report.stats import (
    CONFIG_KEYS,
    Significance,
    t_half_width,
    with_config_labels,
)

__all__ = [
    "BUDGET_COLUMNS",
    "COMPUTE_COLUMNS",
    "COST_COLUMNS",
    "GPU_COLUMNS",
    "MEMORY_FALLBACKS",
    "WALL_TIME_COLUMNS",
    "aggregate",
    "cost_columns",
    "escape_md",
    "fmt_batch",
    "fmt_delta",
    "format_value",
    "has_budget_changes",
    "has_compute",
    "has_gpu",
    "join_words",
    "mark_cell",
    "memory_fallback_used",
    "metric_columns",
    "number",
    "seed_centre",
    "with_cost_fallbacks",
]


# Compute that does not depend on the machine (TFLOPs, negbench.core.compute), shown where a store has it.
COMPUTE_COLUMNS = [("train TFLOP", "train_tflop", 3), ("prep TFLOP", "prep_tflop", 3), ("eval TFLOP", "eval_tflop", 3)]


# Value columns averaged over seeds (each with ``_std`` and ``_ci``); missing ones (old stores) are skipped.
COST_COLUMNS = [
    *(key for _, key, _ in COMPUTE_COLUMNS),
    "train_examples_per_s",
    "mine_s",
    "refresh_s",
    "train_s",
    "eval_s",
    "curve_s",
    "total_s",
    "train_peak_rss_mb",
    "eval_peak_rss_mb",
    "train_peak_gpu_mb",
    "eval_peak_gpu_mb",
    "peak_rss_mb",
    "peak_gpu_mb",
]


# Wall-time columns (and the throughput they give) summarised by the median over seeds, not the mean: on a shared
# machine one run slowed by other load would move a mean of three seeds by a third of its delay.
WALL_TIME_COLUMNS = ("train_examples_per_s", "mine_s", "refresh_s", "train_s", "eval_s", "curve_s", "total_s")


# The data budget of a run, aggregated over seeds without intervals (how: polars aggregation).
BUDGET_COLUMNS = {
    "steps": "mean",
    "examples_seen": "mean",
    "mean_batch_size": "mean",
    "min_batch_size": "min",
    "max_batch_size": "max",
    "steps_per_epoch": "mean",
    "examples_per_epoch": "mean",
    "coverage": "min",  # the smallest share of epochs in which any training example was trained, over seeds
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
    return any((v or 0) > 0 for c in GPU_COLUMNS if c in rows.columns for v in rows[c].cast(pl.Float64).to_list())


def has_budget_changes(rows: pl.DataFrame) -> bool:
    """Whether any row's data budget differs from the shared one (then a ``budget`` column is shown)."""
    if "budget" not in rows.columns:
        return False
    return any(b not in (None, "", "equal") for b in rows["budget"].cast(pl.String).to_list())


def has_compute(rows: pl.DataFrame) -> bool:
    """Whether any row has measured compute (``train_tflop``; stores written before it was counted have none)."""
    return "train_tflop" in rows.columns and rows["train_tflop"].cast(pl.Float64).drop_nulls().len() > 0


def cost_columns(rows: pl.DataFrame) -> list[tuple[str, str, int]]:
    """``(header, aggregate column, digits)`` of the cost columns a leaderboard of ``rows`` shows: compute first where
    the rows have it, then the wall-time costs of the device they ran on."""
    digits = _compute_digits(rows)
    cols = [
        *((header, key, digits) for header, key, _ in (COMPUTE_COLUMNS if has_compute(rows) else [])),
        ("train ex/s", "train_examples_per_s", 1),
        ("mine s", "mine_s", 1),
        *([("refresh s", "refresh_s", 1)] if _any_positive(rows, "refresh_s") else []),
        ("train s", "train_s", 1),
        ("eval s", "eval_s", 1),
        *([("curve s", "curve_s", 1)] if "curve_s" in rows.columns else []),
        ("total s", "total_s", 1),
        ("train RSS MB", "train_peak_rss_mb", 0),
        ("eval RSS MB", "eval_peak_rss_mb", 0),
    ]
    if has_gpu(rows):
        cols += [("train GPU MB", "train_peak_gpu_mb", 0), ("eval GPU MB", "eval_peak_gpu_mb", 0)]
    return cols


def seed_centre(values: list[float], column: str) -> float | None:
    """How a board summarises ``column`` over seeds: the median for :data:`WALL_TIME_COLUMNS`, else the mean;
    NaN and missing values left out (None when nothing is left)."""
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return None
    if column not in WALL_TIME_COLUMNS:
        return sum(finite) / len(finite)
    ordered, mid = sorted(finite), len(finite) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _any_positive(rows: pl.DataFrame, column: str) -> bool:
    return column in rows.columns and (rows[column].cast(pl.Float64).fill_nan(None).fill_null(0.0) > 0).any()


def _compute_digits(rows: pl.DataFrame) -> int:
    """Decimals that give the smallest positive TFLOP value of ``rows`` three significant digits (1 to 8)."""
    values = [
        v for _, key, _ in COMPUTE_COLUMNS if key in rows.columns for v in rows[key].cast(pl.Float64).drop_nulls()
    ]
    smallest = min((v for v in values if v > 0), default=1.0)
    return min(8, max(1, 2 - math.floor(math.log10(smallest))))


def aggregate(rows: pl.DataFrame) -> pl.DataFrame:
    """Mean over seeds (and run count) of metrics, compute and memory, median of wall times and throughput
    (:data:`WALL_TIME_COLUMNS`), per configuration: dataset × model × strategy ×
    ``config_key`` (never pooled across configurations), with its display ``label`` (see
    :func:`negbench.report.stats.with_config_labels`).

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
        value = pl.col(col).cast(pl.Float64)
        aggs.append((value.fill_nan(None).median() if col in WALL_TIME_COLUMNS else value.mean()).alias(col))
        aggs.append(pl.col(col).cast(pl.Float64).std().alias(f"{col}_std"))
        aggs.append(pl.col(col).cast(pl.Float64).count().alias(f"{col}_n"))
    aggs += [
        getattr(pl.col(c).cast(pl.Float64), how)().alias(c) for c, how in BUDGET_COLUMNS.items() if c in rows.columns
    ]
    if "budget" in rows.columns:
        aggs.append(pl.col("budget").cast(pl.String).drop_nulls().first().alias("budget"))
    if "device" in rows.columns:  # the device(s) the wall times of the configuration's runs come from
        aggs.append(pl.col("device").cast(pl.String).drop_nulls().unique(maintain_order=True).str.join(" / "))
    table = ok.group_by(keys, maintain_order=True).agg(aggs) if not ok.is_empty() else pl.DataFrame()
    if not table.is_empty():
        halves = {
            col: [t_half_width(sd, n) for sd, n in zip(table[f"{col}_std"], table[f"{col}_n"], strict=True)]
            for col in values
        }
        table = table.with_columns(pl.Series(f"{col}_ci", halves[col], dtype=pl.Float64) for col in values)
        table = table.drop([f"{col}_n" for col in values])
    failed = (
        rows.filter(pl.col("status") != "ok")
        .group_by(keys, maintain_order=True)
        .agg(pl.col("status").first().alias("failed"))
    )
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


def number(value: object) -> float | None:
    """``value`` as a finite float, or None (missing, NaN, infinite, or not a number)."""
    if value is None:
        return None
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def format_value(value: object, digits: int = 4, std: object = None, *, grouping: bool = False) -> str:
    """The one number format of every report: ``digits`` decimals (thousands grouped with ``grouping``), ``± std``
    when given, ``–`` for a missing or non-finite value."""
    f = number(value)
    if f is None:
        return "–"
    text = f"{f:,.{digits}f}" if grouping else f"{f:.{digits}f}"
    spread = number(std)
    if spread is not None:
        text += f" ± {spread:.{digits}f}"
    return text


def fmt_batch(rec: dict) -> str:
    """Mean / min batch size of an aggregate row, e.g. ``32.0/32`` (``–`` when not recorded)."""
    mean, low = rec.get("mean_batch_size"), rec.get("min_batch_size")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{mean:.1f}" + ("" if low is None or math.isnan(low) else f"/{low:.0f}")


def fmt_delta(sig: Significance | None, digits: int = 4) -> str:
    """``+0.0123 [+0.0050, +0.0190]``: mean paired difference vs the baseline and its 95% CI (a t interval over
    queries and seeds, :func:`negbench.report.stats.seed_query_test`)."""
    if sig is None or math.isnan(sig.mean_diff):
        return "–"
    text = f"{sig.mean_diff:+.{digits}f}"
    if not (math.isnan(sig.ci_low) or math.isnan(sig.ci_high)):
        text += f" [{sig.ci_low:+.{digits}f}, {sig.ci_high:+.{digits}f}]"
    return text


def mark_cell(sig: Significance | None) -> str:
    return f" {sig.mark}" if sig is not None and sig.mark else ""


def join_words(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(words) <= 2:
        return " and ".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]
