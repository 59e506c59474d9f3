"""The one training loop: sentence-transformers' trainer, negbench's InfoNCE, strategy hooks wired in.

* ``mine``/``sample`` → negative text columns added at collate time from :class:`NegativeState`
  (re-sampled at each epoch, swapped in place on refresh); the collator puts the corpus ids it used into
  the batch's ``label`` column, so the loss reads exactly what was embedded;
* ``batches`` → :class:`StrategyBatchSampler`, the trainer's batch sampler, held to the run's
  :class:`~negbench.budget.Budget` (the same examples per epoch in full batches for every strategy);
* query / document prompts of the model → the trainer's ``prompts``, as when mining and evaluating;
* ``on_logits`` → inside :class:`negbench.loss.InfoNCELoss`;
* ``refresh`` → :class:`RefreshCallback`, a ``TrainerCallback`` run after optimiser steps;
* final runs' per-step records (hardness probe, dev learning curve) → :class:`StepDiagnostics`, whose time is
  kept out of ``train_s``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from sentence_transformers import (
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
)
from sentence_transformers.base.sampler import DefaultBatchSampler
from transformers import TrainerCallback, set_seed
from transformers.trainer_callback import PrinterCallback

from negbench.batching import random_batches
from negbench.budget import Budget, budget_for, enforce, steps_run
from negbench.config import TrainingConfig
from negbench.context import Context
from negbench.curves import StepRecord, curve_steps
from negbench.hardness import hardness_stats
from negbench.loss import InfoNCELoss
from negbench.negative_diagnostics import PlantedInBatchCounter, planted_copies
from negbench.run_lock import owned_temporary_dir
from negbench.strategy import Negatives, Strategy

log = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    """What one training run did and cost. ``train_s`` is pure training steps: the trainer's wall time less
    negative sampling (``sample_s``), refreshes (``refresh_s``), epoch-end callbacks (``callback_s``) and the
    per-step measurements of :class:`StepDiagnostics` (``diagnostics_s``; their records in ``step_records``)."""

    train_s: float
    steps: int
    examples_seen: int
    losses: list[float] = field(default_factory=list)
    refreshes: int = 0
    refresh_s: float = 0.0
    sample_s: float = 0.0
    callback_s: float = 0.0
    batch_sizes: list[int] = field(default_factory=list)
    # planted false negatives among the negative columns the loss saw (None when nothing is planted)
    planted_fn_inbatch_share: float | None = None
    diagnostics_s: float = 0.0
    step_records: list[StepRecord] = field(default_factory=list)

    @property
    def batch_stats(self) -> dict[str, float | int | None]:
        sizes = self.batch_sizes
        return {"mean_batch_size": sum(sizes) / len(sizes) if sizes else None,
                "min_batch_size": min(sizes) if sizes else None, "max_batch_size": max(sizes) if sizes else None}


class NegativeState:
    """Candidates and the negatives currently assigned to every example (per epoch, swapped on refresh)."""

    def __init__(self, ctx: Context, strategy: Strategy, candidates: Negatives | None) -> None:
        self.ctx = ctx
        self.strategy = strategy
        self.candidates = candidates
        self.current: Negatives | None = None
        self.epoch: int | None = None
        self.sample_s = 0.0

    @property
    def num_negatives(self) -> int:
        return 0 if self.candidates is None else self.ctx.num_negatives

    def for_epoch(self, epoch: int) -> Negatives | None:
        if self.candidates is not None and self.epoch != epoch:
            start = time.perf_counter()
            self.current = self.strategy.sample(self.ctx, self.candidates, epoch)
            self.epoch = epoch
            _check_negatives(self.ctx, self.current, self.strategy.name)
            self.sample_s += time.perf_counter() - start
        return self.current

    def replace_candidates(self, candidates: Negatives) -> None:
        self.candidates = candidates
        epoch = self.epoch if self.epoch is not None else 0
        self.epoch = None
        self.for_epoch(epoch)

    def doc_ids(self, example: int) -> list[int]:
        """Corpus ids of example ``example``'s positive and current negatives (what the collator embeds)."""
        ids = [int(self.ctx.positive_docs[example])]
        if self.num_negatives:
            ids += [int(d) for d in self.current.ids[example][: self.num_negatives]]
        return ids


