"""The leaderboard's one table model: which tables a board shows, their columns, captions and what each row holds,
built once from the results and rendered by the markdown, HTML and terminal renderers (each only decides how a
cell looks).

A board (one dataset × model) has four views of the same rows: the **primary** metric (mean, between-seed SD,
Δ vs the baseline with its CI, the mark and Holm p, the detectable difference, seeds, budget), the **secondary**
metrics (exploratory), **costs** and **memory**; so the first table fits a page and says only what the statistics
hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from negbench.report.captions import view_captions
from negbench.report.stats import (
    BaselineConfig,
    DeclaredTest,
    Significance,
    baseline_config,
    repeated_configs,
    resolve_primary,
    with_config_labels,
)
from negbench.report.table import (
    aggregate,
    cost_columns,
    fmt_batch,
    fmt_delta,
    format_value,
    has_budget_changes,
    has_compute,
    memory_fallback_used,
    metric_columns,
    number,
)

__all__ = [
    "TRAINING_COLUMNS",
    "Column",
    "Kind",
    "LeaderboardTable",
    "Row",
    "View",
    "board_views",
    "leaderboard_tables",
    "plain_cell",
]

Kind = Literal["label", "count", "mean", "spread", "delta", "test", "detectable", "number", "batch", "text", "status"]
TEXT_KINDS = frozenset({"label", "text", "status", "test"})
# Aggregate columns that only a training run has: a strategy that does not train shows "–" there, not the
# whole-run peak it would otherwise fall back to (its evaluation's).
TRAINING_COLUMNS = ("train_examples_per_s", "train_peak_rss_mb", "train_peak_gpu_mb", "train_tflop", "prep_tflop")


@dataclass(frozen=True)
class Column:
    """One column: its header, the aggregate field (or metric) it shows, how to show it, with how many decimals."""

    header: str
    key: str
    kind: Kind
    digits: int = 0

    @property
    def is_text(self) -> bool:
        return self.kind in TEXT_KINDS


@dataclass(frozen=True)
class View:
    """One table of a board: ``name`` (primary, secondary, costs, memory), its title, columns and caption."""

    name: str
    title: str
    columns: list[Column]
    caption: str


@dataclass(frozen=True)
class Row:
    """One configuration's aggregate record, whether it is the baseline, its tests against the baseline and the
    label whose configuration it repeats (None when it is no repeat)."""

    record: dict[str, Any]
    is_baseline: bool = False
    sig: dict[str, Significance] = field(default_factory=dict)  # metric → test against the baseline
    repeat_of: str | None = None

    @property
    def label(self) -> str:
        return str(self.record["label"])

    def status(self) -> str:
        return str(self.record.get("failed") or "ok")

    @property
    def subset(self) -> str | None:
        """What a subset run's limits kept (``ResultRow.subset``); None for a run on the full dataset."""
        return self.record.get("subset") or None

    @property
    def trains(self) -> bool:
        """Whether the configuration trains (took optimiser steps); the zero-shot ``none`` does not."""
        return (number(self.record.get("steps")) or 0) > 0

    @property
    def seeds(self) -> int:
        return int(self.record.get("seeds") or 0)


@dataclass(frozen=True)
class LeaderboardTable:
    """The rows of one dataset × model, in rank order of the primary metric, under the board's views."""

    dataset: str
    model: str
    views: list[View]
    rows: list[Row]
    baseline: BaselineConfig | None
    primary: str | None = None
    delta_metric: str | None = None  # the primary metric when the rows carry tests, else None
    declared: tuple[DeclaredTest, ...] = ()  # the suite's declared comparisons on this board (boards() adds them)

    @property
    def columns(self) -> list[Column]:
        """The main (primary) view's columns."""
        return self.views[0].columns

    def view(self, name: str) -> View | None:
        return next((v for v in self.views if v.name == name), None)

    def seed_counts(self) -> list[int]:
        """The seeds behind each finished configuration."""
        return [r.seeds for r in self.rows if r.seeds > 0]

    def subset_notes(self) -> list[str]:
        """One sentence per subset among the rows (marked ``(subset)``): what it kept and its share of documents
        relevant only to test queries against the full corpus's (:mod:`negbench.data.subset`)."""
        seen = dict.fromkeys(
            (r.subset, r.record.get("test_only_share"), r.record.get("test_only_share_full"))
            for r in self.rows
            if r.subset
        )
        return [
            f"Rows marked (subset) ran on a subset of {self.dataset}: {subset}."
            + (
                f" Documents relevant only to test queries make {share:.1%} of its evaluated corpus, "
                f"{full:.1%} of the full corpus."
                if number(share) is not None and number(full) is not None
                else ""
            )
            for subset, share, full in seen
        ]

    def repeat_notes(self) -> list[str]:
        """One sentence per label that repeats another label's configuration (:func:`repeated_configs`): a
        repeat, not another strategy, and what it showed on the primary metric (it joins no Holm family): scores
        equal to its original's, else its Δ against the baseline beside its original's."""
        by_label = {r.label: r for r in self.rows}
        notes = []
        for row in self.rows:
            original = by_label.get(row.repeat_of or "")
            if original is None:
                continue
            sig = row.sig.get(self.delta_metric or "")
            text = (
                f"{row.label} repeats the configuration of {original.label} (same strategy, parameters, training "
                "settings, budget, data, model and code) under another label"
            )
            if sig is None:
                notes.append(text + ".")
            elif original.is_baseline and sig.identical and not sig.dropped:
                notes.append(
                    text + ". Its per-query scores equal the baseline's: a deterministic rerun, not a second seed."
                )
            elif original.is_baseline:
                moved = "beyond" if sig.ci_low > 0 or sig.ci_high < 0 else "within"
                notes.append(
                    f"{text}, yet scores Δ {fmt_delta(sig)} against it ({moved} the CI of a reproduction; a repeat "
                    "joins no Holm family): a rerun of one configuration moves that far."
                )
            else:
                osig = original.sig.get(self.delta_metric or "")
                theirs = f"; {original.label}'s: {fmt_delta(osig)}" if osig is not None else ""
                notes.append(f"{text}; its Δ against the baseline is {fmt_delta(sig)}{theirs}.")
        return notes


