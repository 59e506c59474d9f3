"""Statistics shared by the leaderboards and ``negbench compare``.

* :func:`mean_ci` — mean and 95% confidence interval over seeds (Student t, because there are few seeds).
* :func:`paired_test` — paired per-query test of a strategy against a baseline. Per-query scores are first
  averaged over seeds (:func:`per_query_means`), so the unit of the test is the query, as in IR practice.
  The default is the two-sided **Wilcoxon signed-rank test**: per-query nDCG / recall / MRR values are
  bounded, skewed and heavily tied at 0 and 1, so a rank test is safer than a t-test, whose normality
  assumption they break. Zero differences (queries on which both systems score the same) are handled with
  Pratt's method (kept in the ranking, then dropped), which is more conservative than discarding them
  first; when every difference is zero the systems are indistinguishable and p = 1. A paired t-test is
  available with ``method="t"``.
* :func:`holm` — Holm's step-down correction for the family of comparisons in one table.
* :func:`significance` — all of that for a results store: each strategy vs the baseline, per
  dataset × model × metric (one Holm family per dataset × model × metric).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from scipy import stats as sps

BETTER = "▲"
WORSE = "▼"
TestMethod = Literal["wilcoxon", "t"]


@dataclass(frozen=True)
class MeanCI:
    """A mean with its confidence interval (``low``/``high`` are NaN with fewer than two values)."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def t_half_width(std: float | None, n: int | None, confidence: float = 0.95) -> float:
    """Half-width of the Student-t confidence interval of a mean from a sample std of ``n`` values."""
    if std is None or n is None or n < 2 or not math.isfinite(std):
        return math.nan
    return float(sps.t.ppf((1 + confidence) / 2, n - 1) * std / math.sqrt(n))


def mean_ci(values: Iterable[float | None], confidence: float = 0.95) -> MeanCI:
    """Mean and Student-t confidence interval of ``values`` (None / NaN are ignored)."""
    arr = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return MeanCI(math.nan, math.nan, math.nan, 0)
    mean = float(arr.mean())
    half = t_half_width(float(arr.std(ddof=1)), arr.size, confidence) if arr.size > 1 else math.nan
    return MeanCI(mean, mean - half, mean + half, int(arr.size))


@dataclass(frozen=True)
class PairedTest:
    """Result of a paired per-query test; ``mean_diff`` is mean(new − base) over the common queries."""

    p_value: float
    statistic: float
    n: int
    mean_diff: float
    method: str