def _check_negatives(ctx: Context, negatives: Negatives, name: str) -> None:
    for i, ids in enumerate(negatives.ids):
        if len(ids) != ctx.num_negatives:
            raise RuntimeError(f"strategy {name!r} gave example {i} {len(ids)} negatives, not {ctx.num_negatives}")
        outside = [int(d) for d in ids if not 0 <= int(d) < ctx.num_documents]
        if outside:
            raise RuntimeError(f"strategy {name!r} gave example {i} document index(es) {outside}: neither a corpus "
                               f"document nor a text added with ctx.add_texts")
        bad = ctx.forbidden(i).intersection(int(d) for d in ids)
        if bad:
            raise RuntimeError(f"strategy {name!r} returned labelled positive(s) {sorted(bad)} for example {i}")


class NegativeCollator:
    """Adds ``negative_j`` text columns for the current epoch, then defers to the ST collator.

    Negatives are looked up when a batch is collated; the data loader collates one batch ahead, so a
    refresh takes effect from the second batch after it (the same for every run: still deterministic).
    Each row's ``label`` is ``[example, positive id, negative ids…]``: the ids of the texts embedded.
    """

    def __init__(self, base, state: NegativeState, sampler: StrategyBatchSampler) -> None:
        self.base = base
        self.state = state
        self.sampler = sampler
        self.valid_label_columns = base.valid_label_columns

    def __call__(self, features: list[dict]) -> dict:
        self.state.for_epoch(self.sampler.epoch)
        text = self.state.ctx.doc_text
        rows = []
        for feature in features:
            example = int(feature["label"])
            ids = self.state.doc_ids(example)
            row = {"query": feature["query"], "positive": text(ids[0])}
            for j, doc in enumerate(ids[1:]):
                row[f"negative_{j}"] = text(doc)
            row["label"] = [example, *ids]
            rows.append(row)
        return self.base(rows)


class StrategyBatchSampler(DefaultBatchSampler):
    """The trainer's batch sampler: the strategy's ``batches`` or :func:`random_batches`, held to the budget.

    Every epoch composes its own batches (never epoch 0's again); its length is the budget's
    ``steps_per_epoch``, fixed before training, so asking for it recomputes nothing.
    """

    def __init__(self, dataset, ctx: Context, strategy: Strategy, budget: Budget, **kwargs) -> None:
        super().__init__(dataset, **kwargs)
        self.ctx = ctx
        self.strategy = strategy
        self.budget = budget
        self._cache: dict[int, list[list[int]]] = {}

    def batches_for(self, epoch: int) -> list[list[int]]:
        if epoch not in self._cache:
            raw, who = self.strategy.batches(self.ctx, epoch), self.strategy.name
            if raw is None:
                raw, who = random_batches(self.ctx, epoch), f"{who} (negbench's random batches)"
            self._cache = {epoch: enforce(raw, self.budget, len(self.ctx.examples), who, epoch)}
        return self._cache[epoch]

    def __len__(self) -> int:
        return self.budget.steps_per_epoch

    def __iter__(self):
        yield from self.batches_for(self.epoch)


class RefreshCallback(TrainerCallback):
    """Runs the strategy's ``refresh`` after optimiser steps and swaps negatives in place."""

    def __init__(self, ctx: Context, strategy: Strategy, state: NegativeState, loss: InfoNCELoss,
                 outcome: TrainOutcome) -> None:
        self.ctx, self.strategy, self.state, self.loss, self.outcome = ctx, strategy, state, loss, outcome

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        self.ctx.step = step
        self.loss.step = step
        if self.strategy.refresh_due(step):
            start = time.perf_counter()
            model = self.ctx.model
            was_training = model.training
            model.eval()
            try:
                new = self.strategy.refresh(self.ctx, step)
            finally:
                model.train(was_training)
            if new is not None:
                self.state.replace_candidates(new)
            self.outcome.refreshes += 1
            self.outcome.refresh_s += time.perf_counter() - start
        return control


class EpochEndCallback(TrainerCallback):
    """Calls ``fn(model, epoch)`` after every epoch (dev evaluation for pruning during tuning); its time is
    kept out of ``train_s``."""

    def __init__(self, fn, model, outcome: TrainOutcome) -> None:
        self.fn, self.model, self.outcome = fn, model, outcome

    def on_epoch_end(self, args, state, control, **kwargs):
        was_training = self.model.training
        self.model.eval()
        start = time.perf_counter()
        try:
            self.fn(self.model, round(state.epoch or 0))
        finally:
            self.outcome.callback_s += time.perf_counter() - start
            self.model.train(was_training)
        return control


