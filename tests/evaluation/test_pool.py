"""The dev split's pooled corpus: judged documents ∪ BM25's and the base model's top-k, built once, never planted."""

from __future__ import annotations

import numpy as np
import pytest

from negbench.config.suite import DatasetConfig, FalseNegatives
from negbench.data.dataset import load_dataset
from negbench.evaluation.pool import FULL, POOLED, DevCorpus, build_dev_pool, dev_corpus_mode
from negbench.testing import make_context


@pytest.fixture
def services(tmp_path, toy_data, tiny_model):
    return make_context(toy_data, tiny_model, tmp_path / "cache").services


def test_the_pool_holds_every_judged_dev_document_and_both_poolers_top_k(services):
    dataset = services.dataset
    qids = sorted(dataset.dev)
    assert qids  # the toy dataset carves a dev split
    bm25 = set(services.bm25_topk(qids, 3)[1].ravel().tolist())
    dense = set(services.dense_topk(qids, 3)[1].ravel().tolist())
    # a judged document that neither pooler ranks in its top 3 (each toy query's own document is BM25's first)
    unfound = next(i for i in range(len(dataset.eval_corpus)) if i not in bm25 | dense)
    dataset.dev[qids[0]][dataset.eval_corpus.ids[unfound]] = 1
    pool = build_dev_pool(dataset, services, depth=3)
    pooled = set(pool.indices.tolist())
    judged = {dataset.eval_corpus.index[d] for q in qids for d in dataset.dev[q]}
    assert unfound in pooled
    assert judged <= pooled and bm25 <= pooled and dense <= pooled
    assert bm25 - judged and dense - judged - bm25  # each pooler brings documents of its own here
    assert pooled == judged | bm25 | dense  # and nothing else
    assert (pool.judged, pool.bm25, pool.dense, pool.queries) == (len(judged), len(bm25), len(dense), len(qids))
    assert list(pool.indices) == sorted(pooled) and len(pool) < len(dataset.eval_corpus)
    corpus = DevCorpus.pooled(pool, dataset.eval_corpus)
    assert corpus.label == f"pooled:{len(pool)}"
    assert corpus.corpus.ids == [dataset.eval_corpus.ids[i] for i in pool.indices]
    assert corpus.corpus.texts == [dataset.eval_corpus.texts[i] for i in pool.indices]
    assert f"{len(pool):,} of {len(dataset.eval_corpus):,} documents" in pool.describe()


def test_the_pool_is_built_once_then_read_from_the_cache(tmp_path, toy_data, tiny_model, services, monkeypatch):
    first = build_dev_pool(services.dataset, services, depth=3)

    def no_search(*args, **kwargs):
        raise AssertionError("the pool was searched again instead of read from its cache")

    again = make_context(toy_data, tiny_model, tmp_path / "cache").services  # another job's services: a disk hit
    for svc in (services, again):
        monkeypatch.setattr(svc, "bm25_topk", no_search)
        monkeypatch.setattr(svc, "dense_topk", no_search)
    for svc in (services, again):  # memory hit, then disk hit
        cached = build_dev_pool(svc.dataset, svc, depth=3)
        assert np.array_equal(cached.indices, first.indices) and cached.judged == first.judged
    assert again.encode_calls == 0
    with pytest.raises(AssertionError, match="searched again"):  # another depth is another pool
        build_dev_pool(again.dataset, again, depth=4)


def test_planted_false_negatives_never_enter_the_pool(tmp_path, toy_data, tiny_model):
    from negbench.config.suite import ModelConfig
    from negbench.core.mining import MiningServices
    from negbench.core.models import load_model, model_fingerprint

    dataset = load_dataset(DatasetConfig(source=str(toy_data), false_negatives=FalseNegatives(rate=0.5)))
    n = len(dataset.eval_corpus)
    assert dataset.planted and len(dataset.corpus) > n
    cfg = ModelConfig(spec=str(tiny_model), max_seq_length=32)
    services = MiningServices(
        dataset, lambda: load_model(cfg, "cpu"), model_fingerprint(str(tiny_model), 32), tmp_path / "cache"
    )
    # deep enough that both poolers rank every document, planted copies included: only the evaluation corpus stays
    pool = build_dev_pool(dataset, services, depth=len(dataset.corpus))
    assert pool.indices.tolist() == list(range(n)) and pool.corpus_docs == n
    assert pool.bm25 == pool.dense == n


def test_auto_pools_from_the_threshold_up():
    assert dev_corpus_mode("auto", 100_000, 100_000) == POOLED
    assert dev_corpus_mode("auto", 99_999, 100_000) == FULL
    assert dev_corpus_mode("full", 10**7, 100_000) == FULL
    assert dev_corpus_mode("pooled", 10, 100_000) == POOLED
