"""The data-budget rule: every composing strategy trains the same examples per epoch in full batches."""

from __future__ import annotations

from types import SimpleNamespace
from typing import ClassVar

import pytest

from negbench.config.suite import TrainingConfig
from negbench.core.batching import pack, random_batches
from negbench.core.budget import EQUAL, BudgetError, budget_for, enforce
from negbench.core.strategy import Strategy
from negbench.data.dataset import TrainingExample
from negbench.strategies.large_batch import LargeBatch
from negbench.strategies.ngame import NGAME
from negbench.strategies.rs2 import RS2
from negbench.strategies.tas_b import TASB

SUITE = TrainingConfig(batch_size=8, epochs=1)


def _epochs(ctx, strategy, epochs=3):
    budget = budget_for(strategy, len(ctx.examples), SUITE, SUITE)
    ctx.steps_per_epoch = budget.steps_per_epoch
    strategy.setup(ctx)
    return budget, [
        enforce(strategy.batches(ctx, e), budget, len(ctx.examples), strategy.name, e) for e in range(epochs)
    ]


@pytest.mark.parametrize(
    "strategy",
    [
        TASB.from_params({"n_clusters": 6}),
        TASB.from_params({"n_clusters": 12, "clusters_per_batch": 2}),
        NGAME.from_params({"cluster_size": 5}),
    ],
    ids=["tas-b", "tas-b-2", "ngame"],
)
def test_composers_fill_every_batch_with_the_equal_budget(ctx, strategy):
    """TAS-B used to emit one (small) batch per cluster: 66 steps of median 8 against in-batch's 27 of 32."""
    ctx.batch_size = SUITE.batch_size
    budget, epochs = _epochs(ctx, strategy)
    assert budget.reason == EQUAL
    assert budget.steps_per_epoch == len(ctx.examples) // 8
    for batches in epochs:
        assert len(batches) == budget.steps_per_epoch
        assert {len(b) for b in batches} == {8}
    assert epochs[0] != epochs[1]  # each epoch composes its own batches


def test_rs2_and_large_batch_declare_their_budget(ctx):
    n = len(ctx.examples)
    rs2 = RS2.from_params({"fraction": 0.5})
    budget = budget_for(rs2, n, SUITE, SUITE)
    assert budget.examples_per_epoch == (round(0.5 * n) // 8) * 8 and "fraction 0.5" in budget.reason
    ctx.batch_size = 8
    ctx.steps_per_epoch = budget.steps_per_epoch
    assert all(len(b) == 8 for b in enforce(rs2.batches(ctx, 1), budget, n, "rs2", 1))
    big = TrainingConfig(batch_size=32, epochs=1)
    budget = budget_for(LargeBatch(), n, big, SUITE)
    assert budget.steps_per_epoch == n // 32 and budget.reason == "batch_size 32 (suite: 8)"


def test_a_composer_that_emits_small_batches_is_refused(ctx):
    class Clustered(Strategy):
        name = "small-batches"

        def batches(self, ctx, epoch):
            return [list(range(i, min(i + 3, len(ctx.examples)))) for i in range(0, len(ctx.examples), 3)]

    budget = budget_for(Clustered(), len(ctx.examples), SUITE)
    with pytest.raises(BudgetError, match="composed 0 full batches of 8"):
        enforce(Clustered().batches(ctx, 0), budget, len(ctx.examples), "small-batches", 0)
    with pytest.raises(BudgetError, match="twice"):
        enforce([[0, 1, 2, 3, 4, 5, 6, 7]] * 20, budget, len(ctx.examples), "dup", 0)
    with pytest.raises(BudgetError, match="batch of 9"):
        enforce([list(range(9))], budget, len(ctx.examples), "big", 0)


def test_pack_fills_the_tail_when_the_stream_ends_with_clashing_examples():
    """Examples of one query cannot share a batch: a stream ending with one query's five positives left only
    three full batches of 8 (35 examples need four); the tail is filled by swapping them into earlier batches."""
    examples = [TrainingExample(f"q{i}", f"query {i}", i) for i in range(30)]
    examples += [TrainingExample("qx", "query x", 30 + j) for j in range(5)]
    corpus = SimpleNamespace(texts=[f"doc {d}" for d in range(35)])
    fake = SimpleNamespace(examples=examples, batch_size=8, dataset=SimpleNamespace(corpus=corpus))
    batches = pack(fake, range(35))
    full = [b for b in batches if len(b) == 8]
    assert len(full) == 4
    for b in full:
        assert len({examples[i].query_id for i in b}) == 8
    assert sorted(i for b in batches for i in b) == list(range(35))


def test_random_batches_are_full(ctx):
    ctx.batch_size = 8
    for epoch in range(5):
        sizes = [len(b) for b in random_batches(ctx, epoch)]
        assert sizes.count(8) >= len(ctx.examples) // 8


class LengthRecorder(Strategy):
    """Records the run's length as its ``setup`` sees it."""

    name = "length-recorder"
    seen: ClassVar[dict] = {}

    def setup(self, ctx):
        LengthRecorder.seen = {
            "steps_per_epoch": ctx.steps_per_epoch,
            "epochs": ctx.epochs,
            "total_steps": ctx.total_steps,
        }


def test_a_strategy_knows_the_runs_length_at_setup(tmp_path, toy_data, tiny_model):
    """``ctx.total_steps`` was set only inside ``train``, after ``setup``: in a suite run ar2's check of its
    warm-up against the run's steps never saw it."""
    from negbench.run.plan import plan_suite
    from negbench.run.suite import SuiteRunner
    from tests.cli.test_cli import suite_text
    from tests.run.test_isolation import _with

    path = tmp_path / "suite.toml"
    path.write_text(
        suite_text(toy_data, tiny_model, tmp_path / "out", strategies=("length-recorder",), extra="max_steps = 7")
    )
    rows = SuiteRunner(plan_suite(path, reg=_with(LengthRecorder))).run().rows()
    assert rows["status"].to_list() == ["ok"] and rows["steps"].to_list() == [7]
    assert LengthRecorder.seen["total_steps"] == 7
    assert LengthRecorder.seen["epochs"] == -(-7 // LengthRecorder.seen["steps_per_epoch"])


def test_every_per_strategy_training_override_is_named_in_the_budget(ctx):
    """A strategy's own ``scale``, ``num_negatives`` or ``lr`` used to leave the budget at "equal"."""
    n = len(ctx.examples)
    mine = SUITE.model_copy(update={"scale": 50.0, "num_negatives": 3, "lr": 1e-4, "epochs": 2, "max_steps": 7})
    reason = budget_for(Strategy(), n, mine, SUITE).reason
    for part in (
        f"scale 50.0 (suite: {SUITE.scale})",
        f"num_negatives 3 (suite: {SUITE.num_negatives})",
        f"lr 0.0001 (suite: {SUITE.lr})",
        f"epochs 2 (suite: {SUITE.epochs})",
        f"max_steps 7 (suite: {SUITE.max_steps})",
    ):
        assert part in reason
    tuned = SUITE.model_copy(update={"epochs": 4, "lr": 1e-4})  # a tuning trial's values: named, marked tuned
    reason = budget_for(Strategy(), n, tuned, SUITE, tuned=("epochs", "lr")).reason
    assert f"epochs 4 (suite: {SUITE.epochs}, tuned)" in reason and f"lr 0.0001 (suite: {SUITE.lr}, tuned)" in reason
    assert budget_for(Strategy(), n, SUITE, SUITE).reason == EQUAL
