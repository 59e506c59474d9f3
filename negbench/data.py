"""BEIR-layout datasets: loading with clear errors, dev split carving, subsets and fingerprints.

A dataset directory holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``). Qrels are read lazily per
split, so the test split is not even parsed until the final evaluation asks for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from negbench.config import DatasetConfig, FalseNegatives
from negbench.download import is_beir_dir, resolve_beir
from negbench.errors import DataError
from negbench.false_negatives import Plant, plant_false_negatives

log = logging.getLogger(__name__)

Qrels = dict[str, dict[str, int]]
MAX_QRELS_SCORE = 2**31 - 1


@dataclass
class Corpus:
    ids: list[str]
    texts: list[str]

    @cached_property
    def index(self) -> dict[str, int]:
        return {doc_id: i for i, doc_id in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)


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
    (:mod:`negbench.false_negatives`) it ends with the planted copies (``planted`` maps their indices to what
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


# --------------------------------------------------------------------------------------------- reading


@contextmanager
def _reading(path: Path, kind: str) -> Iterator[None]:
    """Turn an unreadable file or one that is not UTF-8 into a one-line :class:`DataError` naming it."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise DataError(f"{kind} file is not UTF-8 text (byte {exc.start}: {exc.reason})", file=path) from None
    except OSError as exc:
        raise DataError(f"cannot read {kind} file: {exc.strerror or exc}", file=path) from None


