"""negbench.report.stats on hand-computed examples and a synthetic results store."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest
from scipy import stats as sps

from negbench.report import stats
from negbench.report.stats import (
    BETTER,
    WORSE,
    holm,
    mean_ci,
    paired_test,
    per_query_means,
    query_means,
    resolve_baseline,
    significance,
    t_half_width,
)
from negbench.report.table import aggregate
from negbench.testing.results import synthetic_frames, synthetic_rows, synthetic_store


def test_mean_ci_hand_example() -> None:
    # mean 2.5, sample sd sqrt(5/3) = 1.290994, t(0.975, df=3) = 3.182446 → half-width 2.054260
    ci = mean_ci([1.0, 2.0, 3.0, 4.0])
    assert ci.n == 4
    assert ci.mean == pytest.approx(2.5)
    assert ci.half_width == pytest.approx(3.182446305 * 1.290994449 / 2, rel=1e-6)
    assert (ci.low, ci.high) == pytest.approx((2.5 - 2.054260, 2.5 + 2.054260), abs=1e-5)


def test_mean_ci_degenerate_inputs() -> None:
    one = mean_ci([0.3])
    assert one.mean == 0.3 and one.n == 1 and math.isnan(one.half_width)
    empty = mean_ci([None, float("nan")])
    assert empty.n == 0 and math.isnan(empty.mean)
    same = mean_ci([0.5, 0.5, 0.5])
    assert same.half_width == 0.0
    assert math.isnan(t_half_width(None, 3)) and math.isnan(t_half_width(0.1, 1))


def test_holm_hand_example() -> None:
    # sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_skips_nan() -> None:
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    adjusted = holm([float("nan"), 0.02, 0.04])
    assert math.isnan(adjusted[0]) and adjusted[1:] == pytest.approx([0.04, 0.04])
    assert holm([]) == []
    assert holm([0.2]) == [0.2]


def test_paired_test_all_zero_differences() -> None:
    scores = {f"q{i}": i / 10 for i in range(10)}
    result = paired_test(scores, dict(scores))
    assert result.p_value == 1.0 and result.n == 10 and result.mean_diff == 0.0


def test_paired_test_uses_common_queries_and_matches_scipy() -> None:
    base = {f"q{i}": 0.1 * (i % 7) for i in range(30)}
    new = {q: s + (0.05 if i % 5 else -0.01) for i, (q, s) in enumerate(base.items())}
    new["only-new"] = 1.0
    result = paired_test(new, base)
    assert result.n == 30
    assert result.mean_diff > 0
    diffs = [new[q] - base[q] for q in sorted(base)]
    assert result.p_value == pytest.approx(sps.wilcoxon(diffs, zero_method="pratt").pvalue)
    assert result.p_value < 0.01
    t = paired_test(new, base, method="t")
    assert t.p_value == pytest.approx(sps.ttest_1samp(diffs, 0.0).pvalue)
    with pytest.raises(ValueError):
        paired_test(new, base, method="sign")  # type: ignore[arg-type]


def test_paired_test_too_few_queries() -> None:
    assert paired_test({"a": 1.0}, {"a": 0.0}).p_value == 1.0
    assert paired_test({"a": 1.0}, {"b": 0.0}).n == 0


def test_per_query_means_average_over_runs() -> None:
    pq = pl.DataFrame(
        {
            "run_id": ["r1", "r1", "r2", "r2", "r3"],
            "metric": ["m", "m", "m", "m", "m"],
            "query_id": ["a", "b", "a", "b", "a"],
            "score": [0.2, 0.4, 0.6, 0.0, 9.0],
        }
    )
    assert per_query_means(pq, ["r1", "r2"], "m") == pytest.approx({"a": 0.4, "b": 0.2})
    assert per_query_means(pq, [], "m") == {}


def test_significance_marks_on_synthetic_store(tmp_path) -> None:
    store = synthetic_store(
        tmp_path, {"in-batch": 0.0, "bm25": 0.06, "none": -0.1, "same": 0.0}, n_queries=80, noise=0.03
    )
    sig = significance(store.rows(), store.per_query(), "in-batch", ["ndcg@10"])
    assert sig[("toy", "tiny", "bm25", "ndcg@10")].mark == BETTER
    assert sig[("toy", "tiny", "none", "ndcg@10")].mark == WORSE
    assert sig[("toy", "tiny", "same", "ndcg@10")].mark == ""
    assert ("toy", "tiny", "in-batch", "ndcg@10") not in sig
    # Holm never lowers a p-value
    assert all(s.p_holm >= s.p_value for s in sig.values())
    assert significance(store.rows(), store.per_query(), "no-such-baseline") == {}


def test_resolve_baseline_by_registered_name() -> None:
    rows = pl.DataFrame(
        [
            r
            for r, _ in synthetic_rows(
                {"ib": 0.0, "x": 0.1}, seeds=(0,), n_queries=3, strategy_names={"ib": "in-batch"}
            )
        ]
    )
    assert resolve_baseline(rows, "in-batch") == "ib"
    assert resolve_baseline(rows, "x") == "x"
    assert resolve_baseline(rows, "nothing") is None


def test_aggregate_has_ci_columns() -> None:
    rows = pl.DataFrame([r for r, _ in synthetic_rows({"a": 0.0}, seeds=(0, 1, 2), n_queries=10)])
    table = aggregate(rows)
    values = rows["ndcg@10"].to_list()
    assert table["ndcg@10_ci"][0] == pytest.approx(mean_ci(values).half_width)
    assert table["ndcg@10"][0] == pytest.approx(sum(values) / 3)


# --- configurations are never pooled ------------------------------------------------------------------


def two_config_frames(new_schema: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """in-batch under two configurations (lr 2e-5 on Jan 1, then lr 1e-4 on Feb 1, one seed each) and bm25.

    ``new_schema``: rows carry ``config_key``; else (an old store) only ``training`` tells them apart.
    """
    old = synthetic_rows({"in-batch": 0.0, "bm25": 0.05}, seeds=(0,), n_queries=40, noise=0.02)
    new = synthetic_rows({"in-batch": 0.10}, seeds=(0,), n_queries=40, noise=0.02, rng_seed=1)
    for row, _ in old:
        row["training"] = json.dumps({"lr": 2e-5})
    for row, _ in new:
        row.update(
            run_id="toy-in-batch-0-lr", training=json.dumps({"lr": 1e-4}), created_at="2025-02-01T00:00:00+00:00"
        )
    if new_schema:
        for row, _ in old + new:
            row["config_key"] = f"{row['strategy']}-{row['training']}".encode().hex()
    return synthetic_frames(old + new)


def scores_of(per_query: pl.DataFrame, run_id: str, metric: str = "ndcg@10") -> dict[str, float]:
    part = per_query.filter((pl.col("run_id") == run_id) & (pl.col("metric") == metric))
    return dict(zip(part["query_id"].to_list(), part["score"].to_list(), strict=True))


@pytest.mark.parametrize("new_schema", [True, False], ids=["config_key", "old-store"])
def test_two_configs_of_one_label_are_never_pooled(new_schema: bool) -> None:
    rows, per_query = two_config_frames(new_schema)
    old_ib, new_ib, bm25 = (scores_of(per_query, r) for r in ("toy-in-batch-0", "toy-in-batch-0-lr", "toy-bm25-0"))

    table = aggregate(rows)
    in_batch = table.filter(pl.col("strategy") == "in-batch")
    assert in_batch.height == 2 and in_batch["seeds"].to_list() == [1, 1]  # two rows, not one with 2 "seeds"

    means = query_means(rows, per_query).filter((pl.col("metric") == "ndcg@10") & (pl.col("query_id") == "q0"))
    assert sorted(means.filter(pl.col("strategy") == "in-batch")["score"].to_list()) == pytest.approx(
        sorted([old_ib["q0"], new_ib["q0"]])
    )

    sig = significance(rows, per_query, "in-batch", ["ndcg@10"])
    # the test input of bm25 is bm25 vs the newest in-batch configuration only, not their average
    assert sig[("toy", "tiny", "bm25", "ndcg@10")].mean_diff == pytest.approx(
        sum(bm25[q] - new_ib[q] for q in bm25) / len(bm25)
    )
    older = [k for k in sig if k[2].startswith("in-batch [cfg ")]
    assert len(older) == 1  # the older configuration is a contender of its own, tested against the newest
    assert sig[older[0]].mean_diff == pytest.approx(sum(old_ib[q] - new_ib[q] for q in old_ib) / len(old_ib))
    assert sig[older[0]].p_holm < 0.05 and sig[older[0]].mean_diff < 0  # worse on these queries …
    assert sig[older[0]].mark == "" and not sig[older[0]].seed_aware  # … but one seed each: never marked

    labelled = stats.with_config_labels(rows)
    base = stats.baseline_config(labelled, "in-batch")
    assert base is not None and base.n_configs == 2 and base.label != older[0][2]
    assert base.config_key == labelled.filter(pl.col("run_id") == "toy-in-batch-0-lr")["config_key"][0]
    assert "newest" in (base.note() or "")
    assert sig[older[0]].baseline_config_key == base.config_key


def test_config_key_fallback_for_old_stores() -> None:
    rows = pl.DataFrame(
        {
            "dataset": ["d"] * 4,
            "model": ["m"] * 4,
            "strategy": ["a", "a", "a", "a"],
            "config_hash": ["h", "h", "h", "h"],
            "params": ["{}", "{}", "{}", '{"k": 1}'],
            "training": ['{"lr": 1}', '{"lr": 1}', '{"lr": 2}', '{"lr": 1}'],
        }
    )
    keys = stats.with_config_key(rows)["config_key"].to_list()
    assert keys[0] == keys[1] and len(set(keys)) == 3
    labels = stats.with_config_labels(rows)["label"].to_list()
    assert len(set(labels)) == 3 and all(label.startswith("a [cfg ") for label in labels)
    # a stored key wins; rows of an old store appended to a new one (null key) get the fallback
    mixed = rows.with_columns(pl.Series("config_key", ["k1", None, "k1", "k2"]))
    assert stats.with_config_key(mixed)["config_key"].to_list() == ["k1", keys[1], "k1", "k2"]
    bare = pl.DataFrame({"dataset": ["d"], "model": ["m"], "strategy": ["a"]})
    assert stats.with_config_labels(bare)["label"].to_list() == ["a"]


# --- the mark follows the test's own direction -------------------------------------------------------

FORTY_WORSE_FIVE_BETTER = [-0.01] * 40 + [0.5] * 5  # mean +0.047, but by rank clearly worse


def paired_frames(diffs: list[float], seeds: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A store of "in-batch" and "new" with ``seeds`` runs each, whose per-query differences are ``diffs`` (seed
    s shifts every query of both by 0.001 · s, a little training noise)."""
    base = [0.3 + 0.01 * (i % 7) for i in range(len(diffs))]
    runs = [(f"{side}{s}", label, s) for side, label in (("b", "in-batch"), ("n", "new")) for s in range(seeds)]
    jitter = {(label, s): 0.001 * ((s * 7 + (label == "new")) % 3) for _, label, s in runs}
    scores = {
        run: [b + (d if label == "new" else 0.0) + jitter[(label, s)] for b, d in zip(base, diffs, strict=True)]
        for run, label, s in runs
    }
    rows = pl.DataFrame(
        {
            "run_id": [r for r, _, _ in runs],
            "dataset": ["d"] * len(runs),
            "model": ["m"] * len(runs),
            "strategy": [label for _, label, _ in runs],
            "seed": [s for _, _, s in runs],
            "status": ["ok"] * len(runs),
            "ndcg@10": [sum(scores[r]) / len(base) for r, _, _ in runs],
        }
    )
    per_query = pl.DataFrame(
        {
            "run_id": [r for r, _, _ in runs for _ in diffs],
            "metric": ["ndcg@10"] * (len(runs) * len(diffs)),
            "query_id": [f"q{i}" for i in range(len(diffs))] * len(runs),
            "score": [v for r, _, _ in runs for v in scores[r]],
        }
    )
    return rows, per_query


