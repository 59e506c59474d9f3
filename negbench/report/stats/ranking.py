"""Strategies ranked across datasets (average ranks, a Friedman-style summary), with an honest power note."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats as sps

from negbench.report.stats.configs import CONFIG_KEYS, newest_configs, resolve_baseline, with_config_key
from negbench.report.stats.tests import clip_p, holm

__all__ = ["PairAcrossDatasets", "RankSummary", "rank_power_note", "rank_summary", "ranked_rows"]


@dataclass(frozen=True)
class PairAcrossDatasets:
    """One strategy vs a reference across datasets: Wilcoxon signed-rank on per-dataset means."""

    strategy: str
    reference: str
    n: int
    wins: int  # datasets on which ``strategy`` has the higher mean
    losses: int
    p_value: float
    p_holm: float


@dataclass(frozen=True)
class RankSummary:
    """Mean rank per strategy across the datasets of one model, with a Friedman test and post-hoc pairs
    (over the rows :func:`ranked_rows` keeps).

    ``scores[strategy][dataset]`` is the mean over seeds of ``metric``; ranks are per dataset (1 = best,
    ties averaged). Only strategies with a value on every dataset are ranked (``excluded``: the others).
    ``friedman_p`` is None when the test does not apply (``friedman_note`` says why). ``min_p`` is the
    smallest two-sided p a Wilcoxon test on ``len(datasets)`` pairs can reach (2 / 2ⁿ).
    """

    model: str
    metric: str
    datasets: list[str]
    mean_rank: dict[str, float]  # sorted best first
    ranks: dict[str, dict[str, float]]
    scores: dict[str, dict[str, float]]
    friedman_stat: float | None
    friedman_p: float | None
    friedman_note: str
    pairs: list[PairAcrossDatasets]
    excluded: list[str]
    min_p: float
    older_configs: int = 0  # configurations left out because the label has a newer one on that dataset


def rank_summary(rows: pl.DataFrame, metric: str, baseline: str = "in-batch") -> list[RankSummary]:
    """One :class:`RankSummary` per model that has at least two datasets (finished runs only).

    Strategies are compared by label (``strategy``) on the rows :func:`ranked_rows` keeps (no planted
    variants, one configuration per label and dataset); Friedman's test (``scipy.stats.friedmanchisquare``)
    needs at least three strategies; the post-hoc tests compare every strategy with the baseline (all pairs
    when the baseline is not ranked) by a two-sided Wilcoxon signed-rank test over datasets (exact
    distribution), Holm-corrected over the family (:func:`holm`).
    """
    if rows.is_empty() or metric not in rows.columns or "dataset" not in rows.columns:
        return []
    ok = rows.filter((pl.col("status") == "ok") & pl.col(metric).is_not_null())
    ok, older = ranked_rows(ok)
    means = ok.group_by("model", "dataset", "strategy", maintain_order=True).agg(pl.col(metric).cast(pl.Float64).mean())
    out = []
    for (model,), part in means.group_by("model", maintain_order=True):
        datasets = list(dict.fromkeys(part["dataset"].to_list()))
        if len(datasets) < 2:
            continue
        scores: dict[str, dict[str, float]] = {}
        for d, s, v in part.select("dataset", "strategy", metric).iter_rows():
            scores.setdefault(s, {})[d] = float(v)
        complete = [s for s, by in scores.items() if all(d in by for d in datasets)]
        excluded = [s for s in scores if s not in complete]
        ranks: dict[str, dict[str, float]] = {s: {} for s in complete}
        for d in datasets:
            r = sps.rankdata([-scores[s][d] for s in complete], method="average") if complete else []
            for s, value in zip(complete, r, strict=True):
                ranks[s][d] = float(value)
        mean_rank = {s: float(np.mean(list(ranks[s].values()))) for s in complete}
        mean_rank = dict(sorted(mean_rank.items(), key=lambda kv: (kv[1], kv[0])))
        stat = p = None
        if len(complete) < 3:
            note = f"Friedman test not applicable: it needs at least 3 strategies on every dataset ({len(complete)})."
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = sps.friedmanchisquare(*[[scores[s][d] for d in datasets] for s in complete])
            if math.isfinite(res.statistic) and math.isfinite(res.pvalue):
                stat, p = float(res.statistic), float(res.pvalue)
                note = (
                    f"Friedman χ² = {stat:.3g}, p = {p:.3g} over {len(datasets)} datasets and "
                    f"{len(complete)} strategies (χ² approximation; rough with few datasets)."
                )
            else:
                note = "Friedman test not defined: every dataset ranks the strategies identically tied."
        base = resolve_baseline(ok.filter(pl.col("model") == model), baseline)
        if base in complete:
            pairs_of = [(s, base) for s in complete if s != base]
        else:
            pairs_of = [(a, b) for i, a in enumerate(complete) for b in complete[i + 1 :]]
        raw = []
        for a, b in pairs_of:
            diffs = np.array([scores[a][d] - scores[b][d] for d in datasets])
            if not np.any(np.abs(diffs) > 1e-12):
                pv = 1.0
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pv = clip_p(sps.wilcoxon(diffs, zero_method="pratt", alternative="two-sided").pvalue)
            raw.append((a, b, int((diffs > 0).sum()), int((diffs < 0).sum()), pv))
        adjusted = holm([r[4] for r in raw])
        pairs = [
            PairAcrossDatasets(a, b, len(datasets), w, lo, pv, ph)
            for (a, b, w, lo, pv), ph in zip(raw, adjusted, strict=True)
        ]
        out.append(
            RankSummary(
                model,
                metric,
                datasets,
                mean_rank,
                ranks,
                scores,
                stat,
                p,
                note,
                pairs,
                excluded,
                min(1.0, 2 / 2 ** len(datasets)),
                older.get(model, 0),
            )
        )
    return out


def ranked_rows(rows: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """The rows a cross-dataset ranking may use, and per model how many older configurations were left out.

    A dataset with planted false negatives is a variant of another dataset, not an independent one: its rows
    are left out. Two dataset names with one ``dataset_fingerprint`` are one dataset (the first name is kept).
    Of each label's configurations on a dataset × model, only the newest is ranked (:func:`newest_config`):
    configurations are never pooled.
    """
    if "planted_fn_rate" in rows.columns:
        rows = rows.filter(pl.col("planted_fn_rate").cast(pl.Float64).fill_null(0) == 0)
    if "dataset_fingerprint" in rows.columns:
        first = {}
        for fp, name in rows.select("dataset_fingerprint", "dataset").iter_rows():
            first.setdefault(fp, name)
        rows = rows.with_columns(
            pl.Series("dataset", [first[fp] for fp in rows["dataset_fingerprint"]], dtype=pl.String)
        )
    rows = with_config_key(rows)
    kept = newest_configs(rows)
    older = {
        model: part.select(CONFIG_KEYS).n_unique()
        - kept.filter(pl.col("model") == model).select(CONFIG_KEYS).n_unique()
        for (model,), part in rows.group_by("model")
    }
    return kept, older


def rank_power_note(summary: RankSummary) -> str:
    """An honest sentence on how little a test over few datasets can show."""
    n = len(summary.datasets)
    return (
        f"With {n} datasets, the smallest two-sided p a Wilcoxon signed-rank test can reach is "
        f"{summary.min_p:.3g}"
        + (" — it can never be significant at α = 0.05" if summary.min_p >= 0.05 else "")
        + "; these tests have little power with few datasets, and a non-significant result is not evidence "
        "that strategies are equal."
        + (
            f" Ranked: the newest configuration of each strategy on each dataset "
            f"({summary.older_configs} older left out)."
            if summary.older_configs
            else ""
        )
    )
