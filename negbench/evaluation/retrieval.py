"""Evaluation: encode corpus and queries, exact search, pytrec_eval metrics (as BEIR and MTEB compute them); what the
encodings cost in FLOPs (:mod:`negbench.core.compute`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from negbench.config.metrics import evaluate_run, max_cutoff
from negbench.core.compute import FlopMeter, count_tokens, token_flops, watch
from negbench.core.search import encode, exact_topk
from negbench.data.beir import Corpus, Qrels

__all__ = ["EvalResult", "evaluate", "retrieve"]


@dataclass
class EvalResult:
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    seconds: float
    flops: float = 0.0  # the corpus and query encodings (given corpus embeddings: what encoding them costs)


def retrieve(
    model,
    corpus: Corpus,
    queries: dict[str, str],
    qids: list[str],
    k: int,
    *,
    batch_size: int = 128,
    chunk_size: int = 50_000,
    ignore_identical_ids: bool = True,
    corpus_embeddings: torch.Tensor | None = None,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Top-k run {qid: {doc_id: score}}. BEIR drops a document whose id equals the query id."""
    if corpus_embeddings is None:
        corpus_embeddings = encode(model, corpus.texts, kind="document", batch_size=batch_size, progress=progress)
    q_emb = encode(model, [queries[q] for q in qids], kind="query", batch_size=batch_size, progress=progress)
    extra = 1 if ignore_identical_ids else 0
    scores, idx = exact_topk(q_emb, corpus_embeddings, k + extra, chunk_size)
    run: dict[str, dict[str, float]] = {}
    for row, qid in enumerate(qids):
        hits = {}
        for score, doc in zip(scores[row], idx[row], strict=True):
            doc_id = corpus.ids[int(doc)]
            if ignore_identical_ids and doc_id == qid:
                continue
            hits[doc_id] = float(score)
        run[qid] = dict(list(hits.items())[:k])
    return run


def evaluate(
    model,
    corpus: Corpus,
    queries: dict[str, str],
    qrels: Qrels,
    metrics: list[str],
    *,
    batch_size: int = 128,
    chunk_size: int = 50_000,
    ignore_identical_ids: bool = True,
    corpus_embeddings: torch.Tensor | None = None,
    progress: bool = False,
) -> EvalResult:
    """Evaluate ``model`` on the queries of ``qrels``; retrieval depth is max(100, largest cutoff). ``flops``: the
    encodings' FLOPs, those of ``corpus_embeddings`` (encoded elsewhere, e.g. cached) counted as their encoding."""
    start = time.perf_counter()
    qids = sorted(qrels)
    with FlopMeter() as meter:
        run = retrieve(
            model,
            corpus,
            queries,
            qids,
            max(100, max_cutoff(metrics)),
            batch_size=batch_size,
            chunk_size=chunk_size,
            ignore_identical_ids=ignore_identical_ids,
            corpus_embeddings=corpus_embeddings,
            progress=progress,
        )
    means, per_query = evaluate_run(qrels, run, metrics)
    seconds, flops = time.perf_counter() - start, meter.flops
    if corpus_embeddings is not None:  # counted outside the timed block: tokenising is not the evaluation's cost
        flops += token_flops(int(count_tokens(model, corpus.texts, "document").sum()), watch(model))
    return EvalResult(means, per_query, seconds, flops)
