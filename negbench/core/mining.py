"""Shared retrieval services for strategies: BM25 (bm25s) and dense top-k, with on-disk caches.

One :class:`MiningServices` serves every strategy of a (dataset, model) pair, so the base model encodes
the corpus once; embeddings and mined top-k lists are cached on disk keyed by the dataset and model
fingerprints, so a rerun (or another suite on the same data) does not encode again.

Cost accounting does not depend on which job filled a cache: every cached artefact is stored with the
seconds it took to compute and the FLOPs its encoders spent (:mod:`negbench.core.compute`), each exclusive of the
artefacts it used in turn, and a run is charged that cost for every artefact it uses, whether it computed it,
loaded it from disk or found it in memory (:func:`charged_seconds`, :func:`charged_flops`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

from negbench._io import atomic_write
from negbench.core.compute import EncoderSizes, count_tokens, flop_clock, watch
from negbench.core.search import encode, exact_topk
from negbench.data.dataset import RetrievalDataset

__all__ = ["MiningServices", "charged_flops", "charged_seconds"]

log = logging.getLogger(__name__)


class MiningServices:
    """BM25 and dense search over one dataset's corpus for one base model."""

    def __init__(
        self,
        dataset: RetrievalDataset,
        base_model_loader: Callable[[], object],
        model_fingerprint: str,
        cache_dir: Path,
        batch_size: int = 64,
        progress: bool = False,
    ) -> None:
        self.dataset = dataset
        self._load_base = base_model_loader
        self._base_model = None
        self.model_fingerprint = model_fingerprint
        self.cache_dir = Path(cache_dir)
        self.batch_size = batch_size
        self.progress = progress
        self._bm25 = None
        self._memo: dict[str, tuple[object, dict[str, float]]] = {}
        self.encode_calls = 0  # how many times a corpus was encoded (cache misses); tests check reuse
        self._used: dict[str, float] = {}  # artefacts used since begin_run (with what they were made from): cost
        self._used_flops: dict[str, float] = {}  # the same artefacts' FLOPs
        self._cache_wall_s = 0.0  # wall time spent in outermost cache look-ups since begin_run
        self._cache_flops = 0.0  # FLOPs counted in outermost cache look-ups since begin_run
        self._inner: list[list[float]] = []  # per open look-up: [seconds, FLOPs] of the look-ups nested inside it
        self._deps: list[dict[str, tuple[float, float]]] = []  # per open look-up: (seconds, FLOPs) of what it used
        self._sizes: EncoderSizes | None = None

    # ----------------------------------------------------------------------------------- base model
    @property
    def base_model(self):
        if self._base_model is None:
            self._base_model = self._load_base()
            watch(self._base_model)
        return self._base_model

    def token_sizes(self, keep_model: bool = True) -> EncoderSizes:
        """The base model's ``N`` and the tokens of every corpus document and query as it encodes them (memoised;
        tokenising costs no FLOPs and is charged to no run): the compute budget's estimate reads them.
        ``keep_model=False``: a base model loaded only to count them is let go again (a run whose strategy never
        uses it must not hold it in its measured memory)."""
        if self._sizes is None:
            loaded = self._base_model is not None
            model, queries = self.base_model, self.dataset.queries
            docs = count_tokens(model, self.dataset.corpus.texts, "document")
            counts = count_tokens(model, list(queries.values()), "query")
            self._sizes = EncoderSizes(watch(model), docs, dict(zip(queries, map(int, counts), strict=True)))
            if not keep_model and not loaded:
                self._base_model = None
        return self._sizes

    def _key(self, *parts: object) -> str:
        return "-".join([self.dataset.fingerprint, self.model_fingerprint, *map(str, parts)])

    # ---------------------------------------------------------------------------------- accounting
    def begin_run(self) -> None:
        """Start charging a new run (what it uses, and the cache wall time to take out of its own clock)."""
        self._used, self._used_flops, self._cache_wall_s, self._cache_flops = {}, {}, 0.0, 0.0

    def charged_seconds(self, wall_s: float) -> float:
        """Order-independent cost of a block that took ``wall_s``: its wall time less the time spent in
        cache look-ups, plus the recorded compute time of every cached artefact it used, and of every
        artefact those were computed from (each once), whether computed now, loaded or found in memory."""
        return charged_seconds(wall_s, [self])

    def _cached(self, name: str, compute: Callable[[], object]):
        """``compute()`` once, cached in memory and on disk with its exclusive compute time and FLOPs and the costs
        of the artefacts it was computed from (so a later hit is charged the same as the first computation)."""
        start = _now()
        self._inner.append([0.0, 0.0])
        self._deps.append({})
        try:
            if name not in self._memo:
                path = self.cache_dir / f"{name}-{_CODE}.pt"
                if path.is_file():
                    stored = torch.load(path, weights_only=False)
                    self._memo[name] = (stored["value"], stored["costs"])
                else:
                    began = _now()
                    value = compute()
                    done = _now()
                    exclusive = tuple(d - b - i for d, b, i in zip(done, began, self._inner[-1], strict=True))
                    costs = {**self._deps[-1], name: exclusive}
                    atomic_write(path, partial(torch.save, {"value": value, "costs": costs}))
                    self._memo[name] = (value, costs)
            return self._memo[name][0]
        finally:
            self._inner.pop()
            self._deps.pop()
            costs = self._memo[name][1] if name in self._memo else {}
            self._used.update((k, v[0]) for k, v in costs.items())
            self._used_flops.update((k, v[1]) for k, v in costs.items())
            elapsed = [n - s for n, s in zip(_now(), start, strict=True)]
            if self._inner:
                self._inner[-1] = [a + b for a, b in zip(self._inner[-1], elapsed, strict=True)]
                self._deps[-1].update(costs)
            else:
                self._cache_wall_s += elapsed[0]
                self._cache_flops += elapsed[1]

    # ---------------------------------------------------------------------------------- embeddings
    def corpus_embeddings(self, model=None) -> torch.Tensor:
        """Corpus embeddings of ``model`` (default: the base model, cached on disk)."""
        if model is not None:
            self.encode_calls += 1
            return encode(
                model, self.dataset.corpus.texts, kind="document", batch_size=self.batch_size, progress=self.progress
            )

        def compute() -> torch.Tensor:
            self.encode_calls += 1
            emb = encode(
                self.base_model,
                self.dataset.corpus.texts,
                kind="document",
                batch_size=self.batch_size,
                progress=self.progress,
            )
            return emb.cpu()

        return self._cached(self._key("corpus-emb"), compute)

    def text_embeddings(self, texts: list[str]) -> torch.Tensor:
        """Base-model document embeddings of texts outside the corpus (generated negatives), cached by content."""
        key = self._key("text-emb", len(texts), _digest(texts))
        return self._cached(
            key, lambda: encode(self.base_model, texts, kind="document", batch_size=self.batch_size).cpu()
        )

    def cached(self, name: str, compute: Callable[[], object]):
        """``compute()`` cached (memory and disk) under this dataset and ``name``, charged to the runs that use
        it like every mining artefact: for work that depends on the data but not the model (generated texts)."""
        return self._cached(f"{self.dataset.fingerprint}-{name}", compute)

    def query_embeddings(self, qids: list[str], model=None) -> torch.Tensor:
        texts = [self.dataset.queries[q] for q in qids]
        if model is not None:
            return encode(model, texts, kind="query", batch_size=self.batch_size)
        key = self._key("query-emb", len(qids), _digest(qids))
        return self._cached(key, lambda: encode(self.base_model, texts, kind="query", batch_size=self.batch_size).cpu())

    # -------------------------------------------------------------------------------------- search
    def dense_topk(self, qids: list[str], k: int, model=None) -> tuple[np.ndarray, np.ndarray]:
        """Cosine top-k corpus indices per query under ``model`` (default: base model, cached)."""
        k = min(k, len(self.dataset.corpus))
        if model is not None:
            q = self.query_embeddings(qids, model)
            d = self.corpus_embeddings(model)
            return exact_topk(q, d.to(q.device), k)
        key = self._key("dense-topk", k, _digest(qids))

        def compute():
            q = self.query_embeddings(qids)
            return exact_topk(q, self.corpus_embeddings(), k)

        return self._cached(key, compute)

    def bm25_topk(self, qids: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """BM25 (bm25s, Lucene variant, English stopwords) top-k corpus indices per query."""
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its logger to DEBUG on import
        k = min(k, len(self.dataset.corpus))
        key = f"{self.dataset.fingerprint}-bm25-topk-{k}-{_digest(qids)}"

        def compute():
            if self._bm25 is None:
                retriever = bm25s.BM25()
                tokens = bm25s.tokenize(self.dataset.corpus.texts, stopwords="en", show_progress=False)
                retriever.index(tokens, show_progress=False)
                self._bm25 = retriever
            query_tokens = bm25s.tokenize(
                [self.dataset.queries[q] for q in qids], stopwords="en", return_ids=False, show_progress=False
            )
            idx, scores = self._bm25.retrieve(query_tokens, k=k, show_progress=False, n_threads=1)
            return scores.astype(np.float32), idx.astype(np.int64)

        return self._cached(key, compute)


def charged_seconds(wall_s: float, services: list[MiningServices]) -> float:
    """:meth:`MiningServices.charged_seconds` of a block that used several services (the base model's and a
    teacher's): its wall time less every service's cache look-ups, plus every artefact each one used."""
    looked_up = sum(s._cache_wall_s for s in services)
    return max(0.0, wall_s - looked_up) + sum(sum(s._used.values()) for s in services)


def charged_flops(flops: float, services: list[MiningServices]) -> float:
    """The FLOPs of a block charged as :func:`charged_seconds` charges its seconds: the FLOPs counted in it less
    those counted in every service's cache look-ups, plus the recorded FLOPs of every artefact each one used
    (what the embeddings cost, whether encoded now, loaded from disk or found in memory)."""
    looked_up = sum(s._cache_flops for s in services)
    return max(0.0, flops - looked_up) + sum(sum(s._used_flops.values()) for s in services)


def _now() -> tuple[float, float]:
    """(wall seconds, FLOP clock): the two costs a cached artefact records."""
    return time.perf_counter(), flop_clock()


# cached artefacts are keyed by the code that computes them too: a change to mining or search never reuses them
_CODE = hashlib.sha256(
    b"".join((Path(__file__).parent / f).read_bytes() for f in ("mining.py", "search.py"))
).hexdigest()[:10]


def _digest(items: list[str]) -> str:
    return hashlib.sha256("\0".join(items).encode()).hexdigest()[:12]