def board_views(
    metrics: list[str],
    primary: str | None,
    costs: list[tuple[str, str, int]],
    *,
    tested: bool,
    show_budget: bool,
    show_spread: bool,
    show_status: bool,
    show_device: bool = False,
    captions: dict[str, str] | None = None,
) -> list[View]:
    """The views of a leaderboard, in the order every renderer shows them (``tested``: rows carry tests;
    ``show_device``: the costs view names the device its wall times come from)."""
    captions = captions or {}
    main = [
        Column("strategy", "label", "label"),
        Column("seeds", "seeds", "count"),
        *([Column(primary, primary, "mean", 4)] if primary else []),
        *([Column("seed SD", primary, "spread", 4)] if primary and show_spread else []),
        *(
            [
                Column("Δ vs baseline [95% CI]", primary, "delta", 4),
                Column("Holm p", primary, "test"),
                Column("detectable Δ", primary, "detectable", 4),
            ]
            if primary and tested
            else []
        ),
        *([Column("budget", "budget", "text")] if show_budget else []),
        *([Column("status", "failed", "status")] if show_status else []),
    ]
    views = [View("primary", f"{primary or 'metrics'} (primary)", main, captions.get("primary", ""))]
    secondary = [m for m in metrics if m != primary]
    if secondary:
        cols = [Column("strategy", "label", "label")]
        for m in secondary:
            cols.append(Column(m, m, "mean", 4))
            if tested:
                cols.append(Column(f"Δ {m} [95% CI]", m, "delta", 4))
        views.append(View("secondary", "Secondary metrics (exploratory)", cols, captions.get("secondary", "")))
    label = Column("strategy", "label", "label")
    spend = [Column(h, k, "number", d) for h, k, d in costs if not k.endswith("_mb")]
    views.append(
        View(
            "costs",
            "Costs",
            [
                label,
                Column("steps", "steps", "number"),
                Column("examples", "examples_seen", "number"),
                Column("batch mean/min", "mean_batch_size", "batch"),
                *spend,
                *([Column("device (times)", "device", "text")] if show_device else []),
            ],
            captions.get("costs", ""),
        )
    )
    memory = [Column(h, k, "number", d) for h, k, d in costs if k.endswith("_mb")]
    if memory:
        views.append(View("memory", "Memory", [label, *memory], captions.get("memory", "")))
    return views


