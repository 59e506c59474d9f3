"""Reading BEIR-layout files: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``), with one-line errors that name the
file and line; and the content digest of a dataset's files."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from negbench.errors import DataError

__all__ = [
    "MAX_QRELS_SCORE",
    "Corpus",
    "Qrels",
    "file_digest",
    "is_qrels_header",
    "read_corpus",
    "read_lines",
    "read_qrels",
    "read_queries",
]

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


@contextmanager
def _reading(path: Path, kind: str) -> Iterator[None]:
    """Turn an unreadable file or one that is not UTF-8 into a one-line :class:`DataError` naming it."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise DataError(f"{kind} file is not UTF-8 text (byte {exc.start}: {exc.reason})", file=path) from None
    except OSError as exc:
        raise DataError(f"cannot read {kind} file: {exc.strerror or exc}", file=path) from None


def read_lines(path: Path, kind: str) -> Iterator[tuple[int, str]]:
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


def _read_jsonl(path: Path, kind: str) -> Iterator[dict]:
    """The rows of a JSONL file, one at a time: a caller keeps what it needs of each (a corpus's text), never the
    whole file as parsed rows (which held about twice the corpus's text at once)."""
    empty = True
    for lineno, line in read_lines(path, kind):
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
        empty = False
        yield row
    if empty:
        raise DataError(f"empty {kind} file", file=path)


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
    for lineno, line in read_lines(path, "qrels"):
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


def file_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        with _reading(path, "dataset"), path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
