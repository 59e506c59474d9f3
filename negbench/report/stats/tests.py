"""Paired tests, effect sizes and multiple-comparison correction (see :mod:`negbench.report.stats`)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

__all__ = [
    "BETTER",
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "WORSE",
    "MeanCI",
    "PairedTest",
    "TestMethod",
    "bootstrap_mean_ci",
    "clip_p",
    "hodges_lehmann",
    "holm",
    "mean_ci",
    "paired_test",
    "t_half_width",
]

BETTER = "▲"
WORSE = "▼"
TestMethod = Literal["wilcoxon", "t"]
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
            (arr,),
            np.mean,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            vectorized=True,
            batch=500,
            random_state=np.random.default_rng(seed),
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


def clip_p(value: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else 1.0


def paired_test(new: Mapping[str, float], base: Mapping[str, float], method: TestMethod = "wilcoxon") -> PairedTest:
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
    p_greater, p_less = clip_p(greater.pvalue), clip_p(less.pvalue)
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
