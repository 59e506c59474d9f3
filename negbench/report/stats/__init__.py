"""Statistics shared by the leaderboards and ``negbench compare``.

* :func:`mean_ci` — mean and 95% confidence interval over seeds (Student t, because there are few seeds).
* :func:`seed_query_test` (:mod:`~negbench.report.stats.twolevel`) — a configuration against the baseline with
  both sources of variance, test queries and training seeds: Δ = mean paired per-query difference of the
  seed-averaged scores, its standard error from a seed × query variance-components model (Welch–Satterthwaite
  degrees of freedom), a t-based 95% CI and p-value; :func:`detectable_difference` — the smallest Δ that test
  finds with 80% power at a given α (noncentral t).
* :func:`significance` — that test for a results store, each configuration vs the baseline per dataset × model ×
  metric. Marks only on the primary metric (:func:`resolve_primary`), only when both sides have several seeds,
  Holm-corrected over those comparisons; other metrics are exploratory (see
  :mod:`~negbench.report.stats.significance`).
* :func:`declared_tests` (:mod:`~negbench.report.stats.declared`) — the suite's declared comparisons
  (``[[comparisons]]``), one-sided on the primary metric, Holm-corrected as their own family.
* :func:`paired_test` — a paired per-query Wilcoxon signed-rank (or t) test over queries alone, for a caller with
  one run a side; the boards and ``negbench compare`` use :func:`seed_query_test`.
* :func:`holm` — Holm's step-down correction for the family of comparisons in one table.

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
    repeated_configs,
    resolve_baseline,
    with_config_key,
    with_config_labels,
)
from negbench.report.stats.declared import DeclaredTest, declared_tests
from negbench.report.stats.ranking import PairAcrossDatasets, RankSummary, rank_power_note, rank_summary, ranked_rows
from negbench.report.stats.significance import DEFAULT_PRIMARY, Significance, mark_for, resolve_primary, significance
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
from negbench.report.stats.twolevel import POWER, SeedQueryTest, detectable_difference, seed_query_test, seed_variance

__all__ = [
    "BETTER",
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "CONFIG_KEYS",
    "DEFAULT_PRIMARY",
    "POWER",
    "SHORT_KEY",
    "WORSE",
    "BaselineConfig",
    "DeclaredTest",
    "MeanCI",
    "PairAcrossDatasets",
    "PairedTest",
    "RankSummary",
    "SeedQueryTest",
    "Significance",
    "TestMethod",
    "baseline_config",
    "bootstrap_mean_ci",
    "clip_p",
    "config_notes",
    "declared_tests",
    "detectable_difference",
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
    "repeated_configs",
    "resolve_baseline",
    "resolve_primary",
    "seed_query_test",
    "seed_variance",
    "significance",
    "t_half_width",
    "with_config_key",
    "with_config_labels",
]
