"""Keeping the test split out of training, and subsets faithful to the full corpus.

*Test twins.* A train or dev query whose normalised text (:func:`negbench.data.splits.normalise_query`) is a test
query's is the test query under another id: it leaves training and dev, and so do its (query, positive) pairs.
Every test query of the test file counts (not only those a ``max_test_queries`` subset evaluates), so what
trains never depends on the test subset.

*Test-only share.* Documents relevant to an evaluated test query that no query of the run's training split
judges relevant are the ones a strategy drawing negatives from the corpus pushes away while no positive pair
pulls them back (an in-batch strategy never sees them). Their share of the evaluated corpus should look like
the full benchmark's (every test query, the full corpus and training split), but a ``max_corpus`` subset keeps
every judged document of the queries it keeps, which inflates it. So a subset keeps the longest hash-order
prefix of the test queries ``max_test_queries`` allows whose test-only share stays within :data:`SHARE_BOUND`
times the full benchmark's (the test queries it keeps always keep all their judged documents), and fills the rest
of ``max_corpus`` with a fixed sample of documents no test query judges. When not even one test query fits, the
limits do not allow it: every allowed test query is kept and :meth:`DataAudit.notes` says so. Without
``max_corpus`` nothing is cut; the shares are still reported (fewer training queries raise the share too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from negbench.data.beir import Qrels, read_lines
from negbench.data.splits import query_groups, query_key

__all__ = [
    "SHARE_BOUND",
    "DataAudit",
    "SubsetDraw",
    "draw_subset",
    "drop_test_twins",
    "judged",
    "read_test_rows",
    "relevant",
    "test_only_share",
]

SHARE_BOUND = 1.5  # a subset's test-only share may be at most this multiple of the full corpus's


@dataclass(frozen=True)
class DataAudit:
    """What loading did to keep the test split apart, and how the evaluated corpus compares with the full one.

    ``test_only_share``: documents relevant to an evaluated test query and to no query the run trains on, over
    the evaluated corpus; ``test_only_share_full``: the same for the full dataset (every test query, the whole
    training split, the full corpus). ``subset``
    describes what the limits kept (None: the full dataset). ``test_queries_cut``: (kept, allowed) when the share
    bound kept fewer test queries than ``max_test_queries`` allows; ``corpus_for_all``: the ``max_corpus`` that
    would keep all of them within the bound.
    """

    test_twins_dropped: tuple[str, ...] = ()
    test_only_share: float | None = None
    test_only_share_full: float | None = None
    subset: str | None = None
    test_queries_cut: tuple[int, int] | None = None
    corpus_for_all: int | None = None

    @property
    def share_ratio(self) -> float | None:
        """The evaluated corpus's test-only share over the full corpus's (None when either is unknown or 0)."""
        if self.test_only_share is None or not self.test_only_share_full:
            return None
        return self.test_only_share / self.test_only_share_full

    @property
    def within_bound(self) -> bool:
        if self.test_only_share is None or self.test_only_share_full is None:
            return True
        return self.test_only_share <= SHARE_BOUND * self.test_only_share_full + 1e-12

    def columns(self) -> dict[str, Any]:
        """The result row's columns (:class:`negbench.run.store.row.ResultRow`)."""
        return {
            "test_twins_dropped": len(self.test_twins_dropped),
            "subset": self.subset,
            "test_only_share": self.test_only_share,
            "test_only_share_full": self.test_only_share_full,
        }

    def notes(self, name: str) -> list[str]:
        """What ``negbench validate`` prints about dataset ``name``: test twins dropped, a subset's shares."""
        notes = []
        if n := len(self.test_twins_dropped):
            ids = ", ".join(self.test_twins_dropped[:8]) + (", …" if n > 8 else "")
            notes.append(
                f"{name}: {n} train/dev quer{'y' if n == 1 else 'ies'} with the text of a test query dropped, "
                f"with their pairs ({ids})"
            )
        if self.subset is not None and self.test_only_share is not None and self.test_only_share_full is not None:
            note = (
                f"{name}: subset of {self.subset}; documents relevant only to test queries make "
                f"{self.test_only_share:.1%} of the evaluated corpus (full corpus: {self.test_only_share_full:.1%})"
            )
            more = f" (max_corpus ≥ {self.corpus_for_all:,} would keep them all)" if self.corpus_for_all else ""
            if self.test_queries_cut is not None:
                kept, allowed = self.test_queries_cut
                note += (
                    f"; {kept} of the {allowed} test queries max_test_queries allows kept, so that this share "
                    f"stays within {SHARE_BOUND:g}× the full corpus's{more}"
                )
            if not self.within_bound and self.corpus_for_all is not None:
                note += (
                    f"; the limits do not allow {SHARE_BOUND:g}× the full corpus's share or less "
                    f"(max_corpus ≥ {self.corpus_for_all:,} would)"
                )
            elif not self.within_bound:
                note += (
                    f"; over {SHARE_BOUND:g}× the full corpus's share, as the training queries kept judge fewer "
                    "of the test queries' documents (nothing is cut without max_corpus)"
                )
            notes.append(note)
        return notes


