"""negbench.stats on hand-computed examples and a synthetic results store."""

from __future__ import annotations

import math

import polars as pl
import pytest
from scipy import stats as sps

from negbench.report import aggregate
from negbench.stats import (
    BETTER,
    WORSE,
    holm,
    mean_ci,
    paired_test,
    per_query_means,
    resolve_baseline,
    significance,
    t_half_width,
)
from negbench.testing.results import synthetic_rows, synthetic_store


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
