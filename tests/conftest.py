"""Shared fixtures: one toy BEIR dataset and one tiny random encoder per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from negbench.testing import make_context, toy_setup

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SCIFACT = Path(os.environ.get("NEGBENCH_SCIFACT", REPO.parent / "shared" / "data" / "scifact"))


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("toy-session")


@pytest.fixture(scope="session")
def toy_data(toy_root) -> Path:
    return toy_setup(toy_root)[0]


@pytest.fixture(scope="session")
def tiny_model(toy_root) -> Path:
    return toy_setup(toy_root)[1]


@pytest.fixture
def ctx(toy_data, tiny_model, toy_root):
    """A fresh Context over the toy corpus (seed 0, 2 negatives, batch 8)."""
    return make_context(toy_data, tiny_model, toy_root / "cache")


@pytest.fixture(scope="session")
def scifact() -> Path:
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact not found at {SCIFACT}")
    return SCIFACT
