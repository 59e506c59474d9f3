"""random: uniform corpus negatives, re-drawn each epoch, never a labelled positive."""

from __future__ import annotations

import numpy as np
from scipy.stats import chisquare

from negbench.strategies.random_negatives import RandomNegatives


def test_uniform_over_corpus_and_redrawn(ctx):
    strategy = RandomNegatives()
    cands = strategy.mine(ctx)
    counts = np.zeros(len(ctx.dataset.corpus))
    first = strategy.sample(ctx, cands, 0)
    for epoch in range(40):
        for i, ids in enumerate(strategy.sample(ctx, cands, epoch).ids):
            assert not ctx.forbidden(i) & set(ids.tolist())
            counts[ids] += 1
    assert chisquare(counts).pvalue > 0.001  # consistent with uniform
    second = strategy.sample(ctx, cands, 1)
    assert any(not np.array_equal(a, b) for a, b in zip(first.ids, second.ids, strict=True))