def test_the_mark_tests_the_mean_difference_it_sits_beside() -> None:
    """The board's test is on the mean difference its Δ column shows, so a mark never contradicts Δ; a rank test
    (``paired_test``, Wilcoxon) calls the same queries significantly worse."""
    sig = significance(*paired_frames(FORTY_WORSE_FIVE_BETTER, seeds=3), "in-batch", ["ndcg@10"])
    found = sig[("d", "m", "new", "ndcg@10")]
    assert found.mean_diff > 0 and found.mark != WORSE and found.p_greater < found.p_less
    base = {f"q{i}": 0.5 for i in range(45)}
    new = {q: base[q] + d for q, d in zip(base, FORTY_WORSE_FIVE_BETTER, strict=True)}
    test = paired_test(new, base)
    assert test.mean_diff > 0  # the mean says better …
    assert test.p_less < 1e-3 < 0.99 < test.p_greater and test.direction == -1  # … the rank test says worse
    assert test.p_value == pytest.approx(sps.wilcoxon(FORTY_WORSE_FIVE_BETTER, zero_method="pratt").pvalue)
    assert test.p_value == pytest.approx(1.78e-4, rel=0.01)
    assert test.hodges_lehmann < 0 < test.mean_diff  # the rank test's own effect size agrees with its direction


