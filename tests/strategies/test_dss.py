"""dss (Sample4Geo's dynamic similarity sampling): each anchor shares a batch with its nearest training pairs,
so in-batch negatives are harder than in random batches, and the neighbours are recomputed with the model
being trained."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from negbench.core.batching import random_batches
from negbench.strategies.dss import DSS, DSSParams, nearest_pairs, similarity_stream
from negbench.strategies.ngame import pair_embeddings


def _query_to_positive_similarity(ctx, batches) -> float:
    """Mean base-model cosine of a query to the positive of another example in its batch (its in-batch
    negatives' hardness)."""
    q, d = pair_embeddings(ctx)
    return float(np.mean([q[i] @ d[j] for b in batches for i, j in itertools.permutations(b, 2)]))


def test_batches_are_more_similar_than_random_batches(ctx):
    dss = DSS.from_params({"neighbour_select": 3, "neighbour_range": 6})
    ours = [_query_to_positive_similarity(ctx, dss.batches(ctx, epoch)) for epoch in range(3)]
    rand = [_query_to_positive_similarity(ctx, random_batches(ctx, epoch)) for epoch in range(20)]
    assert min(ours) > max(rand), (ours, rand)
    for epoch in range(3):  # every example once, full batches, seeded
        batches = dss.batches(ctx, epoch)
        assert sorted(i for b in batches for i in b) == list(range(len(ctx.examples)))
        assert all(len(b) == ctx.batch_size for b in batches[:-1])
    assert dss.batches(ctx, 1) == DSS.from_params({"neighbour_select": 3, "neighbour_range": 6}).batches(ctx, 1)


def test_anchors_are_followed_by_their_own_neighbours():
    neighbours = [np.array([1, 2]), np.array([0, 2]), np.array([3]), np.array([2]), np.array([5]), np.array([4])]
    stream = similarity_stream(np.random.default_rng(0), neighbours, select=1)
    assert sorted(stream) == list(range(6))
    anchors = [stream[k] for k in range(0, 6, 2)]
    for k, anchor in enumerate(anchors):  # anchor, then one of its own unused neighbours
        assert stream[2 * k + 1] in neighbours[anchor].tolist()


def test_neighbours_never_hold_a_labelled_positive_and_are_nearest_first(ctx):
    q, d = pair_embeddings(ctx)
    found = nearest_pairs(ctx, q, d, 5)
    for i, row in enumerate(found):
        assert i not in row.tolist()
        assert not {int(ctx.positive_docs[j]) for j in row} & ctx.forbidden(i)
        sims = d[row] @ q[i]
        assert np.all(np.diff(sims) <= 1e-6)


def test_neighbours_are_recomputed_with_the_model_being_trained(ctx, tiny_model):
    from negbench.config.suite import ModelConfig
    from negbench.core.models import load_model

    dss = DSS.from_params({"neighbour_select": 2, "neighbour_range": 4, "refresh_epochs": 2})
    first = [r.tolist() for r in dss.neighbours(ctx, 0)]
    model = load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")
    with __import__("torch").no_grad():
        for p in model.parameters():
            p.add_(__import__("torch").randn_like(p) * 0.5)
    ctx.model = model
    assert [r.tolist() for r in dss.neighbours(ctx, 1)] == first  # not due: refresh every 2 epochs
    assert [r.tolist() for r in dss.neighbours(ctx, 2)] != first  # re-encoded with the current model


@pytest.mark.parametrize(
    "bad", [{"neighbour_select": 0}, {"neighbour_select": 9, "neighbour_range": 4}, {"refresh_epochs": 0}]
)
def test_bad_params(bad):
    with pytest.raises(ValueError):
        DSSParams(**bad)
