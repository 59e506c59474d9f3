"""A figures block's content, rendered from the results store it names: values, inline lists, tables, wall time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from negbench.config.metrics import parse_metric
from negbench.errors import NegbenchError
from negbench.report.figures.derived import render_claims, render_delta, render_planted, render_ratio, render_verdict
from negbench.report.figures.spec import Spec, parse_spec
from negbench.report.figures.stores import store_settings
from negbench.report.load import load_store
from negbench.report.stats import newest_configs, t_half_width
from negbench.report.table import escape_md, format_value, metric_columns, seed_centre
from negbench.run.store.base import RESULTS_FILE

__all__ = [
    "COSTS",
    "DASH",
    "Summary",
    "format_duration",
    "load_rows",
    "metric_label",
    "render_block",
    "render_spread",
    "render_table",
    "summarise",
    "wall_seconds",
]


_FAMILY_NAMES = {"ndcg": "nDCG", "recall": "Recall", "mrr": "MRR", "map": "MAP", "precision": "P"}


DASH = "–"


def metric_label(name: str) -> str:
    """``ndcg@10`` → ``nDCG@10``, ``recall@100`` → ``Recall@100``; other names unchanged."""
    if name == "dev_metric":
        return "dev metric"
    try:
        m = parse_metric(name)
    except ValueError:
        return name
    return f"{_FAMILY_NAMES.get(m.family, m.family)}@{m.k}"


def load_rows(spec: Spec, root: Path) -> pl.DataFrame:
    """The store's rows that a block describes: one dataset × model, newest config per strategy."""
    return _load(spec, root)[0]