def leaderboard_tables(
    rows: pl.DataFrame,
    sig: dict | None = None,
    baseline: str = "in-batch",
    delta_metric: str | None = None,
    *,
    primary: str | None = None,
    alpha: float = 0.05,
) -> list[LeaderboardTable]:
    """One :class:`LeaderboardTable` per dataset × model of ``rows`` (a store's rows, any seeds).

    ``sig`` maps ``(dataset, model, label, metric)`` to the test against the baseline (see
    :func:`negbench.report.stats.significance`); ``delta_metric`` (the primary metric, for callers that have
    tests) adds the Δ, Holm p and detectable-Δ columns; ``primary`` picks the primary metric
    (:func:`negbench.report.stats.resolve_primary`), ``delta_metric`` when not given.
    """
    if rows.is_empty():
        return []
    labelled = with_config_labels(rows)
    sig = sig or {}
    metrics = metric_columns(rows)
    primary = resolve_primary(metrics, primary or delta_metric)
    tested = delta_metric is not None and bool(sig)
    table = aggregate(labelled)
    if primary is not None and primary in table.columns:
        table = table.sort(["dataset", "model", primary], descending=[False, False, True], nulls_last=True)
    show = {
        "show_budget": has_budget_changes(rows),
        "show_spread": "seeds" in table.columns and (table["seeds"].fill_null(0) > 1).any(),
        "show_status": "failed" in table.columns and table["failed"].drop_nulls().len() > 0,
        "show_device": has_compute(rows),
    }
    tables = []
    for (dataset, model), group in table.group_by(["dataset", "model"], maintain_order=True):
        here = labelled.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
        base = baseline_config(here, baseline)
        subsets = _subset_columns(here)
        repeats = repeated_configs(here, base.label if base is not None else None)
        body = [
            Row(
                _training_only({**rec, **subsets.get(rec["label"], {})}),
                base is not None and rec["label"] == base.label,
                {m: s for m in metrics if (s := sig.get((dataset, model, rec["label"], m))) is not None},
                repeats.get(rec["label"]),
            )
            for rec in group.iter_rows(named=True)
        ]
        captions = view_captions(
            primary=primary,
            baseline=base.label if base is not None else baseline,
            alpha=alpha,
            seeds=[r.seeds for r in body if r.seeds > 0],
            tests=[r.sig[primary] for r in body if primary in r.sig] if tested else [],
            legacy_memory=memory_fallback_used(here.filter(pl.col("steps").fill_null(1) > 0))
            if "steps" in here.columns
            else memory_fallback_used(here),
            untrained=[r.label for r in body if not r.trains and r.record.get("steps") is not None],
            compute=show["show_device"],
        )
        views = board_views(metrics, primary, cost_columns(rows), tested=tested, captions=captions, **show)
        tables.append(
            LeaderboardTable(str(dataset), str(model), views, body, base, primary, primary if tested else None)
        )
    return tables


SUBSET_COLUMNS = ("subset", "test_only_share", "test_only_share_full")


def _subset_columns(rows: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Per configuration label, its rows' subset columns (the same for every seed: they follow the data)."""
    present = [c for c in SUBSET_COLUMNS if c in rows.columns]
    if "subset" not in present:
        return {}
    firsts = rows.group_by("label", maintain_order=True).agg(pl.col(c).drop_nulls().first() for c in present)
    return {rec.pop("label"): rec for rec in firsts.iter_rows(named=True)}


def _training_only(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` without training costs when it took no optimiser step (the zero-shot ``none``)."""
    if (number(record.get("steps")) or 0) > 0 or record.get("steps") is None:
        return record
    return {**record, **{c: None for c in TRAINING_COLUMNS if c in record}}


def plain_cell(row: Row, column: Column) -> str:
    """A cell as plain text (markdown and the terminal): numbers as :func:`format_value` writes them, Δ with its
    CI, the mark with the Holm p (a query-only p in parentheses), the baseline's label tagged."""
    rec = row.record
    sig = row.sig.get(column.key)
    if column.kind == "label":
        tags = [" (baseline)" if row.is_baseline else "", " (subset)" if row.subset else ""]
        tags.append(f" (repeat of {row.repeat_of})" if row.repeat_of else "")
        return row.label + "".join(tags)
    if column.kind == "count":
        return str(rec.get(column.key) or 0)
    if column.kind == "mean":
        return format_value(rec.get(column.key), column.digits)
    if column.kind == "spread":
        return format_value(rec.get(f"{column.key}_std"), column.digits) if row.seeds > 1 else "–"
    if column.kind == "delta":
        return "–" if row.is_baseline else fmt_delta(sig, column.digits)
    if column.kind == "test":
        return "–" if row.is_baseline else p_text(sig)
    if column.kind == "detectable":
        return "–" if row.is_baseline else detectable_text(sig, column.digits)
    if column.kind == "batch":
        return fmt_batch(rec)
    if column.kind == "status":
        return row.status()
    if column.kind == "text":
        return str(rec.get(column.key) or "–")
    return format_value(rec.get(column.key), column.digits)


def p_text(sig: Significance | None) -> str:
    """The mark and Holm p of a seed-aware comparison (``▲ 0.003``, ``▼ 1.2e-05``); a query-only p in parentheses."""
    if sig is None or number(sig.p_holm) is None:
        return "–"
    p = f"{sig.p_holm:.2g}" if sig.p_holm < 0.001 else f"{sig.p_holm:.3f}"
    return (f"{sig.mark} {p}" if sig.mark else p) if sig.seed_aware else f"({p})"


def detectable_text(sig: Significance | None, digits: int = 4) -> str:
    """The detectable difference; ``≥`` in front when it counts query sampling only (one seed)."""
    if sig is None or number(sig.detectable) is None or math.isnan(sig.detectable):
        return "–"
    return ("" if sig.seed_aware else "≥ ") + f"{sig.detectable:.{digits}f}"
