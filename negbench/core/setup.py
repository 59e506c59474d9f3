"""One place that sets a run up: its budget and the :class:`~negbench.core.context.Context` its strategy sees, with
the run's length on it. The suite's final runs and trials, ``negbench plan`` and the training loop all go through
here, so what ``plan`` shows is what trains.

**The compute estimate** (made before training; FLOPs as :mod:`negbench.core.compute` counts them, with the base
model's ``N`` and token counts of :meth:`~negbench.core.mining.MiningServices.token_sizes`, counted once per dataset ×
model and cached on disk): a run of ``S`` steps of ``B`` examples costs

* training: ``6·N · S · B · (t̄_example + K · t̄_doc)`` — ``t̄_example``: the mean tokens of a training example's
  query and positive (what a step of the first epoch holds on average, for every seed alike); ``K``: the suite's
  ``num_negatives`` when the strategy mines, each a document of the corpus's mean length ``t̄_doc``; GradCache
  (a strategy's ``mini_batch_size``) adds its gradient-free first pass, ``2·N`` per token;
* plus what the strategy declares (:meth:`~negbench.core.strategy.Strategy.workload`): its preparation (the
  corpus and query encodings its mining needs), its refreshes and its extra columns and own models.

**The equal-compute rule** (``[training] budget = "compute"``): the baseline's estimate under the equal-data rule is
the budget; every strategy trains the most steps whose estimated preparation + training compute stays within it
(:func:`~negbench.core.budget.steps_for_compute`), in the same full batches; the baseline trains its own steps.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from negbench.config.suite import TrainingConfig
from negbench.core.budget import (
    COMPUTE,
    DATA,
    EQUAL,
    Budget,
    ComputeEstimate,
    budget_for,
    steps_for_compute,
    steps_run,
    tflop,
)
from negbench.core.compute import EncoderSizes, Sizes, TokenCounts
from negbench.core.context import Context
from negbench.core.mining import MiningServices
from negbench.core.strategy import Strategy
from negbench.data.dataset import RetrievalDataset, TrainingExample

__all__ = ["Baseline", "apply_budget", "epochs_run", "estimator", "plain_loss_flops", "run_context", "sizes_of"]


@dataclass(frozen=True)
class Baseline:
    """The strategy whose equal-data compute is every run's budget under the equal-compute rule (``[suite]
    baseline``), with its training settings and teacher."""

    label: str
    strategy: Strategy
    training: TrainingConfig
    guide: MiningServices | None = None


def epochs_run(training: TrainingConfig, budget: Budget) -> int:
    """Epochs a run trains: ``epochs``, or as many as its steps reach (schedules that span the run — curricula,
    refresh cadences — must see the same length the trainer runs)."""
    if budget.total_steps is not None or training.max_steps > 0:
        return -(-steps_run(training, budget) // budget.steps_per_epoch)
    return training.epochs


def apply_budget(ctx: Context, training: TrainingConfig, budget: Budget) -> None:
    """Put the run's length on ``ctx``: steps per epoch, total steps, and the epochs the trainer will run."""
    ctx.steps_per_epoch, ctx.total_steps = budget.steps_per_epoch, steps_run(training, budget)
    ctx.epochs = epochs_run(training, budget)


def sizes_of(services: MiningServices, guide: MiningServices | None = None) -> Sizes:
    """The token counts the estimate reads: the base model's, and the teacher's when asked for."""
    return Sizes(services.token_sizes(), None if guide is None else guide.token_sizes)


