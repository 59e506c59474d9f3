"""neighbourhood: negatives come from the positive document's k-means cluster (or its nearest clusters)."""

from __future__ import annotations

import numpy as np

from negbench.strategies.neighbourhood import Neighbourhood


def test_negatives_come_from_the_positives_cluster(ctx):
    strategy = Neighbourhood.from_params({"n_clusters": 8})
    strategy.setup(ctx)
    labels, _ = strategy.doc_clusters(ctx)
    assert len(np.unique(labels)) == 8
    candidates = strategy.mine(ctx)
    for i, pool in enumerate(candidates.ids):
        own = np.flatnonzero(labels == labels[ctx.positive_docs[i]])
        assert set(pool.tolist()) == set(own.tolist()) - ctx.forbidden(i)
    checked = 0
    for epoch in range(2):
        chosen = strategy.sample(ctx, candidates, epoch)
        for i, ids in enumerate(chosen.ids):
            if len(candidates.ids[i]) >= ctx.num_negatives:  # otherwise topped up at random
                assert (labels[ids] == labels[ctx.positive_docs[i]]).all()
                checked += 1
    assert checked >= 0.9 * 2 * len(ctx.examples)


def test_nearest_clusters_widen_the_neighbourhood(ctx):
    strategy = Neighbourhood.from_params({"n_clusters": 8, "clusters": 2})
    strategy.setup(ctx)
    labels, _ = strategy.doc_clusters(ctx)
    d = ctx.services.corpus_embeddings().numpy()
    centroids = np.stack([d[labels == c].mean(0) for c in range(8)])
    sim = centroids @ centroids.T
    np.fill_diagonal(sim, -np.inf)
    candidates = strategy.mine(ctx)
    chosen = strategy.sample(ctx, candidates, 0)
    for i, ids in enumerate(chosen.ids):
        own = int(labels[ctx.positive_docs[i]])
        allowed = {own, int(np.argmax(sim[own]))}
        assert set(labels[candidates.ids[i]].tolist()) == allowed
        assert set(labels[ids].tolist()) <= allowed
