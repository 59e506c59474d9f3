"""Shared retrieval services for strategies: BM25 (bm25s) and dense top-k, with on-disk caches.

One :class:`MiningServices` serves every strategy of a (dataset, model) pair, so the base model encodes
the corpus once; embeddings and mined top-k lists are cached on disk keyed by the dataset and model
fingerprints, so a rerun (or another suite on the same data) does not encode again.

Cost accounting does not depend on which job filled a cache: every cached artefact is stored with the
seconds it took to compute and the FLOPs its encoders spent (:mod:`negbench.core.compute`), each exclusive of the
artefacts it used in turn, and a run is charged that cost for every artefact it uses, whether it computed it,
loaded it from disk or found it in memory (:func:`charged_seconds`, :func:`charged_flops`). Token counts
(:meth:`MiningServices.token_sizes`, :meth:`MiningServices.token_counts`) are cached on disk the same way but charged
to no run: tokenising costs no FLOPs, and the suite counts them before any job.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from negbench._io import atomic_write
from negbench.core.compute import EncoderSizes, TokenCounts, count_tokens, flop_clock, watch
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
        self._counts: dict[str, object] = {}  # token counts by name (_stored)
        self._counting = False  # in a counting() block

    # ----------------------------------------------------------------------------------- base model
    @property
    def base_model(self):
        if self._base_model is None:
            self._base_model = self._load_base()
            watch(self._base_model)
        return self._base_model

    def token_sizes(self, keep_model: bool = True) -> EncoderSizes:
        """The base model's ``N`` and the tokens of every corpus document and query as it encodes them: the compute
        budget's estimate reads them (it prices encoding the whole corpus). Counted once per dataset × model and
        cached on disk and in memory (:meth:`_stored`; tokenising costs no FLOPs and is charged to no run).
        ``keep_model=False``: a base model loaded only to count them is let go again (a run whose strategy never
        uses it must not hold it in its measured memory)."""
        if self._sizes is None:
            corpus, queries = self.dataset.corpus, list(self.dataset.queries)
            with self.counting() if not keep_model else contextlib.nullcontext():
                stored = self._stored(self._key("token-sizes"), lambda: self._count(range(len(corpus)), queries))
            self._sizes = EncoderSizes(stored["params"], stored["docs"], stored["queries"])
        return self._sizes

    def token_counts(self, docs: Iterable[int] | np.ndarray, qids: Iterable[str]) -> TokenCounts:
        """The tokens of the corpus documents ``docs`` (indices) and the queries ``qids`` only, as
        :meth:`token_sizes` counts them (the same numbers, without tokenising the rest of the corpus): cached on
        disk and in memory per set, and taken from :meth:`token_sizes`' when those are known. Call it in a
        :meth:`counting` block to load the base model at most once for several sets and let it go after."""
        ids = np.unique(np.asarray(docs if isinstance(docs, np.ndarray) else list(docs), dtype=np.int64))
        qids = sorted(set(qids))
        digest = hashlib.sha256(ids.tobytes()).hexdigest()[:12]
        name = self._key("token-counts", len(ids), len(qids), digest, _digest(qids))

        def compute() -> dict:
            whole = self._sizes or self._stored(self._key("token-sizes"))  # the whole corpus's, when counted
            if whole is None:
                return self._count(ids, qids)
            if isinstance(whole, EncoderSizes):
                whole = {"params": whole.params, "docs": whole.doc_tokens, "queries": whole.query_tokens}
            return {
                "params": whole["params"],
                "docs": whole["docs"][ids],
                "queries": {q: whole["queries"][q] for q in qids},
            }

        with self.counting():
            stored = self._stored(name, compute)
        return TokenCounts(stored["params"], ids, stored["docs"], stored["queries"])

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """A block that counts tokens: a base model loaded in it is let go at its end (the outermost block's), so a
        run whose strategy never uses the base model does not hold it in its measured memory."""
        if self._counting:
            yield
            return
        self._counting, loaded = True, self._base_model is not None
        try:
            yield
        finally:
            self._counting = False
            if not loaded:
                self._base_model = None

    def _count(self, docs: Iterable[int], qids: list[str]) -> dict:
        """Tokenise the corpus documents ``docs`` and the queries ``qids`` with the base model (no forward pass)."""
        model, texts = self.base_model, self.dataset.corpus.texts
        counts = count_tokens(model, [texts[i] for i in docs], "document")
        queries = count_tokens(model, [self.dataset.queries[q] for q in qids], "query")
        return {"params": watch(model), "docs": counts, "queries": dict(zip(qids, map(int, queries), strict=True))}

    def _stored(self, name: str, compute: Callable[[], object] | None = None):
        """``compute()`` once, kept in memory and on disk (keyed by the code that counts, :data:`_COUNT_CODE`) and
        charged to no run: token counts, which cost no FLOPs. Without ``compute``: the stored value or None."""
        if name not in self._counts:
            path = self.cache_dir / f"{name}-{_COUNT_CODE}.pt"
            stored = _load(path)
            if stored is not None:
                self._counts[name] = stored
            elif compute is None:
                return None
            else:
                value = compute()
                atomic_write(path, partial(torch.save, value))
                self._counts[name] = value
        return self._counts[name]

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
                stored = _load(path)
                if stored is not None:
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
# token counts by the code that counts them (count_tokens, the model's prompts) too
_COUNT_CODE = hashlib.sha256(
    b"".join((Path(__file__).parent / f).read_bytes() for f in ("mining.py", "search.py", "compute.py"))
).hexdigest()[:10]


def _digest(items: list[str]) -> str:
    return hashlib.sha256("\0".join(items).encode()).hexdigest()[:12]


def _load(path: Path) -> Any:
    """A cached artefact, or None when there is none or it cannot be read (cut short by a crash, written by another
    version): it is then computed again and replaced, with a warning. Never an exception: an ``EOFError`` escaping
    to the command line reads as Ctrl-C there."""
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, weights_only=False)
    except Exception as exc:  # a truncated or foreign file: torch raises EOFError, RuntimeError, UnpicklingError …
        log.warning("cache file %s cannot be read (%s: %s): computing it again", path, type(exc).__name__, exc)
        return None
    return stored