@dataclass
class Diagnostics:
    """Per-step measurements of a final run (tuning trials take none).

    ``every``: the hardness probe (:func:`negbench.hardness.hardness_stats` of the batch the loss just saw) every
    this many optimiser steps and at every refresh step (0: neither). ``curve_points``: ``evaluate(model)`` —
    a dev evaluation returning ``{metric: value}`` — after each of that many evenly spaced fractions of the
    run's steps (:func:`negbench.curves.curve_steps`; the same fractions for every strategy).
    """

    every: int = 0
    curve_points: int = 0
    evaluate: Callable[[object], dict[str, float]] | None = None


class StepDiagnostics(TrainerCallback):
    """Takes the measurements of :class:`Diagnostics` after optimiser steps; their time (including a CUDA
    synchronisation) goes to ``outcome.diagnostics_s``, out of ``train_s`` and out of the records' ``wall_s``.

    Runs after :class:`RefreshCallback`, so it sees a refresh of the same step (the batch it probes then is the
    last one trained on the negatives the refresh replaces).
    """

    def __init__(self, diagnostics: Diagnostics, loss: InfoNCELoss, model, outcome: TrainOutcome,
                 total_steps: int, on_cuda: bool) -> None:
        self.diagnostics, self.loss, self.model, self.outcome = diagnostics, loss, model, outcome
        self.curve = set(curve_steps(total_steps, diagnostics.curve_points)) if diagnostics.evaluate else set()
        self.on_cuda = on_cuda
        self.start = time.perf_counter()  # reset by train() just before the trainer starts
        self.refreshes = 0

    def on_step_end(self, args, state, control, **kwargs):
        step, every = state.global_step, self.diagnostics.every
        refreshed, self.refreshes = self.outcome.refreshes != self.refreshes, self.outcome.refreshes
        probe = every > 0 and (step % every == 0 or refreshed) and self.loss.last_view is not None
        if not probe and step not in self.curve:
            return control
        if self.on_cuda:
            torch.cuda.synchronize()
        began = time.perf_counter()
        wall = began - self.start - self.outcome.diagnostics_s - self.outcome.callback_s
        examples = self.loss.rows_seen
        records = []
        if probe:
            records += [StepRecord("hardness", name, step, examples, wall, value)
                        for name, value in hardness_stats(self.loss.last_view).items()]
        if step in self.curve:
            was_training = self.model.training
            self.model.eval()
            try:
                records += [StepRecord("dev", f"dev_{name}", step, examples, wall, float(value))
                            for name, value in self.diagnostics.evaluate(self.model).items()]
            finally:
                self.model.train(was_training)
        self.outcome.step_records += records
        if self.on_cuda:
            torch.cuda.synchronize()
        self.outcome.diagnostics_s += time.perf_counter() - began
        return control


