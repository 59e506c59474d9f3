"""Negative diagnostics of a result row: score gap, and the planted false negatives a strategy picked.

* ``neg_score_gap``: mean base-model s(q, d⁺) − s(q, d⁻) over the sampled negatives (how hard they are);
* ``planted_fn_share``: share of the sampled negatives (epoch 0) that are planted copies of a labelled
  positive of the example's query (:mod:`negbench.data.false_negatives`) — the false negatives a miner picks
  ("Hard Negatives or False Negatives", Cai et al., 2022; NV-Retriever, Moreira et al., 2024);
* ``planted_fn_inbatch_share``: the same share over every negative column the loss saw during training
  (other rows' positives and negatives included), counted by :class:`PlantedInBatchCounter`.

Labelled positives are never negatives (the harness removes them), so a "labelled positive share" is 0 by
construction and is not reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from negbench.core.context import Context
from negbench.core.strategy import LogitView, Negatives
from negbench.data.dataset import RetrievalDataset

__all__ = [
    "PlantedInBatchCounter",
    "planted_copies",
    "planted_fn_share",
    "planting_columns",
    "sampled_negative_ids",
    "score_gap",
]


def planted_copies(ctx: Context, i: int) -> set[int]:
    """Corpus indices of planted copies of any labelled positive of example ``i``'s query (its false negatives)."""
    by_source = ctx.dataset.planted_by_source
    if not by_source:
        return set()
    return {p for doc in ctx.forbidden(i) for p in by_source.get(doc, ())}


def score_gap(ctx: Context, negatives: Negatives) -> float | None:
    """Mean base-model score gap s(q, d⁺) − s(q, d⁻) over every (example, negative); None without negatives."""
    if ctx.num_negatives == 0 or not any(len(row) for row in negatives.ids):
        return None
    q = ctx.services.query_embeddings(ctx.query_ids)
    d = ctx.document_embeddings()
    neg = torch.as_tensor(np.stack(negatives.ids))  # (n, K)
    qrows = q[torch.as_tensor(ctx.example_query)]
    pos_scores = (qrows * d[torch.as_tensor(ctx.positive_docs)]).sum(-1)
    neg_scores = torch.einsum("nd,nkd->nk", qrows, d[neg])
    return float((pos_scores[:, None] - neg_scores).mean())


def planted_fn_share(ctx: Context, negatives: Negatives) -> float | None:
    """Share of the sampled negatives that are planted copies of their example's positive(s); None when
    nothing is planted or no negative was sampled."""
    total = sum(len(row) for row in negatives.ids)
    if not ctx.dataset.planted or total == 0:
        return None
    hits = sum(
        int(d) in copies for i, row in enumerate(negatives.ids) if (copies := planted_copies(ctx, i)) for d in row
    )
    return hits / total


def sampled_negative_ids(ctx: Context, negatives: Negatives) -> dict[str, list[str]]:
    """The sampled negatives in long form (``query_id``, ``positive_id``, ``doc_id``: corpus ids), one entry per
    (example, negative), for the negatives store and :func:`negbench.report.overlap.negative_overlap`; a generated
    text's ``doc_id`` is :meth:`~negbench.core.context.Context.doc_id`'s digest."""
    ids = ctx.dataset.corpus.ids
    out: dict[str, list[str]] = {"query_id": [], "positive_id": [], "doc_id": []}
    for example, row in zip(ctx.examples, negatives.ids, strict=True):
        for doc in row:
            out["query_id"].append(example.query_id)
            out["positive_id"].append(ids[example.doc])
            out["doc_id"].append(ctx.doc_id(int(doc)))
    return out


def planting_columns(dataset: RetrievalDataset) -> dict[str, Any]:
    """Row columns that say what was planted, so a report can pair runs with and without planting."""
    cfg = dataset.planting
    return {
        "planted_fn_rate": cfg.rate if cfg else 0.0,
        "planted_fn_kind": cfg.kind if cfg else None,
        "planted_docs": len(dataset.planted),
        "base_dataset_fingerprint": dataset.base_fingerprint,
    }


class PlantedInBatchCounter:
    """Counts, over training, the negative columns the loss saw and those that are planted copies of the row's
    positive(s). Called by the loss with each logit view after the strategy's ``on_logits`` (so columns a
    strategy masked are not counted; extra logits without document ids are not counted either)."""

    def __init__(self, copies_of: Callable[[int], set[int]]) -> None:
        self.copies_of = copies_of
        self.hits = 0
        self.negatives = 0

    def __call__(self, view: LogitView) -> None:
        active = view.negative_mask().detach().cpu()
        self.negatives += int(active.sum())
        doc_ids = view.doc_ids.detach().cpu()
        for row, example in enumerate(view.example_ids.tolist()):
            copies = self.copies_of(int(example))
            if copies:
                planted = torch.isin(doc_ids, torch.tensor(sorted(copies), dtype=doc_ids.dtype))
                self.hits += int((planted & active[row]).sum())

    @property
    def share(self) -> float | None:
        return self.hits / self.negatives if self.negatives else None
