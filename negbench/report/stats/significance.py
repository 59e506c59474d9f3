"""Each configuration against the baseline, per dataset × model × metric (one Holm family per table)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from negbench.report.stats.configs import CONFIG_KEYS, baseline_config, query_means, with_config_labels
from negbench.report.stats.tests import BETTER, WORSE, PairedTest, TestMethod, holm, paired_test

__all__ = ["Significance", "mark_for", "significance"]


@dataclass(frozen=True)
class Significance:
    """One configuration vs the baseline on one metric: raw and Holm-adjusted two-sided p, the mark to show
    (its direction is the significant one-sided test's), and effect sizes (see :class:`PairedTest`)."""

    p_value: float
    p_holm: float
    mean_diff: float
    n: int
    mark: str  # BETTER, WORSE or ""
    p_greater: float = 1.0
    p_less: float = 1.0
    hodges_lehmann: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    config_key: str = ""
    baseline_config_key: str = ""


def mark_for(test: PairedTest, p_holm: float, alpha: float) -> str:
    """BETTER / WORSE when the Holm-adjusted p is below ``alpha``, in the direction the test found; else ""."""
    if not p_holm < alpha:
        return ""
    return {1: BETTER, -1: WORSE}.get(test.direction, "")


def significance(
    rows: pl.DataFrame,
    per_query: pl.DataFrame,
    baseline: str = "in-batch",
    metrics: Sequence[str] | None = None,
    alpha: float = 0.05,
    method: TestMethod = "wilcoxon",
) -> dict[tuple[str, str, str, str], Significance]:
    """Each configuration vs the baseline, keyed by ``(dataset, model, label, metric)`` where ``label`` is the
    display label of :func:`with_config_labels` (the strategy label when it has one configuration).

    Only finished (``status == "ok"``) runs count. The baseline is :func:`baseline_config`. Holm's correction
    runs over the configurations of one dataset × model × metric (the comparisons one leaderboard column
    makes).
    """
    out: dict[tuple[str, str, str, str], Significance] = {}
    if rows.is_empty() or per_query is None or per_query.is_empty():
        return out
    rows = with_config_labels(rows)
    ok = rows.filter(pl.col("status") == "ok")
    if ok.is_empty():
        return out
    means = query_means(ok, per_query, (*CONFIG_KEYS, "label"))
    if metrics is not None:
        means = means.filter(pl.col("metric").is_in(list(metrics)))
    for (dataset, model), group in ok.group_by(["dataset", "model"], maintain_order=True):
        base = baseline_config(rows.filter((pl.col("dataset") == dataset) & (pl.col("model") == model)), baseline)
        if base is None:
            continue
        configs = group.select(["label", "config_key"]).unique(maintain_order=True).rows()
        others = [(label, key) for label, key in configs if label != base.label]
        here = means.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
        for (metric,), part in sorted(here.partition_by(["metric"], as_dict=True).items()):
            scores = {
                label: dict(zip(sub["query_id"].to_list(), sub["score"].to_list(), strict=True))
                for (label,), sub in part.partition_by(["label"], as_dict=True).items()
            }
            base_scores = scores.get(base.label)
            if not base_scores:
                continue
            tests = [paired_test(scores.get(label, {}), base_scores, method) for label, _ in others]
            adjusted = holm([t.p_value for t in tests])
            for (label, key), t, p_adj in zip(others, tests, adjusted, strict=True):
                out[(dataset, model, label, metric)] = Significance(
                    t.p_value,
                    p_adj,
                    t.mean_diff,
                    t.n,
                    mark_for(t, p_adj, alpha),
                    t.p_greater,
                    t.p_less,
                    t.hodges_lehmann,
                    t.ci_low,
                    t.ci_high,
                    key,
                    base.config_key,
                )
    return out


# --- several datasets -----------------------------------------------------------------------------------
