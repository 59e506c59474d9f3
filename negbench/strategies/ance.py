"""``ance``: dynamic hard negatives re-mined with the model being trained.

References:
    Xiong et al. 2021, "Approximate Nearest Neighbor Negative Contrastive Learning for Dense Text
    Retrieval" (ANCE): negatives come from an index built with the current checkpoint, refreshed
    periodically during training. Zhan et al. 2021 (ADORE) likewise mines dynamically with the current
    query encoder. Here the corpus is re-encoded with the model under training every ``refresh_every``
    optimiser steps (synchronously, so runs are reproducible) and ranks ``range_min..range_max`` of the
    fresh exact top-k become the candidates. Before the first refresh the base model's negatives are used; there is
    no refresh after the run's last step (no step would train on it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from optuna.distributions import IntDistribution

from negbench.context import Context
from negbench.strategies._windows import check_window
from negbench.strategies.dense import DenseNegatives
from negbench.strategy import Negatives, Sizes, Workload, periodic_unexercised

__all__ = ["ANCE", "ANCEParams"]


@dataclass(frozen=True)
class ANCEParams:
    range_min: int = 0
    range_max: int = 30
    sampling: Literal["top", "random"] = "random"
    refresh_every: int = 50

    def __post_init__(self) -> None:
        check_window(self.range_min, self.range_max)
        if self.refresh_every < 1:
            raise ValueError(f"refresh_every must be >= 1 step, got {self.refresh_every}")


class ANCE(DenseNegatives):
    """The ``dense`` window, re-mined with the model under training every ``refresh_every`` steps."""

    name = "ance"
    citation = "Xiong et al. 2021, ANCE; Zhan et al. 2021, ADORE (dynamic re-mining with the trained model)."
    Params = ANCEParams

    @classmethod
    def search_space(cls):
        return {**super().search_space(), "refresh_every": IntDistribution(10, 200, log=True)}

    def __init__(self, params: ANCEParams | None = None) -> None:
        super().__init__(params)
        self.ctx: Context | None = None  # the run's, for its length (set on it by the time training starts)

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        self.ctx = ctx

    def refresh_due(self, step: int) -> bool:
        """After every ``refresh_every``-th optimiser step that another step follows: a refresh after the run's last
        step (``ctx.total_steps``, when known) would be trained on by no step."""
        total = None if self.ctx is None else self.ctx.total_steps
        return step > 0 and step % self.params.refresh_every == 0 and (total is None or step < total)

    def unexercised(self, epochs: int, total_steps: int) -> str | None:
        return periodic_unexercised(
            self.params.refresh_every,
            total_steps,
            "steps",
            "refresh_every",
            "re-mines",
            "it never re-mines, so it trains on the base model's negatives as dense does",
        )

    def workload(self, ctx: Context, sizes: Sizes) -> Workload:
        """``dense``'s, and at every refresh (after each ``refresh_every``-th of the run's steps but its last) the
        model under training re-encodes the corpus and training queries."""
        base, refreshes = sizes.base, max(0, (ctx.total_steps or 0) - 1) // self.params.refresh_every
        each = base.encode(base.corpus + base.queries(ctx.query_ids))
        return dataclasses.replace(super().workload(ctx, sizes), refresh=refreshes * each)

    def refresh(self, ctx: Context, step: int) -> Negatives:
        self.state["refreshed_at"] = [*self.state.get("refreshed_at", []), step]
        return self.mine_window(ctx, ctx.model)
