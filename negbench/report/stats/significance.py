"""Each configuration against the baseline, per dataset × model × metric, with both sources of variance.

The test is :func:`negbench.report.stats.twolevel.seed_query_test` (queries and training seeds). Claims are made
on one **primary** metric only (``[evaluation] primary``, by default the tuning metric): a comparison is marked
better / worse when both configurations have at least two seeds (so the test carries seed variance) and its
Holm-adjusted p is below α, Holm's family being the seed-aware comparisons of the primary metric in one
dataset × model. Other metrics are **exploratory**: Δ, CI and raw p are computed the same way, never marked and
never corrected. A comparison with one seed on either side covers query sampling only; it is never marked
(a one-seed difference may be one training run's luck) and forms a family of its own for the verdict's
"on these queries" statement. Every primary comparison carries its detectable difference: the true Δ found with
80% power at α / m (m = its family's size: the level Holm applies to the smallest p, so the figure is
conservative). A label that repeats another label's configuration (:func:`repeated_configs`: same strategy,
parameters, training settings, budget, data, model and code, e.g. ``in-batch-last``) is no further hypothesis:
its Δ and CI are computed, but it joins no Holm family (it would only raise m) and is never marked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from negbench.report.stats.configs import baseline_config, repeated_configs, with_config_labels
from negbench.report.stats.tests import BETTER, WORSE, holm
from negbench.report.stats.twolevel import POWER, SeedQueryTest, detectable_difference, seed_query_test

__all__ = ["DEFAULT_PRIMARY", "Significance", "mark_for", "resolve_primary", "significance"]

DEFAULT_PRIMARY = "ndcg@10"  # the default of ``[tuning] metric``, hence of ``[evaluation] primary``


@dataclass(frozen=True)
class Significance:
    """One configuration vs the baseline on one metric (see the module docstring).

    ``mean_diff`` is Δ (new − base) with its 95% CI; ``se`` / ``df`` its standard error and degrees of freedom;
    ``seed_var`` / ``query_var`` the two parts of ``se²``; ``seeds`` / ``baseline_seeds`` the runs behind each
    side. ``p_holm`` is NaN for an exploratory (non-primary) metric; ``detectable`` (the smallest Δ found with
    80% power at α / ``family``) is NaN there too. ``mark`` is BETTER, WORSE or ""."""

    p_value: float
    p_holm: float
    mean_diff: float
    n: int
    mark: str
    p_greater: float = 1.0
    p_less: float = 1.0
    hodges_lehmann: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    config_key: str = ""
    baseline_config_key: str = ""
    se: float = math.nan
    df: float = math.nan
    seeds: int = 1
    baseline_seeds: int = 1
    seed_var: float = 0.0
    query_var: float = math.nan
    primary: bool = True
    family: int = 1
    detectable: float = math.nan
    dropped: int = 0  # queries some run of either side scored that are not in the test (missing or non-finite)
    identical: bool = False  # every query's scores over seeds equal the baseline's: the strategy changed nothing

    @property
    def seed_aware(self) -> bool:
        """Both sides have several seeds: the test carries training-seed variance (only then may it be marked)."""
        return self.seeds >= 2 and self.baseline_seeds >= 2


def mark_for(test: Significance | SeedQueryTest, p_holm: float, alpha: float) -> str:
    """BETTER / WORSE when the Holm-adjusted p is below ``alpha`` and the test carries seed variance; else ""."""
    if not p_holm < alpha or not test.seed_aware:
        return ""
    return BETTER if test.mean_diff > 0 else WORSE


def resolve_primary(metrics: Sequence[str], requested: str | None = None) -> str | None:
    """The primary metric among a board's ``metrics``: ``requested`` when it is one, else ``ndcg@10`` (the
    default tuning metric) when present, else the first; None without metrics."""
    for choice in (requested, DEFAULT_PRIMARY):
        if choice is not None and choice in metrics:
            return choice
    return metrics[0] if metrics else None


def significance(
    rows: pl.DataFrame,
    per_query: pl.DataFrame | None,
    baseline: str = "in-batch",
    metrics: Sequence[str] | None = None,
    alpha: float = 0.05,
    primary: str | None = None,
) -> dict[tuple[str, str, str, str], Significance]:
    """Each configuration vs the baseline, keyed by ``(dataset, model, label, metric)`` where ``label`` is the
    display label of :func:`with_config_labels`. Only finished runs count; the baseline is
    :func:`baseline_config`; ``primary`` is resolved by :func:`resolve_primary` among the metrics tested."""
    out: dict[tuple[str, str, str, str], Significance] = {}
    if rows.is_empty() or per_query is None or per_query.is_empty():
        return out
    rows = with_config_labels(rows)
    ok = rows.filter(pl.col("status") == "ok")
    if ok.is_empty():
        return out
    runs = ok.select("run_id", "dataset", "model", "label", "config_key")
    scores = per_query.join(runs, on="run_id", how="inner")
    if metrics is not None:
        scores = scores.filter(pl.col("metric").is_in(list(metrics)))
    primary = resolve_primary(sorted(set(scores["metric"].to_list())), primary)
    for (dataset, model), group in ok.group_by(["dataset", "model"], maintain_order=True):
        here_rows = rows.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
        base = baseline_config(here_rows, baseline)
        if base is None:
            continue
        configs = group.select(["label", "config_key"]).unique(maintain_order=True).rows()
        others = [(label, key) for label, key in configs if label != base.label]
        repeats = set(repeated_configs(here_rows, base.label))  # once per board, not per metric
        here = scores.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
        for (metric,), part in sorted(here.partition_by(["metric"], as_dict=True).items()):
            tests, facts = _tests(part, base.label, [label for label, _ in others])
            keys = dict(others)
            for label, sig in _judged(tests, metric == primary, alpha, repeats).items():
                dropped, identical = facts[label]
                out[(dataset, model, label, metric)] = replace(
                    sig,
                    config_key=keys[label],
                    baseline_config_key=base.config_key,
                    dropped=dropped,
                    identical=identical,
                )
    return out


def _tests(part: pl.DataFrame, base_label: str, labels: list[str]) -> tuple[dict[str, SeedQueryTest], dict[str, int]]:
    """The test of each label against the baseline on one metric, over the queries every run of both scored with
    a finite score; and how many queries some run of either side scored that the test therefore left out."""
    wide = part.pivot(on="run_id", index="query_id", values="score", aggregate_function="first")
    runs_of = {
        label: sub["run_id"].unique(maintain_order=True).to_list()
        for (label,), sub in part.partition_by(["label"], as_dict=True).items()
    }
    base_runs = runs_of.get(base_label, [])
    out: dict[str, SeedQueryTest] = {}
    facts: dict[str, tuple[int, bool]] = {}
    if not base_runs:
        return out, facts
    for label in labels:
        new_runs = runs_of.get(label, [])
        if not new_runs:
            continue
        scores = wide.select([*new_runs, *base_runs]).fill_nan(None)
        shared = scores.drop_nulls()
        dropped = scores.filter(pl.any_horizontal(pl.all().is_not_null())).height - shared.height
        matrix = shared.to_numpy().astype(float).T
        new, base = matrix[: len(new_runs)], matrix[len(new_runs) :]
        identical = new.shape == base.shape and new.size > 0 and np.array_equal(np.sort(new, 0), np.sort(base, 0))
        facts[label] = (dropped, identical)
        out[label] = seed_query_test(new, base)
    return out, facts


def _judged(
    tests: dict[str, SeedQueryTest], is_primary: bool, alpha: float, repeats: set[str]
) -> dict[str, Significance]:
    """Holm per family (seed-aware / query-only) on the primary metric, marks and detectable differences; the
    ``repeats`` (labels repeating another's configuration) in no family: no Holm p, mark or detectable Δ."""
    out: dict[str, Significance] = {}
    for aware in (True, False, None):
        if aware is None:
            family = {label: t for label, t in tests.items() if label in repeats}
        else:
            family = {label: t for label, t in tests.items() if t.seed_aware == aware and label not in repeats}
        judged = is_primary and aware is not None
        adjusted = holm([t.p_value for t in family.values()]) if judged else [math.nan] * len(family)
        m = len(family) if aware is not None else 0
        for (label, t), p_adj in zip(family.items(), adjusted, strict=True):
            detectable = detectable_difference(t.se, t.df, alpha / m, POWER) if judged else math.nan
            out[label] = Significance(
                p_value=t.p_value,
                p_holm=p_adj,
                mean_diff=t.mean_diff,
                n=t.n,
                mark=mark_for(t, p_adj, alpha) if judged else "",
                p_greater=t.p_greater,
                p_less=t.p_less,
                ci_low=t.ci_low,
                ci_high=t.ci_high,
                se=t.se,
                df=t.df,
                seeds=t.seeds_new,
                baseline_seeds=t.seeds_base,
                seed_var=t.seed_var,
                query_var=t.query_var,
                primary=is_primary,
                family=m,
                detectable=detectable,
            )
    return out
