"""ance: refresh re-mines with the model being trained, not the base model, and never after the run's last step."""

from __future__ import annotations

import copy

import pytest
import torch

from negbench.config.suite import ModelConfig, TrainingConfig
from negbench.core.models import load_model
from negbench.core.setup import run_context, sizes_of
from negbench.core.training.loop import train
from negbench.strategies.ance import ANCE


def test_refresh_uses_the_current_model(ctx, tiny_model):
    strategy = ANCE.from_params({"range_max": 10, "refresh_every": 5})
    base = strategy.mine(ctx)
    model = load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))
    ctx.model = model
    assert not strategy.refresh_due(4) and strategy.refresh_due(5)
    fresh = strategy.refresh(ctx, 5)
    expected = ctx.dense_candidates(10 + 32, model)
    for i in range(len(ctx.examples)):
        assert fresh.ids[i].tolist() == expected.ids[i][:10].tolist()
    assert any(a.tolist() != b.tolist() for a, b in zip(base.ids, fresh.ids, strict=True))
    assert strategy.state["refreshed_at"] == [5]


def test_no_refresh_after_the_last_step_and_none_in_the_estimate(ctx, tiny_model):
    """``refresh_due`` runs after optimiser step ``step``; a refresh after the run's last step would be trained on by
    no step. With ``refresh_every = 2`` and 4 steps ance re-mines after step 2 only, and its estimate prices that one
    refresh, exactly what the run measured (before the fix: refreshes after steps 2 and 4, both estimated)."""
    strategy = ANCE.from_params({"range_max": 10, "refresh_every": 2})
    cfg = TrainingConfig(max_steps=4, batch_size=8, lr=1e-3, num_negatives=ctx.num_negatives)
    budget, run = run_context(strategy, ctx.dataset, ctx.examples, ctx.services, cfg, cfg, 0, estimate=True)
    strategy.setup(run)
    assert strategy.refresh_due(2) and not strategy.refresh_due(4)
    model = load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")
    outcome = train(model, run, strategy, cfg, device="cpu", candidates=strategy.mine(run), budget=budget)
    assert outcome.steps == 4 and outcome.refreshes == 1 and strategy.state["refreshed_at"] == [2]
    sizes = ctx.services.token_sizes()
    one = sizes.encode(sizes.corpus + sizes.queries(run.query_ids))  # the corpus and training queries, re-encoded
    assert outcome.refresh_flops == pytest.approx(one, rel=1e-9)
    assert strategy.workload(run, sizes_of(ctx.services)).refresh == pytest.approx(one, rel=1e-9)
    longer = copy.copy(run)
    longer.total_steps = 14  # the scifact run's: refreshes after step 7 only (not 7 and 14)
    every_7 = ANCE.from_params({"refresh_every": 7})
    assert every_7.workload(longer, sizes_of(ctx.services)).refresh == pytest.approx(one, rel=1e-9)


def test_a_run_shorter_than_its_refresh_never_re_mines() -> None:
    """ANCE's default refresh_every (50) in a 25-step run: static dense under ANCE's name, said before training;
    a refresh after the run's last step is none (50 steps), one before it is (51)."""
    assert "never re-mines" in ANCE().unexercised(1, 25) and ANCE().unexercised(1, 50) is not None
    assert ANCE().unexercised(1, 51) is None and ANCE.from_params({"refresh_every": 10}).unexercised(1, 25) is None
