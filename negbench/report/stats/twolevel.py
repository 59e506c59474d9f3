"""A configuration against the baseline with both sources of variance: test queries and training seeds.

The data of one comparison are two matrices of per-query scores, ``new`` (S₁ seeds × n queries) and ``base``
(S₀ × n), on the same queries. The effect is the mean paired difference of the seed-averaged scores,
``Δ = mean_q(ȳ₁q − ȳ₀q)``, the quantity the board shows. Per configuration, a two-way seed × query
random-effects model ``y_sq = μ + α_q + γ_q + β_s + ε_sq`` (query difficulty, the configuration's own query
effect, a seed's shift of all queries together, per-query training noise) gives, with random queries and seeds,
``Var Δ = σ²_γ / n + σ²_β₁ / S₁ + σ²_β₀ / S₀ + σ²_ε (1/S₁ + 1/S₀) / n`` (``σ²_γ``: the variance of the
difference of the two configurations' query effects). Its method-of-moments estimate:

* seed part ``v₁ / S₁ + v₀ / S₀``: ``v`` is the sample variance of a configuration's per-seed means (S − 1
  degrees of freedom); it estimates ``σ²_β + σ²_ε / n``;
* query part ``max(0, s²_d − MS_res₁ / S₁ − MS_res₀ / S₀) / n``: ``s²_d`` is the sample variance over queries of
  ``d_q = ȳ₁q − ȳ₀q`` (it estimates ``σ²_γ + σ²_ε (1/S₁ + 1/S₀)``) and ``MS_res`` a configuration's seed × query
  residual mean square (``Σ r² / ((S − 1)(n − 1))``, ``r = y − seed mean − query mean + grand mean``, which
  estimates ``σ²_ε``), so the per-query noise is counted once, in the seed part.

``SE² = query part + seed part``; degrees of freedom by Welch–Satterthwaite (query part ``n − 1``, each seed part
``S − 1``), computed with each seed part at its upper confidence bound of level :data:`SEED_DF_LEVEL`
(``v · (S − 1) / χ²(1 − level; S − 1)``) while ``SE`` keeps the estimates. With two or three seeds a seed variance
is known only to a few degrees of freedom: plain Satterthwaite, fed the estimates, is liberal at the small α Holm
uses (a seed variance underestimated by chance shrinks the SE and raises df together: about 2.5 times the
nominal rate at α = 0.05 / 24 in the null simulation of ``tests/benchmarks/twolevel_calibration.py``, three seeds
a side, most of the variance from seeds), and capping df at ``S₁ + S₀ − 2`` instead leaves a test that cannot
find a difference the queries carry (it rejected nothing at that α when the queries held most of the variance).
The bound costs size, not validity: the seed part ``v / S`` also carries the per-query noise ``σ²_ε / (nS)``, so
even when seeds add nothing it is inflated, and the test is conservative (in the script's null simulation at
α = 0.05 / 24: about a quarter to two fifths of the nominal rate with three seeds a side and equal seed variances,
a tenth to two thirds with two, whatever share the seeds carry). It reaches its nominal rate, and passes it as
Welch's test does, when one side's seed variance is many times the other's and the seeds carry nearly all of the
variance: with three seeds a side about 1.1 times at a ratio of ten and twice at 25 (α = 0.05 / 24); with
unbalanced seeds, the side with fewer seeds the noisier, much more (two seeds against six at a ratio of ten:
about six times), which the board's caveat on unbalanced seeds names. Splitting
the per-query noise off the seed part would restore size but, estimated with its own degrees of freedom, made the
test liberal with two seeds in a reviewer's simulation; it would need a calibration of its own.

The 95% CI is ``Δ ± t(0.975, df) · SE``, the p-value that of ``t = Δ / SE``. With queries fixed this is Welch's t
test on per-seed means; the query part adds query sampling. It is the analytic equivalent of a two-level bootstrap
(resample queries, then seeds within each configuration), used instead because it is deterministic, agrees by
construction with the p-value and the detectable difference, and with two or three seeds a bootstrap of seeds
understates their variance (resampling S values gives (S − 1)/S of it) and cannot widen the interval for so few
degrees of freedom, which the t quantile does.

A t test on mean differences, not a rank test: the mark then tests the very Δ the board shows (a rank test can
call a positive mean difference significantly worse), and with the dozens to thousands of queries of a retrieval
test set the mean is near normal; Smucker, Allan & Carterette (CIKM 2007) found the t test, bootstrap and
randomization tests agree on IR metrics while Wilcoxon and sign tests disagree with them.

With one seed on either side the seed part cannot be estimated: ``SE² = s²_d / n`` (a paired t test over
queries) covers query sampling only, and the caller must not mark it (``seed_aware`` is False).

The detectable difference (:func:`detectable_difference`) is the true Δ this test finds with 80% power at a
given α: the root of a noncentral-t power equation.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import stats as sps

__all__ = [
    "POWER",
    "SEED_DF_LEVEL",
    "SeedQueryTest",
    "detectable_difference",
    "satterthwaite_df",
    "seed_query_test",
    "seed_variance",
]

POWER = 0.8
SEED_DF_LEVEL = 0.85  # the seed parts' upper confidence level in the degrees of freedom (module docstring)


@dataclass(frozen=True)
class SeedQueryTest:
    """Δ = mean paired difference (new − base), its standard error, degrees of freedom, 95% CI and p-values.

    ``query_var`` and ``seed_var`` are the two parts of ``se²``; ``seed_aware`` says the seed part was measured
    (both sides have at least two seeds). ``p_greater`` / ``p_less`` are one-sided (new better / worse)."""

    mean_diff: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    p_value: float
    p_greater: float
    p_less: float
    n: int
    seeds_new: int
    seeds_base: int
    query_var: float
    seed_var: float

    @property
    def seed_aware(self) -> bool:
        return self.seeds_new >= 2 and self.seeds_base >= 2


def seed_variance(scores: np.ndarray) -> tuple[float, float]:
    """(v, MS_res) of one configuration's S × n score matrix: the sample variance of its per-seed means and its
    seed × query residual mean square (see the module docstring); (nan, nan) with fewer than two seeds."""
    y = np.asarray(scores, dtype=float)
    s, n = y.shape
    if s < 2 or n < 2:
        return math.nan, math.nan
    seed_means = y.mean(axis=1)
    residual = y - seed_means[:, None] - y.mean(axis=0)[None, :] + y.mean()
    return float(seed_means.var(ddof=1)), float((residual**2).sum()) / ((s - 1) * (n - 1))


def seed_query_test(new: np.ndarray, base: np.ndarray, confidence: float = 0.95) -> SeedQueryTest:
    """The comparison of two score matrices (seeds × the same n queries, in the same column order); a query with a
    non-finite score in any run is left out (``n`` counts the queries compared)."""
    a, b = np.atleast_2d(np.asarray(new, dtype=float)), np.atleast_2d(np.asarray(base, dtype=float))
    finite = np.isfinite(a).all(axis=0) & np.isfinite(b).all(axis=0)  # a query with a NaN score is not compared
    a, b = a[:, finite], b[:, finite]
    n = a.shape[1]
    diffs = a.mean(axis=0) - b.mean(axis=0)
    mean_diff = float(diffs.mean()) if n else math.nan
    seeds = (a.shape[0], b.shape[0])
    if n < 2:
        return SeedQueryTest(mean_diff, math.nan, math.nan, math.nan, math.nan, 1.0, 1.0, 1.0, n, *seeds, 0.0, 0.0)
    spread = float(diffs.var(ddof=1))
    if min(seeds) >= 2:
        (v_a, res_a), (v_b, res_b) = seed_variance(a), seed_variance(b)
        query_var = max(0.0, spread - res_a / seeds[0] - res_b / seeds[1]) / n
        seed_parts = [(v_a / seeds[0], seeds[0]), (v_b / seeds[1], seeds[1])]
    else:
        query_var, seed_parts = spread / n, []
    var = query_var + sum(v for v, _ in seed_parts)
    seed_var = var - query_var
    if not var > 1e-24:  # no variance at all: the difference is exact, none (p 1) or certain (p 0 on its side)
        p_greater, p_less = (0.0 if mean_diff > 0 else 1.0), (0.0 if mean_diff < 0 else 1.0)
        p_two = 1.0 if mean_diff == 0 else 0.0
        return SeedQueryTest(
            mean_diff, 0.0, float(n - 1), mean_diff, mean_diff, p_two, p_greater, p_less, n, *seeds, 0.0, 0.0
        )
    df = satterthwaite_df(query_var, n, seed_parts)
    se = math.sqrt(var)
    half = float(sps.t.ppf((1 + confidence) / 2, df)) * se
    t = mean_diff / se
    p_greater, p_less = float(sps.t.sf(t, df)), float(sps.t.cdf(t, df))
    p_two = min(1.0, 2 * min(p_greater, p_less))
    return SeedQueryTest(
        mean_diff, se, df, mean_diff - half, mean_diff + half, p_two, p_greater, p_less, n, *seeds, query_var, seed_var
    )


def satterthwaite_df(query_part: float, n: int, seed_parts: list[tuple[float, int]]) -> float:
    """Welch–Satterthwaite degrees of freedom of ``SE² = query part + Σ seed parts`` (``seed_parts``: ``(v / S, S)``
    per side), each seed part taken at its :data:`SEED_DF_LEVEL` upper confidence bound (module docstring)."""
    parts = [(query_part, float(n - 1))]
    parts += [(v * (s - 1) / float(sps.chi2.ppf(1 - SEED_DF_LEVEL, s - 1)), float(s - 1)) for v, s in seed_parts]
    total = sum(v for v, _ in parts)
    return total**2 / sum(v**2 / d for v, d in parts if v > 0)


def detectable_difference(se: float, df: float, alpha: float, power: float = POWER) -> float:
    """The smallest true |Δ| the two-sided t test at level ``alpha`` finds with probability ``power``.

    Solves ``P(|T| > t(1 − α/2, df)) = power`` for the noncentrality δ of a noncentral t (``scipy.stats.nct``),
    then returns ``δ · se``; NaN when ``se`` or ``df`` is not a finite positive number."""
    if not (math.isfinite(se) and math.isfinite(df) and se > 0 and df > 0 and 0 < alpha < 1):
        return math.nan
    crit = float(sps.t.ppf(1 - alpha / 2, df))

    def shortfall(delta: float) -> float:
        wrong_side = float(sps.nct.cdf(-crit, df, delta))  # negligible; scipy gives NaN far in that tail
        return float(sps.nct.sf(crit, df, delta)) + (wrong_side if math.isfinite(wrong_side) else 0.0) - power

    high = crit + float(sps.norm.ppf(power)) + 1.0
    while shortfall(high) < 0:
        high *= 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        delta = optimize.brentq(shortfall, 0.0, high, xtol=1e-6)
    return float(delta) * se
