"""Per-step records of final runs (hardness probe, dev learning curve) and time-to-target.

A final run records, at fixed points, ``(step, examples seen, training wall seconds, metric, value)``:
``kind = "hardness"`` for the probe of :mod:`negbench.core.probes.hardness` (every ``[evaluation] diagnostics_every``
steps and at every refresh) and ``kind = "dev"`` for a dev-split evaluation (never test) at
``[evaluation] curve_points`` evenly spaced fractions of the run's steps — the same fractions for every
strategy; ``"auto"`` (the default) takes as many, up to four, as cost at most a quarter of the run's
estimated training compute (:func:`auto_curve_points`), and none when that allows fewer than three (a curve of two
points says nothing a final score does not, and time-to-target needs three). ``wall_s`` counts seconds since
training started, less the time spent taking these measurements (and epoch-end callbacks); it includes negative
sampling and refreshes, which a strategy pays to train.

:func:`time_to_target` is RS2's headline: the first point of a curve reaching ``fraction`` of a best value
(the run's own best; the report compares strategies against the best of all of them,
:func:`negbench.report.diagnostics.time_to_target`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

__all__ = [
    "AUTO_CURVE_POINTS",
    "AUTO_CURVE_SHARE",
    "MIN_CURVE_POINTS",
    "STEPS_SCHEMA",
    "Reached",
    "StepRecord",
    "auto_curve_points",
    "curve_steps",
    "dev_curve",
    "time_to_target",
]

AUTO_CURVE_POINTS = 4  # the most points "auto" takes: one after each quarter of the run
AUTO_CURVE_SHARE = 0.25  # of the run's estimated training FLOPs, the most "auto" spends on dev scorings
MIN_CURVE_POINTS = 3  # fewer make no curve: time-to-target needs three

STEPS_SCHEMA = {
    "run_id": pl.String,
    "kind": pl.String,
    "metric": pl.String,
    "step": pl.Int64,
    "examples": pl.Int64,
    "wall_s": pl.Float64,
    "value": pl.Float64,
}


@dataclass(frozen=True)
class StepRecord:
    """One measurement at one point of a training run."""

    kind: str  # "hardness" | "dev"
    metric: str
    step: int
    examples: int
    wall_s: float
    value: float


@dataclass(frozen=True)
class Reached:
    """Where a curve first reached its target."""

    step: int
    examples: int
    wall_s: float
    value: float


def curve_steps(total_steps: int, points: int) -> list[int]:
    """The optimiser steps after which to evaluate: ``ceil(total · k / points)`` for k = 1 … points (the last is
    the run's end), duplicates dropped when the run has fewer steps than points."""
    if points <= 0 or total_steps <= 0:
        return []
    return sorted({max(1, math.ceil(total_steps * k / points)) for k in range(1, points + 1)})


def auto_curve_points(train_flops: float, scoring_flops: float) -> int:
    """How many dev scorings ``curve_points = "auto"`` takes: the most, up to :data:`AUTO_CURVE_POINTS`, whose
    FLOPs (``scoring_flops`` each: encoding the dev corpus and the dev queries once) stay within
    :data:`AUTO_CURVE_SHARE` of ``train_flops`` (the run's estimated training compute); 0 when that is fewer than
    :data:`MIN_CURVE_POINTS`. Both are machine-independent estimates, so the choice is the same on every device."""
    if scoring_flops <= 0:
        return AUTO_CURVE_POINTS
    points = min(AUTO_CURVE_POINTS, math.floor(AUTO_CURVE_SHARE * max(train_flops, 0.0) / scoring_flops))
    return points if points >= MIN_CURVE_POINTS else 0


def time_to_target(curve: Iterable[StepRecord], fraction: float = 0.95, best: float | None = None) -> Reached | None:
    """The first point (by step) whose value reaches ``fraction × best``, higher being better.

    ``best`` defaults to the best value of ``curve`` itself; pass the best across strategies to compare runs
    against one target. None when the curve is empty or never reaches the target.
    """
    points = sorted(curve, key=lambda r: r.step)
    if not points:
        return None
    if best is None:
        best = max(r.value for r in points)
    target = fraction * best
    for r in points:
        if r.value >= target:
            return Reached(r.step, r.examples, r.wall_s, r.value)
    return None


def dev_curve(records: Iterable[StepRecord]) -> list[StepRecord]:
    return [r for r in records if r.kind == "dev"]
