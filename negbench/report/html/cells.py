"""Cell values of the HTML tables: escaped text, numbers, a metric with its mark and interval."""

from __future__ import annotations

import html
from typing import Any

import polars as pl

from negbench.report.stats import (
    BETTER,
    Significance,
)
from negbench.report.table import fmt_delta, format_value, number

__all__ = ["esc", "format_number", "memory_column", "number", "number_cell", "p_cell", "strategy_citation"]


def esc(value: object) -> str:
    """HTML-escape any value (quotes too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


def format_number(value: Any, digits: int) -> str:
    """A table cell's number: :func:`negbench.report.table.format_value` with thousands grouped."""
    return format_value(value, digits, grouping=True)


def number_cell(value: Any, digits: int) -> str:
    f = number(value)
    return f'<td data-sort="{"" if f is None else repr(f)}">{format_number(f, digits)}</td>'


def strategy_citation(name: str, reg: Any = None) -> tuple[str | None, str | None]:
    """``(citation, problem)`` for a registered strategy name; unknown or broken strategies give a problem."""
    try:
        if reg is None:
            from negbench.core.registry import registry as reg
        if name not in reg.names():
            return None, "not registered in this environment (a plugin that is not installed?)"
        entry = reg.load(name)
        if entry.cls is None:
            return None, f"plugin failed to load: {entry.error}"
        doc = (entry.cls.__doc__ or "").strip().splitlines()
        return (entry.cls.citation or (doc[0] if doc else None)), None
    except Exception as exc:  # a report must render even when the registry misbehaves
        return None, f"registry lookup failed: {type(exc).__name__}: {exc}"


def memory_column(group: pl.DataFrame) -> tuple[str, str]:
    """The memory the plot shows: training peak GPU memory when any row has it, else training peak RSS
    (both already fall back to the old whole-run peaks in :func:`negbench.report.markdown.aggregate`)."""
    gpu = "train_peak_gpu_mb"
    if gpu in group.columns and any((number(v) or 0) > 0 for v in group[gpu].to_list()):
        return gpu, "training peak GPU memory (MB)"
    return "train_peak_rss_mb", "training peak RSS (MB)"


def p_cell(sig: Significance | None, text: str) -> str:
    """The Holm p cell: the mark coloured by its direction, the p-value and a tooltip with the raw p, the seeds
    and the standard error behind it (``text`` is the plain cell, :func:`negbench.report.leaderboard.p_text`)."""
    if sig is None or number(sig.p_holm) is None:
        return f'<td class="text" data-sort="">{esc(text)}</td>'
    scope = "queries and seeds" if sig.seed_aware else "queries only (one seed: training variance unmeasured)"
    tip = (
        f"Holm p = {sig.p_holm:.3g} (raw p = {sig.p_value:.3g}, over {sig.family} comparisons); Δ {fmt_delta(sig)}; "
        f"SE {sig.se:.4f} over {scope}; {sig.n} queries, {sig.seeds} vs {sig.baseline_seeds} seeds"
    )
    body = esc(text)
    if sig.mark:
        cls = "better" if sig.mark == BETTER else "worse"
        body = f'<span class="sig {cls}">{esc(sig.mark)}</span> ' + esc(text.removeprefix(sig.mark).strip())
    return f'<td class="text" data-sort="{sig.p_holm!r}" title="{esc(tip)}">{body}</td>'
