"""The shared InfoNCE loss (forward + backward) behind each registered strategy's ``on_logits`` hook.

Views are synthetic: B queries, B positives and B·K negatives of dimension 384. Strategies that cannot
run on a bare view (they need ``setup`` with services, e.g. a guide model) are skipped with the reason.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from negbench.core.loss import info_nce
from negbench.core.registry import registry
from negbench.core.strategy import LogitView
from tests.strategies.views import plain_view

B, K, DIM, SCALE = 64, 3, 384, 20.0


def make_view(query: torch.Tensor, docs: torch.Tensor, step: int = 0) -> LogitView:
    return plain_view(F.normalize(query, dim=-1), F.normalize(docs, dim=-1), SCALE, step=step)


@pytest.mark.parametrize("name", registry.names())
def test_loss_with_on_logits(benchmark, name: str) -> None:
    entry = registry.load(name)
    if entry.cls is None:
        pytest.skip(f"{name}: broken plugin: {entry.error}")
    try:
        strategy = entry.cls.from_params({})
    except Exception as exc:
        pytest.skip(f"{name}: needs parameters: {exc}")
    gen = torch.Generator().manual_seed(0)
    query = torch.randn(B, DIM, generator=gen, requires_grad=True)
    docs = torch.randn(B * (1 + K), DIM, generator=gen, requires_grad=True)
    try:
        info_nce(strategy.on_logits(make_view(query, docs))).backward()
    except Exception as exc:
        pytest.skip(f"{name}: on_logits needs setup(ctx): {type(exc).__name__}: {exc}")

    def step() -> float:
        query.grad = docs.grad = None
        loss = info_nce(strategy.on_logits(make_view(query, docs)))
        loss.backward()
        return loss.detach().item()

    loss = benchmark(step)
    benchmark.extra_info.update(batch=B, negatives=K, dim=DIM)
    assert torch.isfinite(torch.tensor(loss))
