"""BEIR-layout datasets: loading with clear errors, dev split carving, subsets and fingerprints.

A dataset directory holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``). Qrels are read lazily per
split, so the test split is not even parsed until the final evaluation asks for it.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from negbench.config.suite import DatasetConfig, FalseNegatives
from negbench.data.beir import Corpus, Qrels, file_digest, read_corpus, read_lines, read_qrels, read_queries
from negbench.data.false_negatives import Plant, plant_false_negatives
from negbench.data.sources import resolve_source
from negbench.data.splits import carve_dev, limit_queries, query_key
from negbench.errors import DataError

__all__ = ["RetrievalDataset", "TrainingExample", "load_dataset"]

log = logging.getLogger(__name__)


@dataclass
class TrainingExample:
    """One (query, positive document) pair; ``doc`` is the positive's corpus index."""

    query_id: str
    query: str
    doc: int


@dataclass
class RetrievalDataset:
    """A loaded dataset with train/dev/test splits; test qrels are sealed until :meth:`unseal_test`.

    ``corpus`` is the *training* corpus: what mining, sampling and training see. With planted false negatives
    (:mod:`negbench.data.false_negatives`) it ends with the planted copies (``planted`` maps their indices to what
    they copy); :attr:`eval_corpus` is the corpus without them, a prefix of ``corpus``, and the only one any
    evaluation (dev for tuning, test) may search.
    """

    name: str
    root: Path | None
    corpus: Corpus
    queries: dict[str, str]
    split_qrels: dict[str, Qrels]
    fingerprint: str
    warnings: Counter = field(default_factory=Counter)
    _test_loader: object = None
    _test_qrels: Qrels | None = None
    planted: dict[int, Plant] = field(default_factory=dict)
    planting: FalseNegatives | None = None
    base_fingerprint: str = ""  # the fingerprint without planting (pairs runs with and without it)
    _eval_corpus: Corpus | None = None

    def __post_init__(self) -> None:
        self.base_fingerprint = self.base_fingerprint or self.fingerprint

    @cached_property
    def planted_by_source(self) -> dict[int, list[int]]:
        """Planted copies of each copied document: source corpus index → planted corpus indices."""
        out: dict[int, list[int]] = {}
        for index, plant in sorted(self.planted.items()):
            out.setdefault(plant.source, []).append(index)
        return out

    @property
    def eval_corpus(self) -> Corpus:
        """The corpus evaluation searches (dev and test): the original documents, never a planted one."""
        return self.corpus if self._eval_corpus is None else self._eval_corpus

    @property
    def train(self) -> Qrels:
        return self.split_qrels["train"]

    @property
    def dev(self) -> Qrels:
        return self.split_qrels["dev"]

    def test(self) -> Qrels:
        """Test qrels, read on first call. Only the final evaluation calls this (never tuning)."""
        if self._test_qrels is None:
            self._test_qrels = self._test_loader()  # type: ignore[operator]
        return self._test_qrels

    def test_query_ids(self) -> set[str]:
        """Parse and check the test qrels without keeping them (validation): their query ids only."""
        if self._test_qrels is not None:
            return set(self._test_qrels)
        return set(self._test_loader())  # type: ignore[operator]

    @cached_property
    def positives(self) -> dict[str, set[int]]:
        """Corpus indices labelled relevant for each train/dev query (known false-negative guard)."""
        out: dict[str, set[int]] = {}
        for split in ("train", "dev"):
            for qid, docs in self.split_qrels[split].items():
                out.setdefault(qid, set()).update(
                    self.corpus.index[d] for d, rel in docs.items() if rel > 0 and d in self.corpus.index
                )
        return out

    @cached_property
    def positives_by_text(self) -> dict[str, set[int]]:
        """:attr:`positives` pooled per normalised query text: twins (same text, other id) share them."""
        out: dict[str, set[int]] = {}
        for qid, docs in self.positives.items():
            out.setdefault(query_key(qid, self.queries), set()).update(docs)
        return out

    def training_examples(self, split: str = "train") -> list[TrainingExample]:
        examples = []
        for qid in sorted(self.split_qrels[split]):
            for doc_id, rel in sorted(self.split_qrels[split][qid].items()):
                if rel > 0 and doc_id in self.corpus.index:
                    examples.append(TrainingExample(qid, self.queries[qid], self.corpus.index[doc_id]))
        return examples


# ---------------------------------------------------------------------------------------- public API


