"""Shared inputs for the benchmarks (not in the default run: ``pytest tests/benchmarks --benchmark-only``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from negbench.config.suite import DatasetConfig
from negbench.data.dataset import RetrievalDataset, load_dataset
from negbench.testing import write_toy_beir


@pytest.fixture(scope="session", autouse=True)
def torch_threads():
    """Pin torch's CPU threads (default 1; ``$NEGBENCH_BENCH_THREADS``): on a shared machine, thread
    oversubscription makes timings swing by orders of magnitude; one thread keeps runs comparable."""
    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("NEGBENCH_BENCH_THREADS", "1")))
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def large_dataset(tmp_path_factory) -> RetrievalDataset:
    """A synthetic BEIR corpus of 10,000 topical documents (40 words each) with one query per document."""
    root: Path = write_toy_beir(
        tmp_path_factory.mktemp("bench-large") / "large",
        docs_per_topic=1250,
        words_per_doc=40,
        test_queries=500,
    )
    return load_dataset(DatasetConfig(source=str(root)))