def run_context(
    strategy: Strategy,
    dataset: RetrievalDataset,
    examples: Sequence[TrainingExample],
    services: MiningServices,
    training: TrainingConfig,
    suite_training: TrainingConfig,
    seed: int,
    guide: MiningServices | None = None,
    *,
    baseline: Baseline | None = None,
    estimate: bool = False,
    tuned: Collection[str] = (),
) -> tuple[Budget, Context]:
    """The run's budget (:func:`~negbench.core.budget.budget_for`; a ``ConfigError`` when its settings cannot make
    one full batch) and the context its strategy is set up with. Under the equal-compute rule (``training.budget``)
    the budget's steps are :func:`~negbench.core.budget.steps_for_compute`'s for ``baseline``'s compute (a
    ``BudgetError`` when the strategy's preparation alone exceeds it); the budget carries the compute estimate then,
    and under the equal-data rule when ``estimate`` is asked for."""
    budget = budget_for(strategy, len(examples), training, suite_training, tuned)
    ctx = Context(
        dataset=dataset,
        examples=list(examples),
        services=services,
        num_negatives=training.num_negatives,
        batch_size=training.batch_size,
        epochs=epochs_run(training, budget),
        seed=seed,
        steps_per_epoch=budget.steps_per_epoch,
        total_steps=steps_run(training, budget),
        guide_services=guide,
    )
    if training.budget != COMPUTE:
        if estimate:
            at = estimator(strategy, ctx, budget, training, sizes_of(services, guide))
            budget = dataclasses.replace(budget, estimate=at(steps_run(training, budget)))
        return budget, ctx
    if baseline is None:
        raise ValueError("training.budget = 'compute' needs the baseline whose compute is the budget")
    base_training = baseline.training.model_copy(update={"budget": DATA})
    target = run_context(
        baseline.strategy,
        dataset,
        examples,
        services,
        base_training,
        suite_training,
        seed,
        baseline.guide,
        estimate=True,
    )[0].estimate
    at = estimator(strategy, ctx, budget, training, sizes_of(services, guide))
    found = steps_for_compute(at, target.total_flops, strategy.name, baseline.label)
    reasons = [
        f"compute: {found.steps} step{'s' if found.steps != 1 else ''}, est. {tflop(found.total_flops)} of the "
        f"baseline {baseline.label}'s "
        f"{tflop(target.total_flops)}"
    ]
    reasons += [] if budget.reason == EQUAL else [budget.reason]
    budget = dataclasses.replace(
        budget, rule=COMPUTE, total_steps=found.steps, estimate=found, reason="; ".join(reasons)
    )
    apply_budget(ctx, training, budget)
    return budget, ctx


def estimator(
    strategy: Strategy, ctx: Context, budget: Budget, training: TrainingConfig, sizes: Sizes
) -> Callable[[int], ComputeEstimate]:
    """``steps ↦`` the estimated compute of ``strategy``'s run of that many steps (see the module docstring); the
    strategy's :meth:`~negbench.core.strategy.Strategy.workload` is asked of a fresh instance, on a copy of ``ctx``
    with that run length."""
    base = sizes.base
    per_example = base.mean_pair(ctx.examples)
    probe = type(strategy)(strategy.params)
    gradient_cache = bool(getattr(strategy, "mini_batch_size", None))

    def at(steps: int) -> ComputeEstimate:
        run = copy.copy(ctx)
        run.total_steps, run.epochs = steps, -(-steps // budget.steps_per_epoch)
        work = probe.workload(run, sizes)
        columns = per_example + (training.num_negatives * base.mean_doc if work.negatives else 0.0)
        tokens = steps * budget.batch_size * columns
        loss = base.train(tokens) + (base.encode(tokens) if gradient_cache else 0.0)
        return ComputeEstimate(steps, work.prep + work.refresh, loss + work.train)

    return at


def plain_loss_flops(
    examples: Sequence[TrainingExample], sizes: EncoderSizes | TokenCounts, training: TrainingConfig
) -> float:
    """Estimated FLOPs of ``training``'s run of the plain loss on ``examples`` (full batches; each example's query and
    positive forward and backward; no strategy's extra columns, mined negatives, own models or budget departures):
    one figure per dataset × model, the same for every strategy (what "auto" learning curves are decided from). It
    reads the tokens of the examples' queries and positives only: ``sizes`` may be their
    :meth:`~negbench.core.mining.MiningServices.token_counts`."""
    steps = training.max_steps if training.max_steps > 0 else training.epochs * (len(examples) // training.batch_size)
    return sizes.train(steps * training.batch_size * sizes.mean_pair(examples))
