"""The one training loop: sentence-transformers' trainer, negbench's InfoNCE, strategy hooks wired in.

* ``mine``/``sample`` → negative text columns added at collate time from :class:`NegativeState`
  (re-sampled at each epoch, swapped in place on refresh); the collator puts the corpus ids it used into
  the batch's ``label`` column, so the loss reads exactly what was embedded;
* ``batches`` → :class:`StrategyBatchSampler`, the trainer's batch sampler, held to the run's
  :class:`~negbench.core.budget.Budget` (the same examples per epoch in full batches for every strategy);
* query / document prompts of the model → the trainer's ``prompts``, as when mining and evaluating;
* ``on_logits`` → inside :class:`negbench.core.loss.InfoNCELoss`;
* ``refresh`` → :class:`RefreshCallback`, a ``TrainerCallback`` run after optimiser steps;
* final runs' per-step records (hardness probe, dev learning curve) → :class:`StepDiagnostics`, whose time is
  kept out of ``train_s``;
* the model's forward passes → the FLOP clock (:mod:`negbench.core.compute`): ``train_flops`` as ``train_s``;
* the equal-compute rule's length (``budget.total_steps``) → the trainer's ``max_steps``.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch
from sentence_transformers import (
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
)
from transformers import set_seed
from transformers.trainer_callback import PrinterCallback

from negbench._io import owned_temporary_dir
from negbench.config.suite import TrainingConfig
from negbench.core.batching import recorded_coverage
from negbench.core.budget import Budget, budget_for
from negbench.core.compute import flop_clock, watch
from negbench.core.context import Context
from negbench.core.loss import InfoNCELoss
from negbench.core.probes.negatives import PlantedInBatchCounter, planted_copies
from negbench.core.setup import apply_budget
from negbench.core.strategy import Negatives, Strategy
from negbench.core.training.callbacks import (
    Diagnostics,
    EpochEndCallback,
    LossRecorder,
    RefreshCallback,
    StepDiagnostics,
)
from negbench.core.training.feeding import (
    LazySampler,
    NegativeCollator,
    NegativeState,
    StrategyBatchSampler,
    model_prompts,
)
from negbench.core.training.outcome import TrainOutcome

__all__ = ["train", "training_pairs"]

log = logging.getLogger(__name__)


def train(
    model,
    ctx: Context,
    strategy: Strategy,
    cfg: TrainingConfig,
    *,
    device: str,
    precision: str = "fp32",
    candidates: Negatives | None = None,
    mini_batch_size: int | None = None,
    progress: bool = False,
    work_dir: Path | None = None,
    on_epoch_end=None,
    budget: Budget | None = None,
    diagnostics: Diagnostics | None = None,
) -> TrainOutcome:
    """Fine-tune ``model`` in place with ``strategy``; deterministic given ``ctx.seed``.

    ``budget`` (default: :func:`~negbench.core.budget.budget_for` of ``cfg``) fixes the steps per epoch; it is
    set on ``ctx`` before the first batch is composed. ``diagnostics`` (final runs): per-step records in
    ``outcome.step_records``.
    """
    import datasets

    if not progress:
        datasets.disable_progress_bars()
    set_seed(ctx.seed)
    ctx.model = model
    watch(model)  # its forward passes count on the FLOP clock (negbench.core.compute)
    budget = budget or budget_for(strategy, len(ctx.examples), cfg)
    if budget.batch_size != cfg.batch_size:
        raise ValueError(f"budget batch size {budget.batch_size} != training batch size {cfg.batch_size}")
    apply_budget(ctx, cfg, budget)  # the run's length, as negbench.core.setup gives every run
    total_steps = ctx.total_steps
    state = NegativeState(ctx, strategy, candidates)
    counter = PlantedInBatchCounter(lambda i: planted_copies(ctx, i)) if ctx.dataset.planted else None
    loss = InfoNCELoss(
        model,
        scale=cfg.scale,
        forbidden_of=ctx.forbidden,
        on_logits=strategy.on_logits,
        mini_batch_size=mini_batch_size,
        observer=counter,
    )
    outcome = TrainOutcome(0.0, 0, 0)
    on_cuda = device.startswith("cuda")
    pairs = training_pairs(ctx)
    samplers: list[StrategyBatchSampler] = []

    def make_sampler(ds, **kwargs):
        samplers.append(StrategyBatchSampler(ds, ctx, strategy, budget, **kwargs))
        return samplers[-1]

    with owned_temporary_dir(work_dir) as out_dir:
        length = cfg if budget.total_steps is None else cfg.model_copy(update={"max_steps": budget.total_steps})
        args = _arguments(
            length, ctx.seed, total_steps, out_dir, make_sampler, _prompts(model, state), progress, on_cuda, precision
        )
        trainer = _Trainer(model=model, args=args, train_dataset=pairs, loss=loss)
        first = StrategyBatchSampler(pairs, ctx, strategy, budget, batch_size=cfg.batch_size, drop_last=False)
        trainer.data_collator = NegativeCollator(trainer.data_collator, state, LazySampler(samplers, first))
        trainer.add_callback(RefreshCallback(ctx, strategy, state, loss, outcome))
        trainer.add_callback(LossRecorder(outcome))
        if on_epoch_end is not None:
            trainer.add_callback(EpochEndCallback(on_epoch_end, model, outcome))
        steps = None
        if diagnostics is not None and (diagnostics.every > 0 or diagnostics.curve_points > 0):
            steps = StepDiagnostics(diagnostics, loss, model, outcome, total_steps, on_cuda)
            trainer.add_callback(steps)
        start, flops = time.perf_counter(), flop_clock()
        if steps is not None:
            steps.start = start
        result = trainer.train()
        if on_cuda:
            torch.cuda.synchronize()
        wall, flops = time.perf_counter() - start, flop_clock() - flops
    outcome.sample_s, outcome.sample_flops = state.sample_s, state.sample_flops
    outcome.train_s = max(0.0, wall - outcome.refresh_s - outcome.sample_s - outcome.callback_s - outcome.diagnostics_s)
    outcome.train_flops = max(0.0, flops - outcome.refresh_flops - outcome.sample_flops - outcome.excluded_flops)
    outcome.steps, outcome.examples_seen = int(result.global_step), loss.rows_seen
    outcome.batch_sizes = list(loss.batch_sizes)
    outcome.planted_fn_inbatch_share = counter.share if counter is not None else None
    outcome.coverage = recorded_coverage(ctx).share
    model.eval()
    return outcome


def training_pairs(ctx: Context):
    """The training pairs as the trainer's dataset: query, positive text, and the example index as ``label``."""
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "query": [e.query for e in ctx.examples],
            "positive": [ctx.dataset.corpus.texts[e.doc] for e in ctx.examples],
            "label": list(range(len(ctx.examples))),
        }
    )


