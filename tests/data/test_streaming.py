"""Reading a corpus keeps one parsed row at a time (issue 28, scaling): at 1M documents, a list of every parsed
row held about twice the corpus's text besides the texts kept."""

from __future__ import annotations

import json
import tracemalloc
from collections import Counter

import pytest

from negbench.data.beir import read_corpus, read_queries
from negbench.errors import DataError


def test_reading_a_corpus_allocates_little_beyond_what_it_keeps(tmp_path):
    path = tmp_path / "corpus.jsonl"
    words = [f"w{i}" for i in range(50)]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(2_000):
            text = " ".join(words[(i + j) % 50] for j in range(150))
            fh.write(json.dumps({"_id": f"d{i}", "title": f"title {i}", "text": text}) + "\n")
    tracemalloc.start()
    try:
        corpus = read_corpus(path, Counter())
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(corpus) == 2_000
    assert peak < 1.4 * kept, f"peak {peak / 2**20:.1f} MiB for {kept / 2**20:.1f} MiB kept"  # every row held: 2.5x


def test_an_empty_file_is_still_an_error(tmp_path):
    path = tmp_path / "queries.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty queries file"):
        read_queries(path, Counter())
