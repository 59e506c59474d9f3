"""rs2: each epoch trains on a fresh random subset of the declared fraction, without replacement across
epochs until every example has been seen."""

from __future__ import annotations

import itertools

import numpy as np

from negbench.strategies.rs2 import RS2


def _epoch(strategy, ctx, epoch) -> list[int]:
    batches = strategy.batches(ctx, epoch)
    assert all(1 <= len(b) <= ctx.batch_size for b in batches)
    return [i for b in batches for i in b]


def test_fresh_subset_of_the_declared_fraction_each_epoch(ctx):
    n = len(ctx.examples)
    strategy = RS2.from_params({"fraction": 0.25})
    size = round(0.25 * n)
    epochs = [_epoch(strategy, ctx, e) for e in range(8)]
    for seen in epochs:
        assert len(seen) == size and len(set(seen)) == size
    for a, b in itertools.pairwise(epochs):
        assert set(a) != set(b)
    # without replacement: rounds walk through a permutation; each block of n consecutive draws sees every
    # example exactly once, and the first rounds are disjoint
    stream = [i for e in range(8) for i in strategy.subset(ctx, e).tolist()]
    assert sorted(stream[:n]) == list(range(n))
    assert sorted(stream[n : 2 * n]) == list(range(n))
    assert not set(epochs[0]) & set(epochs[1]) and not set(epochs[1]) & set(epochs[2])
    assert set().union(*map(set, epochs[:4])) == set(range(n))
    # batches are a shuffle of exactly that round's subset
    assert sorted(epochs[3]) == sorted(strategy.subset(ctx, 3).tolist())


def test_with_replacement_each_round_is_independent(ctx):
    n = len(ctx.examples)
    strategy = RS2.from_params({"fraction": 0.5, "replacement": True})
    subsets = [set(_epoch(strategy, ctx, e)) for e in range(4)]
    assert all(len(s) == round(0.5 * n) for s in subsets)
    assert any(subsets[0] & s for s in subsets[1:])  # rounds may overlap
    assert len({frozenset(s) for s in subsets}) == 4


def test_full_fraction_is_a_reshuffle_of_everything(ctx):
    strategy = RS2.from_params({"fraction": 1.0})
    assert sorted(_epoch(strategy, ctx, 0)) == list(range(len(ctx.examples)))
    assert strategy.subset(ctx, 0).tolist() != strategy.subset(ctx, 1).tolist()
    assert np.array_equal(np.sort(strategy.subset(ctx, 1)), np.arange(len(ctx.examples)))