def read_test_rows(path: Path, queries: dict[str, str], corpus_ids: dict[str, int]) -> Qrels:
    """The test file's judgements, read leniently for their ids (a malformed row is skipped here and reported
    by the final evaluation's strict read); rows naming an unknown query or document are skipped as there."""
    rows: Qrels = {}
    for _, line in read_lines(path, "qrels"):
        parts = [p.strip() for p in line.rstrip("\n").split("\t")]
        if len(parts) != 3 or parts[0] not in queries or parts[1] not in corpus_ids:
            continue
        try:
            rows.setdefault(parts[0], {})[parts[1]] = int(parts[2])
        except ValueError:
            continue
    return rows


def relevant(qrels: Qrels) -> set[str]:
    """Documents judged relevant (score > 0) for some query of ``qrels``."""
    return {d for docs in qrels.values() for d, rel in docs.items() if rel > 0}


def judged(qrels: Qrels) -> set[str]:
    """Documents judged (any score) for some query of ``qrels``."""
    return {d for docs in qrels.values() for d in docs}


def drop_test_twins(qrels: Qrels, test: Qrels, queries: dict[str, str]) -> tuple[Qrels, list[str]]:
    """``qrels`` without the queries whose :func:`query_key` (normalised text) is a test query's, and their ids."""
    test_keys = {query_key(q, queries) for q in test}
    kept = {q: d for q, d in qrels.items() if query_key(q, queries) not in test_keys}
    return kept, sorted(q for q in qrels if q not in kept)


def test_only_share(test: Qrels, trained: set[str], n_docs: int) -> float | None:
    """Share of ``n_docs`` documents relevant to a query of ``test`` and not in ``trained``."""
    return len(relevant(test) - trained) / n_docs if n_docs else None


@dataclass(frozen=True)
class SubsetDraw:
    """A ``max_corpus`` subset: the corpus indices kept (sorted), the test queries kept, and the cut (if any)."""

    keep_docs: list[int]
    test_ids: set[str]
    test_queries_cut: tuple[int, int] | None
    corpus_for_all: int | None


def draw_subset(
    corpus_ids: dict[str, int],
    splits: tuple[Qrels, ...],
    test_rows: Qrels,
    allowed: Qrels,
    trained: set[str],
    max_corpus: int,
    full_share: float | None,
    queries: dict[str, str],
) -> SubsetDraw:
    """At most ``max_corpus`` documents (more only when the kept queries judge more): every document judged for
    the kept train/dev queries (``splits``) and test queries, then a fixed sample of documents no test query
    judges. ``allowed``: the test queries ``max_test_queries`` allows; ``trained``: the documents the kept
    training queries judge relevant; ``full_share``: the full dataset's test-only share."""
    base = {d for split in splits for d in judged(split)}
    bound = SHARE_BOUND * (full_share or 0.0)
    kept = _test_prefix(allowed, base, trained, max_corpus, bound, queries)
    cut = (len(kept), len(allowed)) if kept and len(kept) < len(allowed) else None
    if not kept:  # not even one test query fits: cutting cannot reach the bound, keep what the limits allow
        kept = set(allowed)
    needed = base | judged({q: allowed[q] for q in kept})
    needed_idx = sorted(corpus_ids[d] for d in needed if d in corpus_ids)
    excluded = needed_idx + [corpus_ids[d] for d in judged(test_rows) if d in corpus_ids]
    rest = np.setdiff1d(np.arange(len(corpus_ids)), np.asarray(excluded, dtype=np.int64))
    fill = max(0, max_corpus - len(needed_idx))
    sample = np.random.default_rng(0).choice(rest, size=min(fill, len(rest)), replace=False).tolist()
    only_all = len(relevant(allowed) - trained)
    corpus_for_all = math.ceil(only_all / bound - 1e-9) if bound > 0 else None
    return SubsetDraw(sorted(needed_idx + sample), kept, cut, corpus_for_all)


def _test_prefix(
    allowed: Qrels, base: set[str], trained: set[str], max_corpus: int, bound: float, queries: dict[str, str]
) -> set[str]:
    """The longest prefix of ``allowed``'s twin groups in hash order (the order ``limit_queries`` keeps them in)
    whose test-only documents stay within ``bound`` of a corpus of ``max_corpus`` (or of what it must hold)."""
    docs, only, kept = set(base), set(), set()
    for group in query_groups(allowed, queries, "test"):
        rows = {q: allowed[q] for q in group}
        new_docs, new_only = judged(rows) - docs, relevant(rows) - trained - only
        n_docs = max(max_corpus, len(docs) + len(new_docs))
        if len(only) + len(new_only) > bound * n_docs + 1e-9:
            break
        docs |= new_docs
        only |= new_only
        kept.update(group)
    return kept
