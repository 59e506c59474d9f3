"""What ``negbench plan`` computes per job: every epoch composed as training composes it, and the coverage."""

from __future__ import annotations

from negbench.config.suite import TrainingConfig
from negbench.core.budget import budget_for
from negbench.core.setup import apply_budget
from negbench.core.strategy import Strategy
from negbench.run.dry_run import compose_run, coverage_note
from tests.core.test_batching import synthetic_context


def _plan(ctx, epochs: int):
    strategy = Strategy()
    training = TrainingConfig(batch_size=ctx.batch_size, epochs=epochs)
    budget = budget_for(strategy, len(ctx.examples), training)
    apply_budget(ctx, training, budget)
    _, coverage = compose_run(ctx, strategy, budget)
    return coverage, coverage_note(ctx, budget, coverage)


def test_plan_says_how_many_examples_each_epoch_leaves_out():
    coverage, note = _plan(synthetic_context([9] + [1] * 91, batch_size=8), epochs=20)
    assert coverage.share == coverage.best == 0.95
    assert note == "4 of 100 examples left out per epoch (100 is not a multiple of batch_size 8)"
    coverage, note = _plan(synthetic_context([9] + [1] * 87, batch_size=8), epochs=20)
    assert coverage.share == 1.0 and note is None


def test_plan_says_when_a_query_has_more_positives_than_an_epoch_has_batches():
    """13 positives, 12 batches: one of them sits out every epoch (the 4 of the remainder allow it), so some
    example misses more epochs than the remainder alone requires."""
    coverage, note = _plan(synthetic_context([13] + [1] * 87, batch_size=8), epochs=10)
    assert coverage.share < coverage.best == 0.9
    assert "a query has 13 examples, more than the 12 batches of an epoch" in note
    assert "the best this budget allows is 0.90" in note
