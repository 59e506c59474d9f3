"""ance: refresh re-mines with the model being trained, not the base model."""

from __future__ import annotations

import torch

from negbench.config.suite import ModelConfig
from negbench.core.models import load_model
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