def paired_test(
    new: Mapping[str, float], base: Mapping[str, float], method: TestMethod = "wilcoxon"
) -> PairedTest:
    """Two-sided paired test of per-query scores over the queries both mappings have.

    With fewer than two common queries, or when all differences are zero, ``p_value`` is 1.0.
    """
    common = sorted(set(new) & set(base))
    diffs = np.array([new[q] - base[q] for q in common], dtype=float)
    n = int(diffs.size)
    mean_diff = float(diffs.mean()) if n else math.nan
    if n < 2 or not np.any(np.abs(diffs) > 1e-12):
        return PairedTest(1.0, 0.0, n, mean_diff, method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "wilcoxon":
            res = sps.wilcoxon(diffs, zero_method="pratt", alternative="two-sided")
        elif method == "t":
            res = sps.ttest_1samp(diffs, 0.0)
        else:
            raise ValueError(f"unknown test method {method!r}: use 'wilcoxon' or 't'")
    p = float(res.pvalue)
    return PairedTest(p if math.isfinite(p) else 1.0, float(res.statistic), n, mean_diff, method)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as the input; NaN stays NaN, excluded from the family).

    Written by hand (ten lines) rather than importing statsmodels, which negbench does not otherwise need.
    Sort the m p-values ascending; the i-th (0-based) is multiplied by (m − i); adjusted values are made
    monotone with a running maximum and capped at 1. It controls the family-wise error rate at α under any
    dependence between the tests, and is uniformly more powerful than Bonferroni.
    """
    idx = [i for i, p in enumerate(p_values) if p is not None and not math.isnan(p)]
    out = [math.nan] * len(p_values)
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda j: p_values[j])):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        out[i] = running
    return out


def per_query_means(per_query: pl.DataFrame, run_ids: Iterable[str], metric: str) -> dict[str, float]:
    """Per-query score of ``metric`` averaged over the given runs (seeds): ``{query_id: mean score}``."""
    ids = list(run_ids)
    if per_query.is_empty() or not ids:
        return {}
    frame = (
        per_query.filter(pl.col("run_id").is_in(ids) & (pl.col("metric") == metric))
        .group_by("query_id")
        .agg(pl.col("score").mean())
    )
    return dict(zip(frame["query_id"].to_list(), frame["score"].to_list(), strict=True))


@dataclass(frozen=True)
class Significance:
    """One strategy vs the baseline on one metric: raw and Holm-adjusted p, and the mark to show."""

    p_value: float
    p_holm: float
    mean_diff: float
    n: int
    mark: str  # BETTER, WORSE or ""


def resolve_baseline(rows: pl.DataFrame, baseline: str) -> str | None:
    """The strategy label that is the baseline: a label equal to ``baseline``, else the single label whose
    registered ``strategy_name`` is ``baseline``; None when there is none."""
    labels = rows["strategy"].unique().to_list() if "strategy" in rows.columns else []
    if baseline in labels:
        return baseline
    if "strategy_name" in rows.columns:
        named = rows.filter(pl.col("strategy_name") == baseline)["strategy"].unique().to_list()
        if len(named) == 1:
            return named[0]
    return None


def query_means(
    rows: pl.DataFrame, per_query: pl.DataFrame, keys: Sequence[str] = ("dataset", "model", "strategy")
) -> pl.DataFrame:
    """Per-query scores averaged over the finished runs (seeds) of each ``keys`` group, in one pass.

    Columns: ``*keys, metric, query_id, score``.
    """
    ok = rows.filter(pl.col("status") == "ok").select(["run_id", *keys])
    return (
        per_query.join(ok, on="run_id", how="inner")
        .group_by([*keys, "metric", "query_id"])
        .agg(pl.col("score").mean())
    )


def significance(
    rows: pl.DataFrame,
    per_query: pl.DataFrame,
    baseline: str = "in-batch",
    metrics: Sequence[str] | None = None,
    alpha: float = 0.05,
    method: TestMethod = "wilcoxon",
) -> dict[tuple[str, str, str, str], Significance]:
    """Each strategy vs the baseline, keyed by ``(dataset, model, strategy, metric)``.

    Only finished (``status == "ok"``) runs count. Holm's correction runs over the strategies of one
    dataset × model × metric (the comparisons one leaderboard column makes).
    """
    out: dict[tuple[str, str, str, str], Significance] = {}
    if rows.is_empty() or per_query.is_empty():
        return out
    ok = rows.filter(pl.col("status") == "ok")
    if ok.is_empty():
        return out
    means = query_means(ok, per_query)
    if metrics is not None:
        means = means.filter(pl.col("metric").is_in(list(metrics)))
    for (dataset, model), group in ok.group_by(["dataset", "model"], maintain_order=True):
        base_label = resolve_baseline(group, baseline)
        if base_label is None:
            continue
        others = [s for s in dict.fromkeys(group["strategy"].to_list()) if s != base_label]
        here = means.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
        for (metric,), part in sorted(here.partition_by(["metric"], as_dict=True).items()):
            scores = {
                label: dict(zip(sub["query_id"].to_list(), sub["score"].to_list(), strict=True))
                for (label,), sub in part.partition_by(["strategy"], as_dict=True).items()
            }
            base_scores = scores.get(base_label)
            if not base_scores:
                continue
            tests = [paired_test(scores.get(s, {}), base_scores, method) for s in others]
            adjusted = holm([t.p_value for t in tests])
            for label, test, p_adj in zip(others, tests, adjusted, strict=True):
                mark = ""
                if p_adj < alpha and test.mean_diff != 0:
                    mark = BETTER if test.mean_diff > 0 else WORSE
                out[(dataset, model, label, metric)] = Significance(
                    test.p_value, p_adj, test.mean_diff, test.n, mark
                )
    return out
