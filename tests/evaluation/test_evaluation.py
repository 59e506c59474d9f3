"""Exact search and evaluation."""

from __future__ import annotations

import numpy as np
import torch

from negbench.core.search import exact_topk
from negbench.data.beir import Corpus
from negbench.evaluation.retrieval import evaluate, retrieve


def test_chunked_topk_equals_full_sort():
    g = torch.Generator().manual_seed(0)
    q, d = torch.randn(7, 16, generator=g), torch.randn(103, 16, generator=g)
    scores, idx = exact_topk(q, d, 10, chunk_size=17)
    full = (q @ d.T).numpy()
    np.testing.assert_array_equal(idx, np.argsort(-full, axis=1)[:, :10])
    np.testing.assert_allclose(scores, np.sort(full, axis=1)[:, ::-1][:, :10], rtol=1e-5)


class FixedModel:
    """Encodes text 'vN' as one-hot-ish vector N (queries and documents alike)."""

    def _enc(self, texts, **kw):
        out = torch.zeros(len(texts), 8)
        for i, t in enumerate(texts):
            out[i, int(t[1:]) % 8] = 1.0
            out[i, 7] += 0.1
        return torch.nn.functional.normalize(out, dim=-1)

    encode_query = encode_document = _enc


def test_identical_ids_dropped_like_beir():
    corpus = Corpus(["q1", "d1", "d2"], ["v1", "v1", "v2"])
    run = retrieve(FixedModel(), corpus, {"q1": "v1"}, ["q1"], 2)
    assert "q1" not in run["q1"] and next(iter(run["q1"])) == "d1"
    run = retrieve(FixedModel(), corpus, {"q1": "v1"}, ["q1"], 2, ignore_identical_ids=False)
    assert "q1" in run["q1"]


def test_evaluate_perfect_model():
    corpus = Corpus([f"d{i}" for i in range(6)], [f"v{i}" for i in range(6)])
    queries = {f"q{i}": f"v{i}" for i in range(6)}
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(6)}
    result = evaluate(FixedModel(), corpus, queries, qrels, ["ndcg@10", "mrr@10"])
    assert result.metrics == {"ndcg@10": 1.0, "mrr@10": 1.0}
    assert set(result.per_query["ndcg@10"]) == set(qrels)
