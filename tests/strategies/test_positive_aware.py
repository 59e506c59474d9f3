"""positive-aware (NV-Retriever): no kept candidate scores above the positive-aware threshold."""

from __future__ import annotations

import numpy as np

from negbench.strategies.positive_aware import PositiveAware, PositiveAwareParams, positive_aware_filter


def test_filter_variants_on_synthetic_scores():
    ids = np.arange(6)
    scores = np.array([0.95, 0.9, 0.85, 0.8, 0.5, 0.2])
    keep, _ = positive_aware_filter(ids, scores, 0.9, PositiveAwareParams(method="perc", perc=0.95))
    assert keep.tolist() == [2, 3, 4, 5]  # threshold 0.855
    keep, _ = positive_aware_filter(ids, scores, 0.9, PositiveAwareParams(method="margin", margin=0.05))
    assert keep.tolist() == [2, 3, 4, 5]  # threshold 0.85
    keep, _ = positive_aware_filter(ids, scores, 0.9, PositiveAwareParams(method="abs", max_score=0.6))
    assert keep.tolist() == [4, 5]


def test_mined_candidates_respect_threshold(ctx):
    strategy = PositiveAware.from_params({"perc": 0.99, "depth": 30})
    cands = strategy.mine(ctx)
    positive = ctx.positive_scores()
    unfiltered = ctx.dense_candidates(30)
    dropped = 0
    for i in range(len(ctx.examples)):
        assert np.all(cands.scores[i] <= 0.99 * positive[i] + 1e-7)
        dropped += len(unfiltered.ids[i]) - len(cands.ids[i])
    assert dropped > 0  # the filter did something on this corpus
