"""Search and encoding hold bounded memory, however large the corpus and the query set (issue 28, scaling)."""

from __future__ import annotations

import weakref

import numpy as np
import torch

from negbench.config.suite import ModelConfig
from negbench.core import search
from negbench.core.models import load_model
from negbench.core.search import encode, exact_topk


def _data(n_q: int, n_d: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n_q, 16, generator=g), torch.randn(n_d, 16, generator=g)


def test_many_queries_are_searched_in_blocks_of_at_most_max_block_scores(monkeypatch):
    """With many queries (every training query of a large dataset), a queries × chunk block would grow without
    bound (500k queries × 50k documents is 100 GB of float32): no block of scores may exceed ``max_block``."""
    q, d = _data(53, 301)
    seen: list[int] = []
    topk = torch.topk

    def spy(block, *args, **kwargs):
        seen.append(block.numel())
        return topk(block, *args, **kwargs)

    monkeypatch.setattr(search.torch, "topk", spy)
    scores, idx = exact_topk(q, d, 5, chunk_size=100, max_block=1_000)
    assert seen and max(seen) <= 1_000
    full = (q @ d.T).numpy()
    np.testing.assert_array_equal(idx, np.argsort(-full, axis=1)[:, :5])
    np.testing.assert_allclose(scores, np.sort(full, axis=1)[:, ::-1][:, :5], rtol=1e-5)


def test_a_block_has_at_least_one_query_and_the_default_keeps_a_thousand_queries_together(monkeypatch):
    q, d = _data(4, 50)
    rows: list[int] = []
    topk = torch.topk

    def spy(block, *args, **kwargs):
        rows.append(block.shape[0])
        return topk(block, *args, **kwargs)

    monkeypatch.setattr(search.torch, "topk", spy)
    _, idx = exact_topk(q, d, 3, chunk_size=50, max_block=10)  # a chunk is over the limit: one query at a time
    assert set(rows) == {1} and idx.shape == (4, 3)
    assert search.MAX_BLOCK // 50_000 >= 1_000  # evaluation's 1,000 test queries: one block per chunk, as before


def test_a_chunk_s_block_is_freed_before_the_next_one_is_computed(monkeypatch):
    """At 1,000 queries × 50,000 documents a block is 200 MB: two alive at once (the old one still named while the
    next product is computed) doubled the search's peak."""
    q, d = _data(6, 90)
    blocks: list[weakref.ref] = []
    alive: list[bool] = []
    matmul = torch.Tensor.__matmul__

    def spy(a, b):
        alive.extend(ref() is not None for ref in blocks)
        out = matmul(a, b)
        blocks.append(weakref.ref(out))
        return out

    monkeypatch.setattr(torch.Tensor, "__matmul__", spy)
    _, idx = exact_topk(q, d, 4, chunk_size=20)
    assert len(blocks) == 5 and not any(alive)
    full = matmul(q, d.T).numpy()
    np.testing.assert_array_equal(idx, np.argsort(-full, axis=1)[:, :4])


class CountingModel:
    """Embeds text 'tN' as a unit vector that depends on N; records how many texts each call got."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def encode_document(self, texts, **kwargs):
        self.calls.append(len(texts))
        n = torch.tensor([float(t[1:]) for t in texts])
        return torch.nn.functional.normalize(torch.stack([torch.cos(n), torch.sin(n), n / 100], dim=1), dim=-1)

    encode_query = encode_document


def test_a_large_corpus_is_encoded_a_chunk_at_a_time_into_one_tensor():
    """One sentence-transformers call over every document kept a tensor object per document (650 bytes each) and
    stacked them into a second copy of the embeddings."""
    texts = [f"t{i}" for i in range(25)]
    model = CountingModel()
    chunked = encode(model, texts, kind="document", chunk=10)
    assert model.calls == [10, 10, 5]
    whole = encode(CountingModel(), texts, kind="document")
    torch.testing.assert_close(chunked, whole, rtol=0, atol=0)
    assert chunked.dtype == torch.float32 and chunked.shape == (25, 3)


def test_chunked_encoding_matches_one_call_with_a_real_encoder(tiny_model):
    model = load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")
    texts = [f"protein kinase item0x{i} " * (1 + i % 5) for i in range(40)]
    chunked = encode(model, texts, kind="document", batch_size=8, chunk=7)
    whole = encode(model, texts, kind="document", batch_size=8)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)


def test_k_wider_than_a_chunk_is_exact():
    """``[evaluation] corpus_chunk_size`` below the deepest cutoff (recall@100 over chunks of 50 documents): the first
    chunks hold fewer than k documents between them; the merge keeps them all until k are seen (it raised before)."""
    q, d = _data(5, 23)
    full = (q @ d.T).numpy()
    for k, chunk in ((10, 4), (23, 4), (30, 7), (9, 1)):
        scores, idx = exact_topk(q, d, k, chunk_size=chunk)
        width = min(k, d.shape[0])
        np.testing.assert_array_equal(idx, np.argsort(-full, axis=1)[:, :width])
        np.testing.assert_allclose(scores, np.sort(full, axis=1)[:, ::-1][:, :width], rtol=1e-5, atol=1e-5)
