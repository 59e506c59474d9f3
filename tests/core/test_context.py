"""Context: forbidden negatives follow the query text, so twins (same text, other ids) share their positives."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from negbench.config.suite import DatasetConfig
from negbench.core.context import Context
from negbench.core.loss import InfoNCELoss
from negbench.data.beir import Corpus
from negbench.data.dataset import RetrievalDataset, load_dataset
from negbench.data.splits import normalise_query

TWIN = "Adult tissue-resident macrophages are seeded before birth."


class _FixedRetrieval:
    """Mining services whose BM25 and dense top-k rank documents 0, 1, 2, … for every query."""

    def bm25_topk(self, query_ids, depth):
        idx = np.tile(np.arange(depth), (len(query_ids), 1))
        return -idx.astype(np.float32), idx

    def dense_topk(self, query_ids, depth, model=None):
        return self.bm25_topk(query_ids, depth)


def _twin_context() -> Context:
    """Twins ``a``/``b`` (same text up to whitespace) with different positives, ``b`` also judged in dev;
    ``d`` is a dev-only twin of ``a``; ``c`` is an ordinary query."""
    corpus = Corpus([f"d{i}" for i in range(12)], [f"document {i}" for i in range(12)])
    queries = {
        "a": TWIN,
        "b": "  Adult tissue-resident macrophages\tare seeded before birth. ",
        "c": "Other claim.",
        "d": TWIN,
    }
    train = {"a": {"d0": 1}, "b": {"d1": 1}, "c": {"d2": 1, "d3": 0}}
    dev = {"d": {"d4": 1}}
    dataset = RetrievalDataset(
        name="twins",
        root=None,
        corpus=corpus,
        queries=queries,
        split_qrels={"train": train, "dev": dev},
        fingerprint="twins",
        warnings=Counter(),
    )
    return Context(
        dataset=dataset,
        examples=dataset.training_examples(),
        services=_FixedRetrieval(),  # type: ignore[arg-type]
        num_negatives=3,
        batch_size=3,
        epochs=1,
        seed=0,
    )


def _example(ctx: Context, query_id: str) -> int:
    return next(i for i, e in enumerate(ctx.examples) if e.query_id == query_id)


def test_twins_forbid_each_others_positives():
    ctx = _twin_context()
    a, b, c = (_example(ctx, q) for q in "abc")
    assert ctx.forbidden(a) == {0, 1, 4} and ctx.forbidden(b) == {0, 1, 4}  # both twins' and the dev twin's
    assert ctx.forbidden(c) == {2}  # judged non-relevant (score 0) is not a positive
    assert ctx.forbidden(a) is ctx.forbidden(a)  # built once per example


def test_twin_positive_is_removed_from_candidates():
    ctx = _twin_context()
    a, b = _example(ctx, "a"), _example(ctx, "b")
    ids, scores = ctx.exclude_positives(a, np.array([1, 5, 0, 6, 4]), np.array([0.9, 0.8, 0.7, 0.6, 0.5]))
    assert ids.tolist() == [5, 6] and scores.tolist() == pytest.approx([0.8, 0.6])
    for candidates in (ctx.bm25_candidates(8), ctx.dense_candidates(8)):
        assert candidates.ids[a].tolist() == [2, 3, 5, 6, 7]
        assert candidates.ids[b].tolist() == [2, 3, 5, 6, 7]
    for epoch in range(20):
        assert not set(ctx.fill_random(b, np.array([0, 1]), epoch).tolist()) & {0, 1, 4}


def test_in_batch_mask_hides_a_twins_positive():
    ctx = _twin_context()
    a, b, c = (_example(ctx, q) for q in "abc")
    loss = InfoNCELoss(model=None, scale=20.0, forbidden_of=ctx.forbidden)
    # columns: the positives of a, b, c, then one negative each (a's negative is its twin's positive)
    mask = loss.known_positive_mask([a, b, c], torch.tensor([0, 1, 2, 1, 5, 6]))
    assert mask[0].tolist() == [False, True, False, True, False, False]
    assert mask[1].tolist() == [True, False, False, True, False, False]
    assert mask[2].tolist() == [False, False, False, False, False, False]


def test_scifact_twins_share_their_forbidden_sets(scifact):
    dataset = load_dataset(DatasetConfig(source=str(scifact)))
    ctx = Context(
        dataset=dataset,
        examples=dataset.training_examples(),
        services=None,  # type: ignore[arg-type]
        num_negatives=1,
        batch_size=8,
        epochs=1,
        seed=0,
    )
    by_text: dict[str, list[int]] = {}
    for i, e in enumerate(ctx.examples):
        by_text.setdefault(normalise_query(e.query), []).append(i)
    twin_groups = [rows for rows in by_text.values() if len({ctx.examples[i].query_id for i in rows}) > 1]
    assert twin_groups  # SciFact's train split has twins (e.g. ids 89/90 with different positives)
    for rows in twin_groups:
        union = set().union(*(dataset.positives[ctx.examples[i].query_id] for i in rows))
        assert all(ctx.forbidden(i) == union for i in rows)
