"""star: the share of static dense hard negatives among the negatives matches ``hard_ratio``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from negbench.strategies.star import STAR, hard_count


def _hard_share(ctx, ratio: float, depth: int, epochs: int) -> float:
    strategy = STAR.from_params({"hard_ratio": ratio, "depth": depth})
    pool = strategy.mine(ctx)
    assert all(len(p) == depth for p in pool.ids)
    hits = total = 0
    for epoch in range(epochs):
        chosen = strategy.sample(ctx, pool, epoch)
        for i, ids in enumerate(chosen.ids):
            hits += len(set(ids.tolist()) & set(pool.ids[i].tolist()))
            total += len(ids)
    return hits / total


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 1.0])
def test_hard_share_matches_the_ratio(ctx, ratio):
    k, depth = 4, 10
    ctx = dataclasses.replace(ctx, num_negatives=k)
    n_docs = len(ctx.dataset.corpus)
    hard = ratio * k
    # the random part is uniform over the corpus (minus the positive and the hard ones), so some of it lands
    # in the hard pool by chance
    expected = (hard + (k - hard) * (depth - hard) / (n_docs - 1 - hard)) / k
    share = _hard_share(ctx, ratio, depth, epochs=10)
    assert share == pytest.approx(expected, abs=0.03)
    if ratio == 1.0:
        assert share == 1.0


def test_fractional_ratio_holds_on_average(ctx):
    ctx = dataclasses.replace(ctx, num_negatives=1)
    n_docs = len(ctx.dataset.corpus)
    expected = 0.3 + 0.7 * 10 / (n_docs - 1)
    assert _hard_share(ctx, 0.3, 10, epochs=40) == pytest.approx(expected, abs=0.03)
    rng = np.random.default_rng(0)
    assert np.mean([hard_count(rng, 0.3, 1) for _ in range(10_000)]) == pytest.approx(0.3, abs=0.02)