def _prompts(model, state: NegativeState) -> dict[str, str] | None:
    """The model's query / document prompts per column (negatives are documents), as mining and evaluation use."""
    query, document = model_prompts(model)
    columns = [
        ("query", query),
        ("positive", document),
        *[(f"negative_{j}", document) for j in range(state.num_negatives)],
    ]
    return {column: prompt for column, prompt in columns if prompt} or None


def _arguments(
    cfg: TrainingConfig,
    seed: int,
    total_steps: int,
    out_dir: str,
    make_sampler,
    prompts,
    progress: bool,
    on_cuda: bool,
    precision: str,
) -> SentenceTransformerTrainingArguments:
    """The trainer's arguments: the run's optimiser and schedule, the strategy's batch sampler, nothing saved."""
    return SentenceTransformerTrainingArguments(
        output_dir=out_dir,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        warmup_steps=math.ceil(cfg.warmup_ratio * total_steps),
        max_grad_norm=cfg.max_grad_norm,
        seed=seed,
        data_seed=seed,
        batch_sampler=make_sampler,
        save_strategy="no",
        eval_strategy="no",
        logging_steps=max(1, min(50, total_steps // 10 or 1)),
        report_to="none",
        disable_tqdm=not progress,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        use_cpu=not on_cuda,
        bf16=on_cuda and precision == "bf16",
        fp16=on_cuda and precision == "fp16",
        prompts=prompts,
    )


class _Trainer(SentenceTransformerTrainer):
    """The trainer without a console printer (negbench records its own losses) and without model-card data
    collection: negbench writes no model card, and the card's
    callback runs at trainer init (before it could be removed), sampling "widget examples" from the training
    set behind a "Computing widget examples" progress line on every run. sentence-transformers documents
    overriding ``add_model_card_callback`` to remove that callback."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for callback in list(self.callback_handler.callbacks):  # negbench records its own losses
            if isinstance(callback, PrinterCallback):
                self.remove_callback(callback)

    def add_model_card_callback(self, default_args_dict) -> None:
        return None
