"""``negbench plan``: what a suite will train, before anything trains.

Per job (dataset × model × strategy): the data budget (steps and examples per epoch, batch sizes), whether
it differs by design and why, and how many training runs the suite makes for it (tuning trials + seeds).
Every epoch of the run (of its first seed) is composed as training will compose it (batch composers — ``tas-b``,
``ngame``, ``rs2``, plugins — are set up for it; the others get negbench's random batches), so a composition
that breaks the budget rule (a composer emitting small batches, or data whose queries have so many positives
that the batches cannot be filled) is reported here rather than after hours of training, and the run's
**coverage** is known: the smallest share of the epochs in which any training example is trained
(:class:`~negbench.core.batching.Coverage`), with the examples left out per epoch and, where the coverage is
below 1, why; and what of its method the run never exercises (:meth:`Strategy.unexercised`: a refresh or a
judgement that would come after the run's last step or epoch). A composer that refreshes from the model being
trained (``ngame``, ``dss``) is composed from its state at setup: what its refreshed epochs will hold cannot be
known before training.

Each job's **compute** is the estimate made before training (:mod:`negbench.core.setup`): preparation and training
TFLOPs for the steps it will run. Under ``[training] budget = "compute"`` those steps are the ones that give it the
baseline's equal-data compute, and a strategy whose preparation alone exceeds that budget is reported as an error.
"""

from __future__ import annotations

from typing import Any

from negbench.core.batching import Coverage, clash_keys, compose_epoch
from negbench.core.budget import Budget, BudgetError, steps_run
from negbench.core.context import Context
from negbench.core.setup import epochs_run, run_context
from negbench.core.strategy import Strategy
from negbench.errors import NegbenchError

__all__ = ["compose_run", "composes", "coverage_note", "dry_run"]


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
                        coverage=None,
                        left_out_per_epoch=0,
                        coverage_note=None,
                        unexercised=None,
                        budget="no training",
                        **_compute_record(None, None),
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
                        runner.guide_services(dataset, model_cfg, spec, runner.device_for(job)),
                        baseline=runner.compute_baseline(dataset, model_cfg, runner.device_for(job)),
                        estimate=True,
                    )
                    if composes(strategy):
                        strategy.setup(ctx)
                    trained, coverage = compose_run(ctx, strategy, budget)
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
                    coverage=coverage.share,
                    left_out_per_epoch=len(examples) - budget.examples_per_epoch,
                    coverage_note=coverage_note(ctx, budget, coverage),
                    unexercised=_unexercised(strategy, training, budget, tuned=record["trials"] > 0),
                    budget=budget.reason,
                    **_compute_record(budget, suite.training.budget),
                )
                out.append(record)
    return out


def _unexercised(strategy: Strategy, training: Any, budget: Budget, *, tuned: bool) -> str | None:
    """What the run never exercises of the strategy, with its declared parameters (a tuned run may differ)."""
    note = strategy.unexercised(epochs_run(training, budget), steps_run(training, budget))
    return f"{note} (with the declared params; tuning may change them)" if note and tuned else note


def _compute_record(budget: Budget | None, rule: str | None) -> dict[str, Any]:
    """A job's budget rule and estimated compute (TFLOPs) for the steps it will run."""
    estimate = None if budget is None else budget.estimate
    return {
        "budget_rule": rule,
        "est_prep_tflop": None if estimate is None else estimate.prep_flops / 1e12,
        "est_train_tflop": None if estimate is None else estimate.train_flops / 1e12,
    }


def compose_run(ctx: Context, strategy: Strategy, budget: Budget) -> tuple[list[list[int]], Coverage]:
    """Every epoch of ``ctx``'s run composed as training composes it: epoch 0's trained batches and the run's
    coverage. Raises :class:`BudgetError` for an epoch that breaks the budget rule."""
    coverage = Coverage.of(ctx)
    first: list[list[int]] = []
    for epoch in range(coverage.epochs):
        trained = compose_epoch(ctx, strategy, budget, epoch)
        coverage.add(epoch, trained)
        first = first or trained
    return first, coverage


def coverage_note(ctx: Context, budget: Budget, coverage: Coverage) -> str | None:
    """Why the coverage is below 1: the examples the budget leaves out per epoch, and what keeps an example
    out of more epochs than that requires (a query or document with more examples than an epoch has batches)."""
    n, epochs = len(ctx.examples), coverage.epochs
    if coverage.share >= 1.0:
        return None
    notes = []
    left_out = n - budget.examples_per_epoch
    if left_out:
        why = "by design" if budget.available < n else f"{n} is not a multiple of batch_size {budget.batch_size}"
        notes.append(f"{left_out} of {n} examples left out per epoch ({why})")
    if budget.steps_per_epoch * epochs > coverage.total_steps:
        ends = f"max_steps {coverage.total_steps} ends" if budget.total_steps is None else "the compute budget's "
        ends += "" if budget.total_steps is None else f"{coverage.total_steps} steps end"
        notes.append(f"{ends} the last of {epochs} epochs early")
    if coverage.share < coverage.best:
        notes.append(f"the best this budget allows is {coverage.best:.2f}")
        groups: dict[tuple[str, object], int] = {}
        for i in range(n):
            for key in clash_keys(ctx, i):
                groups[key] = groups.get(key, 0) + 1
        key, size = max(groups.items(), key=lambda item: item[1])
        if size > budget.steps_per_epoch:
            what = "query" if key[0] in ("q", "qt") else "positive document"
            notes.append(
                f"a {what} has {size} examples, more than the {budget.steps_per_epoch} batches of an epoch "
                f"(examples of one query or positive cannot share a batch)"
            )
        low = coverage.least_trained()
        notes.append(
            f"{len(low)} example(s) trained in {min(coverage.trained)} of {epochs} epochs, "
            f"e.g. query {ctx.examples[low[0]].query_id!r}"
        )
    return "; ".join(notes)
