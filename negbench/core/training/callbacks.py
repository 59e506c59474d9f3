"""Trainer callbacks: strategy refreshes, per-epoch hooks, per-step diagnostics and the loss record; each keeps
its own time and FLOPs out of ``train_s`` and ``train_flops``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import TrainerCallback

from negbench.core.compute import flop_clock
from negbench.core.context import Context
from negbench.core.loss import InfoNCELoss
from negbench.core.probes.curves import StepRecord, curve_steps
from negbench.core.probes.hardness import hardness_stats
from negbench.core.strategy import Strategy
from negbench.core.training.feeding import NegativeState
from negbench.core.training.outcome import TrainOutcome

__all__ = ["Diagnostics", "EpochEndCallback", "LossRecorder", "RefreshCallback", "StepDiagnostics"]

log = logging.getLogger(__name__)


class RefreshCallback(TrainerCallback):
    """Runs the strategy's ``refresh`` after optimiser steps and swaps negatives in place."""

    def __init__(
        self, ctx: Context, strategy: Strategy, state: NegativeState, loss: InfoNCELoss, outcome: TrainOutcome
    ) -> None:
        self.ctx, self.strategy, self.state, self.loss, self.outcome = ctx, strategy, state, loss, outcome

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        self.ctx.step = step
        self.loss.step = step
        if self.strategy.refresh_due(step):
            start, flops = time.perf_counter(), flop_clock()
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
            self.outcome.refresh_flops += flop_clock() - flops
        return control


class EpochEndCallback(TrainerCallback):
    """Calls ``fn(model, epoch)`` after every epoch (dev evaluation for pruning during tuning); its time is
    kept out of ``train_s``."""

    def __init__(self, fn, model, outcome: TrainOutcome) -> None:
        self.fn, self.model, self.outcome = fn, model, outcome

    def on_epoch_end(self, args, state, control, **kwargs):
        was_training = self.model.training
        self.model.eval()
        start, flops = time.perf_counter(), flop_clock()
        try:
            self.fn(self.model, round(state.epoch or 0))
        finally:
            self.outcome.callback_s += time.perf_counter() - start
            self.outcome.excluded_flops += flop_clock() - flops
            self.model.train(was_training)
        return control


@dataclass
class Diagnostics:
    """Per-step measurements of a final run (tuning trials take none).

    ``every``: the hardness probe (:func:`negbench.core.probes.hardness.hardness_stats` of the batch the loss
    just saw) every this many optimiser steps and at every refresh step (0: neither). ``curve_points``:
    ``evaluate(model)`` — a dev evaluation returning ``{metric: value}`` — after each of that many evenly spaced
    fractions of the run's steps (:func:`negbench.core.probes.curves.curve_steps`; the same fractions for every
    strategy).
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

    def __init__(
        self, diagnostics: Diagnostics, loss: InfoNCELoss, model, outcome: TrainOutcome, total_steps: int, on_cuda: bool
    ) -> None:
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
        began, flops = time.perf_counter(), flop_clock()
        wall = began - self.start - self.outcome.diagnostics_s - self.outcome.callback_s
        examples = self.loss.rows_seen
        records = []
        if probe:
            records += [
                StepRecord("hardness", name, step, examples, wall, value)
                for name, value in hardness_stats(self.loss.last_view).items()
            ]
        if step in self.curve:
            was_training = self.model.training
            self.model.eval()
            scoring = time.perf_counter()
            try:
                records += [
                    StepRecord("dev", f"dev_{name}", step, examples, wall, float(value))
                    for name, value in self.diagnostics.evaluate(self.model).items()
                ]
            finally:
                self.model.train(was_training)
                self.outcome.curve_s += time.perf_counter() - scoring
                self.outcome.curve_points += 1
        self.outcome.step_records += records
        if self.on_cuda:
            torch.cuda.synchronize()
        self.outcome.diagnostics_s += time.perf_counter() - began
        self.outcome.excluded_flops += flop_clock() - flops
        return control


class LossRecorder(TrainerCallback):
    def __init__(self, outcome: TrainOutcome) -> None:
        self.outcome = outcome

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.outcome.losses.append(float(logs["loss"]))
