"""A plain :class:`LogitView` for strategy tests: ``scale · query @ docs.T``, target the diagonal, nothing masked."""

from __future__ import annotations

import torch

from negbench.strategy import LogitView


def plain_view(
    query: torch.Tensor, docs: torch.Tensor, scale: float, example_ids=None, doc_ids=None, step: int = 0
) -> LogitView:
    batch, n = query.shape[0], docs.shape[0]
    return LogitView(
        query=query,
        docs=docs,
        logits=scale * query @ docs.T,
        target=torch.arange(batch),
        mask=torch.zeros(batch, n, dtype=torch.bool),
        row_weight=torch.ones(batch),
        example_ids=torch.arange(batch) if example_ids is None else torch.tensor(example_ids),
        doc_ids=torch.arange(n) if doc_ids is None else torch.tensor(doc_ids),
        scale=scale,
        step=step,
    )