def test_clearly_better_system_is_marked_better_only_with_seeds() -> None:
    diffs = [0.05 + 0.01 * ((i * 7) % 5 - 2) for i in range(50)]
    sig = significance(*paired_frames(diffs, seeds=3), "in-batch", ["ndcg@10"])[("d", "m", "new", "ndcg@10")]
    assert sig.mark == BETTER and sig.p_greater < 1e-3 and sig.p_less > 0.99 and sig.seed_aware
    assert 0 < sig.ci_low <= sig.mean_diff <= sig.ci_high
    one = significance(*paired_frames(diffs), "in-batch", ["ndcg@10"])[("d", "m", "new", "ndcg@10")]
    assert one.mark == "" and not one.seed_aware and one.p_holm < 1e-6  # clear on these queries, yet one run


def test_t_test_takes_its_direction_from_its_statistic() -> None:
    base = {f"q{i}": 0.5 for i in range(45)}
    new = {q: base[q] + d for q, d in zip(base, FORTY_WORSE_FIVE_BETTER, strict=True)}
    t = paired_test(new, base, method="t")
    assert t.statistic > 0 and t.direction == 1 and t.p_greater < t.p_less  # the t-test follows the mean
    assert t.p_value == pytest.approx(sps.ttest_1samp(FORTY_WORSE_FIVE_BETTER, 0.0).pvalue)


