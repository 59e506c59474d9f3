"""rs2: each epoch trains on a fresh random subset of the declared fraction, without replacement across
epochs until every example has been seen."""

from __future__ import annotations

import itertools

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
    assert all(len(s) == round(0.5 * n) // ctx.batch_size * ctx.batch_size for s in subsets)  # full batches
    assert any(subsets[0] & s for s in subsets[1:])  # rounds may overlap
    assert len({frozenset(s) for s in subsets}) == 4


def test_full_fraction_walks_every_example(ctx):
    """fraction 1: each round is the full batches' worth of one permutation walk (the budget's remainder of
    n mod batch_size carries into the next round instead of being dropped)."""
    n = len(ctx.examples)
    strategy = RS2.from_params({"fraction": 1.0})
    size = n // ctx.batch_size * ctx.batch_size
    first, second = _epoch(strategy, ctx, 0), _epoch(strategy, ctx, 1)
    assert len(set(first)) == len(first) == size
    assert set(first) | set(second) == set(range(n))
    assert strategy.subset(ctx, 0).tolist() != strategy.subset(ctx, 1).tolist()


def test_every_drawn_example_is_trained(ctx):
    """The subset is cut to full batches before it is drawn: a 47-example round in batches of 8 used to draw
    47 from the permutation and train 40, so the 7 left over were never seen in that pass."""
    from negbench.config.suite import TrainingConfig
    from negbench.core.budget import budget_for, enforce

    ctx.batch_size = 8
    rs2 = RS2.from_params({"fraction": 0.5})
    budget = budget_for(rs2, len(ctx.examples), TrainingConfig(batch_size=8))
    ctx.steps_per_epoch = budget.steps_per_epoch
    seen: list[int] = []
    for epoch in range(3):
        subset = rs2.subset(ctx, epoch)
        trained = enforce(rs2.batches(ctx, epoch), budget, len(ctx.examples), "rs2", epoch)
        assert len(subset) == budget.examples_per_epoch == sum(map(len, trained))
        assert sorted(i for b in trained for i in b) == sorted(subset.tolist())
        seen += subset.tolist()
    assert len(set(seen[: len(ctx.examples)])) == min(len(ctx.examples), len(seen))  # one pass, no repeats


def test_fills_its_batches_wherever_in_batch_does():
    """99 queries, 8 of them twins of 8 others (same text, other ids), batches of 32: in-batch makes 3 full
    batches of 99 examples; RS2's round draws exactly one batch's worth (32) and a drawn twin pair cannot
    share it. RS2 raised a BudgetError on this data; a drawn example that fits no batch now gives its place
    to an undrawn one."""
    from negbench.config.suite import TrainingConfig
    from negbench.core.batching import random_batches
    from negbench.core.budget import budget_for, enforce
    from negbench.strategies.in_batch import InBatch
    from tests.core.test_batching import assert_no_clash, synthetic_context

    for seed in range(5):
        ctx = synthetic_context([1] * 99, batch_size=32, twins=8, seed=seed)
        n = len(ctx.examples)
        rs2 = RS2.from_params({"fraction": 0.5})
        in_batch = budget_for(InBatch(), n, TrainingConfig(batch_size=32))
        budget = budget_for(rs2, n, TrainingConfig(batch_size=32))
        ctx.steps_per_epoch = budget.steps_per_epoch
        for epoch in range(4):
            assert len(enforce(random_batches(ctx, epoch), in_batch, n, "in-batch", epoch)) == 3
            trained = enforce(rs2.batches(ctx, epoch), budget, n, "rs2", epoch)
            assert len(trained) == budget.steps_per_epoch == 1 and len(trained[0]) == 32
            assert_no_clash(ctx, trained[0])
            drawn = set(rs2.subset(ctx, epoch).tolist())
            assert len(set(trained[0]) - drawn) <= 4  # the draw is kept but for the twins that cannot fit
