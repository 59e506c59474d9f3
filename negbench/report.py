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

from negbench.metrics import parse_metric
from negbench.stats import BETTER, WORSE, Significance, resolve_baseline, significance, t_half_width

COST_COLUMNS = ["train_examples_per_s", "train_s", "peak_rss_mb", "peak_gpu_mb"]


def metric_columns(rows: pl.DataFrame) -> list[str]:
    out = []
    for col in rows.columns:
        try:
            parse_metric(col)
        except ValueError:
            continue
        out.append(col)
    return out


def aggregate(rows: pl.DataFrame) -> pl.DataFrame:
    """Mean over seeds (and run count) of metrics and costs per dataset × model × strategy.

    Each value column ``c`` comes with ``c_std`` (sample std over seeds) and ``c_ci`` (half-width of the
    95% Student-t confidence interval of the mean; NaN with fewer than two seeds).
    """
    ok = rows.filter(pl.col("status") == "ok")
    metrics = metric_columns(rows)
    keys = ["dataset", "model", "strategy"]
    aggs = [pl.len().alias("seeds")]
    values = metrics + [c for c in COST_COLUMNS if c in rows.columns]
    for col in values:
        aggs.append(pl.col(col).cast(pl.Float64).mean().alias(col))
        aggs.append(pl.col(col).cast(pl.Float64).std().alias(f"{col}_std"))
        aggs.append(pl.col(col).cast(pl.Float64).count().alias(f"{col}_n"))
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


def _mark(sig: Significance | None) -> str:
    return f" {sig.mark}" if sig is not None and sig.mark else ""


def leaderboard_markdown(
    rows: pl.DataFrame,
    title: str = "negbench leaderboard",
    per_query: pl.DataFrame | None = None,
    baseline: str = "in-batch",
    alpha: float = 0.05,
) -> str:
    """A GFM leaderboard: one table per dataset × model, mean ± 95% CI over seeds, significance marks.

    Marks (▲ better, ▼ worse than ``baseline``) need ``per_query`` (the store's per-query scores); without
    it the table has no marks. Every user-supplied string goes through :func:`escape_md`.
    """
    if rows.is_empty():
        return f"# {escape_md(title)}\n\nNo results yet.\n"
    if per_query is not None and per_query.is_empty():
        per_query = None
    table = aggregate(rows)
    metrics = metric_columns(rows)
    sig = significance(rows, per_query, baseline, metrics, alpha) if per_query is not None else {}
    lines = [f"# {escape_md(title)}", ""]
    devices = sorted(set(rows["device"].drop_nulls().to_list())) if "device" in rows.columns else []
    if devices:
        lines += [f"Device: {escape_md(', '.join(devices))}", ""]
    for (dataset, model), group in table.group_by(["dataset", "model"], maintain_order=True):
        here = rows.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
        base_label = resolve_baseline(here, baseline)
        lines += [f"## {escape_md(dataset)} · {escape_md(model)}", ""]
        header = ["strategy", "seeds", *metrics, "train ex/s", "train s", "peak RSS MB", "peak GPU MB",
                  "status"]
        lines.append("| " + " | ".join(escape_md(h) for h in header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 2) + ["---"]) + "|")
        for rec in group.iter_rows(named=True):
            label = rec["strategy"]
            name = escape_md(label) + (" (baseline)" if label == base_label else "")
            cells = [name, str(rec.get("seeds") or 0)]
            cells += [_fmt(rec.get(m), 4, rec.get(f"{m}_ci")) + _mark(sig.get((dataset, model, label, m)))
                      for m in metrics]
            cells += [_fmt(rec.get("train_examples_per_s"), 1), _fmt(rec.get("train_s"), 1),
                      _fmt(rec.get("peak_rss_mb"), 0), _fmt(rec.get("peak_gpu_mb"), 0),
                      escape_md(rec.get("failed") or "ok")]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("Metrics: mean ± half-width of the 95% confidence interval over seeds (Student t) "
                 "on the test split; costs are means.")
    if per_query is None:
        lines.append("Significance not computed (no per-query scores).")
    else:
        lines.append(f"{BETTER} / {WORSE}: significantly better / worse than the baseline "
                     f"{escape_md(baseline)} (two-sided Wilcoxon signed-rank test on per-query scores "
                     f"averaged over seeds, Holm-corrected per dataset × model × metric, α = {alpha:g}).")
    return "\n".join(lines) + "\n"


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
    table = Table(title=title)
    metrics = metric_columns(rows)
    for col in ["dataset", "model", "strategy", "seeds", *metrics, "train ex/s", "peak RSS MB", "peak GPU MB",
                "status"]:
        left = col in {"dataset", "model", "strategy", "status"}
        table.add_column(col, justify="left" if left else "right")
    if rows.is_empty():
        return table
    for rec in aggregate(rows).iter_rows(named=True):
        table.add_row(
            str(rec["dataset"]), str(rec["model"]), str(rec["strategy"]), str(rec.get("seeds") or 0),
            *[_fmt(rec.get(m)) for m in metrics],
            _fmt(rec.get("train_examples_per_s"), 1), _fmt(rec.get("peak_rss_mb"), 0),
            _fmt(rec.get("peak_gpu_mb"), 0), str(rec.get("failed") or "ok"),
        )
    return table
