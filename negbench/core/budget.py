"""The data-budget rule: every strategy trains on the same examples per epoch, in batches of exactly
``batch_size``.

A run's :class:`Budget` is fixed before training from the number of training examples, the run's batch
size and what the strategy declares (:meth:`Strategy.examples_per_epoch`, :meth:`Strategy.budget_reason`):
``steps_per_epoch = examples_per_epoch // batch_size``. Each epoch the trainer takes the first
``steps_per_epoch`` full batches the composer returns; the trailing remainder (fewer than ``batch_size``
examples, in short batches) is dropped, the same way for every strategy. Which examples form the remainder of
negbench's own random batches rotates across epochs (:func:`negbench.core.batching.rotate_remainder`, applied
before :func:`enforce`); a composer's coverage is measured. A composer that cannot fill that
many batches, returns a batch larger than ``batch_size`` or repeats an example is refused with a
:class:`BudgetError` rather than silently trained on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from negbench.errors import BudgetError, ConfigError

if TYPE_CHECKING:
    from negbench.config.suite import TrainingConfig
    from negbench.core.strategy import Strategy

__all__ = ["EQUAL", "Budget", "budget_for", "enforce", "overrides", "steps_run"]

EQUAL = "equal"


@dataclass(frozen=True)
class Budget:
    """What one training run may consume per epoch."""

    batch_size: int
    steps_per_epoch: int
    examples_per_epoch: int  # trained examples: steps_per_epoch · batch_size
    available: int  # training examples the strategy composes from each epoch
    reason: str = EQUAL  # "equal", or why this run's budget differs by design


def budget_for(
    strategy: Strategy, n_examples: int, training: TrainingConfig, suite_training: TrainingConfig | None = None
) -> Budget:
    """The budget of ``strategy`` on ``n_examples`` training examples under ``training``.

    Differences by design are named: the strategy's own declaration (e.g. RS2's fraction) and every training
    setting that differs from ``suite_training`` (the suite's ``[training]``, with a tuning trial's values when
    tuned: those are tuned for every strategy alike), e.g. ``large-batch``'s batch size or a strategy's own
    ``scale``, ``num_negatives`` or ``lr``.
    """
    available = int(strategy.examples_per_epoch(n_examples))
    if not 0 < available <= n_examples:
        raise ConfigError(f"strategy {strategy.name!r} declares {available} examples per epoch of {n_examples}")
    steps = available // training.batch_size
    if steps < 1:
        raise ConfigError(
            f"batch_size {training.batch_size} is larger than the {available} training examples "
            f"per epoch: not one full batch",
            field="training.batch_size",
        )
    reasons = [r for r in [strategy.budget_reason()] if r]
    if suite_training is not None:
        reasons += overrides(training, suite_training)
    return Budget(
        training.batch_size, steps, steps * training.batch_size, available, "; ".join(reasons) if reasons else EQUAL
    )


def overrides(training: TrainingConfig, reference: TrainingConfig) -> list[str]:
    """``"lr 3e-05 (suite: 2e-05)"`` for every training setting of ``training`` that differs from ``reference``."""
    return [
        f"{key} {getattr(training, key)} (suite: {getattr(reference, key)})"
        for key in type(training).model_fields
        if getattr(training, key) != getattr(reference, key)
    ]


def steps_run(training: TrainingConfig, budget: Budget) -> int:
    """Optimiser steps a run trains: ``max_steps`` when set, else ``epochs`` of the budget's steps."""
    return training.max_steps if training.max_steps > 0 else training.epochs * budget.steps_per_epoch


def enforce(batches: list[list[int]], budget: Budget, n_examples: int, who: str, epoch: int) -> list[list[int]]:
    """The first ``budget.steps_per_epoch`` full batches of a composer's epoch; refuse broken compositions."""
    batches = [list(b) for b in batches]  # a composer may return any iterable of iterables
    seen: set[int] = set()
    for batch in batches:
        if len(batch) > budget.batch_size:
            raise BudgetError(
                f"strategy {who!r} composed a batch of {len(batch)} examples in epoch {epoch}; "
                f"batches must hold exactly batch_size = {budget.batch_size}"
            )
        for i in batch:
            if not 0 <= int(i) < n_examples:
                raise BudgetError(f"strategy {who!r} composed example index {i} (have {n_examples})")
            if int(i) in seen:
                raise BudgetError(f"strategy {who!r} put example {i} twice into epoch {epoch}")
            seen.add(int(i))
    full = [[int(i) for i in b] for b in batches if len(b) == budget.batch_size]
    if len(full) < budget.steps_per_epoch:
        sizes = ", ".join(f"{size}×{count}" for size, count in sorted(Counter(map(len, batches)).items()))
        raise BudgetError(
            f"strategy {who!r} composed {len(full)} full batches of {budget.batch_size} in epoch {epoch}, the "
            f"budget needs {budget.steps_per_epoch} ({budget.available} examples); batch sizes: {sizes}. A batch "
            f"composer must fill its batches (e.g. from the nearest clusters) rather than emit small ones; examples "
            f"of one query or one positive cannot share a batch, so a query with k positives needs k batches "
            f"(a smaller batch_size helps)"
        )
    return full[: budget.steps_per_epoch]