def load_dataset(
    cfg: DatasetConfig, data_dirs: list[str] | None = None, *, require_train: bool = True
) -> RetrievalDataset:
    """Load a BEIR directory into train/dev splits (test sealed), applying the suite's subset limits.

    ``require_train=False`` (zero-shot evaluation) accepts a dataset without training qrels.
    """
    root = resolve_source(cfg, data_dirs)
    warnings: Counter = Counter()
    corpus = read_corpus(root / "corpus.jsonl", warnings)
    queries = read_queries(root / "queries.jsonl", warnings)
    qrels_dir = root / "qrels"
    train_path = qrels_dir / f"{cfg.train_split}.tsv"
    if not require_train and not train_path.is_file():
        train, dev = {}, {}
    else:
        train = read_qrels(train_path, corpus.index, queries, warnings)
    if train and cfg.dev_split:
        dev = read_qrels(qrels_dir / f"{cfg.dev_split}.tsv", corpus.index, queries, warnings)
        dev_keys = {query_key(q, queries) for q in dev}  # a twin of a dev query is a dev query too
        kept = {q: d for q, d in train.items() if query_key(q, queries) not in dev_keys}
        if dropped := sum(q not in dev for q in train) - len(kept):
            warnings["train query with the text of a dev query"] += dropped
        train = kept
    elif train:
        train, dev = carve_dev(train, queries, cfg.dev_fraction)
    train = limit_queries(train, cfg.max_train_queries, "train", queries)
    dev = limit_queries(dev, cfg.max_dev_queries, "dev", queries)
    test_path = qrels_dir / f"{cfg.test_split}.tsv"
    if not test_path.is_file():
        raise DataError("missing qrels file", file=test_path)

    keep_docs: list[int] | None = None
    if cfg.max_corpus is not None and cfg.max_corpus < len(corpus):
        # Subsets keep every document judged for the kept queries, then fill with a fixed sample.
        # The test split's documents are kept too, reading only its document ids.
        test_docs = _test_doc_ids(test_path, cfg.max_test_queries, queries, corpus.index)
        needed = {d for split in (train, dev) for docs in split.values() for d in docs} | test_docs
        needed_idx = sorted(corpus.index[d] for d in needed if d in corpus.index)
        rest = np.setdiff1d(np.arange(len(corpus)), needed_idx)
        rng = np.random.default_rng(0)
        fill = max(0, cfg.max_corpus - len(needed_idx))
        keep_docs = sorted(needed_idx + rng.choice(rest, size=min(fill, len(rest)), replace=False).tolist())
        corpus = Corpus([corpus.ids[i] for i in keep_docs], [corpus.texts[i] for i in keep_docs])

    files = [root / "corpus.jsonl", root / "queries.jsonl", *sorted(p for p in qrels_dir.glob("*.tsv") if p.is_file())]
    subset = f"{cfg.train_split}|{cfg.dev_split}|{cfg.dev_fraction}|{cfg.test_split}|{cfg.max_corpus}|" + (
        f"{cfg.max_train_queries}|{cfg.max_dev_queries}|{cfg.max_test_queries}|splits by query text"
    )
    digest = file_digest(files)
    base_fingerprint = hashlib.sha256(f"{digest}|{subset}".encode()).hexdigest()[:16]
    train_corpus, planted = corpus, {}
    if cfg.false_negatives is not None and train:
        # after every split and subset: plants copy training positives only, appended after the originals
        subset += f"|planted {cfg.false_negatives.model_dump_json()}"
        new_ids, new_texts, planted = plant_false_negatives(corpus.ids, corpus.texts, train, cfg.false_negatives)
        train_corpus = Corpus(corpus.ids + new_ids, corpus.texts + new_texts)
    fingerprint = hashlib.sha256(f"{digest}|{subset}".encode()).hexdigest()[:16]

    def load_test() -> Qrels:
        test_warnings: Counter = Counter()
        test = limit_queries(
            read_qrels(test_path, corpus.index, queries, test_warnings), cfg.max_test_queries, "test", queries
        )
        warnings.update(test_warnings)
        return test

    dataset = RetrievalDataset(
        name=cfg.display_name,
        root=root,
        corpus=train_corpus,
        queries=queries,
        split_qrels={"train": train, "dev": dev},
        fingerprint=fingerprint,
        warnings=warnings,
        _test_loader=load_test,
        planted=planted,
        planting=cfg.false_negatives if planted else None,
        base_fingerprint=base_fingerprint,
        _eval_corpus=corpus if planted else None,
    )
    for what, count in warnings.items():
        log.warning("%s: %d %s(s) skipped", root, count, what)
    return dataset


def _test_doc_ids(path: Path, max_queries: int | None, queries: dict[str, str], corpus_ids: dict[str, int]) -> set[str]:
    """Document ids of the test queries the final evaluation will keep (same rows and limit as it)."""
    rows: dict[str, set[str]] = {}
    for _, line in read_lines(path, "qrels"):
        parts = [p.strip() for p in line.rstrip("\n").split("\t")]
        if len(parts) == 3 and parts[2].lstrip("-").isdigit() and parts[0] in queries and parts[1] in corpus_ids:
            rows.setdefault(parts[0], set()).add(parts[1])
    kept = limit_queries({q: {} for q in rows}, max_queries, "test", queries)  # type: ignore[arg-type]
    return {d for q in kept for d in rows[q]}
