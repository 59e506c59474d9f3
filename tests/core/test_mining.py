"""Mining services: cost accounting that does not depend on which job filled a cache."""

from __future__ import annotations

import pytest

from negbench.core.mining import MiningServices
from negbench.strategies.dense import DenseNegatives
from negbench.testing import make_context


def _charged_mine(ctx) -> float:
    import time

    ctx.services.begin_run()
    start = time.perf_counter()
    DenseNegatives().mine(ctx)
    return ctx.services.charged_seconds(time.perf_counter() - start)


def test_mine_seconds_are_the_same_whether_the_cache_was_cold_warm_or_on_disk(tmp_path, toy_data, tiny_model):
    """dense's top-k is computed from the corpus and query embeddings; a job that found the top-k cached
    (in memory, or on disk from an earlier job) used to be charged nothing for the embeddings."""
    ctx = make_context(toy_data, tiny_model, tmp_path / "cache")
    cold = _charged_mine(ctx)
    warm = _charged_mine(ctx)  # memory hit of the outer artefact: its inputs are never looked up
    fresh = make_context(toy_data, tiny_model, tmp_path / "cache")  # another job: disk hit
    assert isinstance(fresh.services, MiningServices) and fresh.services is not ctx.services
    disk = _charged_mine(fresh)
    assert fresh.services.encode_calls == 0  # really served from disk
    assert cold > 0.01
    assert warm == pytest.approx(cold, rel=0.25, abs=0.01)
    assert disk == pytest.approx(cold, rel=0.25, abs=0.01)
