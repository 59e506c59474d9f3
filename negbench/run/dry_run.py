"""``negbench plan``: what a suite will train, before anything trains.

Per job (dataset × model × strategy): the data budget (steps and examples per epoch, batch sizes), whether
it differs by design and why, and how many training runs the suite makes for it (tuning trials + seeds).
Every job's first epoch is composed as training will compose it (batch composers — ``tas-b``, ``ngame``,
``rs2``, plugins — are set up for it; the others get negbench's random batches), so a composition that
breaks the budget rule (a composer emitting small batches, or data whose queries have so many positives
that the batches cannot be filled) is reported here rather than after hours of training.
"""

from __future__ import annotations

from typing import Any

from negbench.core.batching import random_batches
from negbench.core.budget import BudgetError, enforce, steps_run
from negbench.core.setup import epochs_run, run_context
from negbench.core.strategy import Strategy
from negbench.errors import NegbenchError

__all__ = ["composes", "dry_run"]


def composes(strategy: Strategy) -> bool:
    """Whether ``strategy`` composes its own batches (overrides :meth:`Strategy.batches`)."""
    return type(strategy).batches is not Strategy.batches


def dry_run(runner) -> list[dict[str, Any]]:
    """One record per job of ``runner``'s suite (see the module docstring)."""
    from negbench.run.plan import Job

    suite = runner.suite
    out = []
    for d, dataset_cfg in enumerate(suite.datasets):
        dataset = runner.load_dataset(d, dataset_cfg)
        examples = dataset.training_examples("train")
        for model_cfg in suite.models:
            for spec in runner.plan.strategies:
                job = Job(dataset, model_cfg, spec)
                record: dict[str, Any] = {
                    "dataset": dataset.name,
                    "model": model_cfg.display_name,
                    "strategy": spec.label,
                    "strategy_name": spec.cls.name,
                    "training_examples": len(examples),
                    "trials": suite.tuning.n_trials if runner.tuner_for(job) is not None else 0,
                    "seeds": len(suite.suite.seeds),
                    "error": None,
                }
                record["training_runs"] = (record["trials"] + record["seeds"]) if spec.cls.trains else 0
                if not spec.cls.trains:
                    record.update(
                        steps_per_epoch=0,
                        examples_per_epoch=0,
                        batch_size=None,
                        min_batch_size=None,
                        max_batch_size=None,
                        epochs=0,
                        total_steps=0,
                        dropped_examples=0,
                        budget="no training",
                    )
                    out.append(record)
                    continue
                strategy = spec.build()
                training = runner.training_for(spec)
                try:
                    budget, ctx = run_context(
                        strategy,
                        dataset,
                        examples,
                        runner.services_for(job),
                        training,
                        suite.training,
                        suite.suite.seeds[0],
                    )
                    if composes(strategy):
                        strategy.setup(ctx)
                        batches, who = strategy.batches(ctx, 0), spec.cls.name
                    else:
                        batches, who = random_batches(ctx, 0), f"{spec.cls.name} (negbench's random batches)"
                    trained = enforce(batches, budget, len(examples), who, 0)
                except (BudgetError, NegbenchError, ValueError) as exc:
                    message = exc.one_line() if isinstance(exc, NegbenchError) else str(exc)
                    record.update(error=message, budget="violates the budget rule")
                    out.append(record)
                    continue
                sizes = [len(b) for b in trained]
                record.update(
                    steps_per_epoch=budget.steps_per_epoch,
                    examples_per_epoch=budget.examples_per_epoch,
                    batch_size=budget.batch_size,
                    min_batch_size=min(sizes),
                    max_batch_size=max(sizes),
                    epochs=epochs_run(training, budget),
                    total_steps=steps_run(training, budget),
                    dropped_examples=budget.available - budget.examples_per_epoch,
                    budget=budget.reason,
                )
                out.append(record)
    return out
