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

from negbench.report.stats.configs import (
    CONFIG_KEYS,
    SHORT_KEY,
    BaselineConfig,
    baseline_config,
    config_notes,
    fallback_config_key,
    newest_config,
    newest_configs,
    per_query_means,
    query_means,
    resolve_baseline,
    with_config_key,
    with_config_labels,
)
from negbench.report.stats.ranking import PairAcrossDatasets, RankSummary, rank_power_note, rank_summary, ranked_rows
from negbench.report.stats.significance import Significance, mark_for, significance
from negbench.report.stats.tests import (
    BETTER,
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    WORSE,
    MeanCI,
    PairedTest,
    TestMethod,
    bootstrap_mean_ci,
    clip_p,
    hodges_lehmann,
    holm,
    mean_ci,
    paired_test,
    t_half_width,
)

__all__ = [
    "BETTER",
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "CONFIG_KEYS",
    "SHORT_KEY",
    "WORSE",
    "BaselineConfig",
    "MeanCI",
    "PairAcrossDatasets",
    "PairedTest",
    "RankSummary",
    "Significance",
    "TestMethod",
    "baseline_config",
    "bootstrap_mean_ci",
    "clip_p",
    "config_notes",
    "fallback_config_key",
    "hodges_lehmann",
    "holm",
    "mark_for",
    "mean_ci",
    "newest_config",
    "newest_configs",
    "paired_test",
    "per_query_means",
    "query_means",
    "rank_power_note",
    "rank_summary",
    "ranked_rows",
    "resolve_baseline",
    "significance",
    "t_half_width",
    "with_config_key",
    "with_config_labels",
]
