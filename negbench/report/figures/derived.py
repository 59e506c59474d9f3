"""Figures derived from more than one strategy's mean: the paired difference against the baseline with its 95%
interval over queries and seeds (``format=delta``), the ratio of two strategies' means (``format=ratio``), the
planted false-negative comparison (``format=planted``), the verdict (``format=verdict``) and the declared
comparisons (``format=claims``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

from negbench.errors import NegbenchError
from negbench.report.boards import boards
from negbench.report.diagnostics import planted_table
from negbench.report.figures.spec import Spec
from negbench.report.markdown import claims_markdown
from negbench.report.stats import significance
from negbench.report.table import escape_md, fmt_delta, format_value
from negbench.report.verdict import verdicts

__all__ = ["render_claims", "render_delta", "render_planted", "render_ratio", "render_verdict"]

ALPHA = 0.05  # the level of the pages `negbench figures` renders (the report's default)


def render_delta(spec: Spec, rows: pl.DataFrame, per_query: pl.DataFrame, baseline: str, label: str) -> str:
    """``Δ nDCG@10 vs in-batch: dss +0.0117 [+0.0008, +0.0227], …``: each strategy's Δ from the baseline and
    its 95% confidence interval, as the leaderboard's Δ column computes them (``rows`` hold every strategy of one
    dataset × model, so the tests are the leaderboard's): :func:`negbench.report.stats.significance`, i.e.
    :func:`negbench.report.stats.twolevel.seed_query_test`. Δ is the mean over queries of the per-query difference
    of the seed-averaged scores; the interval is the t interval ``Δ ± t(0.975, df) · SE``, ``SE²`` the seed ×
    query variance-components estimate (query part + seed part, Welch–Satterthwaite df with the seed parts at
    their upper confidence bound). With one seed on either side it is a paired t interval over queries: query
    sampling only."""
    if per_query.is_empty():
        raise NegbenchError(f"{spec.directory} has no per-query scores: format=delta needs per_query.parquet")
    labels = rows["strategy"].unique(maintain_order=True).to_list()
    if baseline not in labels:
        raise NegbenchError(f"{spec.directory} has no baseline strategy {baseline!r}: add baseline=NAME")
    wanted = list(spec.strategies) or [s for s in labels if s != baseline]
    missing = [s for s in wanted if s not in labels]
    if missing:
        raise NegbenchError(f"{spec.directory} has no strategy {', '.join(missing)}")
    wanted = [s for s in wanted if s != baseline]
    if not wanted:
        raise NegbenchError(f"{spec.directory} has no strategy besides the baseline {baseline!r} to compare")
    sig = significance(rows, per_query, baseline, [spec.metric])
    keyed = {label_: s for (_, _, label_, metric), s in sig.items() if metric == spec.metric}
    if spec.order == "metric":
        wanted.sort(key=lambda s: -keyed[s].mean_diff if s in keyed and math.isfinite(keyed[s].mean_diff) else 1.0)
    cells = [f"{s} {fmt_delta(keyed.get(s), spec.digits)}" for s in wanted]
    return f"Δ {label} vs {baseline}: " + ", ".join(cells)


def render_ratio(spec: Spec, means: dict[str, float | None]) -> str:
    """``0.28×``: the mean of the first strategy divided by that of the second."""
    top, bottom = (means.get(s) for s in spec.strategies)
    if top is None or bottom is None or bottom == 0:
        raise NegbenchError(f"format=ratio: no finite {spec.metric} of {' and '.join(spec.strategies)} to divide")
    return f"{top / bottom:.{spec.digits}f}×"


def render_planted(spec: Spec, rows: pl.DataFrame, label: str) -> str:
    """A markdown table per strategy: the metric without and with planted false negatives (paired by seed), the
    drop, the seeds paired, and the planted shares (:func:`negbench.report.diagnostics.planted_table`)."""
    table = planted_table(rows, spec.metric)
    if table is None:
        raise NegbenchError(f"{spec.directory} has no planted false negatives paired with a plain run")
    for key, column in (("dataset", "dataset_base"), ("model", "model")):
        wanted = getattr(spec, key)
        if wanted is not None:
            table = table.filter(pl.col(column) == wanted)
        values = table[column].unique(maintain_order=True).to_list()
        if len(values) > 1:
            raise NegbenchError(f"{spec.directory} plants in several {key}s ({', '.join(values)}): add {key}=NAME")
    if table.is_empty():
        raise NegbenchError(f"{spec.directory} has no planted rows of {spec.dataset or spec.model}")
    if spec.strategies:
        index = {name: i for i, name in enumerate(spec.strategies)}
        table = table.filter(pl.col("strategy").is_in(list(index))).sort(
            pl.col("strategy").replace_strict(index, return_dtype=pl.Int64)
        )
    digits = spec.digits
    lines = [
        f"| strategy | {escape_md(label)} plain | planted | drop | seeds paired | planted FN share | "
        "planted FN in-batch share |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table.iter_rows(named=True):
        cells = [
            escape_md(r["strategy"]),
            *(format_value(r[c], digits) for c in ("without", "with", "drop")),
            str(r["n"]),
            *(format_value(r[c], digits) for c in ("planted_fn_share", "planted_fn_inbatch_share")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_verdict(
    rows: pl.DataFrame,
    per_query: pl.DataFrame,
    baseline: str,
    primary: str | None,
    comparisons: Sequence[tuple[str, str]] = (),
) -> str:
    """The store's verdict and caveats, word for word as its ``leaderboard.md`` opens (``format=verdict``)."""
    board = boards(rows, per_query, baseline, primary_metric=primary, comparisons=comparisons)
    verdicts_ = verdicts(board.tables, board.rows, baseline=baseline)
    return "\n\n".join(paragraph for verdict in verdicts_ for paragraph in verdict.markdown())


def render_claims(
    rows: pl.DataFrame,
    per_query: pl.DataFrame,
    baseline: str,
    primary: str | None,
    comparisons: Sequence[tuple[str, str]],
) -> str:
    """The declared comparisons' table of every board, as its ``leaderboard.md`` shows it (``format=claims``)."""
    if not comparisons:
        raise NegbenchError("format=claims: the store's suite.toml declares no [[comparisons]]")
    board = boards(rows, per_query, baseline, primary_metric=primary, comparisons=comparisons)
    named = len(board.tables) > 1
    lines: list[str] = []
    for table in board.tables:
        body = claims_markdown(table.declared, ALPHA)[2:]  # without its heading: the block sits under the page's
        lines += ([f"{escape_md(table.dataset)} · {escape_md(table.model)}:", ""] if named else []) + body
    return "\n".join(lines).rstrip("\n")
