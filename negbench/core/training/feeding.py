"""What the trainer is fed: the training pairs, the strategy's batches (held to the run's budget) and the
negatives added at collate time, with the ids of what was embedded travelling in the batch."""

from __future__ import annotations

import logging
import time

from sentence_transformers.base.sampler import DefaultBatchSampler

from negbench.core.batching import compose_epoch, recorded_coverage
from negbench.core.budget import Budget
from negbench.core.compute import flop_clock
from negbench.core.context import Context
from negbench.core.search import model_prompts
from negbench.core.strategy import Negatives, Strategy

__all__ = [
    "LazySampler",
    "NegativeCollator",
    "NegativeState",
    "StrategyBatchSampler",
    "check_negatives",
    "model_prompts",
]

log = logging.getLogger(__name__)


class NegativeState:
    """Candidates and the negatives currently assigned to every example (per epoch, swapped on refresh)."""

    def __init__(self, ctx: Context, strategy: Strategy, candidates: Negatives | None) -> None:
        self.ctx = ctx
        self.strategy = strategy
        self.candidates = candidates
        self.current: Negatives | None = None
        self.epoch: int | None = None
        self.sample_s = 0.0
        self.sample_flops = 0.0  # FLOPs a strategy's sample() spent (encodings), kept out of training's

    @property
    def num_negatives(self) -> int:
        return 0 if self.candidates is None else self.ctx.num_negatives

    def for_epoch(self, epoch: int) -> Negatives | None:
        if self.candidates is not None and self.epoch != epoch:
            start, flops = time.perf_counter(), flop_clock()
            self.current = self.strategy.sample(self.ctx, self.candidates, epoch)
            self.epoch = epoch
            check_negatives(self.ctx, self.current, self.strategy.name)
            self.sample_s += time.perf_counter() - start
            self.sample_flops += flop_clock() - flops
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


def check_negatives(ctx: Context, negatives: Negatives, name: str) -> None:
    for i, ids in enumerate(negatives.ids):
        if len(ids) != ctx.num_negatives:
            raise RuntimeError(f"strategy {name!r} gave example {i} {len(ids)} negatives, not {ctx.num_negatives}")
        outside = [int(d) for d in ids if not 0 <= int(d) < ctx.num_documents]
        if outside:
            raise RuntimeError(
                f"strategy {name!r} gave example {i} document index(es) {outside}: neither a corpus "
                f"document nor a text added with ctx.add_texts"
            )
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
    """The trainer's batch sampler: the strategy's ``batches`` or negbench's random batches, held to the budget
    (:func:`~negbench.core.batching.compose_epoch`: the left-out remainder rotates across epochs).

    Every epoch composes its own batches (never epoch 0's again); its length is the budget's
    ``steps_per_epoch``, fixed before training, so asking for it recomputes nothing. Each epoch's trained
    batches are counted in the run's coverage record (:func:`~negbench.core.batching.recorded_coverage`).
    """

    def __init__(self, dataset, ctx: Context, strategy: Strategy, budget: Budget, **kwargs) -> None:
        super().__init__(dataset, **kwargs)
        self.ctx = ctx
        self.strategy = strategy
        self.budget = budget
        self._cache: dict[int, list[list[int]]] = {}

    def batches_for(self, epoch: int) -> list[list[int]]:
        if epoch not in self._cache:
            self._cache = {epoch: compose_epoch(self.ctx, self.strategy, self.budget, epoch)}
            recorded_coverage(self.ctx).add(epoch, self._cache[epoch])
        return self._cache[epoch]

    def __len__(self) -> int:
        return self.budget.steps_per_epoch

    def __iter__(self):
        yield from self.batches_for(self.epoch)


class LazySampler:
    """The epoch of whichever batch sampler the trainer built (it builds it after the collator)."""

    def __init__(self, samplers: list[StrategyBatchSampler], fallback: StrategyBatchSampler) -> None:
        self.samplers, self.fallback = samplers, fallback

    @property
    def epoch(self) -> int:
        return (self.samplers[-1] if self.samplers else self.fallback).epoch
