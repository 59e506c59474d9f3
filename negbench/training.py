"""The one training loop: sentence-transformers' trainer, negbench's InfoNCE, strategy hooks wired in.

* ``mine``/``sample`` → negative text columns added at collate time from :class:`NegativeState`
  (re-sampled at each epoch, swapped in place on refresh);
* ``batches`` → :class:`StrategyBatchSampler`, the trainer's batch sampler;
* ``on_logits`` → inside :class:`negbench.loss.InfoNCELoss`;
* ``refresh`` → :class:`RefreshCallback`, a ``TrainerCallback`` run after optimiser steps.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import (
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
)
from sentence_transformers.base.model_card import BaseModelCardCallback
from sentence_transformers.base.sampler import DefaultBatchSampler
from transformers import TrainerCallback, set_seed
from transformers.trainer_callback import PrinterCallback

from negbench.config import TrainingConfig
from negbench.context import Context
from negbench.loss import InfoNCELoss
from negbench.strategy import Negatives, Strategy

log = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    train_s: float
    steps: int
    examples_seen: int
    losses: list[float] = field(default_factory=list)
    refreshes: int = 0
    refresh_s: float = 0.0


class NegativeState:
    """Candidates and the negatives currently assigned to every example (per epoch, swapped on refresh)."""

    def __init__(self, ctx: Context, strategy: Strategy, candidates: Negatives | None) -> None:
        self.ctx = ctx
        self.strategy = strategy
        self.candidates = candidates
        self.current: Negatives | None = None
        self.epoch: int | None = None

    @property
    def num_negatives(self) -> int:
        return 0 if self.candidates is None else self.ctx.num_negatives

    def for_epoch(self, epoch: int) -> Negatives | None:
        if self.candidates is not None and self.epoch != epoch:
            self.current = self.strategy.sample(self.ctx, self.candidates, epoch)
            self.epoch = epoch
            _check_negatives(self.ctx, self.current, self.strategy.name)
        return self.current

    def replace_candidates(self, candidates: Negatives) -> None:
        self.candidates = candidates
        epoch = self.epoch if self.epoch is not None else 0
        self.epoch = None
        self.for_epoch(epoch)

    def doc_ids_of(self, examples: torch.Tensor) -> torch.Tensor:
        idx = examples.long().numpy()
        cols = [self.ctx.positive_docs[idx]]
        if self.num_negatives:
            cols += [np.stack([self.current.ids[i] for i in idx]).T[j] for j in range(self.num_negatives)]
        return torch.as_tensor(np.stack(cols, axis=1), dtype=torch.long)


def _check_negatives(ctx: Context, negatives: Negatives, name: str) -> None:
    for i, ids in enumerate(negatives.ids):
        if len(ids) != ctx.num_negatives:
            raise RuntimeError(f"strategy {name!r} gave example {i} {len(ids)} negatives, not {ctx.num_negatives}")
        bad = ctx.forbidden(i).intersection(int(d) for d in ids)
        if bad:
            raise RuntimeError(f"strategy {name!r} returned labelled positive(s) {sorted(bad)} for example {i}")


class NegativeCollator:
    """Adds ``negative_j`` text columns for the current epoch, then defers to the ST collator.

    Negatives are looked up when a batch is collated; the data loader collates one batch ahead, so a
    refresh takes effect from the second batch after it (the same for every run: still deterministic).
    """

    def __init__(self, base, state: NegativeState, sampler: StrategyBatchSampler) -> None:
        self.base = base
        self.state = state
        self.sampler = sampler
        self.valid_label_columns = base.valid_label_columns

    def __call__(self, features: list[dict]) -> dict:
        negatives = self.state.for_epoch(self.sampler.epoch)
        texts = self.state.ctx.dataset.corpus.texts
        rows = []
        for feature in features:
            row = {"query": feature["query"], "positive": feature["positive"]}
            for j in range(self.state.num_negatives):
                row[f"negative_{j}"] = texts[int(negatives.ids[feature["label"]][j])]
            row["label"] = feature["label"]
            rows.append(row)
        return self.base(rows)


def random_batches(ctx: Context, epoch: int, indices: list[int] | None = None) -> list[list[int]]:
    """Seeded random batches in which no two examples share a query or a positive (by id or by text).

    One pass over a shuffled queue: an example that clashes with its batch waits at the front of the
    queue for the next batch, so the cost is linear in the number of examples.
    """
    order = list(indices if indices is not None else range(len(ctx.examples)))
    ctx.rng("batches", epoch).shuffle(order)
    texts = ctx.dataset.corpus.texts
    keys = {i: {("q", ctx.examples[i].query_id), ("d", ctx.examples[i].doc), ("qt", ctx.examples[i].query),
                ("dt", texts[ctx.examples[i].doc])} for i in order}
    pending = deque(order)
    batches: list[list[int]] = []
    while pending:
        batch, seen, deferred = [], set(), []
        while pending and len(batch) < ctx.batch_size:
            i = pending.popleft()
            if keys[i] & seen:
                deferred.append(i)
            else:
                batch.append(i)
                seen |= keys[i]
        pending.extendleft(reversed(deferred))
        batches.append(batch)
    return batches


class StrategyBatchSampler(DefaultBatchSampler):
    """The trainer's batch sampler: the strategy's ``batches`` or :func:`random_batches`."""

    def __init__(self, dataset, ctx: Context, strategy: Strategy, **kwargs) -> None:
        super().__init__(dataset, **kwargs)
        self.ctx = ctx
        self.strategy = strategy
        self._cache: dict[int, list[list[int]]] = {}

    def batches_for(self, epoch: int) -> list[list[int]]:
        if epoch not in self._cache:
            self._cache = {epoch: self.strategy.batches(self.ctx, epoch) or random_batches(self.ctx, epoch)}
        return self._cache[epoch]

    def __len__(self) -> int:
        return len(self.batches_for(0))

    def __iter__(self):
        batches = self.batches_for(self.epoch)
        yield from batches[: len(self)]


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
    """Calls ``fn(model, epoch)`` after every epoch (dev evaluation for pruning during tuning)."""

    def __init__(self, fn, model) -> None:
        self.fn, self.model = fn, model

    def on_epoch_end(self, args, state, control, **kwargs):
        was_training = self.model.training
        self.model.eval()
        try:
            self.fn(self.model, round(state.epoch or 0))
        finally:
            self.model.train(was_training)
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
) -> TrainOutcome:
    """Fine-tune ``model`` in place with ``strategy``; deterministic given ``ctx.seed``."""
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
    loss = InfoNCELoss(
        model,
        scale=cfg.scale,
        doc_ids_of=state.doc_ids_of,
        forbidden_of=ctx.forbidden,
        on_logits=strategy.on_logits,
        mini_batch_size=mini_batch_size,
    )
    outcome = TrainOutcome(0.0, 0, 0)
    samplers: list[StrategyBatchSampler] = []

    def make_sampler(ds, **kwargs):
        sampler = StrategyBatchSampler(ds, ctx, strategy, **kwargs)
        samplers.append(sampler)
        return sampler

    probe = StrategyBatchSampler(dataset, ctx, strategy, batch_size=cfg.batch_size, drop_last=False)
    steps_per_epoch = len(probe)
    total_steps = cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * steps_per_epoch
    ctx.steps_per_epoch, ctx.total_steps = steps_per_epoch, total_steps
    on_cuda = device.startswith("cuda")
    with tempfile.TemporaryDirectory(dir=work_dir) as out_dir:
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
        )
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
        # negbench records its own losses and writes no model card: drop the console printer and card.
        for callback in list(trainer.callback_handler.callbacks):
            if isinstance(callback, PrinterCallback | BaseModelCardCallback):
                trainer.remove_callback(callback)
        collator = NegativeCollator(trainer.data_collator, state, _LazySampler(samplers, probe))
        trainer.data_collator = collator
        trainer.add_callback(RefreshCallback(ctx, strategy, state, loss, outcome))
        trainer.add_callback(_LossRecorder(outcome))
        if on_epoch_end is not None:
            trainer.add_callback(EpochEndCallback(on_epoch_end, model))
        start = time.perf_counter()
        result = trainer.train()
        if on_cuda:
            torch.cuda.synchronize()
        outcome.train_s = time.perf_counter() - start
    outcome.steps = int(result.global_step)
    outcome.examples_seen = loss.rows_seen
    model.eval()
    return outcome


class _LazySampler:
    """The epoch of whichever batch sampler the trainer built (it builds it after the collator)."""

    def __init__(self, samplers: list[StrategyBatchSampler], fallback: StrategyBatchSampler) -> None:
        self.samplers, self.fallback = samplers, fallback

    @property
    def epoch(self) -> int:
        return (self.samplers[-1] if self.samplers else self.fallback).epoch
