"""The Context a strategy receives: the training data, seeded randomness and the shared services."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from negbench.core.compute import Compute
from negbench.core.mining import MiningServices
from negbench.core.types import Negatives
from negbench.data.dataset import RetrievalDataset, TrainingExample
from negbench.data.splits import normalise_query

__all__ = ["Context"]


@dataclass
class Context:
    """Everything a strategy may use. Indices: examples ``0..n-1``, documents are corpus indices."""

    dataset: RetrievalDataset
    examples: list[TrainingExample]
    services: MiningServices
    num_negatives: int
    batch_size: int
    epochs: int
    seed: int
    model: object | None = None  # the model being trained (set once training starts)
    step: int = 0
    steps_per_epoch: int | None = None  # set by the training loop before the first step
    total_steps: int | None = None
    extras: dict = field(default_factory=dict)
    guide_services: MiningServices | None = None  # the suite's stronger teacher, when it names one
    extra_texts: list[str] = field(default_factory=list)  # training-only documents (:meth:`add_texts`)
    compute: Compute = field(default_factory=Compute)  # report the tokens your own models process (FLOPs)
    _extra_ids: dict[str, int] = field(default_factory=dict, repr=False)
    _forbidden: dict[int, set[int]] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------------------ teacher
    def guided(self) -> Context:
        """This context with the teacher's services: ``guided().dense_candidates(…)``, ``.positive_scores()``
        and ``.services.*_embeddings()`` score with the suite's ``guide`` model (cached on disk like the base
        model's), or with the base model when the suite names none. Strategies that use a teacher's judgement
        (which negatives are false, margins, filters) ask this; the model being trained is never the teacher."""
        if self.guide_services is None:
            return self
        guided = copy.copy(self)
        guided.services, guided.guide_services = self.guide_services, None
        return guided

    # ------------------------------------------------------------------------------ training-only documents
    def add_texts(self, texts: list[str]) -> np.ndarray:
        """Document indices for training-only ``texts`` (generated negatives, not corpus documents: never
        retrieved, evaluated or a labelled positive). They number on after the corpus, ``len(corpus) + k``; one text
        added twice gets one index, so the loss counts it once in a row."""
        base, ids = len(self.dataset.corpus), []
        for text in texts:
            if text not in self._extra_ids:
                self._extra_ids[text] = base + len(self.extra_texts)
                self.extra_texts.append(text)
            ids.append(self._extra_ids[text])
        return np.array(ids, dtype=np.int64)

    @property
    def num_documents(self) -> int:
        """Corpus documents plus training-only texts: every valid document index is below this."""
        return len(self.dataset.corpus) + len(self.extra_texts)

    def doc_text(self, i: int) -> str:
        corpus = self.dataset.corpus
        return corpus.texts[i] if i < len(corpus) else self.extra_texts[i - len(corpus)]

    def doc_id(self, i: int) -> str:
        """The corpus id of document ``i``; a training-only text's id is ``generated:`` + a digest of its text
        (the same text has the same id in every run)."""
        corpus = self.dataset.corpus
        if i < len(corpus):
            return corpus.ids[i]
        return "generated:" + hashlib.sha256(self.extra_texts[i - len(corpus)].encode()).hexdigest()[:16]

    def document_embeddings(self) -> torch.Tensor:
        """Base-model embeddings of every document index: the corpus's (cached), then the training-only texts'."""
        corpus = self.services.corpus_embeddings()
        if not self.extra_texts:
            return corpus
        return torch.cat([corpus, self.services.text_embeddings(self.extra_texts).to(corpus.device)])

    # ------------------------------------------------------------------------------ randomness
    def rng(self, *keys: object) -> np.random.Generator:
        """A generator seeded from the run seed and ``keys`` (same keys → same stream, every run)."""
        text = "\0".join(map(str, (self.seed, *keys)))
        return np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little"))

    # ------------------------------------------------------------------------------ queries
    @cached_property
    def query_ids(self) -> list[str]:
        """Unique training query ids, in first-seen order."""
        return list(dict.fromkeys(e.query_id for e in self.examples))

    @cached_property
    def example_query(self) -> np.ndarray:
        """For each example, the row of its query in :attr:`query_ids`."""
        row = {q: i for i, q in enumerate(self.query_ids)}
        return np.array([row[e.query_id] for e in self.examples], dtype=np.int64)

    @cached_property
    def positive_docs(self) -> np.ndarray:
        return np.array([e.doc for e in self.examples], dtype=np.int64)

    def forbidden(self, i: int) -> set[int]:
        """Corpus indices that must never be a negative of example ``i``.

        Its own positive and every labelled positive (train and dev) of every query with the same normalised
        text: twins (other ids, identical text) are one query, so one twin's positive is never mined, sampled
        or left in the softmax as a negative of the other. Built once per example (it is asked for every
        candidate of every example); do not mutate it.
        """
        cached = self._forbidden.get(i)
        if cached is None:
            example = self.examples[i]
            dataset = self.dataset
            cached = self._forbidden[i] = (
                dataset.positives_by_text.get(normalise_query(example.query), set())
                | dataset.positives.get(example.query_id, set())
                | {example.doc}
            )
        return cached

    def exclude_positives(self, i: int, ids: np.ndarray, scores: np.ndarray | None = None):
        forbidden = self.forbidden(i)
        keep = np.array([int(d) not in forbidden for d in ids], dtype=bool)
        return (ids[keep], None if scores is None else scores[keep])

    def fill_random(self, i: int, ids: np.ndarray, epoch: int = 0) -> np.ndarray:
        """Exactly ``num_negatives`` ids for example ``i``: ``ids`` (deduplicated) topped up at random."""
        k = self.num_negatives
        forbidden = self.forbidden(i)
        out = list(dict.fromkeys(int(d) for d in ids if int(d) not in forbidden))[:k]
        if len(out) < k:
            rng = self.rng("fill", i, epoch)
            taken = set(out) | forbidden
            n_docs = len(self.dataset.corpus)
            if n_docs - len(taken) < k - len(out):
                raise ValueError(f"corpus too small for {k} negatives of example {i}")
            while len(out) < k:
                d = int(rng.integers(n_docs))
                if d not in taken:
                    out.append(d)
                    taken.add(d)
        return np.array(out, dtype=np.int64)

    # ------------------------------------------------------------------------------ mining helpers
    def _per_example(self, scores: np.ndarray, idx: np.ndarray) -> Negatives:
        ids, sc = [], []
        for i, row in enumerate(self.example_query):
            kept_ids, kept_scores = self.exclude_positives(i, idx[row], scores[row])
            ids.append(kept_ids.astype(np.int64))
            sc.append(kept_scores.astype(np.float32))
        return Negatives(ids, sc)

    def bm25_candidates(self, depth: int) -> Negatives:
        """BM25 top-``depth`` per example, labelled positives removed (best first)."""
        scores, idx = self.services.bm25_topk(self.query_ids, depth)
        return self._per_example(scores, idx)

    def dense_candidates(self, depth: int, model=None) -> Negatives:
        """Dense top-``depth`` per example under ``model`` (default: the base model), positives removed."""
        scores, idx = self.services.dense_topk(self.query_ids, depth, model)
        return self._per_example(scores, idx)

    def positive_scores(self, model=None) -> np.ndarray:
        """Cosine s(q, d⁺) of every example under ``model`` (default: the base model)."""
        q = self.services.query_embeddings(self.query_ids, model)
        d = self.services.corpus_embeddings(model).to(q.device)
        rows = q[self.example_query] * d[self.positive_docs]
        return rows.sum(dim=1).float().cpu().numpy()
