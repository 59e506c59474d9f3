"""The training loop: determinism under a seed, batches without duplicates, refresh wiring."""

from __future__ import annotations

import torch

from negbench.config import ModelConfig, TrainingConfig
from negbench.models import load_model
from negbench.strategy import Negatives, Strategy
from negbench.training import random_batches, train


def test_random_batches_never_repeat_a_query_or_positive(ctx):
    for epoch in range(3):
        batches = random_batches(ctx, epoch)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(len(ctx.examples)))
        for batch in batches:
            assert len({ctx.examples[i].query_id for i in batch}) == len(batch)
            assert len({ctx.examples[i].doc for i in batch}) == len(batch)
    assert random_batches(ctx, 0) != random_batches(ctx, 1)


def _train(ctx, tiny_model, strategy, candidates=None, steps=3):
    model = load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")
    cfg = TrainingConfig(max_steps=steps, batch_size=8, lr=1e-3, num_negatives=ctx.num_negatives)
    outcome = train(model, ctx, strategy, cfg, device="cpu", candidates=candidates)
    return model, outcome


def test_same_seed_same_weights(ctx, tiny_model):
    from negbench.strategies.random_negatives import RandomNegatives

    a, _ = _train(ctx, tiny_model, RandomNegatives(), RandomNegatives().mine(ctx))
    b, _ = _train(ctx, tiny_model, RandomNegatives(), RandomNegatives().mine(ctx))
    for x, y in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(x, y)


class CountingRefresh(Strategy):
    name = "counting"

    def mine(self, ctx):
        return Negatives([ctx.fill_random(i, [], 0) for i in range(len(ctx.examples))])

    def refresh_due(self, step):
        return step % 2 == 0

    def refresh(self, ctx, step):
        self.state.setdefault("steps", []).append(step)
        assert ctx.model is not None and not ctx.model.training  # refresh encodes in eval mode
        return Negatives([ctx.fill_random(i, [], 100 + step) for i in range(len(ctx.examples))])


def test_refresh_runs_on_schedule_and_swaps_negatives(ctx, tiny_model):
    strategy = CountingRefresh()
    _, outcome = _train(ctx, tiny_model, strategy, strategy.mine(ctx), steps=4)
    assert strategy.state["steps"] == [2, 4]
    assert outcome.refreshes == 2 and outcome.steps == 4
    assert outcome.examples_seen == 4 * 8
