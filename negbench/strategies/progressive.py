"""``progressive``: curriculum hard-negative mining; the rank window moves from easy to hard over epochs.

References:
    Wu, Shen, Li, Wu, Li, Xu 2023, "PEG: Towards Robust Text Retrieval with Progressive Learning"
    (arXiv:2311.11691): training moves progressively towards harder negatives.
    Bengio, Louradour, Collobert, Weston 2009, "Curriculum Learning", ICML 2009.

Candidates are the base model's dense top-k (labelled positives removed). Training is divided into
``P = epochs · updates_per_epoch`` phases; in phase ``u`` the negatives are drawn from ranks ``[lo, hi)``
where the window moves from ``start_min..start_max`` to ``end_min..end_max`` by the declared schedule of
progress ``t(u)``:

* ``linear``: ``t = u / (P − 1)``, the window slides (or widens) by equal steps every phase;
* ``step``: the phases are split into ``stages`` equal blocks and ``t`` jumps ``0, 1/(S−1), …, 1`` from
  block to block (with fewer phases than stages the last stages are not reached).

``lo`` and ``hi`` are ``round(start + t·(end − start))``. The defaults move from easy (ranks 50–100) to hard
(ranks 0–30); ``start = (0, 10), end = (0, 100)`` widens instead. Within a window, ``num_negatives`` are
drawn at random (``random``) or the top-ranked ones taken (``top``). A new epoch starts a new phase through
``sample``; with ``updates_per_epoch > 1`` the phases inside an epoch are switched by ``refresh`` at evenly
spaced optimiser steps (steps per epoch = the run's budget, ``ctx.steps_per_epoch``), so a one-epoch run still
sees the whole curriculum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from optuna.distributions import CategoricalDistribution, IntDistribution

from negbench.context import Context
from negbench.strategies._windows import window, window_sample
from negbench.strategy import Negatives, Strategy

__all__ = ["Progressive", "ProgressiveParams", "progress"]


@dataclass(frozen=True)
class ProgressiveParams:
    start_min: int = 50
    start_max: int = 100
    end_min: int = 0
    end_max: int = 30
    schedule: Literal["linear", "step"] = "linear"
    stages: int = 2
    sampling: Literal["top", "random"] = "random"
    updates_per_epoch: int = 4

    def __post_init__(self) -> None:
        for which in ("start", "end"):
            lo, hi = getattr(self, f"{which}_min"), getattr(self, f"{which}_max")
            if lo < 0:
                raise ValueError(f"{which}_min must be >= 0, got {lo}")
            if hi <= lo:
                raise ValueError(f"{which}_max ({hi}) must be greater than {which}_min ({lo})")
        if self.stages < 2:
            raise ValueError(f"stages must be >= 2, got {self.stages}")
        if self.updates_per_epoch < 1:
            raise ValueError(f"updates_per_epoch must be >= 1, got {self.updates_per_epoch}")


def progress(phase: int, phases: int, schedule: str, stages: int) -> float:
    """Schedule progress ``t`` in [0, 1] at ``phase`` of ``phases``."""
    if phases <= 1:
        return 0.0
    phase = min(max(phase, 0), phases - 1)
    if schedule == "linear":
        return phase / (phases - 1)
    stage = min(phase * stages // phases, stages - 1)
    return stage / (stages - 1)


class Progressive(Strategy):
    name = "progressive"
    citation = (
        "Wu et al. 2023, PEG: Towards Robust Text Retrieval with Progressive Learning; curriculum hard-negative mining."
    )
    requires = frozenset({"dense"})
    Params = ProgressiveParams

    def unexercised(self, epochs: int, total_steps: int) -> str | None:
        """The phases a run of ``epochs`` and ``total_steps`` optimiser steps never reaches: an epoch switches phase
        at most once per step, so with fewer steps per epoch than ``updates_per_epoch`` the last phases (and the
        end window) are skipped; with one phase in all there is no curriculum."""
        phases = epochs * self.params.updates_per_epoch
        reached = epochs * min(self.params.updates_per_epoch, max(1, total_steps // max(1, epochs)))
        if reached <= 1:
            return (
                f"moves its window over epochs × updates_per_epoch = {phases} phases but the run reaches one: no "
                "curriculum, the start window throughout"
            )
        if reached < phases:
            return (
                f"moves its window over epochs × updates_per_epoch = {phases} phases but the run's {total_steps} "
                f"steps reach {reached} of them: the end window is never used"
            )
        return None

    @classmethod
    def search_space(cls):
        return {
            "start_min": IntDistribution(10, 50),
            "start_max": IntDistribution(60, 150),
            "end_min": IntDistribution(0, 10),
            "end_max": IntDistribution(11, 50),  # > end_min for every draw: no invalid window
            "schedule": CategoricalDistribution(["linear", "step"]),
            "sampling": CategoricalDistribution(["top", "random"]),
            "updates_per_epoch": IntDistribution(1, 8),
        }

    def window_at(self, phase: int, phases: int) -> tuple[int, int]:
        """The rank window ``[lo, hi)`` of ``phase`` (of ``phases``)."""
        p = self.params
        t = progress(phase, phases, p.schedule, p.stages)
        lo = int(np.round(p.start_min + t * (p.end_min - p.start_min)))
        hi = int(np.round(p.start_max + t * (p.end_max - p.start_max)))
        return lo, max(hi, lo + 1)

    def phase(self, epoch: int) -> int:
        """Current phase in ``epoch``: its first, or the one the last in-epoch refresh switched to."""
        at_epoch, sub = self.state.get("sub_phase", (epoch, 0))
        return epoch * self.params.updates_per_epoch + (sub if at_epoch == epoch else 0)

    def setup(self, ctx: Context) -> None:
        self.state["epochs"] = ctx.epochs
        self.state["steps_per_epoch"] = ctx.steps_per_epoch  # the run's budget: the trainer's epoch length

    def mine(self, ctx: Context) -> Negatives:
        depth = max(self.params.start_max, self.params.end_max)
        candidates = window(ctx.dense_candidates(depth + 32), 0, depth)
        self.state["candidates"] = candidates
        return candidates

    def sample(self, ctx: Context, candidates: Negatives, epoch: int) -> Negatives:
        lo, hi = self.window_at(self.phase(epoch), max(1, ctx.epochs) * self.params.updates_per_epoch)
        return window_sample(ctx, window(candidates, lo, hi), epoch, self.params.sampling)

    # ------------------------------------------------------------------ phases inside an epoch
    def refresh_due(self, step: int) -> bool:
        per_epoch, updates = self.state.get("steps_per_epoch"), self.params.updates_per_epoch
        if not per_epoch or updates == 1 or step >= self.state.get("epochs", 1) * per_epoch:
            return False
        pos = step % per_epoch  # batches done in the current epoch; 0: a new epoch, handled by sample
        return pos > 0 and pos * updates // per_epoch != (pos - 1) * updates // per_epoch

    def refresh(self, ctx: Context, step: int) -> Negatives | None:
        """Switch to the next phase of the epoch; the same candidates, re-sampled in the new window."""
        epoch, pos = divmod(step, self.state["steps_per_epoch"])
        self.state["sub_phase"] = (epoch, pos * self.params.updates_per_epoch // self.state["steps_per_epoch"])
        candidates = self.state.get("candidates")
        return candidates if candidates is not None else self.mine(ctx)
