"""Leaderboards from a results store: GitHub-flavoured markdown and a rich terminal table."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
from rich.table import Table

from negbench.metrics import parse_metric

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
    """Mean over seeds (and run count) of metrics and costs per dataset × model × strategy."""
    ok = rows.filter(pl.col("status") == "ok")
    metrics = metric_columns(rows)
    keys = ["dataset", "model", "strategy"]
    aggs = [pl.len().alias("seeds")]
    for col in metrics + [c for c in COST_COLUMNS if c in rows.columns]:
        aggs.append(pl.col(col).cast(pl.Float64).mean().alias(col))
        aggs.append(pl.col(col).cast(pl.Float64).std().alias(f"{col}_std"))
    table = ok.group_by(keys, maintain_order=True).agg(aggs) if not ok.is_empty() else pl.DataFrame()
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


def leaderboard_markdown(rows: pl.DataFrame, title: str = "negbench leaderboard") -> str:
    if rows.is_empty():
        return f"# {escape_md(title)}\n\nNo results yet.\n"
    table = aggregate(rows)
    metrics = metric_columns(rows)
    lines = [f"# {escape_md(title)}", ""]
    devices = sorted(set(rows["device"].drop_nulls().to_list())) if "device" in rows.columns else []
    if devices:
        lines += [f"Device: {escape_md(', '.join(devices))}", ""]
    for (dataset, model), group in table.group_by(["dataset", "model"], maintain_order=True):
        lines += [f"## {escape_md(dataset)} · {escape_md(model)}", ""]
        header = ["strategy", "seeds", *metrics, "train ex/s", "train s", "peak RSS MB", "peak GPU MB", "status"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 2) + ["---"]) + "|")
        for rec in group.iter_rows(named=True):
            cells = [escape_md(rec["strategy"]), str(rec.get("seeds") or 0)]
            cells += [_fmt(rec.get(m), 4, rec.get(f"{m}_std")) for m in metrics]
            cells += [_fmt(rec.get("train_examples_per_s"), 1), _fmt(rec.get("train_s"), 1),
                      _fmt(rec.get("peak_rss_mb"), 0), _fmt(rec.get("peak_gpu_mb"), 0),
                      escape_md(rec.get("failed") or "ok")]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("Metrics: mean ± standard deviation over seeds on the test split; costs are means.")
    return "\n".join(lines) + "\n"


def write_leaderboard(rows: pl.DataFrame, path: Path, title: str) -> Path:
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".leaderboard.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(leaderboard_markdown(rows, title))
    os.replace(tmp, path)
    return path


def rich_table(rows: pl.DataFrame, title: str = "negbench") -> Table:
    table = Table(title=title)
    metrics = metric_columns(rows)
    for col in ["dataset", "model", "strategy", "seeds", *metrics, "train ex/s", "peak RSS MB", "peak GPU MB",
                "status"]:
        table.add_column(col, justify="left" if col in {"dataset", "model", "strategy", "status"} else "right")
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
