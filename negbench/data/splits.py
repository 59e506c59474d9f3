"""Splitting queries deterministically and without leaks: twins (queries of the same normalised text) always
land on the same side, dev is carved from train by hash order, and subsets keep twin groups whole."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable

from negbench.data.beir import Qrels

__all__ = ["carve_dev", "limit_queries", "normalise_query", "query_groups", "query_key"]


def _rank_key(seed_text: str, item: str) -> str:
    return hashlib.sha256(f"{seed_text}\0{item}".encode()).hexdigest()


def normalise_query(text: str) -> str:
    """Query text as compared for twins: Unicode compatibility form (NFKC), case folded, punctuation dropped,
    runs of whitespace collapsed to one space. An uncased tokenizer (MiniLM's) reads "What is X?" and
    "what is x" alike, so they are one query: a twin left in training would carry its test twin's answer."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in folded)
    return " ".join(kept.split())


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


def limit_queries(qrels: Qrels, limit: int | None, salt: str, queries: dict[str, str] | None = None) -> Qrels:
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
