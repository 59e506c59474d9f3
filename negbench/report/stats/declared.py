"""Declared comparisons: the pairs a suite says it cares about (``[[comparisons]] better = "star", worse =
"dense"``), each a one-sided test of "better beats worse" on the primary metric, Holm-corrected as a family of
their own per dataset × model.

A confirmatory family of a few one-sided hypotheses fixed before the run has more power than the exploratory
family of every configuration against the baseline, two-sided: Holm's smallest threshold is α / k for k declared
pairs instead of α / m for m strategies, and the whole α sits on the side the claim names. The test is the one of
the board (:func:`~negbench.report.stats.twolevel.seed_query_test`, queries and training seeds), with ``better``
as the new configuration and ``worse`` as the base; its one-sided p is ``p_greater``. Like every mark on a board,
a declared claim is **supported** only when both sides have at least two seeds (the test then carries seed
variance) and its Holm-adjusted p is below α; one seed on either side leaves it untested for seed variance. The
family is every declared comparison, fixed before the run: one that cannot be tested (a side without finished
runs, or with one seed) stays in it with p = 1, so a failed strategy cannot buy the others power.

Each side is the newest configuration of its strategy label (:func:`~negbench.report.stats.configs.newest_config`),
over its finished runs. The bounds shown are the one-sided (1 − α) lower confidence bound of Δ, the one that agrees
with the one-sided test, and the one-sided (1 − α) upper bound, the largest Δ the data leave plausible (both
uncorrected; together a 1 − 2α interval): a claim not supported with an upper bound near zero says the step is
small, one with a wide upper bound says little. The detectable difference is the smallest true Δ the one-sided
test at α / k finds with 80% power (with one seed: from query sampling alone, a lower bound).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import polars as pl
from scipy import stats as sps

from negbench.report.stats.configs import newest_config, with_config_labels
from negbench.report.stats.tests import holm
from negbench.report.stats.twolevel import POWER, SeedQueryTest, detectable_difference, seed_query_test

__all__ = ["DeclaredTest", "declared_tests"]


@dataclass(frozen=True)
class DeclaredTest:
    """One declared comparison on one dataset × model: ``better`` > ``worse`` on ``metric``.

    ``test`` is None when a side has no finished run or none with per-query scores of ``metric`` (``missing``
    names it, ``why`` says which); ``p_holm`` is Holm's over the
    ``family`` of the board's declared comparisons (NaN for one not seed-aware), ``lower`` and ``upper`` the
    one-sided confidence bounds of Δ, ``detectable`` the smallest Δ found with 80% power at α / ``family``."""

    better: str
    worse: str
    metric: str
    test: SeedQueryTest | None = None
    p_holm: float = math.nan
    lower: float = math.nan
    upper: float = math.nan
    detectable: float = math.nan
    family: int = 0
    supported: bool = False
    missing: tuple[str, ...] = ()
    why: str = "no finished run"  # what the ``missing`` sides lack

    @property
    def name(self) -> str:
        return f"{self.better} > {self.worse}"

    @property
    def p_one_sided(self) -> float:
        return self.test.p_greater if self.test is not None else math.nan

    @property
    def seed_aware(self) -> bool:
        return self.test is not None and self.test.seed_aware


def declared_tests(
    rows: pl.DataFrame,
    per_query: pl.DataFrame | None,
    comparisons: Sequence[tuple[str, str]],
    metric: str | None,
    alpha: float = 0.05,
) -> dict[tuple[str, str], list[DeclaredTest]]:
    """The declared ``(better, worse)`` comparisons of every dataset × model of ``rows``, keyed by
    ``(dataset, model)``, in the order declared; empty without comparisons, rows or a metric. Without per-query
    scores every claim is listed, untested."""
    if not comparisons or metric is None or rows.is_empty():
        return {}
    rows = with_config_labels(rows)
    ok = rows.filter(pl.col("status") == "ok")
    scores = (
        per_query.filter(pl.col("metric") == metric)
        if per_query is not None and not per_query.is_empty()
        else pl.DataFrame(schema={"run_id": pl.Utf8, "query_id": pl.Utf8, "score": pl.Float64})
    )
    out: dict[tuple[str, str], list[DeclaredTest]] = {}
    for dataset, model in rows.select("dataset", "model").unique(maintain_order=True).iter_rows():
        finished = ok.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
        runs = {label: _newest_runs(finished, label) for pair in comparisons for label in pair}
        tests = [_compare(better, worse, runs, scores, metric) for better, worse in comparisons]
        out[(str(dataset), str(model))] = _judged(tests, alpha)
    return out


def _newest_runs(finished: pl.DataFrame, strategy: str) -> list[str]:
    """The run ids of the newest configuration of the strategy label among finished rows (none: [])."""
    mine = finished.filter(pl.col("strategy") == strategy)
    if mine.is_empty():
        return []
    key = newest_config(mine)
    return mine.filter(pl.col("config_key") == key)["run_id"].to_list()


def _compare(better: str, worse: str, runs: dict[str, list[str]], scores: pl.DataFrame, metric: str) -> DeclaredTest:
    """The test of one declared pair over each side's finished runs that have per-query scores (as the board's
    tests), or a test-less entry naming the side without finished runs or without scored ones."""
    scored = set(scores["run_id"].unique().to_list())
    new, base = ([r for r in runs[label] if r in scored] for label in (better, worse))
    unrun = tuple(label for label in (better, worse) if not runs[label])
    if unrun:
        return DeclaredTest(better, worse, metric, missing=unrun)
    unscored = tuple(label for label, kept in ((better, new), (worse, base)) if not kept)
    if unscored:
        return DeclaredTest(better, worse, metric, missing=unscored, why=f"no per-query scores of {metric}")
    mine = scores.filter(pl.col("run_id").is_in(new + base))
    wide = mine.pivot(on="run_id", index="query_id", values="score", aggregate_function="first")
    matrix = wide.select([*new, *base]).fill_nan(None).drop_nulls().to_numpy().astype(float).T
    if matrix.shape[1] < 2:  # no spread over queries, no test
        why = f"fewer than two queries scored by every run of both ({matrix.shape[1]})"
        return DeclaredTest(better, worse, metric, missing=(better, worse), why=why)
    return DeclaredTest(better, worse, metric, test=seed_query_test(matrix[: len(new)], matrix[len(new) :]))


def _judged(tests: list[DeclaredTest], alpha: float) -> list[DeclaredTest]:
    """Holm over every declared test of the board, one-sided (the family is fixed before the run: a claim that
    cannot be tested — a side without finished runs, or with one seed — stays in it with p = 1); bounds,
    detectable differences and support."""
    family = len(tests)
    adjusted = holm([t.p_one_sided if t.seed_aware else 1.0 for t in tests])
    out = []
    for t, p_holm in zip(tests, adjusted, strict=True):
        s = t.test
        if s is None:
            out.append(replace(t, family=family))
            continue
        if math.isfinite(s.se) and math.isfinite(s.df) and s.se > 0:
            margin = float(sps.t.ppf(1 - alpha, s.df)) * s.se
            lower, upper = s.mean_diff - margin, s.mean_diff + margin
        else:  # no variance at all: Δ is its own bound; no standard error: no bound
            lower = upper = s.mean_diff if s.se == 0 else math.nan
        out.append(
            replace(
                t,
                p_holm=p_holm if t.seed_aware else math.nan,
                lower=lower,
                upper=upper,
                # one-sided at α / k: the two-sided power equation at 2α / k (its far tail is negligible)
                detectable=detectable_difference(s.se, s.df, min(2 * alpha / family, 0.999), POWER),
                family=family,
                supported=t.seed_aware and p_holm < alpha and s.mean_diff > 0,
            )
        )
    return out
