"""BEIR-layout datasets: loading with clear errors, dev split carving, subsets and fingerprints.

A dataset directory holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``). Loading reads the test file only
for which queries and documents it names (to keep test twins out of training and to draw subsets, see
:mod:`negbench.data.subset`) and keeps none of it: the test qrels are parsed, strictly, when the final
evaluation asks for them.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from negbench.config.suite import DatasetConfig, FalseNegatives
from negbench.data.beir import Corpus, Qrels, file_digest, read_corpus, read_qrels, read_queries
from negbench.data.false_negatives import Plant, plant_false_negatives
from negbench.data.sources import resolve_source
from negbench.data.splits import carve_dev, limit_queries, query_key
from negbench.data.subset import (
    SHARE_BOUND,
    DataAudit,
    draw_subset,
    drop_test_twins,
    read_test_rows,
    relevant,
    test_only_share,
)
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
    audit: DataAudit = field(default_factory=DataAudit)  # test twins dropped, a subset's test-only share

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

    Train and dev lose the twins of test queries, and a ``max_corpus`` subset keeps its share of test-only
    documents near the full corpus's (:mod:`negbench.data.subset`); :attr:`RetrievalDataset.audit` says what
    was done. ``require_train=False`` (zero-shot evaluation) accepts a dataset without training qrels.
    """
    root = resolve_source(cfg, data_dirs)
    warnings: Counter = Counter()
    corpus = read_corpus(root / "corpus.jsonl", warnings)
    queries = read_queries(root / "queries.jsonl", warnings)
    qrels_dir = root / "qrels"
    test_path = qrels_dir / f"{cfg.test_split}.tsv"
    train, dev, test_rows, twins = _splits(cfg, qrels_dir, test_path, corpus, queries, warnings, require_train)
    full = (len(corpus), len(train), len(dev), len(test_rows))
    full_share = test_only_share(test_rows, relevant(train), len(corpus))  # the full dataset's
    train = limit_queries(train, cfg.max_train_queries, "train", queries)
    trained = relevant(train)  # what the run trains on: documents it pulls toward a query
    dev = limit_queries(dev, cfg.max_dev_queries, "dev", queries)
    allowed = limit_queries(test_rows, cfg.max_test_queries, "test", queries)
    test_ids, draw = set(allowed), None
    if cfg.max_corpus is not None and cfg.max_corpus < len(corpus):
        draw = draw_subset(corpus.index, (train, dev), test_rows, allowed, trained, cfg.max_corpus, full_share, queries)
        test_ids = draw.test_ids
        corpus = Corpus([corpus.ids[i] for i in draw.keep_docs], [corpus.texts[i] for i in draw.keep_docs])
    audit = DataAudit(
        test_twins_dropped=tuple(twins),
        test_only_share=test_only_share({q: test_rows[q] for q in test_ids}, trained, len(corpus)),
        test_only_share_full=full_share,
        subset=_describe(full, (len(corpus), len(train), len(dev), len(test_ids))),
        test_queries_cut=draw.test_queries_cut if draw else None,
        corpus_for_all=draw.corpus_for_all if draw else None,
    )

    files = [root / "corpus.jsonl", root / "queries.jsonl", *sorted(p for p in qrels_dir.glob("*.tsv") if p.is_file())]
    subset = f"{cfg.train_split}|{cfg.dev_split}|{cfg.dev_fraction}|{cfg.test_split}|{cfg.max_corpus}|" + (
        f"{cfg.max_train_queries}|{cfg.max_dev_queries}|{cfg.max_test_queries}|splits by query text|"
        f"no test twins|test-only share within {SHARE_BOUND}x, fill without test-judged documents"
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
        test = read_qrels(test_path, corpus.index, queries, test_warnings)
        warnings.update(test_warnings)
        return {q: docs for q, docs in test.items() if q in test_ids}

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
        audit=audit,
    )
    for what, count in warnings.items():
        log.warning("%s: %d %s(s) skipped", root, count, what)
    return dataset


def _splits(
    cfg: DatasetConfig,
    qrels_dir: Path,
    test_path: Path,
    corpus: Corpus,
    queries: dict[str, str],
    warnings: Counter,
    require_train: bool,
) -> tuple[Qrels, Qrels, Qrels, list[str]]:
    """Train and dev (carved or read) without the twins of test queries, the test file's judgements (read for
    their ids: the final evaluation reads them again, strictly) and the ids of the train/dev queries dropped."""
    train_path = qrels_dir / f"{cfg.train_split}.tsv"
    train: Qrels = {}
    if require_train or train_path.is_file():
        train = read_qrels(train_path, corpus.index, queries, warnings)
    if not test_path.is_file():
        raise DataError("missing qrels file", file=test_path)
    test_rows = read_test_rows(test_path, queries, corpus.index)
    train, twins = drop_test_twins(train, test_rows, queries)
    if train and cfg.dev_split:
        dev = read_qrels(qrels_dir / f"{cfg.dev_split}.tsv", corpus.index, queries, warnings)
        dev, dev_twins = drop_test_twins(dev, test_rows, queries)
        twins = sorted({*twins, *dev_twins})
        dev_keys = {query_key(q, queries) for q in dev}  # a twin of a dev query is a dev query too
        kept = {q: d for q, d in train.items() if query_key(q, queries) not in dev_keys}
        if dropped := sum(q not in dev for q in train) - len(kept):
            warnings["train query with the text of a dev query"] += dropped
        train = kept
    elif train:
        train, dev = carve_dev(train, queries, cfg.dev_fraction)
    else:
        dev = {}
    return train, dev, test_rows, twins  # the twins are reported by the audit's notes (validate, the row)


def _describe(full: tuple[int, ...], kept: tuple[int, ...]) -> str | None:
    """What a subset kept, e.g. ``1,000 of 5,183 documents, 400 of 728 train, 81 of 81 dev and 62 of 300 test
    queries``; None when the limits kept everything."""
    if kept == full:
        return None
    docs, train, dev, test = (f"{k:,} of {f:,}" for k, f in zip(kept, full, strict=True))
    return f"{docs} documents, {train} train, {dev} dev and {test} test queries"