def _load(spec: Spec, root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows, per-query scores) of a block. ``format=planted`` keeps every dataset (it pairs a planted dataset
    with its plain one; its ``dataset=`` names the plain one) and ``format=delta`` every strategy (the
    baseline's rows, and the leaderboard's Holm family). ``format=verdict`` and ``format=claims`` keep what
    ``leaderboard.md`` is rendered from: every dataset × model not named away and every configuration."""
    page = spec.format in ("verdict", "claims")
    path = Path(root) / spec.directory / RESULTS_FILE
    if not path.is_file():
        raise NegbenchError(f"results directory {spec.directory} not found (no {path})")
    rows, per_query = load_store(path.parent, required=("strategy", "status"))  # the report stage's one loader
    for key in ("model",) if spec.format == "planted" else ("dataset", "model"):
        wanted = getattr(spec, key)
        if key not in rows.columns:
            continue
        if wanted is not None:
            rows = rows.filter(pl.col(key) == wanted)
            if rows.is_empty():
                raise NegbenchError(f"{spec.directory} has no rows of {key} {wanted!r}")
        elif spec.format != "planted" and not page:
            values = rows[key].unique(maintain_order=True).to_list()
            if len(values) > 1:
                raise NegbenchError(
                    f"{spec.directory} holds several {key}s ({', '.join(map(str, values))}): "
                    f"add {key}=NAME to the block"
                )
    if "config_key" in rows.columns and not rows.is_empty() and not page:
        rows = newest_configs(rows)
    if spec.strategies:
        have = set(rows["strategy"].to_list())
        missing = [s for s in spec.strategies if s not in have]
        if missing:
            raise NegbenchError(f"{spec.directory} has no strategy {', '.join(missing)}")
        if spec.format != "delta":
            rows = rows.filter(pl.col("strategy").is_in(list(spec.strategies)))
    if rows.is_empty():
        raise NegbenchError(f"{spec.directory} has no rows")
    return rows, per_query


@dataclass
class Summary:
    strategy: str
    seeds: int
    failed: int
    failed_status: str | None
    mean: float | None
    half: float | None
    costs: dict[str, float | None]
    budget: str | None = None
    sd: float | None = None  # between seeds (two or more)


COSTS = (
    "steps",
    "examples_seen",
    "train_tflop",
    "prep_tflop",
    "eval_tflop",
    "train_examples_per_s",
    "mine_s",
    "train_s",
    "eval_s",
    "curve_s",
    "total_s",
    "peak_gpu_mb",
    "peak_rss_mb",
    "train_peak_rss_mb",
    "eval_peak_rss_mb",
    "train_peak_gpu_mb",
    "eval_peak_gpu_mb",
)


def summarise(rows: pl.DataFrame, metric: str) -> list[Summary]:
    """One summary per strategy, in the store's order: metric mean ± CI half-width and costs as the board shows
    them (:func:`~negbench.report.table.seed_centre`: wall times and throughput medians, the rest means)."""
    if metric not in rows.columns:
        raise NegbenchError(
            f"unknown metric {metric!r}: the store has "
            f"{', '.join(c for c in rows.columns if _is_metric(c)) or 'no metric columns'}"
        )
    out = []
    for label in rows["strategy"].unique(maintain_order=True).to_list():
        sub = rows.filter(pl.col("strategy") == label)
        ok = sub.filter(pl.col("status") == "ok")
        bad = sub.filter(pl.col("status") != "ok")
        values = [float(v) for v in ok[metric].to_list() if v is not None and math.isfinite(float(v))]
        mean = sum(values) / len(values) if values else None
        half = std = None
        if len(values) >= 2:
            std = float(pl.Series(values).std())
            half = t_half_width(std, len(values))
        costs = {}
        for col in COSTS:
            vals = [float(v) for v in ok[col].to_list() if v is not None] if col in ok.columns else []
            costs[col] = seed_centre(vals, col)
        budget = ok["budget"].drop_nulls().first() if "budget" in ok.columns and ok.height else None
        out.append(
            Summary(
                str(label),
                ok.height,
                bad.height,
                bad["status"][0] if bad.height else None,
                mean,
                half,
                costs,
                budget,
                std,
            )
        )
    return out


def _is_metric(col: str) -> bool:
    if col == "dev_metric" or col.startswith("mteb:"):
        return True
    try:
        parse_metric(col)
    except ValueError:
        return False
    return True


def _number(s: Summary, digits: int, unit: str = "plain") -> str:
    if s.mean is None:
        return "failed" if s.failed else DASH
    if unit == "percent":
        half = None if s.half is None else 100 * s.half
        text = format_value(100 * s.mean, digits, half) + " %"
    else:
        text = format_value(s.mean, digits, s.half)
    if s.failed:
        text += f" ({s.failed} of {s.failed + s.seeds} seeds failed)"
    return text


def _ordered(summaries: list[Summary], spec: Spec) -> list[Summary]:
    if spec.strategies:
        index = {name: i for i, name in enumerate(spec.strategies)}
        summaries = sorted(summaries, key=lambda s: index[s.strategy])
    if spec.order == "metric":
        summaries = sorted(summaries, key=lambda s: (s.mean is None, -(s.mean or 0.0)))
    return summaries


def format_duration(seconds: float) -> str:
    """``4099`` → ``68 min 19 s``, ``42`` → ``42 s``; from two hours on ``2 h 5 min 0 s``."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 2:
        return f"{hours} h {minutes} min {secs} s"
    minutes += 60 * hours
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def wall_seconds(rows: pl.DataFrame) -> float:
    """Total of ``total_s`` per row, or of ``train_s + eval_s + mine_s`` where ``total_s`` is missing."""
    parts = [c for c in ("train_s", "eval_s", "mine_s") if c in rows.columns]
    if "total_s" not in rows.columns and not parts:
        raise NegbenchError("the store has no timing columns (total_s or train_s, eval_s, mine_s)")
    summed = pl.sum_horizontal([pl.col(c).cast(pl.Float64).fill_null(0.0) for c in parts]) if parts else pl.lit(0.0)
    per_row = pl.coalesce(pl.col("total_s").cast(pl.Float64), summed) if "total_s" in rows.columns else summed
    return float(rows.select(per_row.sum()).item() or 0.0)


