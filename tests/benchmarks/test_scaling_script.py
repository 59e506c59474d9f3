"""The scaling script's parts (``tests/benchmarks/scaling.py``): its corpora load, its table and its docs section."""

from __future__ import annotations

import argparse
import json

import pytest

from negbench.config.suite import DatasetConfig
from negbench.data.dataset import load_dataset
from tests.benchmarks import scaling


def test_a_synthetic_corpus_loads_with_every_query_judging_a_document(tmp_path):
    root = scaling.write_corpus(tmp_path / "beir", 300, 40, seed=0)
    dataset = load_dataset(DatasetConfig(source=str(root)))
    assert len(dataset.corpus) == 300 and len(dataset.queries) == 40
    assert len(dataset.train) + len(dataset.dev) == 20 and len(dataset.test()) == 20
    lengths = [len(json.loads(line)["text"].split()) for line in (root / "corpus.jsonl").read_text().splitlines()]
    assert min(lengths) >= 50 and max(lengths) <= 150
    again = scaling.write_corpus(tmp_path / "again", 300, 40, seed=0)
    assert (again / "corpus.jsonl").read_bytes() == (root / "corpus.jsonl").read_bytes()


def _args() -> argparse.Namespace:
    return argparse.Namespace(threads=1, seed=0, k=100, dim=32, layers=2, max_seq_length=32)


def _stage(seconds: float, mb: float) -> dict:
    return {"seconds": seconds, "peak_mb": 300 + mb, "added_mb": mb}


def test_the_table_gives_growth_exponents_and_the_fastest_stage():
    rows = {
        1_000: {"load": _stage(1.0, 10), "bm25": _stage(2.0, 20)},
        10_000: {"load": _stage(10.0, 100), "bm25": _stage(200.0, 200)},
    }
    assert scaling.growth(rows, "load") == [pytest.approx(1.0)]
    assert scaling.growth(rows, "bm25") == [pytest.approx(2.0)]
    table = scaling.render(rows, _args(), 2_000)
    assert "| 10,000 | 10.00 s / 400 MB (+100) | 200.00 s / 500 MB (+200) |" in table
    assert "| bm25 | 2.00 | 1.00 |" in table
    assert "**bm25** (time exponent 2.00)" in table


def test_the_docs_section_is_replaced_between_its_markers_only(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text(f"intro\n\n{scaling.BEGIN}\n\nold\n\n{scaling.END}\n\nafter\n", encoding="utf-8")
    scaling.write_docs(path, "| a |\n")
    assert path.read_text(encoding="utf-8") == f"intro\n\n{scaling.BEGIN}\n\n| a |\n\n{scaling.END}\n\nafter\n"
    path.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        scaling.write_docs(path, "| a |\n")
