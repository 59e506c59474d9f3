"""One place that sets a run up: its data budget and the :class:`~negbench.core.context.Context` its strategy
sees, with the run's length on it. The suite's final runs and trials, ``negbench plan`` and the training loop
all go through here, so what ``plan`` shows is what trains."""

from __future__ import annotations

from collections.abc import Sequence

from negbench.config.suite import TrainingConfig
from negbench.core.budget import Budget, budget_for, steps_run
from negbench.core.context import Context
from negbench.core.mining import MiningServices
from negbench.core.strategy import Strategy
from negbench.data.dataset import RetrievalDataset, TrainingExample

__all__ = ["apply_budget", "epochs_run", "run_context"]


def epochs_run(training: TrainingConfig, budget: Budget) -> int:
    """Epochs a run trains: ``epochs``, or as many as ``max_steps`` reach (schedules that span the run —
    curricula, refresh cadences — must see the same length the trainer runs)."""
    if training.max_steps > 0:
        return -(-training.max_steps // budget.steps_per_epoch)
    return training.epochs


def apply_budget(ctx: Context, training: TrainingConfig, budget: Budget) -> None:
    """Put the run's length on ``ctx``: steps per epoch, total steps, and the epochs the trainer will run."""
    ctx.steps_per_epoch, ctx.total_steps = budget.steps_per_epoch, steps_run(training, budget)
    ctx.epochs = epochs_run(training, budget)


def run_context(
    strategy: Strategy,
    dataset: RetrievalDataset,
    examples: Sequence[TrainingExample],
    services: MiningServices,
    training: TrainingConfig,
    suite_training: TrainingConfig,
    seed: int,
    guide: MiningServices | None = None,
) -> tuple[Budget, Context]:
    """The run's budget (:func:`~negbench.core.budget.budget_for`; a ``ConfigError`` when its settings cannot
    make one full batch) and the context its strategy is set up with."""
    budget = budget_for(strategy, len(examples), training, suite_training)
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
    return budget, ctx