def test_bootstrap_ci_contains_the_mean_and_is_deterministic() -> None:
    import numpy as np

    diffs = np.random.default_rng(3).normal(0.02, 0.1, 200)
    low, high = stats.bootstrap_mean_ci(diffs)
    assert low < diffs.mean() < high and high - low < 0.05
    assert stats.bootstrap_mean_ci(diffs) == (low, high)  # seeded: the same numbers every time
    base = {f"q{i:03d}": 0.5 for i in range(200)}  # paired_test orders queries by id
    test = paired_test({q: 0.5 + d for q, d in zip(base, diffs, strict=True)}, base)
    assert (test.ci_low, test.ci_high) == pytest.approx((low, high))
    assert stats.bootstrap_mean_ci([0.1, 0.1, 0.1]) == (0.1, 0.1)
    assert all(math.isnan(v) for v in stats.bootstrap_mean_ci([0.1]))


def test_hodges_lehmann_hand_example() -> None:
    # Walsh averages of (1, 2, 4): 1, 1.5, 2.5, 2, 3, 4 → median (2 + 2.5) / 2
    assert stats.hodges_lehmann([1.0, 2.0, 4.0]) == pytest.approx(2.25)
    assert math.isnan(stats.hodges_lehmann([]))
    diffs = [((i * 37) % 101) / 100 - 0.3 for i in range(400)]
    exact = stats.hodges_lehmann(diffs)
    assert stats.hodges_lehmann(diffs, max_pairs=20_000) == pytest.approx(exact, abs=0.02)  # sampled
