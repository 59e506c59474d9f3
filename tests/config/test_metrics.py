"""Metrics agree with hand-computed values (pytrec_eval, as BEIR/MTEB)."""

from __future__ import annotations

import math

import pytest

from negbench.config.metrics import evaluate_run, parse_metric


def test_ndcg_matches_hand_computation():
    qrels = {"q": {"a": 1, "c": 2}}
    run = {"q": {"a": 0.9, "b": 0.8, "c": 0.7}}
    # trec_eval (and so BEIR/MTEB) uses linear gains: rel / log2(rank + 1)
    dcg = 1 / math.log2(2) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    means, per_query = evaluate_run(qrels, run, ["ndcg@10"])
    assert means["ndcg@10"] == pytest.approx(dcg / idcg, abs=1e-6)
    assert per_query["ndcg@10"]["q"] == pytest.approx(dcg / idcg, abs=1e-6)


def test_mrr_respects_cutoff_and_recall():
    qrels = {"q1": {"c": 1}, "q2": {"x": 1}}
    run = {"q1": {"a": 0.9, "b": 0.8, "c": 0.7}, "q2": {"x": 1.0}}
    means, per_query = evaluate_run(qrels, run, ["mrr@2", "mrr@3", "recall@2"])
    assert per_query["mrr@2"]["q1"] == 0.0
    assert per_query["mrr@3"]["q1"] == pytest.approx(1 / 3)
    assert means["mrr@3"] == pytest.approx((1 / 3 + 1) / 2)
    assert per_query["recall@2"] == {"q1": 0.0, "q2": 1.0}


def test_query_missing_from_run_counts_zero():
    means, _ = evaluate_run({"q1": {"a": 1}, "q2": {"b": 1}}, {"q1": {"a": 1.0}}, ["ndcg@10"])
    assert means["ndcg@10"] == pytest.approx(0.5)


@pytest.mark.parametrize("bad", ["ndcg", "ndcg@0", "bleu@4", "ndcg@-1"])
def test_bad_metric_names(bad):
    with pytest.raises(ValueError, match="unknown metric"):
        parse_metric(bad)
