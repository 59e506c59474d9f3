"""The equal-compute rule (``[training] budget = "compute"``): each strategy trains the steps that make its estimated
preparation + training compute the baseline's under the equal-data rule; a strategy whose preparation alone exceeds
that budget is refused."""

from __future__ import annotations

import dataclasses

import pytest

from negbench.config.suite import TrainingConfig
from negbench.core.budget import COMPUTE, DATA, BudgetError, ComputeEstimate, steps_for_compute, steps_run
from negbench.core.setup import Baseline, run_context
from negbench.core.strategy import Strategy
from negbench.strategies.ance import ANCE
from negbench.strategies.dense import DenseNegatives
from negbench.strategies.in_batch import InBatch

COMPUTE_RULE = TrainingConfig(epochs=2, batch_size=16, lr=1e-3, num_negatives=1, budget="compute")


def _linear(prep: float, per_step: float):
    return lambda steps: ComputeEstimate(steps, prep, steps * per_step)


def test_the_steps_are_the_most_that_stay_within_the_budget():
    assert steps_for_compute(_linear(10.0, 3.0), 100.0, "s", "b").steps == 30  # 10 + 30·3 = 100 fits, 31 does not
    assert steps_for_compute(_linear(0.0, 1.0), 1e6, "s", "b").steps == 1_000_000
    with pytest.raises(BudgetError, match=r"its preparation alone .* exceeds the compute budget.* baseline 'b'"):
        steps_for_compute(_linear(100.0, 1.0), 100.0, "s", "b")
    with pytest.raises(BudgetError, match="its preparation and one training step"):
        steps_for_compute(_linear(99.0, 2.0), 100.0, "s", "b")


def _run(ctx, strategy, training=COMPUTE_RULE):
    baseline = Baseline("in-batch", InBatch(), training)
    return run_context(strategy, ctx.dataset, ctx.examples, ctx.services, training, training, 0, baseline=baseline)


def test_each_strategy_gets_the_baselines_compute(ctx):
    """The baseline trains its equal-data steps; ``dense`` pays for its mining and its negative column with fewer
    steps; ``ance`` refreshing every step pays for every refresh with fewer still."""
    data = COMPUTE_RULE.model_copy(update={"budget": DATA})
    equal, _ = run_context(InBatch(), ctx.dataset, ctx.examples, ctx.services, data, data, 0, estimate=True)
    base, base_ctx = _run(ctx, InBatch())
    assert equal.total_steps is None and equal.rule == DATA and equal.estimate.steps == steps_run(data, equal)
    assert base.rule == COMPUTE and base.total_steps == equal.estimate.steps == base_ctx.total_steps
    target = equal.estimate.total_flops
    assert base.estimate.total_flops == target and base.reason.startswith(f"compute: {base.total_steps} steps")
    dense, dense_ctx = _run(ctx, DenseNegatives())
    assert 0 < dense.total_steps < base.total_steps and dense.estimate.prep_flops > 0
    assert dense.estimate.total_flops <= target < _estimate(ctx, DenseNegatives(), dense.total_steps + 1)
    assert dense_ctx.total_steps == dense.total_steps and dense_ctx.epochs == -(-dense.total_steps // 5)
    ance, _ = _run(ctx, ANCE.from_params({"refresh_every": 1}))
    assert ance.total_steps < dense.total_steps and ance.estimate.prep_flops > dense.estimate.prep_flops


def _estimate(ctx, strategy, steps: int) -> float:
    """The estimated compute of ``steps`` steps (under the data rule with ``max_steps``)."""
    data = COMPUTE_RULE.model_copy(update={"budget": DATA, "max_steps": steps})
    budget, _ = run_context(strategy, ctx.dataset, ctx.examples, ctx.services, data, data, 0, estimate=True)
    return budget.estimate.total_flops


class Expensive(Strategy):
    """Declares a preparation larger than any toy budget."""

    name = "expensive"

    def workload(self, ctx, sizes):
        return dataclasses.replace(super().workload(ctx, sizes), prep=1e18)


def test_a_strategy_whose_preparation_alone_exceeds_the_budget_is_refused(ctx):
    with pytest.raises(BudgetError, match=r"'expensive': its preparation alone .* exceeds the compute budget"):
        _run(ctx, Expensive())


def test_the_data_rule_keeps_its_steps_and_estimates_only_when_asked(ctx):
    data = COMPUTE_RULE.model_copy(update={"budget": DATA})
    budget, run = run_context(DenseNegatives(), ctx.dataset, ctx.examples, ctx.services, data, data, 0)
    assert budget.estimate is None and budget.total_steps is None and budget.rule == DATA
    assert run.total_steps == steps_run(data, budget) == 2 * budget.steps_per_epoch
