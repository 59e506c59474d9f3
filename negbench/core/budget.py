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

The **equal-compute rule** (``[training] budget = "compute"``) keeps the batches and changes the run's length: each
strategy trains the steps that make its estimated preparation + training compute equal to the baseline's under the
equal-data rule (:func:`steps_for_compute`; the estimate is :mod:`negbench.core.setup`'s). A strategy whose
preparation alone exceeds that is refused with a :class:`BudgetError`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from negbench.errors import BudgetError, ConfigError

if TYPE_CHECKING:
    from negbench.config.suite import TrainingConfig
    from negbench.core.strategy import Strategy

__all__ = [
    "COMPUTE",
    "DATA",
    "EQUAL",
    "Budget",
    "ComputeEstimate",
    "budget_for",
    "enforce",
    "overrides",
    "steps_for_compute",
    "steps_run",
    "tflop",
]

EQUAL = "equal"
DATA, COMPUTE = "data", "compute"  # the budget rules of ``[training] budget``
MAX_COMPUTE_STEPS = 100_000_000


@dataclass(frozen=True)
class ComputeEstimate:
    """A run's compute estimated before training, in FLOPs (:mod:`negbench.core.compute`): ``prep`` (setup, mining
    and refreshes) and ``train`` (the training steps, the strategy's extra columns and own models) for ``steps``."""

    steps: int
    prep_flops: float
    train_flops: float

    @property
    def total_flops(self) -> float:
        return self.prep_flops + self.train_flops


@dataclass(frozen=True)
class Budget:
    """What one training run may consume: per epoch, and under the equal-compute rule in all."""

    batch_size: int
    steps_per_epoch: int
    examples_per_epoch: int  # trained examples: steps_per_epoch · batch_size
    available: int  # training examples the strategy composes from each epoch
    reason: str = EQUAL  # "equal", or why this run's budget differs by design
    rule: str = DATA  # "data" (equal examples per epoch) or "compute" (equal preparation + training FLOPs)
    total_steps: int | None = None  # the compute rule's steps (None: epochs · steps_per_epoch or max_steps)
    estimate: ComputeEstimate | None = None  # the run's compute, estimated before training


def budget_for(
    strategy: Strategy,
    n_examples: int,
    training: TrainingConfig,
    suite_training: TrainingConfig | None = None,
    tuned: Collection[str] = (),
) -> Budget:
    """The budget of ``strategy`` on ``n_examples`` training examples under ``training``.

    Differences by design are named: the strategy's own declaration (e.g. RS2's fraction) and every training
    setting that differs from ``suite_training`` (the suite's ``[training]``), e.g. ``large-batch``'s batch size
    or a strategy's own ``scale``, ``num_negatives`` or ``lr``; those a tuning trial chose (``tuned``) are marked
    so (a tuned ``epochs`` changes the data a run sees as much as a declared one).
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
        reasons += overrides(training, suite_training, tuned)
    return Budget(
        training.batch_size, steps, steps * training.batch_size, available, "; ".join(reasons) if reasons else EQUAL
    )


def overrides(training: TrainingConfig, reference: TrainingConfig, tuned: Collection[str] = ()) -> list[str]:
    """``"lr 3e-05 (suite: 2e-05)"`` for every training setting of ``training`` that differs from ``reference``
    (``"…, tuned)"`` for those in ``tuned``)."""
    return [
        f"{key} {getattr(training, key)} (suite: {getattr(reference, key)}{', tuned' if key in tuned else ''})"
        for key in type(training).model_fields
        if getattr(training, key) != getattr(reference, key)
    ]


def steps_run(training: TrainingConfig, budget: Budget) -> int:
    """Optimiser steps a run trains: the compute rule's, else ``max_steps`` when set, else ``epochs`` of the budget's
    steps."""
    if budget.total_steps is not None:
        return budget.total_steps
    return training.max_steps if training.max_steps > 0 else training.epochs * budget.steps_per_epoch


def tflop(flops: float) -> str:
    """``1.23 TFLOP``: FLOPs as the reports write them (3 significant digits)."""
    return f"{flops / 1e12:.3g} TFLOP"


def steps_for_compute(
    estimate_at: Callable[[int], ComputeEstimate], target: float, who: str, baseline: str
) -> ComputeEstimate:
    """The estimate at the most steps whose preparation + training compute stays within ``target`` (the baseline's
    equal-data compute); ``estimate_at(steps)`` must not fall as ``steps`` grows. A :class:`BudgetError` when the
    preparation alone, or it and one step, exceeds ``target``."""
    first = estimate_at(1)
    if first.total_flops > target:
        alone = first.prep_flops >= target
        what = "its preparation alone" if alone else "its preparation and one training step"
        raise BudgetError(
            f"strategy {who!r}: {what} (est. {tflop(first.prep_flops if alone else first.total_flops)}) exceeds "
            f"the compute budget, the equal-data compute of the baseline {baseline!r} (est. {tflop(target)})"
        )
    good, bad = first, 2
    while bad <= MAX_COMPUTE_STEPS and (probe := estimate_at(bad)).total_flops <= target:
        good, bad = probe, 2 * bad
    bad = min(bad, MAX_COMPUTE_STEPS + 1)
    while bad - good.steps > 1:  # estimate_at(good.steps) fits, estimate_at(bad) does not
        middle = (good.steps + bad) // 2
        probe = estimate_at(middle)
        good, bad = (probe, bad) if probe.total_flops <= target else (good, middle)
    return good


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
