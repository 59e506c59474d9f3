"""The dev split's pooled corpus: what dev scoring searches when the evaluation corpus is large.

Dev scoring on the whole evaluation corpus encodes every document each time (every tuning trial, every pruning
epoch, every learning-curve point): at MS MARCO size that is the whole cost of tuning. A pool (TREC's depth-k
pooling) keeps the documents a reasonable retriever ranks high for some dev query — its judged documents, the
top ``depth`` of BM25 and the top ``depth`` of the base (untrained) model — and dev scoring searches only those:
at most ``dev queries × 2 × depth + judged`` documents, whatever the corpus's size.

Metrics on the pool approximate the full corpus's (a trained model may rank high a document that neither pooler
found, which the pool cannot show); ``tests/benchmarks/dev_pool.py`` measures how well they rank trained models.
The test split is always scored on the full evaluation corpus. The pool is built from the evaluation corpus only:
planted false negatives (training-corpus documents past its end) never enter it.

``dev_corpus = "auto"`` pools an evaluation corpus of ``dev_pool_min_docs`` = 100,000 documents or more. Below
that the pool of a typical dev set (100-500 queries: up to 20k-100k documents at depth 100) would be a large share
of the corpus, saving little for a score that is only approximate; above it the corpus dwarfs the pool and encoding
it is most of tuning's cost (how much time it saves: ``tests/benchmarks/dev_pool.py``, ``docs/benchmarks.md``).
BEIR splits cleanly there: SciFact, NFCorpus, ArguAna, SCIDOCS and FiQA (<= 57k documents) stay full;
TREC-COVID (171k), Touché, Quora, NQ, HotpotQA, FEVER and MS MARCO (8.8M) are pooled.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from negbench.core.mining import MiningServices
from negbench.data.beir import Corpus
from negbench.data.dataset import RetrievalDataset

__all__ = ["FULL", "POOLED", "DevCorpus", "DevPool", "build_dev_pool", "dev_corpus_mode", "judged_indices"]

FULL, POOLED = "full", "pooled"

# a pool is keyed by the code that builds it too: this module's here, mining's and search's by the services' cache
_CODE = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:10]


def dev_corpus_mode(mode: Literal["auto", "full", "pooled"], corpus_docs: int, min_docs: int) -> str:
    """What dev scoring searches (``[evaluation] dev_corpus``): "full" or "pooled"; "auto" pools an evaluation
    corpus of ``min_docs`` documents or more (``dev_pool_min_docs``)."""
    if mode == "auto":
        return POOLED if corpus_docs >= min_docs else FULL
    return mode


@dataclass(frozen=True)
class DevPool:
    """The pooled documents (evaluation-corpus indices, ascending) and what brought them in."""

    indices: np.ndarray
    queries: int  # dev queries pooled for
    depth: int
    judged: int  # judged documents of the dev queries (in the evaluation corpus)
    bm25: int  # distinct documents in BM25's top-depth lists
    dense: int  # distinct documents in the base model's top-depth lists
    corpus_docs: int  # the evaluation corpus

    def __len__(self) -> int:
        return len(self.indices)

    def corpus(self, eval_corpus: Corpus) -> Corpus:
        """The pooled documents as a corpus (ids and texts of ``eval_corpus``, in its order)."""
        return Corpus([eval_corpus.ids[i] for i in self.indices], [eval_corpus.texts[i] for i in self.indices])

    def describe(self) -> str:
        share = len(self) / max(self.corpus_docs, 1)
        return (
            f"{len(self):,} of {self.corpus_docs:,} documents ({share:.1%}) for {self.queries:,} dev queries: "
            f"{self.judged:,} judged, {self.bm25:,} in BM25's top {self.depth}, {self.dense:,} in the base model's "
            f"top {self.depth}"
        )


@dataclass(frozen=True)
class DevCorpus:
    """What dev scoring searches: the evaluation corpus or its pool, with the row's ``dev_corpus`` label."""

    corpus: Corpus
    label: str  # "full" or "pooled:<documents>"
    pool: DevPool | None = None

    @property
    def indices(self) -> np.ndarray:
        """The documents searched, as evaluation-corpus indices (which are the training corpus's too)."""
        return np.arange(len(self.corpus), dtype=np.int64) if self.pool is None else self.pool.indices

    @classmethod
    def full(cls, eval_corpus: Corpus) -> DevCorpus:
        return cls(eval_corpus, FULL)

    @classmethod
    def pooled(cls, pool: DevPool, eval_corpus: Corpus) -> DevCorpus:
        return cls(pool.corpus(eval_corpus), f"{POOLED}:{len(pool)}", pool)


def build_dev_pool(dataset: RetrievalDataset, services: MiningServices, depth: int) -> DevPool:
    """The dev queries' judged documents ∪ the top ``depth`` of BM25 and of ``services``' base model per dev query,
    over ``dataset.eval_corpus``; built once per dataset × base model × dev split × depth and cached on disk (and
    in memory) by ``services``, like a mining artefact (its top-k lists and embeddings are shared with mining)."""
    qids = sorted(dataset.dev)
    n = len(dataset.eval_corpus)
    digest = hashlib.sha256("\0".join(qids).encode()).hexdigest()[:12]
    name = f"dev-pool-{services.model_fingerprint}-{depth}-{n}-{digest}-{_CODE}"
    # the services search the training corpus, whose planted copies (past n) are dropped: asking for that many
    # more (up to depth) keeps the evaluation corpus's top depth whole unless a query's list holds more of them
    k = depth + min(len(dataset.corpus) - n, depth)

    def compute() -> dict:
        judged = set(judged_indices(dataset).tolist())
        bm25 = _top(services.bm25_topk(qids, k)[1], n, depth)
        dense = _top(services.dense_topk(qids, k)[1], n, depth)
        pooled = np.array(sorted(judged | bm25 | dense), dtype=np.int64)
        return {"indices": pooled, "judged": len(judged), "bm25": len(bm25), "dense": len(dense)}

    if not qids:
        return DevPool(np.zeros(0, dtype=np.int64), 0, depth, 0, 0, 0, n)
    value = services.cached(name, compute)
    return DevPool(value["indices"], len(qids), depth, value["judged"], value["bm25"], value["dense"], n)


def judged_indices(dataset: RetrievalDataset) -> np.ndarray:
    """The evaluation-corpus indices (ascending) of the documents judged for some dev query: in every pool, so the
    smallest a pool can be."""
    index = dataset.eval_corpus.index
    return np.array(sorted({index[d] for q in dataset.dev for d in dataset.dev[q] if d in index}), dtype=np.int64)


def _top(idx: np.ndarray, n: int, depth: int) -> set[int]:
    """The first ``depth`` indices below ``n`` (evaluation-corpus documents) of each row of a top-k list."""
    out: set[int] = set()
    for row in np.asarray(idx):
        out.update(int(i) for i in row[row < n][:depth])
    return out
