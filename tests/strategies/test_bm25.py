"""bm25: negatives come from the BM25 rank window, positives removed."""

from __future__ import annotations

import numpy as np

from negbench.strategies.bm25 import BM25Negatives


def test_candidates_are_the_bm25_window(ctx):
    strategy = BM25Negatives.from_params({"range_min": 2, "range_max": 8, "sampling": "top"})
    cands = strategy.mine(ctx)
    _, idx = ctx.services.bm25_topk(ctx.query_ids, 40)
    for i, row in enumerate(ctx.example_query):
        ranked = [int(d) for d in idx[row] if int(d) not in ctx.forbidden(i)]
        assert cands.ids[i].tolist() == ranked[2:8]
        assert np.all(np.diff(cands.scores[i]) <= 1e-6)  # best first
    chosen = strategy.sample(ctx, cands, 0)
    assert chosen.ids[0].tolist() == cands.ids[0][:2].tolist()


def test_bm25_prefers_lexical_overlap(ctx):
    # every toy query carries its document's unique tag: BM25 ranks the positive first
    _, idx = ctx.services.bm25_topk(ctx.query_ids, 5)
    hits = [ctx.examples[i].doc == idx[row][0] for i, row in enumerate(ctx.example_query)]
    assert np.mean(hits) > 0.8  # far above chance (1/128)


def test_random_sampling_draws_within_window(ctx):
    strategy = BM25Negatives.from_params({"range_min": 0, "range_max": 10, "sampling": "random"})
    cands = strategy.mine(ctx)
    for epoch in range(3):
        for i, ids in enumerate(strategy.sample(ctx, cands, epoch).ids):
            assert set(ids.tolist()) <= set(cands.ids[i].tolist())
