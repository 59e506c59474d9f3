"""in-batch: no mined negatives; batches never hold duplicate texts."""

from __future__ import annotations

import dataclasses

from negbench.core.batching import random_batches
from negbench.data.beir import Corpus
from negbench.strategies.in_batch import InBatch


def test_no_mined_negatives(ctx):
    assert InBatch().mine(ctx) is None
    assert InBatch().batches(ctx, 0) is None  # the default no-duplicate sampler


def test_duplicate_texts_never_share_a_batch(ctx):
    # give every document of topic 0 the same text: same text, different ids
    texts = list(ctx.dataset.corpus.texts)
    dup_docs = {e.doc for e in ctx.examples[:12]}
    for d in dup_docs:
        texts[d] = "the very same text"
    ctx.dataset = dataclasses.replace(ctx.dataset, corpus=Corpus(ctx.dataset.corpus.ids, texts))
    for epoch in range(5):
        for batch in random_batches(ctx, epoch):
            positives = [ctx.dataset.corpus.texts[ctx.examples[i].doc] for i in batch]
            assert len(positives) == len(set(positives))
