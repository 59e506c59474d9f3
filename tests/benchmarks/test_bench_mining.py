"""Mining throughput: BM25 (bm25s) and dense top-k, on the toy corpus and a 10k-document synthetic corpus.

Each round builds fresh :class:`MiningServices` over an empty cache directory, so the on-disk and in-memory
caches never serve the answer: the benchmark measures indexing + retrieval (BM25) or encoding + search.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch

from negbench.config.suite import DatasetConfig, ModelConfig
from negbench.core.mining import MiningServices
from negbench.core.models import load_model, model_fingerprint
from negbench.core.search import exact_topk
from negbench.data.dataset import load_dataset

K = 50


def fresh_services(dataset, model_dir: Path | None = None) -> MiningServices:
    cache = Path(tempfile.mkdtemp(prefix="negbench-bench-"))
    if model_dir is None:
        return MiningServices(dataset, lambda: None, "no-model", cache)
    cfg = ModelConfig(spec=str(model_dir), max_seq_length=32, batch_size=64)
    return MiningServices(
        dataset, lambda: load_model(cfg, "cpu"), model_fingerprint(str(model_dir), 32), cache, batch_size=64
    )


def test_bm25_toy(benchmark, toy_data) -> None:
    dataset = load_dataset(DatasetConfig(source=str(toy_data)))
    qids = sorted(dataset.train)

    def setup():
        return (fresh_services(dataset),), {}

    _scores, idx = benchmark.pedantic(lambda s: s.bm25_topk(qids, K), setup=setup, rounds=10)
    assert idx.shape == (len(qids), min(K, len(dataset.corpus)))


@pytest.mark.parametrize("n_queries", [500])
def test_bm25_large(benchmark, large_dataset, n_queries: int) -> None:
    qids = sorted(large_dataset.train)[:n_queries]

    def setup():
        return (fresh_services(large_dataset),), {}

    _scores, idx = benchmark.pedantic(lambda s: s.bm25_topk(qids, K), setup=setup, rounds=3)
    benchmark.extra_info.update(corpus=len(large_dataset.corpus), queries=len(qids))
    assert idx.shape == (len(qids), K)


def test_dense_toy_with_encoding(benchmark, toy_data, tiny_model) -> None:
    """Encode corpus and queries with the tiny encoder, then exact top-k (what a cold dense miner does)."""
    dataset = load_dataset(DatasetConfig(source=str(toy_data)))
    qids = sorted(dataset.train)
    services = fresh_services(dataset, tiny_model)
    model = services.base_model  # load once; time encoding + search only

    def setup():
        s = fresh_services(dataset, tiny_model)
        s._base_model = model
        return (s,), {}

    _scores, idx = benchmark.pedantic(lambda s: s.dense_topk(qids, K), setup=setup, rounds=5)
    assert idx.shape[0] == len(qids)


@pytest.mark.parametrize("n_docs", [10_000, 100_000])
def test_dense_search_large(benchmark, n_docs: int) -> None:
    """Exact top-k of 1,000 queries over ``n_docs`` 384-d embeddings (MiniLM's width), chunked."""
    gen = torch.Generator().manual_seed(0)
    queries = torch.nn.functional.normalize(torch.randn(1000, 384, generator=gen), dim=-1)
    docs = torch.nn.functional.normalize(torch.randn(n_docs, 384, generator=gen), dim=-1)
    _scores, idx = benchmark.pedantic(exact_topk, args=(queries, docs, 100), kwargs={"chunk_size": 50_000}, rounds=3)
    benchmark.extra_info.update(docs=n_docs, queries=1000, k=100)
    assert idx.shape == (1000, 100)
