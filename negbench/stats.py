"""Statistics shared by the leaderboards and ``negbench compare``.

* :func:`mean_ci` — mean and 95% confidence interval over seeds (Student t, because there are few seeds).
* :func:`paired_test` — paired per-query test of a strategy against a baseline. Per-query scores are first
  averaged over seeds (:func:`per_query_means`), so the unit of the test is the query, as in IR practice.
  The default is the **Wilcoxon signed-rank test**: per-query nDCG / recall / MRR values are bounded,
  skewed and heavily tied at 0 and 1, so a rank test is safer than a t-test, whose normality assumption
  they break. Zero differences (queries on which both systems score the same) are handled with Pratt's
  method (kept in the ranking, then dropped), which is more conservative than discarding them first; when
  every difference is zero the systems are indistinguishable and p = 1. A paired t-test is available with
  ``method="t"``. Both one-sided p-values are computed; the two-sided p is twice the smaller one, and the
  **direction** of a significant result is the side the test itself found (not the sign of the mean
  difference, which a rank test does not look at: 40 slightly worse queries and 5 much better ones have a
  positive mean but are significantly *worse* by rank). Effect sizes come with it: the mean paired
  difference with a seeded percentile-bootstrap 95% CI, and the Hodges–Lehmann estimate (the shift
  estimate that belongs to the signed-rank test).
* :func:`holm` — Holm's step-down correction for the family of comparisons in one table.
* :func:`significance` — all of that for a results store: each configuration vs the baseline, per
  dataset × model × metric (one Holm family per dataset × model × metric).

**Configurations are never pooled.** A row's ``config_key`` hashes everything that changes its result except
the seed; rows of one strategy label with different keys are different configurations (e.g. before and after
editing ``training.lr``). Every grouping here is by dataset × model × strategy × config_key
(:func:`with_config_labels` adds the key, derived for old stores, and a display label that carries a short
key when one label has several configurations).
"""

from __future__ import annotations

import hashlib
import json
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
CONFIG_KEYS = ("dataset", "model", "strategy", "config_key")
SHORT_KEY = 6
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


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


