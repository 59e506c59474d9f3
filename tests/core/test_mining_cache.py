"""The mining services' disk cache when a file in it cannot be read (cut short by a crash, or left by another
version): the artefact is computed again, with a warning, never an exception (an ``EOFError`` reaching the command
line read as Ctrl-C: "interrupted", exit 130, on every rerun until the file was deleted)."""

from __future__ import annotations

import logging

import torch

from tests.core.test_token_counts import _services


def test_an_unreadable_cache_file_is_computed_again(tmp_path, toy_data, tiny_model, caplog):
    cache = tmp_path / "cache"
    first = _services(toy_data, tiny_model, cache).corpus_embeddings()
    files = sorted(cache.glob("*corpus-emb*.pt"))
    assert files, sorted(p.name for p in cache.iterdir())
    for path in files:
        path.write_bytes(b"")  # what a crash between the write and its flush left
    with caplog.at_level(logging.WARNING, logger="negbench.core.mining"):
        again = _services(toy_data, tiny_model, cache).corpus_embeddings()
    assert torch.equal(first, again)
    assert any("cannot be read" in r.getMessage() for r in caplog.records)
    assert all(path.stat().st_size > 0 for path in files)  # replaced by the recomputed artefact
