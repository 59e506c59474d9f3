"""Figures in markdown files rendered from published results, so no number is typed by hand.

A block is an HTML comment pair; everything between the two markers is generated::

    <!-- figures: results/quickstart-cpu metric=ndcg@10 format=inline -->nDCG@10: none 0.7562, …<!-- /figures -->

The first word after ``figures:`` is a results directory (relative to the repository root) holding
``results.parquet``; the rest are ``key=value`` options:

- ``format``: ``inline`` (default; ``nDCG@10: none 0.7562, in-batch 0.7758``), ``table`` (a markdown
  table of the metric and costs), ``value`` (the number alone; the store, after filters, must hold one
  strategy) or ``wall`` (total compute time of the rows, ``68 min 19 s``).
- ``metric``: a metric column of the store (default ``ndcg@10``); ``dev_metric`` is the tuned dev score.
- ``digits``: decimals of the metric (default 4).
- ``strategy``: comma-separated labels to keep (in that order); ``dataset`` / ``model``: required when the
  store holds several.
- ``order``: ``store`` (default: the order in which strategies first appear in the store, i.e. the suite's)
  or ``metric`` (best first).

Means are over seeds (rows with ``status == "ok"``); with two or more seeds the half-width of the 95%
Student-t confidence interval follows as ``± h``. A strategy whose rows all failed shows as failed. If the
store has a ``config_key`` column, only the newest config (latest ``created_at``) of each strategy counts."""

from __future__ import annotations

from negbench.report.figures.blocks import CLOSE, DEFAULT_FILES, OPEN, Block, find_blocks, referenced_dirs, update_file
from negbench.report.figures.render import (
    COSTS,
    DASH,
    Summary,
    format_duration,
    load_rows,
    metric_label,
    render_block,
    render_table,
    summarise,
    wall_seconds,
)
from negbench.report.figures.spec import FORMATS, OPTIONS, Spec, parse_spec

__all__ = [
    "CLOSE",
    "COSTS",
    "DASH",
    "DEFAULT_FILES",
    "FORMATS",
    "OPEN",
    "OPTIONS",
    "Block",
    "Spec",
    "Summary",
    "find_blocks",
    "format_duration",
    "load_rows",
    "metric_label",
    "parse_spec",
    "referenced_dirs",
    "render_block",
    "render_table",
    "summarise",
    "update_file",
    "wall_seconds",
]
