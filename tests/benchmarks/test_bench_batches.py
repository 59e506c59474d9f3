"""Batch samplers: ``negbench.core.training.loop.random_batches`` (no shared query or positive within a batch)."""

from __future__ import annotations

import pytest

from negbench.core.batching import random_batches
from negbench.core.context import Context


@pytest.fixture(scope="module")
def large_ctx(large_dataset) -> Context:
    examples = large_dataset.training_examples()
    return Context(
        dataset=large_dataset,
        examples=examples,
        services=None,
        num_negatives=1,  # type: ignore[arg-type]
        batch_size=32,
        epochs=1,
        seed=0,
    )


@pytest.mark.parametrize("batch_size", [32, 256])
def test_random_batches_large(benchmark, large_ctx: Context, batch_size: int) -> None:
    large_ctx.batch_size = batch_size
    batches = benchmark(random_batches, large_ctx, 0)
    benchmark.extra_info.update(examples=len(large_ctx.examples), batch_size=batch_size)
    assert sum(len(b) for b in batches) == len(large_ctx.examples)


def test_random_batches_toy(benchmark, ctx: Context) -> None:
    batches = benchmark(random_batches, ctx, 0)
    assert sum(len(b) for b in batches) == len(ctx.examples)
