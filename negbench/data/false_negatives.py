"""Planted false negatives: unlabelled copies of training positives, added to the training corpus only.

A controlled experiment for the false-negative problem of hard-negative mining: a miner that ranks close to
the positive also finds documents that answer the query but are not labelled ("Hard Negatives or False
Negatives: Correcting Pooling Bias in Training Neural Ranking Models", Cai et al., 2022; NV-Retriever,
Moreira et al., 2024, whose positive-aware mining exists to drop them). Real false negatives are unknown;
planted ones are known, so the share a strategy picks is measurable (:mod:`negbench.core.probes.negatives`).

For a seeded ``rate`` share of the training queries (hash order, so the choice does not depend on dict
order), one of the query's positives is copied under a fresh id ``planted:<doc id>:<k>``: exactly
(``duplicate``) or perturbed (``near-duplicate``: a short sentence dropped and two swapped, a few words
removed, deterministic per document, see :func:`perturb`). Copies are appended *after* the original
documents, so original indices do not move and the evaluation corpus
(:attr:`negbench.data.dataset.RetrievalDataset.eval_corpus`) is a prefix of the training corpus. No qrels name a
planted document; dev and test evaluation never see them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from negbench.config.suite import FalseNegatives

__all__ = ["Plant", "chosen_queries", "perturb", "plant_false_negatives"]

Qrels = dict[str, dict[str, int]]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Plant:
    """One planted document: the corpus index of the positive it copies and the query it was planted for."""

    source: int
    query_id: str


def _rank(seed: int, item: str) -> str:
    return hashlib.sha256(f"false-negatives\0{seed}\0{item}".encode()).hexdigest()


def _rng(seed: int, item: str) -> np.random.Generator:
    return np.random.default_rng(int(_rank(seed, item)[:16], 16))


def chosen_queries(train: Qrels, rate: float, seed: int) -> list[str]:
    """The ``rate`` share (rounded, at least one) of training queries with a positive, in seeded hash order."""
    qids = sorted(
        (q for q, docs in train.items() if any(rel > 0 for rel in docs.values())), key=lambda q: _rank(seed, q)
    )
    if not qids:
        return []
    return qids[: max(1, round(rate * len(qids)))]


def perturb(text: str, seed: int, key: str) -> str:
    """A near-duplicate of ``text``: drop one sentence of three or more (one holding at most a third of the
    words, so most of the text survives), swap two sentences, then remove about one word in ten (at least one
    of five or more); a text of two to four words that came out unchanged has two adjacent words swapped.
    At least 60 % of the words remain, and the result differs from ``text`` unless it has fewer than two
    distinct words (then it stays an exact copy). Deterministic in (``seed``, ``key``)."""
    rng = _rng(seed, f"perturb\0{key}")
    sentences = [s for s in _SENTENCE_END.split(text.strip()) if s]
    total = len(text.split())
    if len(sentences) >= 3:
        short = [i for i, sentence in enumerate(sentences) if 3 * len(sentence.split()) <= total]
        if short:
            del sentences[short[int(rng.integers(len(short)))]]
    if len(sentences) >= 2:
        i, j = rng.choice(len(sentences), size=2, replace=False)
        sentences[i], sentences[j] = sentences[j], sentences[i]
    words = " ".join(sentences).split()
    if len(words) >= 5:
        drop = set(rng.choice(len(words), size=max(1, len(words) // 10), replace=False).tolist())
        words = [w for k, w in enumerate(words) if k not in drop]
    elif words == text.split():
        pairs = [k for k in range(len(words) - 1) if words[k] != words[k + 1]]
        if pairs:
            k = pairs[int(rng.integers(len(pairs)))]
            words[k], words[k + 1] = words[k + 1], words[k]
    return " ".join(words)


def plant_false_negatives(
    ids: list[str], texts: list[str], train: Qrels, cfg: FalseNegatives
) -> tuple[list[str], list[str], dict[int, Plant]]:
    """Planted documents for the training split ``train`` over the corpus (``ids``, ``texts``).

    Returns the new ids and texts (to append after the corpus, in this order) and, for each, its future
    corpus index mapped to its :class:`Plant`. The inputs are not changed.
    """
    index = {doc_id: i for i, doc_id in enumerate(ids)}
    taken = set(ids)
    new_ids: list[str] = []
    new_texts: list[str] = []
    plants: dict[int, Plant] = {}
    for qid in chosen_queries(train, cfg.rate, cfg.seed):
        positives = sorted(d for d, rel in train[qid].items() if rel > 0 and d in index)
        if not positives:
            continue
        doc_id = positives[int(_rng(cfg.seed, f"positive\0{qid}").integers(len(positives)))]
        source = index[doc_id]
        k = 0
        while f"planted:{doc_id}:{k}" in taken:
            k += 1
        new_id = f"planted:{doc_id}:{k}"
        taken.add(new_id)
        text = texts[source] if cfg.kind == "duplicate" else perturb(texts[source], cfg.seed, new_id)
        plants[len(ids) + len(new_ids)] = Plant(source, qid)
        new_ids.append(new_id)
        new_texts.append(text)
    return new_ids, new_texts, plants