def _lines(path: Path, kind: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of a UTF-8 text file, with one-line errors for an unreadable or undecodable one."""
    if not path.is_file():
        raise DataError(f"missing {kind} file", file=path)
    with _reading(path, kind), path.open(encoding="utf-8") as fh:
        yield from enumerate(fh, 1)


def _string_field(row: dict, key: str, where: str, *, required: bool = False) -> str:
    """A JSONL field that must hold text: a string (an integer id is accepted as its decimal text)."""
    value = row.get(key)
    if value is None and not required:
        return ""
    if isinstance(value, str):
        return value
    if key == "_id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise DataError(f"'{key}' must be a string, got {json.dumps(value)[:40]}", file=where, field=key)


def _read_jsonl(path: Path, kind: str) -> list[dict]:
    rows = []
    for lineno, line in _lines(path, kind):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"bad JSON: {exc.msg} (column {exc.colno})", file=f"{path}:{lineno}") from None
        if not isinstance(row, dict) or "_id" not in row:
            raise DataError("each line must be a JSON object with an '_id'", file=f"{path}:{lineno}")
        where = f"{path}:{lineno}"
        row["_id"] = _string_field(row, "_id", where, required=True)
        if not row["_id"].strip():
            raise DataError("'_id' is empty", file=where, field="_id")
        for key in ("title", "text"):
            row[key] = _string_field(row, key, where)
        row["_lineno"] = lineno
        rows.append(row)
    if not rows:
        raise DataError(f"empty {kind} file", file=path)
    return rows


def read_corpus(path: Path, warnings: Counter) -> Corpus:
    ids, texts, seen = [], [], set()
    for row in _read_jsonl(path, "corpus"):
        doc_id = row["_id"]
        if doc_id in seen:
            warnings["duplicate corpus id"] += 1
            continue
        seen.add(doc_id)
        title, text = row["title"], row["text"]
        ids.append(doc_id)
        texts.append(f"{title} {text}".strip())  # BEIR/MTEB join title and text with one space
    return Corpus(ids, texts)


def read_queries(path: Path, warnings: Counter) -> dict[str, str]:
    queries: dict[str, str] = {}
    for row in _read_jsonl(path, "queries"):
        qid = row["_id"]
        if qid in queries:
            warnings["duplicate query id"] += 1
            continue
        queries[qid] = row["text"]
    return queries


def is_qrels_header(parts: list[str], corpus_ids: dict[str, int], queries: dict[str, str]) -> bool:
    """Whether a first qrels row is a header (``query-id corpus-id score``): three columns, a score that is
    not a number, and a first column that is not a known query id. A data row with a bad score is not one."""
    if len(parts) != 3 or parts[2].strip().lstrip("-").isdigit():
        return False
    return parts[0].strip() not in queries and parts[1].strip() not in corpus_ids


def read_qrels(path: Path, corpus_ids: dict[str, int], queries: dict[str, str], warnings: Counter) -> Qrels:
    qrels: Qrels = {}
    for lineno, line in _lines(path, "qrels"):
        parts = line.rstrip("\n").split("\t")
        if not line.strip():
            continue
        if lineno == 1 and is_qrels_header(parts, corpus_ids, queries):
            continue
        if len(parts) != 3:
            raise DataError(
                f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(parts)}",
                file=f"{path}:{lineno}",
            )
        qid, doc_id, score = (p.strip() for p in parts)
        try:
            rel = int(score)
        except ValueError:
            raise DataError(f"score {score!r} is not an integer", file=f"{path}:{lineno}") from None
        if abs(rel) > MAX_QRELS_SCORE:  # pytrec_eval keeps scores in a C int
            raise DataError(f"score {score} is out of range (|score| <= {MAX_QRELS_SCORE})", file=f"{path}:{lineno}")
        if doc_id not in corpus_ids:
            warnings["qrels row naming an unknown document"] += 1
            continue
        if qid not in queries:
            warnings["qrels row naming an unknown query"] += 1
            continue
        qrels.setdefault(qid, {})[doc_id] = rel
    if not any(rel > 0 for docs in qrels.values() for rel in docs.values()):
        raise DataError("empty split: no relevant (query, document) pair", file=path)
    return qrels


# ------------------------------------------------------------------------------------------ splitting


def _rank_key(seed_text: str, item: str) -> str:
    return hashlib.sha256(f"{seed_text}\0{item}".encode()).hexdigest()


def normalise_query(text: str) -> str:
    """Query text as compared for twins: runs of whitespace collapsed to one space, ends stripped."""
    return " ".join(text.split())


def query_key(qid: str, queries: dict[str, str]) -> str:
    """What makes two query ids the same query: the normalised text (the id itself if it has no text)."""
    text = queries.get(qid)
    return normalise_query(text) if text is not None else f"\0id:{qid}"


def query_groups(qids: Iterable[str], queries: dict[str, str], salt: str) -> list[list[str]]:
    """``qids`` grouped by :func:`query_key` (twins together), groups in hash order of their first member.

    A group without twins ranks exactly where its one id ranked before grouping, so datasets without twins
    split as they always did.
    """
    groups: dict[str, list[str]] = {}
    for qid in qids:
        groups.setdefault(query_key(qid, queries), []).append(qid)
    ranked = [sorted(group, key=lambda q: _rank_key(salt, q)) for group in groups.values()]
    return sorted(ranked, key=lambda group: _rank_key(salt, group[0]))


def carve_dev(train: Qrels, queries: dict[str, str], fraction: float, salt: str = "dev") -> tuple[Qrels, Qrels]:
    """Move a deterministic ``fraction`` of train queries into a dev split (hash order, seed-free).

    Whole groups of identical (normalised) query text move together, so no twin is left in train to leak
    its dev twin's answers; the dev size is ``fraction`` of the queries as closely as the groups allow.
    """
    groups = query_groups(train, queries, salt)
    target = max(1, round(len(train) * fraction)) if len(groups) > 1 else 0
    dev_ids: set[str] = set()
    for group in groups:
        if 2 * (target - len(dev_ids)) > len(group):  # taking the group brings dev closer to the target
            dev_ids.update(group)
    if target and not dev_ids:  # every group is over twice the target: the first one
        dev_ids.update(groups[0])
    return {q: d for q, d in train.items() if q not in dev_ids}, {q: d for q, d in train.items() if q in dev_ids}


def _limit(qrels: Qrels, limit: int | None, salt: str, queries: dict[str, str] | None = None) -> Qrels:
    """At most ``limit`` queries in hash order, twin groups kept whole (one group if none fits)."""
    if limit is None or len(qrels) <= limit:
        return qrels
    groups = query_groups(qrels, queries or {}, salt)
    keep: set[str] = set()
    for group in groups:
        if len(keep) + len(group) <= limit:
            keep.update(group)
            if len(keep) == limit:
                break
    if not keep:
        keep.update(groups[0])
    return {q: d for q, d in qrels.items() if q in keep}


def file_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        with _reading(path, "dataset"), path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------- public API


def resolve_source(cfg: DatasetConfig, data_dirs: list[str] | None = None) -> Path:
    """Turn a dataset ``source`` into a directory (downloading ``beir:<name>`` when needed)."""
    source = cfg.source
    if source.startswith("beir:"):
        return resolve_beir(source.removeprefix("beir:"), data_dirs, checksum=cfg.checksum)
    if source.startswith("mteb:"):
        from negbench.download import cache_root
        from negbench.mteb_tasks import materialize_mteb_task  # imports mteb (slow): only when asked

        return materialize_mteb_task(source.removeprefix("mteb:"), cache_root() / "mteb")
    if ":" in source.split("/")[0] and not Path(source).exists():
        scheme = source.split(":", 1)[0]
        raise DataError(f"unknown source scheme {scheme!r}: use a directory path, beir:<name> or mteb:<Task>",
                        field="source")
    path = Path(source).expanduser()
    if not path.is_dir():
        raise DataError(f"directory not found: {path}", field="source")
    if not is_beir_dir(path):
        raise DataError(f"not a BEIR-layout directory (needs corpus.jsonl and queries.jsonl): {path}",
                        field="source")
    return path


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
    train = _limit(train, cfg.max_train_queries, "train", queries)
    dev = _limit(dev, cfg.max_dev_queries, "dev", queries)
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
        test = _limit(read_qrels(test_path, corpus.index, queries, test_warnings), cfg.max_test_queries, "test",
                      queries)
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
    for _, line in _lines(path, "qrels"):
        parts = [p.strip() for p in line.rstrip("\n").split("\t")]
        if len(parts) == 3 and parts[2].lstrip("-").isdigit() and parts[0] in queries and parts[1] in corpus_ids:
            rows.setdefault(parts[0], set()).add(parts[1])
    kept = _limit({q: {} for q in rows}, max_queries, "test", queries)  # type: ignore[arg-type]
    return {d for q in kept for d in rows[q]}
