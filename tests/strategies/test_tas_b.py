"""tas-b: every batch is one k-means cluster of the training queries, topped up from the nearest clusters
(full batches, the budget rule); balanced-margin sampling draws uniformly over an example's margin bins."""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.stats import chisquare

from negbench.core.batching import random_batches
from negbench.strategies.tas_b import TASB, balanced_margin_pick, margin_bins


def _in_batch_similarity(q: np.ndarray, batches: list[list[int]]) -> float:
    sims = [q[b] @ q[b].T for b in batches if len(b) > 1]
    return float(np.mean([(m.sum() - np.trace(m)) / (len(m) * (len(m) - 1)) for m in sims]))


def test_every_batch_comes_from_one_query_cluster(ctx):
    strategy = TASB.from_params({"n_clusters": 8, "depth": 20})
    strategy.setup(ctx)
    labels = strategy.cluster_of(ctx)
    assert len(np.unique(labels)) == 8
    # the same query always lands in the same cluster, and the clusters are topical in embedding space
    q = ctx.services.query_embeddings(ctx.query_ids).numpy()[ctx.example_query]
    same = labels[:, None] == labels[None, :]
    sims = q @ q.T
    assert sims[same].mean() > sims[~same].mean()
    ctx.steps_per_epoch = len(ctx.examples) // ctx.batch_size
    for epoch in range(2):
        batches = strategy.batches(ctx, epoch)
        assert sorted(i for b in batches for i in b) == list(range(len(ctx.examples)))
        full = [b for b in batches if len(b) == ctx.batch_size]
        assert len(full) >= ctx.steps_per_epoch, "composer must fill its batches"
        for b in full:
            clusters = [int(labels[i]) for i in b]
            main = max(set(clusters), key=clusters.count)
            assert clusters.count(main) >= len(b) // 2, "a batch is not dominated by one query cluster"
        # topped up from near clusters, not at random: in-batch query similarity far above random batches
        assert _in_batch_similarity(q, full) > _in_batch_similarity(q, random_batches(ctx, epoch))
    # random batches do mix clusters, so the check above has teeth
    rand = [[int(labels[i]) for i in b] for b in random_batches(ctx, 0) if len(b) == ctx.batch_size]
    assert any(max(c.count(x) for x in c) < len(c) // 2 for c in rand)


def test_clusters_per_batch_mixes_at_most_that_many(ctx):
    strategy = TASB.from_params({"n_clusters": 8, "clusters_per_batch": 2, "depth": 20})
    strategy.setup(ctx)
    labels = strategy.cluster_of(ctx)
    ctx.steps_per_epoch = len(ctx.examples) // ctx.batch_size
    counts = [len({int(labels[i]) for i in b}) for b in strategy.batches(ctx, 0)]
    assert max(counts) >= 2  # interleaved pairs of neighbouring clusters
    assert sorted(counts)[len(counts) // 2] <= 3  # the typical batch: its pair, topped up from one neighbour


def test_balanced_margin_pick_is_uniform_over_margin_bins():
    # 91 candidates crowd the lowest-margin bin, each other bin holds one: uniform sampling would pick
    # bin 0 ~90% of the time, balanced sampling 10%
    margins = np.concatenate([np.linspace(0.0, 0.09, 91), np.arange(0.15, 1.0, 0.1)])
    bins = margin_bins(margins, 10)
    assert np.bincount(bins).tolist() == [91] + [1] * 9
    rng = np.random.default_rng(0)
    drawn = [int(bins[balanced_margin_pick(rng, margins, 10, 1)[0]]) for _ in range(5000)]
    counts = np.bincount(drawn, minlength=10)
    assert chisquare(counts).pvalue > 1e-3, counts
    assert chisquare(np.bincount(bins[rng.integers(len(margins), size=5000)], minlength=10)).pvalue < 1e-6
    # k draws are distinct and spread over bins before repeating one
    pick = balanced_margin_pick(rng, margins, 10, 10)
    assert len(set(pick.tolist())) == 10 and len(set(bins[pick].tolist())) == 10


def test_strategy_samples_balanced_over_teacher_margins(ctx):
    ctx = dataclasses.replace(ctx, num_negatives=1)
    strategy = TASB.from_params({"n_clusters": 8, "depth": 30, "margin_bins": 5, "source": "dense"})
    candidates = strategy.mine(ctx)
    positive = ctx.positive_scores()
    observed = np.zeros(5)
    expected = np.zeros(5)
    uniform = np.zeros(5)
    for epoch in range(30):
        chosen = strategy.sample(ctx, candidates, epoch)
        for i, ids in enumerate(candidates.ids):
            bins = margin_bins(positive[i] - candidates.scores[i], 5)
            observed[bins[list(ids).index(int(chosen.ids[i][0]))]] += 1
            present = np.unique(bins)
            expected[present] += 1 / len(present)
            uniform += np.bincount(bins, minlength=5) / len(bins)
    assert chisquare(observed, expected).pvalue > 1e-3, (observed, expected)
    assert chisquare(observed, uniform).pvalue < 1e-6, (observed, uniform)