def render_table(summaries: list[Summary], spec: Spec, rows: pl.DataFrame) -> str:
    gpu = "peak_gpu_mb" in rows.columns and rows["peak_gpu_mb"].drop_nulls().len() > 0
    unit = "gpu" if gpu else "rss"
    split = f"train_peak_{unit}_mb" in rows.columns  # stores since the fair protocol: train / eval peaks
    name = unit.upper()
    memory = (
        [(f"train_peak_{unit}_mb", f"train {name} MB"), (f"eval_peak_{unit}_mb", f"eval {name} MB")]
        if split
        else [(f"peak_{unit}_mb", f"peak {name} MB")]
    )
    timing = [
        (c, h) for c, h in (("mine_s", "mine s"), ("train_s", "train s"), ("total_s", "total s")) if c in rows.columns
    ]
    compute = [  # machine-independent (stores since compute was counted)
        (c, h) for c, h in (("train_tflop", "train TFLOP"), ("prep_tflop", "prep TFLOP")) if _has_values(rows, c)
    ]
    spread = any(s.sd is not None for s in summaries)
    budgets = any(s.budget not in (None, "equal") for s in summaries)
    header = [
        "strategy",
        "seeds",
        metric_label(spec.metric),
        *(["seed sd"] if spread else []),
        "steps",
        "examples seen",
        *[h for _, h in compute],
        "train ex/s",
        *[h for _, h in timing],
        *[h for _, h in memory],
        *(["budget"] if budgets else []),
    ]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1 - budgets) + "---|" * budgets]
    for s in summaries:
        all_failed = s.mean is None and s.failed
        metric = escape_md(s.failed_status or "failed") if all_failed else _number(s, spec.digits)
        cells = [
            escape_md(s.strategy),
            str(s.seeds),
            metric,
            *([format_value(s.sd, spec.digits)] if spread else []),
            format_value(s.costs["steps"], 0),
            format_value(s.costs["examples_seen"], 0),
            *[format_value(s.costs[c], 2) for c, _ in compute],
            format_value(s.costs["train_examples_per_s"], 1),
            *[format_value(s.costs[c], 1) for c, _ in timing],
            *[format_value(s.costs[c], 0) for c, _ in memory],
        ]
        if budgets:
            cells.append(escape_md(s.budget or DASH))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_spread(summaries: list[Summary], spec: Spec, label: str) -> str:
    """``seed sd of nDCG@10: ar2 0.0110, dense 0.0069, dss 0.0063``: the between-seed standard deviation of the
    metric, largest first (ties in the store's order), the ``top`` largest only when given; strategies with fewer
    than two finished seeds have no spread and are left out."""
    spread = sorted((s for s in summaries if s.sd is not None), key=lambda s: -s.sd)  # type: ignore[operator]
    if not spread:
        raise NegbenchError(f"{spec.directory} has no strategy with two or more finished seeds: no seed spread")
    shown = spread[: spec.top] if spec.top else spread
    return f"seed sd of {label}: " + ", ".join(f"{s.strategy} {format_value(s.sd, spec.digits)}" for s in shown)


def _has_values(rows: pl.DataFrame, column: str) -> bool:
    return column in rows.columns and rows[column].drop_nulls().len() > 0


def render_block(spec: str, root: Path) -> str:
    """The generated text of one block (without the markers) from the results under ``root``."""
    parsed = parse_spec(spec)
    rows, per_query = _load(parsed, Path(root))
    label = metric_label(parsed.metric)
    if parsed.format == "wall":
        return format_duration(wall_seconds(rows))
    if parsed.format == "planted":
        return render_planted(parsed, rows, label)
    if parsed.format == "delta":
        baseline = parsed.baseline or store_settings(Path(root) / parsed.directory).baseline
        return render_delta(parsed, rows, per_query, baseline, label)
    if parsed.format in ("verdict", "claims"):
        settings = store_settings(Path(root) / parsed.directory)
        render = render_verdict if parsed.format == "verdict" else render_claims
        primary = settings.primary_among(metric_columns(rows))
        return render(rows, per_query, parsed.baseline or settings.baseline, primary, settings.comparisons)
    summaries = _ordered(summarise(rows, parsed.metric), parsed)
    if parsed.format == "ratio":
        return render_ratio(parsed, {s.strategy: s.mean for s in summaries})
    if parsed.format == "value":
        if len(summaries) != 1:
            raise NegbenchError(
                f"format=value needs one strategy, {parsed.directory} has {len(summaries)}: "
                "add strategy=NAME to the block"
            )
        return _number(summaries[0], parsed.digits, parsed.unit)
    if parsed.format == "table":
        return render_table(summaries, parsed, rows)
    if parsed.format == "spread":
        return render_spread(summaries, parsed, label)
    return f"{label}: " + ", ".join(f"{s.strategy} {_number(s, parsed.digits, parsed.unit)}" for s in summaries)