class _LossRecorder(TrainerCallback):
    def __init__(self, outcome: TrainOutcome) -> None:
        self.outcome = outcome

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.outcome.losses.append(float(logs["loss"]))


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

    ``budget`` (default: :func:`~negbench.budget.budget_for` of ``cfg``) fixes the steps per epoch; it is
    set on ``ctx`` before the first batch is composed. ``diagnostics`` (final runs): per-step records in
    ``outcome.step_records``.
    """
    import datasets
    from datasets import Dataset

    if not progress:
        datasets.disable_progress_bars()
    set_seed(ctx.seed)
    ctx.model = model
    state = NegativeState(ctx, strategy, candidates)
    dataset = Dataset.from_dict(
        {
            "query": [e.query for e in ctx.examples],
            "positive": [ctx.dataset.corpus.texts[e.doc] for e in ctx.examples],
            "label": list(range(len(ctx.examples))),
        }
    )
    counter = (PlantedInBatchCounter(lambda i: planted_copies(ctx, i)) if ctx.dataset.planted else None)
    loss = InfoNCELoss(
        model,
        scale=cfg.scale,
        forbidden_of=ctx.forbidden,
        on_logits=strategy.on_logits,
        mini_batch_size=mini_batch_size,
        observer=counter,
    )
    outcome = TrainOutcome(0.0, 0, 0)
    samplers: list[StrategyBatchSampler] = []

    if budget is None:
        budget = budget_for(strategy, len(ctx.examples), cfg)
    if budget.batch_size != cfg.batch_size:
        raise ValueError(f"budget batch size {budget.batch_size} != training batch size {cfg.batch_size}")

    def make_sampler(ds, **kwargs):
        sampler = StrategyBatchSampler(ds, ctx, strategy, budget, **kwargs)
        samplers.append(sampler)
        return sampler

    probe = StrategyBatchSampler(dataset, ctx, strategy, budget, batch_size=cfg.batch_size, drop_last=False)
    steps_per_epoch = budget.steps_per_epoch
    total_steps = steps_run(cfg, budget)
    ctx.steps_per_epoch, ctx.total_steps = steps_per_epoch, total_steps
    ctx.epochs = -(-total_steps // steps_per_epoch)  # with max_steps, the epochs the trainer will run
    query_prompt, document_prompt = model_prompts(model)
    prompts = {column: prompt for column, prompt in
               [("query", query_prompt), ("positive", document_prompt),
                *[(f"negative_{j}", document_prompt) for j in range(state.num_negatives)]] if prompt}
    on_cuda = device.startswith("cuda")
    with owned_temporary_dir(work_dir) as out_dir:
        args = SentenceTransformerTrainingArguments(
            output_dir=out_dir,
            num_train_epochs=cfg.epochs,
            max_steps=cfg.max_steps,
            per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.lr,
            weight_decay=cfg.weight_decay,
            warmup_steps=math.ceil(cfg.warmup_ratio * total_steps),
            max_grad_norm=cfg.max_grad_norm,
            seed=ctx.seed,
            data_seed=ctx.seed,
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
            prompts=prompts or None,
        )
        trainer = _Trainer(model=model, args=args, train_dataset=dataset, loss=loss)
        # negbench records its own losses: drop the console printer.
        for callback in list(trainer.callback_handler.callbacks):
            if isinstance(callback, PrinterCallback):
                trainer.remove_callback(callback)
        collator = NegativeCollator(trainer.data_collator, state, _LazySampler(samplers, probe))
        trainer.data_collator = collator
        trainer.add_callback(RefreshCallback(ctx, strategy, state, loss, outcome))
        trainer.add_callback(_LossRecorder(outcome))
        if on_epoch_end is not None:
            trainer.add_callback(EpochEndCallback(on_epoch_end, model, outcome))
        probe = None
        if diagnostics is not None and (diagnostics.every > 0 or diagnostics.curve_points > 0):
            probe = StepDiagnostics(diagnostics, loss, model, outcome, total_steps, on_cuda)
            trainer.add_callback(probe)
        start = time.perf_counter()
        if probe is not None:
            probe.start = start
        result = trainer.train()
        if on_cuda:
            torch.cuda.synchronize()
        wall = time.perf_counter() - start
    outcome.sample_s = state.sample_s
    outcome.train_s = max(0.0, wall - outcome.refresh_s - outcome.sample_s - outcome.callback_s
                          - outcome.diagnostics_s)
    outcome.steps = int(result.global_step)
    outcome.examples_seen = loss.rows_seen
    outcome.batch_sizes = list(loss.batch_sizes)
    outcome.planted_fn_inbatch_share = counter.share if counter is not None else None
    model.eval()
    return outcome


class _Trainer(SentenceTransformerTrainer):
    """The trainer without model-card data collection: negbench writes no model card, and the card's
    callback runs at trainer init (before it could be removed), sampling "widget examples" from the training
    set behind a "Computing widget examples" progress line on every run. sentence-transformers documents
    overriding ``add_model_card_callback`` to remove that callback."""

    def add_model_card_callback(self, default_args_dict) -> None:
        return None


class _LazySampler:
    """The epoch of whichever batch sampler the trainer built (it builds it after the collator)."""

    def __init__(self, samplers: list[StrategyBatchSampler], fallback: StrategyBatchSampler) -> None:
        self.samplers, self.fallback = samplers, fallback

    @property
    def epoch(self) -> int:
        return (self.samplers[-1] if self.samplers else self.fallback).epoch


def model_prompts(model) -> tuple[str | None, str | None]:
    """The (query, document) prompts ``encode_query`` / ``encode_document`` apply for ``model``, so training
    sees the texts exactly as mining and evaluation encode them."""
    prompts = getattr(model, "prompts", None) or {}
    query = prompts.get("query")
    document = next((prompts[k] for k in ("document", "passage", "corpus") if k in prompts), None)
    return query or None, document or None
