"""ngame: batches made of (query, positive) clusters carry harder in-batch negatives than random batches,
and a refresh re-clusters with the model being trained."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from negbench.config.suite import ModelConfig
from negbench.core.batching import random_batches
from negbench.core.models import load_model
from negbench.strategies.ngame import NGAME


def _in_batch_similarity(ctx, batches) -> float:
    """Mean base-model cosine between the positives of two examples sharing a batch."""
    d = ctx.services.corpus_embeddings().numpy()[ctx.positive_docs]
    sims = [float(d[i] @ d[j]) for b in batches for i, j in itertools.combinations(b, 2)]
    return float(np.mean(sims))


def _partition(strategy) -> set[frozenset[int]]:
    return {frozenset(int(i) for i in c) for c in strategy.state["clusters"]}


def test_in_batch_negatives_are_harder_than_random(ctx):
    strategy = NGAME.from_params({"cluster_size": 4})
    strategy.setup(ctx)
    assert all(len(c) <= 4 for c in strategy.state["clusters"])
    ngame = [_in_batch_similarity(ctx, strategy.batches(ctx, epoch)) for epoch in range(3)]
    rand = [_in_batch_similarity(ctx, random_batches(ctx, epoch)) for epoch in range(20)]
    assert min(ngame) > max(rand), (ngame, rand)
    for epoch in range(3):
        batches = strategy.batches(ctx, epoch)
        assert sorted(i for b in batches for i in b) == list(range(len(ctx.examples)))
        assert len(batches) == len(strategy.batches(ctx, 0))  # a stable number of steps per epoch


def test_refresh_reclusters_with_the_current_model(ctx, tiny_model):
    strategy = NGAME.from_params({"cluster_size": 4, "refresh_epochs": 1})
    ctx.steps_per_epoch = steps = len(ctx.examples) // ctx.batch_size  # the run's budget (set by the runner)
    strategy.setup(ctx)
    assert strategy.state["steps_per_epoch"] == steps
    assert sum(len(b) == ctx.batch_size for b in strategy.batches(ctx, 0)) >= steps
    assert ctx.epochs == 2
    # due after every epoch but the last one (training ends there)
    assert [s for s in range(1, 3 * steps) if strategy.refresh_due(s)] == [steps]
    before = _partition(strategy)
    model = load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        for p in model.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=gen))
    ctx.model = model
    fresh = strategy.refresh(ctx, steps)
    after = _partition(strategy)
    assert after != before
    assert len(before & after) < len(after) / 2, "most clusters should change under a different model"
    assert strategy.state["refreshed_at"] == [steps]
    # the new batches follow the new clusters, and the hard negatives are the new cluster-mates' positives
    cluster_of = strategy.state["cluster_of"]
    for batch in strategy.batches(ctx, 1):
        runs = [k for k, _ in itertools.groupby(int(cluster_of[i]) for i in batch)]
        assert len(runs) == len(set(runs)), "a cluster is split inside a batch"
    for i, ids in enumerate(fresh.ids):
        mates = {int(ctx.positive_docs[j]) for j in np.flatnonzero(cluster_of == cluster_of[i]) if j != i}
        assert set(ids.tolist()) <= mates


def test_without_hard_negatives_mines_nothing(ctx):
    strategy = NGAME.from_params({"cluster_size": 4, "hard_negatives": False})
    strategy.setup(ctx)
    assert strategy.mine(ctx) is None


def test_a_one_epoch_run_never_re_clusters() -> None:
    assert "never refreshes, so the base model's clusters serve" in NGAME().unexercised(1, 25)
    assert NGAME().unexercised(2, 50) is None
