"""Batch packing and the budget's remainder: every example is trained in every epoch the data allows, the
examples the budget must leave out rotate, and the coverage of a run is recorded as it trains."""

from __future__ import annotations

import math
from collections import Counter

from negbench.config.suite import TrainingConfig
from negbench.core.batching import clash_keys, pack, random_batches
from negbench.core.budget import Budget, budget_for
from negbench.core.context import Context
from negbench.core.strategy import Strategy
from negbench.core.training.feeding import StrategyBatchSampler
from negbench.data.beir import Corpus
from negbench.data.dataset import RetrievalDataset, TrainingExample


def synthetic_context(positives: list[int], batch_size: int, twins: int = 0, seed: int = 0) -> Context:
    """A context over synthetic data: query ``q`` has ``positives[q]`` positive documents of its own (distinct
    texts); the first ``twins`` queries have the text of the next ``twins`` (twins: same text, other ids)."""
    texts: list[str] = []
    examples: list[TrainingExample] = []
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for q, count in enumerate(positives):
        qid = f"q{q}"
        queries[qid] = f"query {q + twins if q < twins else q}"
        for _ in range(count):
            examples.append(TrainingExample(qid, queries[qid], len(texts)))
            qrels.setdefault(qid, {})[f"d{len(texts)}"] = 1
            texts.append(f"document {len(texts)}")
    corpus = Corpus([f"d{i}" for i in range(len(texts))], texts)
    dataset = RetrievalDataset("synthetic", None, corpus, queries, {"train": qrels, "dev": {}}, "synthetic")
    return Context(
        dataset=dataset,
        examples=examples,
        services=None,  # type: ignore[arg-type]
        num_negatives=0,
        batch_size=batch_size,
        epochs=1,
        seed=seed,
    )


def train_epochs(ctx: Context, epochs: int, strategy: Strategy | None = None) -> tuple[Budget, list[list[list[int]]]]:
    """The batches the trainer's sampler yields in each of ``epochs`` epochs (the run's length set on ``ctx``
    as the training loop sets it)."""
    strategy = strategy or Strategy()
    n = len(ctx.examples)
    budget = budget_for(strategy, n, TrainingConfig(batch_size=ctx.batch_size, epochs=epochs))
    ctx.epochs, ctx.steps_per_epoch, ctx.total_steps = epochs, budget.steps_per_epoch, epochs * budget.steps_per_epoch
    sampler = StrategyBatchSampler(list(range(n)), ctx, strategy, budget, batch_size=ctx.batch_size, drop_last=False)
    out = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        out.append([list(b) for b in sampler])
    return budget, out


def assert_no_clash(ctx: Context, batch: list[int]) -> None:
    keys = Counter(key for i in batch for key in clash_keys(ctx, i))
    assert max(keys.values()) == 1, f"clashing examples share a batch: {batch}"


def test_a_query_with_nine_positives_is_trained_as_often_as_the_others():
    """A query with 9 positives among 91 single-positive ones (100 examples, batches of 8: 12 batches, 4
    examples left out per epoch). Over 20 epochs 80 example-epochs are left out: no example needs to miss more
    than one epoch. The packing deferred clashing examples to the tail of the stream and the budget cut the
    tail, so the 9 positives were trained in about 0.6 of the epochs."""
    ctx = synthetic_context([9] + [1] * 91, batch_size=8)
    epochs = 20
    budget, composed = train_epochs(ctx, epochs)
    n = len(ctx.examples)
    assert budget.steps_per_epoch == 12
    times = Counter(i for batches in composed for batch in batches for i in batch)
    for batches in composed:
        assert len(batches) == 12 and all(len(b) == 8 for b in batches)
        for batch in batches:
            assert_no_clash(ctx, batch)
    floor = epochs - math.ceil(epochs * (n - budget.examples_per_epoch) / n)  # 19 of 20
    assert min(times[i] for i in range(n)) >= floor
    nine = [times[i] for i in range(9)]
    assert min(nine) >= min(times[i] for i in range(9, n))


def test_the_left_out_examples_rotate_through_all_examples():
    """4 of 100 examples are left out per epoch: in 25 epochs each example is left out exactly once (no
    example a second time before every other one was left out once), twins and many positives included."""
    ctx = synthetic_context([5] + [3] * 4 + [1] * 83, batch_size=8, twins=6)
    assert len(ctx.examples) == 100
    _, composed = train_epochs(ctx, 25)
    left_out = Counter(i for batches in composed for i in set(range(100)) - {i for b in batches for i in b})
    assert sorted(left_out) == list(range(100)) and set(left_out.values()) == {1}


def test_as_many_positives_as_batches_fills_every_batch_every_epoch():
    """A query with 12 positives and 12 batches, no remainder: every example in every epoch."""
    ctx = synthetic_context([12] + [1] * 84, batch_size=8)
    _, composed = train_epochs(ctx, 5)
    for batches in composed:
        assert sorted(i for b in batches for i in b) == list(range(96))
        for batch in batches:
            assert_no_clash(ctx, batch)


def test_the_coverage_of_a_run_is_recorded_as_it_trains():
    from negbench.core.batching import Coverage, recorded_coverage

    ctx = synthetic_context([9] + [1] * 91, batch_size=8)
    train_epochs(ctx, 20)
    record = recorded_coverage(ctx)
    assert record.recorded == set(range(20)) and record.share == record.best == 0.95
    # max_steps ends the last epoch early: only the batches trained count
    partial = Coverage(examples=16, epochs=2, steps_per_epoch=2, total_steps=3, batch_size=8)
    partial.add(0, [list(range(8)), list(range(8, 16))])
    partial.add(0, [list(range(8)), list(range(8, 16))])  # an epoch is counted once
    partial.add(1, [list(range(8, 16)), list(range(8))])
    assert partial.trained == [1] * 8 + [2] * 8 and partial.share == 0.5 and partial.best == 0.5


def test_pack_keeps_the_stream_where_nothing_clashes_and_is_deterministic():
    ctx = synthetic_context([1] * 37, batch_size=8)
    order = list(range(36, -1, -1))
    batches = pack(ctx, order)
    assert batches[:4] == [order[j : j + 8] for j in range(0, 32, 8)] and batches[4:] == [order[32:]]
    assert random_batches(ctx, 3) == random_batches(ctx, 3) != random_batches(ctx, 4)


def test_pack_fills_the_batches_asked_for_from_the_front_of_the_stream():
    """``batches``: the front of the stream fills them; a later example stands in for one that fits nowhere."""
    ctx = synthetic_context([3] + [1] * 29, batch_size=4)
    order = [0, 1, 2, *range(3, 32)]  # the query's three positives first: two batches hold only two of them
    batches = pack(ctx, order, batches=2)
    trained = [i for b in batches[:2] for i in b]
    assert all(len(b) == 4 for b in batches[:2])
    assert len({0, 1, 2} & set(trained)) == 2 and set(trained) - {0, 1, 2} == {3, 4, 5, 6, 7, 8}
    for batch in batches[:2]:
        assert_no_clash(ctx, batch)
