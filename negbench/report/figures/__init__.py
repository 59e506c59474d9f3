"""Figures in markdown files rendered from published results, so no number is typed by hand.

A block is an HTML comment pair; everything between the two markers is generated::

    <!-- figures: results/quickstart-cpu metric=ndcg@10 format=inline -->nDCG@10: none 0.7562, …<!-- /figures -->

The first word after ``figures:`` is a results directory (relative to the repository root) holding
``results.parquet``; the rest are ``key=value`` options:

- ``format``: ``inline`` (default; ``nDCG@10: none 0.7562, in-batch 0.7758``), ``table`` (a markdown
  table of the metric and costs), ``value`` (the number alone; the store, after filters, must hold one
  strategy), ``wall`` (total compute time of the rows, ``68 min 19 s``), ``delta`` (each strategy's mean
  per-query difference from the baseline, of the seed-averaged scores, with its 95% t interval from the seed ×
  query variance-components model of :mod:`negbench.report.stats.twolevel`, query sampling only when a side has
  one seed; as the leaderboard's Δ column: ``Δ nDCG@10 vs in-batch: dss +0.0099 [+0.0008, +0.0227]``),
  ``ratio`` (``strategy=A,B``: the mean of A over that of B, ``0.28×``), ``planted`` (a table of the metric
  without and with planted false negatives, the drop and the planted shares; ``dataset=`` then names the plain
  dataset), ``verdict`` (the store's verdict and caveats, word for word as its ``leaderboard.md`` opens, on the
  store's primary metric: every configuration and every dataset × model that ``dataset=``/``model=`` leave; no
  ``strategy=``), ``claims`` (the store's declared comparisons as the verdict tests them) or ``spread`` (the
  between-seed standard deviation of the metric, largest first: ``seed sd of nDCG@10: ar2 0.0110, dense
  0.0069``; ``top=N`` keeps the N largest).
- ``metric``: a column of the store (default ``ndcg@10``): a metric, ``dev_metric`` (the tuned dev score), a
  cost (``train_examples_per_s``) or a diagnostic (``planted_fn_share``).
- ``digits``: decimals of the metric (default 4); ``unit=percent`` shows it × 100 with `` %``.
- ``strategy``: comma-separated labels to keep (in that order); ``dataset`` / ``model``: required when the
  store holds several.
- ``order``: ``store`` (default: the order in which strategies first appear in the store, i.e. the suite's)
  or ``metric`` (best first).
- ``baseline``: what ``delta`` compares with (default: the store's ``suite.toml`` ``[suite] baseline``, else
  ``in-batch``).

Means are over seeds (rows with ``status == "ok"``); with two or more seeds the half-width of the 95%
Student-t confidence interval follows as ``± h``, and a table gains the between-seed standard deviation
(``seed sd``); a table shows compute (``train TFLOP``, ``prep TFLOP``) where the store counted it. A strategy
whose rows all failed shows as failed. If the store has a ``config_key`` column, only the newest config (latest
``created_at``) of each strategy counts.

``negbench figures`` also re-renders every published store's ``leaderboard.md`` and ``index.html``
(:mod:`negbench.report.figures.pages`: every ``results/*/`` with a ``results.parquet``, stamped with the newest
row's ``created_at``), refuses figures typed outside a block (:mod:`negbench.report.figures.typed`) and fails on
a folder under ``results/`` with a page but no ``results.parquet`` (an orphaned page:
:func:`~negbench.report.figures.pages.orphaned_pages`)."""

from __future__ import annotations

from negbench.report.figures.blocks import CLOSE, DEFAULT_FILES, OPEN, Block, find_blocks, referenced_dirs, update_file
from negbench.report.figures.pages import PAGE_FILES, Page, plan_pages, render_pages, write_pages
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
from negbench.report.figures.spec import FORMATS, OPTIONS, UNITS, Spec, parse_spec
from negbench.report.figures.stores import (
    RESULTS_ROOT,
    SUITE_FILE,
    StoreSettings,
    generated_at,
    published_stores,
    store_settings,
)
from negbench.report.figures.typed import ALLOWED, TypedFigure, typed_figures, typed_in_file

__all__ = [
    "ALLOWED",
    "CLOSE",
    "COSTS",
    "DASH",
    "DEFAULT_FILES",
    "FORMATS",
    "OPEN",
    "OPTIONS",
    "PAGE_FILES",
    "RESULTS_ROOT",
    "SUITE_FILE",
    "UNITS",
    "Block",
    "Page",
    "Spec",
    "StoreSettings",
    "Summary",
    "TypedFigure",
    "find_blocks",
    "format_duration",
    "generated_at",
    "load_rows",
    "metric_label",
    "parse_spec",
    "plan_pages",
    "published_stores",
    "referenced_dirs",
    "render_block",
    "render_pages",
    "render_table",
    "store_settings",
    "summarise",
    "typed_figures",
    "typed_in_file",
    "update_file",
    "wall_seconds",
    "write_pages",
]