def bootstrap_mean_ci(
    diffs: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean of ``diffs`` (one sample: the paired differences), seeded, so the
    same input always gives the same interval. ``(nan, nan)`` with fewer than two values."""
    arr = np.asarray(diffs, dtype=float)
    if arr.size < 2:
        return math.nan, math.nan
    if np.all(arr == arr[0]):  # a degenerate bootstrap distribution: scipy warns and may return NaN
        return float(arr[0]), float(arr[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sps.bootstrap(
            (arr,), np.mean, n_resamples=n_resamples, confidence_level=confidence, method="percentile",
            vectorized=True, batch=500, random_state=np.random.default_rng(seed),
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def hodges_lehmann(diffs: Sequence[float] | np.ndarray, max_pairs: int = 2_000_000, seed: int = 0) -> float:
    """The Hodges–Lehmann estimate: the median of the Walsh averages ``(d_i + d_j) / 2`` for ``i <= j``.

    Exact up to ``max_pairs`` Walsh averages (about 2,000 queries); beyond that, the median of a seeded
    random sample of ``max_pairs`` of them (deterministic, and within noise of the exact value).
    """
    d = np.asarray(diffs, dtype=float)
    n = d.size
    if n == 0:
        return math.nan
    if n * (n + 1) // 2 <= max_pairs:
        i, j = np.triu_indices(n)
    else:
        rng = np.random.default_rng(seed)
        i, j = rng.integers(0, n, max_pairs), rng.integers(0, n, max_pairs)
    return float(np.median((d[i] + d[j]) / 2))


@dataclass(frozen=True)
class PairedTest:
    """Result of a paired per-query test over the common queries of two systems.

    ``p_value`` is two-sided (``min(1, 2 · min(p_greater, p_less))``); ``p_greater`` / ``p_less`` are the
    one-sided p-values for "new is better" / "new is worse"; ``statistic`` is W+ (sum of the ranks of the
    positive differences) for Wilcoxon, t for the t-test. ``mean_diff`` is mean(new − base) with its
    bootstrap CI ``[ci_low, ci_high]``; ``hodges_lehmann`` is the median of the Walsh averages.
    """

    p_value: float
    statistic: float
    n: int
    mean_diff: float
    method: str
    p_greater: float = 1.0
    p_less: float = 1.0
    hodges_lehmann: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan

    @property
    def direction(self) -> int:
        """+1 when the test leans to "new is better", −1 to "worse", 0 when neither side does."""
        if self.p_greater < self.p_less:
            return 1
        return -1 if self.p_less < self.p_greater else 0


def _p(value: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else 1.0


def paired_test(
    new: Mapping[str, float], base: Mapping[str, float], method: TestMethod = "wilcoxon"
) -> PairedTest:
    """Paired test of per-query scores over the queries both mappings have (see :class:`PairedTest`).

    With fewer than two common queries, or when all differences are zero, every p-value is 1.0.
    """
    if method not in ("wilcoxon", "t"):
        raise ValueError(f"unknown test method {method!r}: use 'wilcoxon' or 't'")
    common = sorted(set(new) & set(base))
    diffs = np.array([new[q] - base[q] for q in common], dtype=float)
    n = int(diffs.size)
    mean_diff = float(diffs.mean()) if n else math.nan
    effects = {"hodges_lehmann": hodges_lehmann(diffs)}
    effects["ci_low"], effects["ci_high"] = bootstrap_mean_ci(diffs)
    if n < 2 or not np.any(np.abs(diffs) > 1e-12):
        return PairedTest(1.0, 0.0, n, mean_diff, method, **effects)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "wilcoxon":
            greater = sps.wilcoxon(diffs, zero_method="pratt", alternative="greater")
            less = sps.wilcoxon(diffs, zero_method="pratt", alternative="less")
        else:
            greater = sps.ttest_1samp(diffs, 0.0, alternative="greater")
            less = sps.ttest_1samp(diffs, 0.0, alternative="less")
    p_greater, p_less = _p(greater.pvalue), _p(less.pvalue)
    p_two = min(1.0, 2 * min(p_greater, p_less))
    return PairedTest(p_two, float(greater.statistic), n, mean_diff, method, p_greater, p_less, **effects)


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


# --- configurations -------------------------------------------------------------------------------------


def fallback_config_key(config_hash: object, params: object, training: object) -> str:
    """The configuration key of a row from a store that predates ``config_key`` (a hash of what it has)."""
    text = json.dumps([str(config_hash), str(params), str(training)])
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def with_config_key(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with a non-null string ``config_key``: the stored one, else :func:`fallback_config_key` of the
    row's ``config_hash`` / ``params`` / ``training`` (whichever exist; old stores have no ``config_key``)."""
    has = "config_key" in rows.columns
    key = pl.col("config_key").cast(pl.String) if has else pl.lit(None, dtype=pl.String)
    if has and rows.select(key.is_null().any() | (key == "").any()).item() is not True:
        return rows.with_columns(key.alias("config_key"))
    parts = [rows[c].cast(pl.String).to_list() if c in rows.columns else [None] * rows.height
             for c in ("config_hash", "params", "training")]
    fallback = pl.Series([fallback_config_key(*p) for p in zip(*parts, strict=True)], dtype=pl.String)
    return rows.with_columns(
        pl.when(key.is_null() | (key == "")).then(pl.lit(fallback)).otherwise(key).alias("config_key")
    )


def with_config_labels(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with ``config_key`` (see :func:`with_config_key`) and ``label``, the name to display: the
    strategy label, or ``"label [cfg 3fa2c1]"`` (a short key, longer if needed to be unique) when the label
    has several configurations in the same dataset × model."""
    if "strategy" not in rows.columns:
        return rows
    rows = with_config_key(rows)
    configs: dict[tuple, list[str]] = {}
    for d, m, s, k in rows.select(CONFIG_KEYS).unique(maintain_order=True).iter_rows():
        configs.setdefault((d, m, s), []).append(k)
    names: dict[tuple, str] = {}
    for (d, m, s), ks in configs.items():
        longest = max(len(k) for k in ks)
        width = next((w for w in range(SHORT_KEY, longest) if len({k[:w] for k in ks}) == len(ks)), longest)
        for k in ks:
            names[(d, m, s, k)] = str(s) if len(ks) == 1 else f"{s} [cfg {k[:width]}]"
    labels = [names[k] for k in rows.select(CONFIG_KEYS).iter_rows()]
    return rows.with_columns(pl.Series("label", labels, dtype=pl.String))


def newest_config(rows: pl.DataFrame) -> str:
    """The ``config_key`` among ``rows`` with the latest ``created_at`` (ties and missing dates: the one
    appended last)."""
    rows = with_config_key(rows).with_row_index("_index")
    created = pl.col("created_at").cast(pl.String) if "created_at" in rows.columns else pl.lit(None, pl.String)
    order = rows.group_by("config_key").agg(created.max().alias("_created"), pl.col("_index").max())
    return order.sort(["_created", "_index"], nulls_last=False)["config_key"][-1]


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


@dataclass(frozen=True)
class BaselineConfig:
    """The baseline of one dataset × model: its strategy label, the configuration used and how many the
    label has (only the newest is the baseline when there are several)."""

    strategy: str
    config_key: str
    label: str
    n_configs: int

    def note(self) -> str | None:
        """A sentence saying which configuration is the baseline when the label has several (else None)."""
        if self.n_configs < 2:
            return None
        return (f"The baseline is {self.label}, the newest (by run date) of the {self.n_configs} "
                f"configurations of {self.strategy} in this store.")


def baseline_config(rows: pl.DataFrame, baseline: str) -> BaselineConfig | None:
    """The baseline configuration among ``rows`` (one dataset × model): see :func:`resolve_baseline` for the
    label; of its configurations, the newest with a finished run (else the newest)."""
    strategy = resolve_baseline(rows, baseline)
    if strategy is None:
        return None
    rows = with_config_labels(rows)
    mine = rows.filter(pl.col("strategy") == strategy)
    ok = mine.filter(pl.col("status") == "ok") if "status" in mine.columns else mine
    key = newest_config(ok if not ok.is_empty() else mine)
    label = mine.filter(pl.col("config_key") == key)["label"][0]
    return BaselineConfig(strategy, key, label, mine["config_key"].n_unique())


def config_notes(rows: pl.DataFrame) -> list[str]:
    """One sentence per strategy label with several configurations among ``rows`` (one dataset × model)."""
    rows = with_config_labels(rows)
    counts = rows.group_by("strategy", maintain_order=True).agg(pl.col("config_key").n_unique().alias("n"))
    return [
        f"This store holds {n} configurations of {s} (settings, parameters, data or code differ): they are "
        "separate rows, labelled by a short config key, and never pooled."
        for s, n in counts.filter(pl.col("n") > 1).iter_rows()
    ]


def query_means(rows: pl.DataFrame, per_query: pl.DataFrame, keys: Sequence[str] = CONFIG_KEYS) -> pl.DataFrame:
    """Per-query scores averaged over the finished runs (seeds) of each ``keys`` group, in one pass.

    The default groups by configuration (dataset × model × strategy × config_key), so runs of different
    configurations are never averaged together. Columns: ``*keys, metric, query_id, score``.
    """
    if any(k not in rows.columns for k in keys):
        rows = with_config_labels(rows)
    ok = rows.filter(pl.col("status") == "ok").select(["run_id", *keys])
    return (
        per_query.join(ok, on="run_id", how="inner")
        .group_by([*keys, "metric", "query_id"])
        .agg(pl.col("score").mean())
    )


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
                    t.p_value, p_adj, t.mean_diff, t.n, mark_for(t, p_adj, alpha), t.p_greater, t.p_less,
                    t.hodges_lehmann, t.ci_low, t.ci_high, key, base.config_key,
                )
    return out


# --- several datasets -----------------------------------------------------------------------------------


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
    means = ok.group_by("model", "dataset", "strategy", maintain_order=True).agg(
        pl.col(metric).cast(pl.Float64).mean())
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
                note = (f"Friedman χ² = {stat:.3g}, p = {p:.3g} over {len(datasets)} datasets and "
                        f"{len(complete)} strategies (χ² approximation; rough with few datasets).")
            else:
                note = "Friedman test not defined: every dataset ranks the strategies identically tied."
        base = resolve_baseline(ok.filter(pl.col("model") == model), baseline)
        if base in complete:
            pairs_of = [(s, base) for s in complete if s != base]
        else:
            pairs_of = [(a, b) for i, a in enumerate(complete) for b in complete[i + 1:]]
        raw = []
        for a, b in pairs_of:
            diffs = np.array([scores[a][d] - scores[b][d] for d in datasets])
            if not np.any(np.abs(diffs) > 1e-12):
                pv = 1.0
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pv = _p(sps.wilcoxon(diffs, zero_method="pratt", alternative="two-sided").pvalue)
            raw.append((a, b, int((diffs > 0).sum()), int((diffs < 0).sum()), pv))
        adjusted = holm([r[4] for r in raw])
        pairs = [PairAcrossDatasets(a, b, len(datasets), w, lo, pv, ph)
                 for (a, b, w, lo, pv), ph in zip(raw, adjusted, strict=True)]
        out.append(RankSummary(model, metric, datasets, mean_rank, ranks, scores, stat, p, note, pairs, excluded,
                               min(1.0, 2 / 2 ** len(datasets)), older.get(model, 0)))
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
        rows = rows.with_columns(pl.Series("dataset", [first[fp] for fp in rows["dataset_fingerprint"]],
                                           dtype=pl.String))
    rows = with_config_key(rows)
    kept = newest_configs(rows)
    older = {model: part.select(CONFIG_KEYS).n_unique() - kept.filter(pl.col("model") == model)
             .select(CONFIG_KEYS).n_unique() for (model,), part in rows.group_by("model")}
    return kept, older


def newest_configs(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows of the newest configuration (:func:`newest_config`) of each label on each dataset × model,
    in their original order: what a comparison across datasets or variants uses instead of pooling."""
    rows = with_config_key(rows)
    if rows.is_empty():
        return rows
    newest = {group: newest_config(part) for group, part in
              rows.group_by("dataset", "model", "strategy", maintain_order=True)}
    keep = [newest[(d, m, s)] == k for d, m, s, k in rows.select(CONFIG_KEYS).iter_rows()]
    return rows.filter(pl.Series(keep, dtype=pl.Boolean))


def rank_power_note(summary: RankSummary) -> str:
    """An honest sentence on how little a test over few datasets can show."""
    n = len(summary.datasets)
    return (f"With {n} datasets, the smallest two-sided p a Wilcoxon signed-rank test can reach is "
            f"{summary.min_p:.3g}" + (" — it can never be significant at α = 0.05" if summary.min_p >= 0.05
                                      else "") +
            "; these tests have little power with few datasets, and a non-significant result is not evidence "
            "that strategies are equal." + (f" Ranked: the newest configuration of each strategy on each dataset "
                                            f"({summary.older_configs} older left out)."
                                            if summary.older_configs else ""))
